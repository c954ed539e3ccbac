// SPDX-License-Identifier: GPL-2.0-only
/*
 * The overhead budget (--max-overhead): calibrated trap costs, the
 * kernel's BPF run-time statistics and the target's CPU time, in windows
 * of probes on, with pauses long enough to keep the average in budget.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "features.skel.h"
#include "kfeatures.h"
#include "probes/budget.h"
#include "util/log.h"
#include "util/parse.h"

/*
 * A window of probes on: long enough for the target's CPU time to be
 * measured well (schedstat counts ns), short because a first window over
 * budget is paid in full.
 */
#define BUDGET_WINDOW_NS 20000000ull
/* ...and until the target used this much CPU, or a window this long. */
#define BUDGET_WINDOW_CPU_NS 2000000ull
#define BUDGET_WINDOW_MAX_NS 1000000000ull
/* ...and until the hooks cost it this much (or that longest window). */
#define BUDGET_WINDOW_COST_NS 1000000ull
/*
 * A target using less of a CPU than this counts as using this much: an
 * idle process is not slowed by the microseconds its hooks cost it (the
 * copy of each new code object, first of all).
 */
#define BUDGET_CPU_FLOOR_PCT 10.0
/* The longest pause: the table still moves on a process the probes would overwhelm. */
#define BUDGET_MAX_PAUSE_NS 30000000000ull

/*
 * Calibration targets: each starts with an instruction of one probe class
 * (written in assembly: a compiler would put endbr64 or a frame setup first).
 */
__asm__(".pushsection .text\n"
	".p2align 4\n"
	".type pyx_calib_optimized, @function\n"
	"pyx_calib_optimized:\n"
	"	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n" /* nop5 */
	"	ret\n"
	".size pyx_calib_optimized, .-pyx_calib_optimized\n"
	".p2align 4\n"
	".type pyx_calib_emulated, @function\n"
	"pyx_calib_emulated:\n"
	"	push %rbp\n"
	"	pop %rbp\n"
	"	ret\n"
	".size pyx_calib_emulated, .-pyx_calib_emulated\n"
	".p2align 4\n"
	".type pyx_calib_single_step, @function\n"
	"pyx_calib_single_step:\n"
	"	mov %rdi, %rax\n"
	"	ret\n"
	".size pyx_calib_single_step, .-pyx_calib_single_step\n"
	".popsection\n");

void pyx_calib_optimized(void);
void pyx_calib_emulated(void);
void pyx_calib_single_step(void);

/* Where @fn is in pyxtrace's executable file, from the mapping that holds it. */
static int file_offset_of(void (*fn)(void), unsigned long *offset)
{
	uintptr_t addr = (uintptr_t)fn;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "re");
	int err = -ENOENT;

	if (!maps)
		return -errno;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end, pgoff;

		if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &pgoff) != 3)
			continue;
		if (addr >= start && addr < end) {
			*offset = addr - start + pgoff;
			err = 0;
			break;
		}
	}
	fclose(maps);
	return err;
}

static uint64_t time_calls(void (*fn)(void), unsigned int n)
{
	void (*volatile call)(void) = fn;
	uint64_t t0 = pyx_monotonic_ns();
	unsigned int i;

	for (i = 0; i < n; i++)
		call();
	return pyx_monotonic_ns() - t0;
}

/* The fastest of three timings of @n calls of @fn. */
static uint64_t best_of_three(void (*fn)(void), unsigned int n)
{
	uint64_t best = UINT64_MAX, t;
	int round;

	for (round = 0; round < 3; round++) {
		t = time_calls(fn, n);
		best = t < best ? t : best;
	}
	return best;
}

#define CALIB_TARGETS 3

static void (*const calib_fns[CALIB_TARGETS])(void) = {
	pyx_calib_optimized,
	pyx_calib_emulated,
	pyx_calib_single_step,
};
static const int calib_classes[CALIB_TARGETS] = {
	PYX_PROBE_OPTIMIZED,
	PYX_PROBE_EMULATED,
	PYX_PROBE_SINGLESTEP,
};
static const unsigned int calib_calls[CALIB_TARGETS] = {5000, 5000, 500};

/*
 * One link on all the targets (destroying a link waits for the kernel: a
 * link per measurement took half a second), timed with it, then without.
 */
