/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The overhead budget (--max-overhead): what per-call probes cost a target,
 * measured while they are attached, and when to take them off.
 *
 * The cost of a probe hit is the kernel's trap (calibrated at start on
 * pyxtrace's own code, per probe class: it differs 40x between an
 * optimized nop5 and a single-stepped instruction) plus the BPF program's
 * run time (the kernel's own BPF statistics). Against the target's CPU time
 * (its threads' schedstat; at least 10 % of a CPU, so that an idle
 * process is not paused for microseconds) that gives the overhead of each
 * window the probes were on (20 ms, longer until the target used 2 ms of
 * CPU and the hooks cost 1 ms, at most 1 s). Above the budget, the probes are detached for as long as
 * it takes for the average to come back to it (a duty cycle): filtering in
 * BPF would not help, the trap is paid on every hit.
 */
#ifndef PYX_PROBES_BUDGET_H
#define PYX_PROBES_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf/x86.h"
#include "pyx.h"

/* The trap of one hit, per probe class, measured here (ns). */
struct pyx_probe_costs {
	uint64_t trap_ns[PYX_PROBE_REFUSED]; /* by enum pyx_probe_class (optimized..single-step) */
	uint64_t return_ns;		     /* a return probe: its entry hook plus the return */
};

/*
 * Attach a do-nothing program to functions of pyxtrace's own starting with
 * an instruction of each class and time calls with and without: 0 or -errno.
 */
int pyx_probe_costs_calibrate(struct pyx_probe_costs *costs);

/* The trap of a probe of class @cls (the costliest for an unknown class). */
uint64_t pyx_probe_costs_trap(const struct pyx_probe_costs *costs, int cls);

#define PYX_BUDGET_PROGS   16
#define PYX_BUDGET_TICK_NS 5000000ull /* how often pyx_budget__tick() is due */

struct pyx_budget_prog {
	int fd;		  /* the BPF program */
	uint64_t trap_ns; /* per hit, its costliest site */
	uint64_t run_cnt; /* the kernel's counters at the window's start */
	uint64_t run_time_ns;
};

enum pyx_budget_action {
	PYX_BUDGET_NONE = 0,
	PYX_BUDGET_DETACH, /* over budget: take the probes off */
	PYX_BUDGET_ATTACH, /* the pause is over: put them back */
};

struct pyx_budget {
	const struct pyx_ctx *ctx;
	double max_pct; /* of the target's CPU time */
	pid_t pid;
	int stats_fd; /* BPF_ENABLE_STATS: run times counted while it is open */
	struct pyx_probe_costs costs;
	struct pyx_budget_prog progs[PYX_BUDGET_PROGS];
	size_t nr_progs;
	bool on;		 /* the probes are attached */
	uint64_t phase_start_ns; /* when they were attached or detached */
	uint64_t pause_ns;	 /* how long this pause lasts */
	uint64_t window_cpu_ns;	 /* the target's CPU time at the window's start */
	/* What the output says. */
	uint64_t traced_ns; /* time the probes were on, windows ended so far */
	uint64_t paused_ns;
	unsigned int pauses;
	double last_pct; /* overhead of the last full window */
	double max_seen_pct;
};

/*
 * @max_pct of the target @pid's CPU time (> 0); calibrates and turns the
 * kernel's BPF statistics on. 0 or -errno (the reason logged).
 */
int pyx_budget__init(struct pyx_budget *b, const struct pyx_ctx *ctx, pid_t pid, double max_pct);

/* A program whose hits count, with its costliest site's trap. 0 or -E2BIG. */
int pyx_budget__add_prog(struct pyx_budget *b, int prog_fd, uint64_t trap_ns);

/* The probes went live (at start and after each pause). */
void pyx_budget__attached(struct pyx_budget *b, uint64_t now_ns);

/* Called every tick: what to do now. */
enum pyx_budget_action pyx_budget__tick(struct pyx_budget *b, uint64_t now_ns);

/* The trace ended at @now_ns: close the current phase. */
void pyx_budget__end(struct pyx_budget *b, uint64_t now_ns);

void pyx_budget__free(struct pyx_budget *b);

#endif /* PYX_PROBES_BUDGET_H */
