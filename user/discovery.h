/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Process discovery, one component for every command: which CPython
 * processes are in scope (--children, --container, --all), now and later.
 * The kernel follows exec, fork and exit of the processes in scope and new
 * code they map (bpf/discovery.bpf.c); this side recognises a CPython
 * process by its mapped interpreter (executable or libpython, whatever its
 * name; the verdict is kept per file) and tells the command to start,
 * extend or end its tracing of each. The command traces each process with
 * its own follower session (session.h), polled in this component's loop.
 */
#ifndef PYX_DISCOVERY_H
#define PYX_DISCOVERY_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <pyxtrace/common.h>
#include <pyxtrace/discovery.h>

#include "pyx.h"
#include "session.h"

struct pyx_discovery;

/* Why a traced process is no longer traced. */
enum pyx_gone_reason {
	PYX_GONE_EXIT = 0, /* it ended (status: its wait status) */
	PYX_GONE_EXEC,	   /* it replaced its image: the old image's results are final */
	PYX_GONE_STOP,	   /* the run ends (Ctrl-C, duration): it still runs */
};

struct pyx_discovery_opts {
	const struct pyx_ctx *ctx;
	enum pyx_discovery_scope scope;
	pid_t root;	       /* PYX_SCOPE_CHILDREN: the first process (host PID) */
	const char *container; /* PYX_SCOPE_CONTAINER: its id or a unique prefix */
	uint64_t duration_ns;  /* 0: until Ctrl-C, SIGTERM (or all gone but for ALL) */
	uint64_t interval_ns;  /* 0: on_interval only at the end */
	uint64_t tick_ns;      /* on_tick every min(tick_ns, 10 ms); 0: none */
	void *cookie;	       /* passed to every callback */
	/*
	 * A CPython process came into scope (there at start, forked, or a new
	 * image): start tracing it, and set *@proc to the command's state for
	 * it (handed back to mapped and gone). 0 when traced, -errno when not
	 * (the command says why); -ESRCH and -ENOENT mean it is gone already.
	 */
	int (*found)(void *cookie, struct pyx_discovery *disc, pid_t pid, void **proc);
	/* A traced process mapped new code (a module imported). */
	void (*mapped)(void *cookie, struct pyx_discovery *disc, void *proc);
	/*
	 * A traced process is no more traced (@why; @status with
	 * PYX_GONE_EXIT): print and keep its results, free @proc. Every
	 * process still traced at the end gets PYX_GONE_STOP first.
	 */
	void (*gone)(void *cookie, struct pyx_discovery *disc, void *proc, enum pyx_gone_reason why,
		     __u32 status);
	/* Every interval, and once with final set when the run ends (after every gone). */
	int (*on_interval)(void *cookie, struct pyx_discovery *disc, bool final);
	int (*on_tick)(void *cookie, struct pyx_discovery *disc);
};

/*
 * Find the processes in scope, tell the command about each, and poll until
 * Ctrl-C, SIGTERM, the duration, or the last process's exit (not for ALL:
 * more may come).
 * Returns 0 or -errno (reason logged).
 */
int pyx_discovery__run(const struct pyx_discovery_opts *opts);

/*
 * The CPython processes in @opts's scope now (no following, no BPF): a
 * newly allocated array of host PIDs, in /proc order (--children: the root
 * first). 0 or -errno (reason logged).
 */
int pyx_discovery__list(const struct pyx_discovery_opts *opts, pid_t **pids, size_t *nr);

/*
 * Start a traced process's session as a follower (opts->follower is set
 * here) polled in the discovery loop until pyx_discovery__end_follower(),
 * which handles its last records and stops polling it (the caller still
 * destroys it). 0 or -errno, as pyx_session__start().
 */
int pyx_discovery__start_follower(struct pyx_discovery *disc, const struct pyx_skel_ops *ops,
				  struct pyx_session_opts *opts, struct pyx_session **session);
void pyx_discovery__end_follower(struct pyx_discovery *disc, struct pyx_session *session);

/* @fn on the state of every process traced now (an interval's work). */
void pyx_discovery__for_each(struct pyx_discovery *disc,
			     void (*fn)(void *cookie, struct pyx_discovery *disc, void *proc));

/* "target-exit", "exec", or the run's stop reason: a process's stopped_by. */
const char *pyx_discovery__gone_name(const struct pyx_discovery *disc, enum pyx_gone_reason why);

/*
 * The scope's end: its drops (the discovery's own added to @drops), how it
 * is named, how long it ran and why it stopped, for the command's totals.
 */
struct pyx_discovery_end {
	char scope[128];
	const char *stopped_by;
	uint64_t duration_ns;
};
void pyx_discovery__end(const struct pyx_discovery *disc, uint64_t drops[PYX_DROP__MAX],
			struct pyx_discovery_end *end);

#endif /* PYX_DISCOVERY_H */