static int calibrate_with(struct bpf_program *prog, bool retprobe, size_t nr_targets,
			  uint64_t with[CALIB_TARGETS])
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .retprobe = retprobe);
	unsigned long offsets[CALIB_TARGETS];
	struct bpf_link *link;
	size_t i;
	int err;

	for (i = 0; i < nr_targets; i++) {
		err = file_offset_of(calib_fns[i], &offsets[i]);
		if (err)
			return err;
	}
	opts.offsets = offsets;
	opts.cnt = nr_targets;
	link = bpf_program__attach_uprobe_multi(prog, getpid(), "/proc/self/exe", NULL, &opts);
	if (!link)
		return -errno;
	for (i = 0; i < nr_targets; i++) {
		time_calls(calib_fns[i],
			   64); /* the kernel optimizes a nop5 site on its first hits */
		with[i] = best_of_three(calib_fns[i], calib_calls[i]);
	}
	bpf_link__destroy(link);
	return 0;
}

int pyx_probe_costs_calibrate(struct pyx_probe_costs *costs)
{
	uint64_t with[CALIB_TARGETS], ret_with[CALIB_TARGETS], without;
	struct features_bpf *skel;
	size_t i;
	int err;

	skel = pyx_features_open_only("probe_uprobe_multi", &err);
	if (!skel)
		return err;
	memset(costs, 0, sizeof(*costs));
	err = calibrate_with(skel->progs.probe_uprobe_multi, false, CALIB_TARGETS, with);
	if (!err)
		err = calibrate_with(skel->progs.probe_uprobe_multi, true, 1, ret_with);
	features_bpf__destroy(skel);
	if (err)
		return err;
	for (i = 0; i < CALIB_TARGETS; i++) {
		without = best_of_three(calib_fns[i], calib_calls[i]);
		costs->trap_ns[calib_classes[i]] =
			with[i] > without ? (with[i] - without) / calib_calls[i] : 0;
		if (!i)
			costs->return_ns = ret_with[0] > without
						   ? (ret_with[0] - without) / calib_calls[0]
						   : 0;
	}
	return 0;
}

uint64_t pyx_probe_costs_trap(const struct pyx_probe_costs *costs, int cls)
{
	if (cls >= PYX_PROBE_OPTIMIZED && cls <= PYX_PROBE_SINGLESTEP)
		return costs->trap_ns[cls];
	return costs->trap_ns[PYX_PROBE_SINGLESTEP];
}

/* The target's CPU time so far: its threads' time on a CPU (schedstat, ns). */
static uint64_t target_cpu_ns(pid_t pid)
{
	char path[64], line[128];
	struct dirent *de;
	uint64_t total = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", pid, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && sscanf(line, "%llu", &ns) == 1)
			total += ns;
		fclose(f);
	}
	closedir(dir);
	return total;
}

static int prog_counters(int fd, uint64_t *cnt, uint64_t *run_ns)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_prog_get_info_by_fd(fd, &info, &len))
		return -errno;
	*cnt = info.run_cnt;
	*run_ns = info.run_time_ns;
	return 0;
}

int pyx_budget__init(struct pyx_budget *b, const struct pyx_ctx *ctx, pid_t pid, double max_pct)
{
	int err;

	memset(b, 0, sizeof(*b));
	b->ctx = ctx;
	b->stats_fd = -1;
	b->max_pct = max_pct;
	b->pid = pid;
	err = pyx_probe_costs_calibrate(&b->costs);
	if (err) {
		pyx_error(ctx, "cannot calibrate the probe costs for --max-overhead: %s",
			  strerror(-err));
		return err;
	}
	pyx_debug(ctx,
		  "probe costs: optimized %" PRIu64 " ns, emulated %" PRIu64
		  " ns, single-step %" PRIu64 " ns, return %" PRIu64 " ns",
		  b->costs.trap_ns[PYX_PROBE_OPTIMIZED], b->costs.trap_ns[PYX_PROBE_EMULATED],
		  b->costs.trap_ns[PYX_PROBE_SINGLESTEP], b->costs.return_ns);
	b->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (b->stats_fd < 0) {
		err = -errno;
		pyx_error(ctx, "cannot turn the kernel's BPF statistics on for --max-overhead: %s",
			  strerror(-err));
		return err;
	}
	return 0;
}

int pyx_budget__add_prog(struct pyx_budget *b, int prog_fd, uint64_t trap_ns)
{
	if (b->nr_progs == PYX_BUDGET_PROGS)
		return -E2BIG;
	b->progs[b->nr_progs].fd = prog_fd;
	b->progs[b->nr_progs].trap_ns = trap_ns;
	b->nr_progs++;
	return 0;
}

