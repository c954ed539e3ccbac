/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The exact call events of bpf/calls.bpf.c, shared by the commands that
 * use them: `calls` aggregates them, `flow` streams them in order. Here:
 * finding the hooks (python/evalhooks.c) and the C functions of --module /
 * --cfunc, the object's config, attaching, and the functions seen, named
 * from the copies of their code objects the kernel sends.
 */
#ifndef PYX_CMD_CALLS_EXACT_H
#define PYX_CMD_CALLS_EXACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <linux/types.h>
#include <pyxtrace/calls.h>

#include "pyx.h"
#include "python/evalhooks.h"
#include "python/layout.h"
#include "probes/budget.h"

struct pyx_session;
struct pyx_module;
struct pyx_process;
struct pyx_python;
struct calls_bpf;

/* One function seen (a code object, or a C function of --module/--cfunc). */
struct pyx_calls_fn {
	struct pyx_calls_key key;
	char *function;
	char *qualname;
	char *file;
	int line;
	bool named;
	bool native;		   /* a C function (kind native) */
	char *rendered;		   /* flow: its JSON fields, rendered once (freed with it) */
	struct pyx_calls_stats st; /* summed over CPUs (calls) */
};

struct pyx_calls_exact {
	const struct pyx_ctx *ctx;
	struct pyx_process *proc; /* borrowed */
	struct pyx_python *py;	  /* borrowed */
	const struct pyx_python_layout *layout;
	struct pyx_eval_hooks hooks;
	struct pyx_module **natives; /* --module, --cfunc: C functions by cookie range */
	size_t nr_natives;
	size_t nr_native_functions;
	bool budgeted; /* --max-overhead */
	struct pyx_budget budget;
	struct pyx_calls_fn *fns;
	size_t nr_fns, cap_fns;
	size_t *index; /* open addressing over fns by key: cap_fns * 2 slots, 0 = empty */
	/* Probe sites that learn a frame register (cookies): RESUME, ≤3.10 RETURN_VALUE. */
	size_t site_hook[PYX_CALLS_FRAME_SITES];
	int frame_reg[PYX_CALLS_FRAME_SITES]; /* bit of PYX_CALLS_FRAME_REGS, -1: none yet */
	size_t nr_sites;
};

/*
 * Find the exact hooks of @x->proc's interpreter. -EOPNOTSUPP: the target
 * runs a JIT (PYTHON_JIT=@jit); -ENOENT: no hooks (@why says what the user
 * can do); another -errno: an error (@why).
 */
int pyx_calls_exact__find(struct pyx_calls_exact *x, char *jit, size_t jit_len, char *why,
			  size_t why_len);

/* The register hook @i's frame was learned in ("rbx"), NULL: none (yet), or not a start. */
const char *pyx_calls_exact__frame_register(const struct pyx_calls_exact *x, size_t i);

/*
 * Before load: only the programs of the hooks found (and of the C functions,
 * if any) are loaded; the others' verification is ~40 % of the object's.
 */
int pyx_calls_exact__autoload(const struct pyx_calls_exact *x, struct calls_bpf *skel);

/* Read what the BPF side has learned of the frame registers (pyx_calls_exact__frame_register). */
void pyx_calls_exact__read_frame_regs(struct pyx_calls_exact *x, const struct calls_bpf *skel);

/*
 * After __find: the C functions of @module and @cfunc (either NULL), the
 * warnings about the hooks' cost, and @cfg filled but for tgid/tid and the
 * command's own fields. Prints the one-line error itself; 0 or -errno.
 */
int pyx_calls_exact__prepare(struct pyx_calls_exact *x, const char *module, const char *cfunc,
			     struct pyx_calls_cfg *cfg);

/* Attach every hook to @skel's programs: the session's attach callback. 0 or -errno. */
int pyx_calls_exact__attach(struct pyx_calls_exact *x, struct pyx_session *session,
			    struct calls_bpf *skel);

/*
 * The function of @key, added on @create and named from @snap (the copy
 * of its code object a PYX_REC_CALLS_CODE record carries; NULL: the live
 * process). NULL when unknown (not @create) or out of memory.
 */
struct pyx_calls_fn *pyx_calls_exact__fn(struct pyx_calls_exact *x, const struct pyx_calls_key *key,
					 bool create, const struct pyx_code_snap *snap);

/* A record of the urgent ring: a PYX_REC_CALLS_CODE names its function. */
void pyx_calls_exact__on_record(struct pyx_calls_exact *x, const struct pyx_rec_hdr *hdr,
				size_t size);

/*
 * --max-overhead @max_pct (> 0): calibrate, and weigh each of @skel's
 * programs by its costliest site. After load, before attach. 0 or -errno.
 */
int pyx_calls_exact__budget(struct pyx_calls_exact *x, struct calls_bpf *skel, double max_pct);

/*
 * The session's tick: over budget, detach every hook; the pause over,
 * attach them again (fresh shadow stacks). What happened.
 */
enum pyx_budget_action pyx_calls_exact__tick(struct pyx_calls_exact *x, struct pyx_session *session,
					     struct calls_bpf *skel);

/* The trace ended: close the budget's last phase. */
void pyx_calls_exact__budget_end(struct pyx_calls_exact *x);

/* "overhead": the budget and how much of the time the hooks were on (null: no budget). */
struct pyx_json;
void pyx_calls_exact__json_overhead(const struct pyx_calls_exact *x, struct pyx_json *json);
/* One line when the hooks were paused (nothing otherwise). */
void pyx_calls_exact__print_overhead(const struct pyx_calls_exact *x, FILE *out);

/* The default of --max-overhead, percent of the target's CPU time. */
#define PYX_CALLS_MAX_OVERHEAD_DEFAULT 5.0

void pyx_calls_exact__free(struct pyx_calls_exact *x);

#endif /* PYX_CMD_CALLS_EXACT_H */
