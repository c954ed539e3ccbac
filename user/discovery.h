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

struct pyx_discovery_opts {
	const struct pyx_ctx *ctx;
	enum pyx_discovery_scope scope;
	pid_t root;	       /* PYX_SCOPE_CHILDREN: the first process (host PID) */
	const char *container; /* PYX_SCOPE_CONTAINER: its id or a unique prefix */
	uint64_t duration_ns;  /* 0: until Ctrl-C, SIGTERM (or all gone but for ALL) */
	uint64_t interval_ns;  /* 0: on_interval only at the end */
	uint64_t tick_ns;      /* 0: no on_tick */
	void *cookie;	       /* passed to every callback */
	/*
	 * A CPython process came into scope (there at start, forked, or a new
	 * image): start tracing it. 0 when traced, -errno when not (the
	 * command says why); -ESRCH and -ENOENT mean it is gone already.
	 */
	int (*found)(void *cookie, struct pyx_discovery *disc, pid_t pid);
	/* A traced process mapped new code (a module imported). */
	void (*mapped)(void *cookie, struct pyx_discovery *disc, pid_t pid);
	/*
	 * A traced process is no more: it ended (@exited, wait status
	 * @status) or replaced its image (exec). Consume and keep its results.
	 */
	void (*gone)(void *cookie, struct pyx_discovery *disc, pid_t pid, bool exited,
		     __u32 status);
	/* Every interval, and once with final set when the run ends. */
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

/* Poll a traced process's follower session in the discovery loop, until unfollowed. */
int pyx_discovery__follow(struct pyx_discovery *disc, struct pyx_session *session);
void pyx_discovery__unfollow(struct pyx_discovery *disc, struct pyx_session *session);

enum pyx_stop_reason pyx_discovery__stop_reason(const struct pyx_discovery *disc);
/* The discovery object's own drops (its ring full, its map of processes full). */
void pyx_discovery__drops(const struct pyx_discovery *disc, uint64_t drops[PYX_DROP__MAX]);
uint64_t pyx_discovery__elapsed_ns(const struct pyx_discovery *disc);

/* How a scope is named in output: "children of 1234", "container 3f2a...", "all". */
const char *pyx_discovery__scope_label(const struct pyx_discovery_opts *opts, char *buf,
				       size_t size);

#endif /* PYX_DISCOVERY_H */