static void window_start(struct pyx_budget *b)
{
	size_t i;

	for (i = 0; i < b->nr_progs; i++)
		prog_counters(b->progs[i].fd, &b->progs[i].run_cnt, &b->progs[i].run_time_ns);
	b->window_cpu_ns = target_cpu_ns(b->pid);
}

/* What the hooks cost the target since window_start(): hits × trap + run time. */
static uint64_t window_cost(struct pyx_budget *b, uint64_t *hits_out)
{
	uint64_t cost = 0, hits = 0;
	size_t i;

	for (i = 0; i < b->nr_progs; i++) {
		struct pyx_budget_prog *p = &b->progs[i];
		uint64_t cnt, run_ns;

		if (prog_counters(p->fd, &cnt, &run_ns))
			continue;
		cost += (cnt - p->run_cnt) * p->trap_ns + (run_ns - p->run_time_ns);
		hits += cnt - p->run_cnt;
	}
	*hits_out = hits;
	return cost;
}

/* @cost in percent of the target's own CPU time @cpu_ns over @elapsed_ns. */
static double window_pct(uint64_t cost, uint64_t elapsed_ns, uint64_t cpu_ns)
{
	uint64_t own, floor_ns;

	if (!cost)
		return 0;
	/* The traps ran in the target's threads: its CPU time holds them. */
	own = cpu_ns > cost ? cpu_ns - cost : 0;
	floor_ns = (uint64_t)((double)elapsed_ns * BUDGET_CPU_FLOOR_PCT / 100.0);
	return 100.0 * (double)cost / (double)(own > floor_ns ? own : floor_ns);
}

void pyx_budget__attached(struct pyx_budget *b, uint64_t now_ns)
{
	b->on = true;
	b->phase_start_ns = now_ns;
	window_start(b);
}

enum pyx_budget_action pyx_budget__tick(struct pyx_budget *b, uint64_t now_ns)
{
	uint64_t elapsed = now_ns - b->phase_start_ns, cpu, cost, hits;
	double pct, pause;

	if (!b->on) {
		if (elapsed < b->pause_ns)
			return PYX_BUDGET_NONE;
		b->paused_ns += elapsed;
		return PYX_BUDGET_ATTACH;
	}
	if (elapsed < BUDGET_WINDOW_NS)
		return PYX_BUDGET_NONE;
	cpu = target_cpu_ns(b->pid) - b->window_cpu_ns;
	cost = window_cost(b, &hits);
	/*
	 * Judged once the target ran enough and the hooks cost enough to tell
	 * (the first copies of code objects alone must not pause a light
	 * process), or after the longest window.
	 */
	if ((cpu < BUDGET_WINDOW_CPU_NS || cost < BUDGET_WINDOW_COST_NS) &&
	    elapsed < BUDGET_WINDOW_MAX_NS)
		return PYX_BUDGET_NONE;
	pct = window_pct(cost, elapsed, cpu);
	pyx_debug(b->ctx,
		  "budget window: %" PRIu64 " ms, target CPU %" PRIu64 " us, %" PRIu64
		  " hook hits costing %" PRIu64 " us: %.1f%%",
		  elapsed / 1000000, cpu / 1000, hits, cost / 1000, pct);
	b->last_pct = pct;
	b->max_seen_pct = pct > b->max_seen_pct ? pct : b->max_seen_pct;
	b->traced_ns += elapsed;
	b->phase_start_ns = now_ns;
	if (pct <= b->max_pct) {
		window_start(b);
		return PYX_BUDGET_NONE;
	}
	/* Off long enough that on + off average to the budget. */
	pause = (double)elapsed * (pct / b->max_pct - 1.0);
	b->pause_ns = pause > (double)BUDGET_MAX_PAUSE_NS ? BUDGET_MAX_PAUSE_NS : (uint64_t)pause;
	b->on = false;
	b->pauses++;
	return PYX_BUDGET_DETACH;
}

void pyx_budget__end(struct pyx_budget *b, uint64_t now_ns)
{
	uint64_t elapsed = now_ns - b->phase_start_ns;

	if (b->on)
		b->traced_ns += elapsed;
	else
		b->paused_ns += elapsed;
	b->phase_start_ns = now_ns;
}

void pyx_budget__free(struct pyx_budget *b)
{
	if (b->stats_fd >= 0)
		close(b->stats_fd);
	b->stats_fd = -1;
}
