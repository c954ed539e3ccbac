/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one skeleton lifecycle every command uses:
 *
 *   open -> write the rodata config -> prepare (autoload, map sizes) -> load
 *   -> attach (command-specific) -> set the ready flag -> poll -> destroy
 *
 * The poll loop ends on Ctrl-C, SIGTERM, the duration, the target's exit or
 * an error; in every case the last records are consumed and the final
 * interval callback runs, so results are flushed. Links are plain fds, so
 * they detach when pyxtrace exits however it exits (even SIGKILL).
 */
#ifndef PYX_SESSION_H
#define PYX_SESSION_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>
#include <pyxtrace/common.h>

#include "pyx.h"

/* How a session drives one bpftool skeleton type; made by PYX_SKEL_OPS(prefix). */
struct pyx_skel_ops {
	const char *name;
	void *(*open)(const struct bpf_object_open_opts *opts);
	int (*load)(void *skel);
	void (*destroy)(void *skel);
	struct bpf_object *(*object)(void *skel);
};

#define PYX_SKEL_OPS(prefix)                                                     \
	static void *prefix##_skel_open(const struct bpf_object_open_opts *opts) \
	{                                                                        \
		return prefix##__open_opts(opts);                                \
	}                                                                        \
	static int prefix##_skel_load(void *skel)                                \
	{                                                                        \
		return prefix##__load(skel);                                     \
	}                                                                        \
	static void prefix##_skel_destroy(void *skel)                            \
	{                                                                        \
		prefix##__destroy(skel);                                         \
	}                                                                        \
	static struct bpf_object *prefix##_skel_object(void *skel)               \
	{                                                                        \
		return ((struct prefix *)skel)->obj;                             \
	}                                                                        \
	static const struct pyx_skel_ops prefix##_ops = {                        \
		.name = #prefix,                                                 \
		.open = prefix##_skel_open,                                      \
		.load = prefix##_skel_load,                                      \
		.destroy = prefix##_skel_destroy,                                \
		.object = prefix##_skel_object,                                  \
	}

struct pyx_session;

enum pyx_stop_reason {
	PYX_STOP_NONE = 0,
	PYX_STOP_SIGNAL,      /* Ctrl-C or SIGTERM */
	PYX_STOP_DURATION,    /* -d elapsed */
	PYX_STOP_TARGET_EXIT, /* the traced process exited */
	PYX_STOP_ERROR,
	PYX_STOP_REQUESTED, /* a callback asked to stop */
};

struct pyx_session_opts {
	const struct pyx_ctx *ctx;
	const void *cfg; /* copied into the object's .rodata.cfg section */
	size_t cfg_size;
	pid_t target_pid;     /* its exit ends the poll; 0 for none */
	pid_t resume_pid;     /* launch mode: SIGCONT this process once probes are live */
	uint64_t duration_ns; /* 0: until Ctrl-C or SIGTERM */
	uint64_t interval_ns; /* 0: on_interval only at the end */
	void *cookie;	      /* passed to every callback */
	/* After open, before load: autoload choices, map sizes. */
	int (*prepare)(void *cookie, void *skel);
	/* After load: attach links (hand them to pyx_session__add_link). */
	int (*attach)(void *cookie, struct pyx_session *session, void *skel);
	/* One ring buffer record, size already checked >= header and == hdr->size. */
	int (*on_record)(void *cookie, const struct pyx_rec_hdr *hdr, size_t size);
	/* Every interval, and once with final = true when the session stops. */
	int (*on_interval)(void *cookie, struct pyx_session *session, bool final);
	/* Every tick_ns while tracing (0: never): a controller, e.g. the overhead budget. */
	uint64_t tick_ns;
	int (*on_tick)(void *cookie, struct pyx_session *session);
	/*
	 * One of many processes traced at once: no loop, signals or timers of
	 * its own; another session's loop polls its rings (pyx_session__follow).
	 */
	bool follower;
};

/*
 * Open, configure, load and attach; on success the probes are live and the
 * ready flag is set. Returns 0 or -errno (the reason already logged).
 */
int pyx_session__start(struct pyx_session **out, const struct pyx_skel_ops *ops,
		       const struct pyx_session_opts *opts);

/* Poll until a stop condition; returns 0 or -errno. */
int pyx_session__run(struct pyx_session *session);
/* The whole lifecycle at once: start, run until a stop condition, destroy. 0 or -errno. */
int pyx_session__trace(const struct pyx_skel_ops *ops, const struct pyx_session_opts *opts);

/*
 * Handle the records waiting in the object's "urgent" ring buffer now, from
 * inside a callback about to spend long on a record of the main "events"
 * ring (urgent records name things that vanish with the target).
 */
void pyx_session__drain_urgent(struct pyx_session *session);
/*
 * Clear the ready flag: handlers return early from now on, so the final
 * reads of an aggregating command (several maps) are one consistent
 * snapshot while the target keeps running until the links are destroyed.
 */
void pyx_session__quiesce(struct pyx_session *session);
/* Ask the poll loop to end after the current callback. */
void pyx_session__request_stop(struct pyx_session *session);
/* The same, naming why (e.g. PYX_STOP_TARGET_EXIT: every process followed is gone). */
void pyx_session__stop_for(struct pyx_session *session, enum pyx_stop_reason reason);

enum pyx_stop_reason pyx_session__stop_reason(const struct pyx_session *session);
const char *pyx_stop_reason_name(enum pyx_stop_reason reason);

/* The session owns @link from now on (destroyed with the session); NULL links are refused. */
/*
 * Open a perf event (@attr for thread @pid on any CPU, or every task on
 * @cpu with pid -1) and attach @prog to it; the session owns both. -errno:
 * -ESRCH a thread gone, -ENODEV an offline CPU, or the attach's error.
 */
struct perf_event_attr;
int pyx_session__attach_perf(struct pyx_session *session, struct bpf_program *prog,
			     struct perf_event_attr *attr, pid_t pid, int cpu);

int pyx_session__add_link(struct pyx_session *session, struct bpf_link *link);

/*
 * Clear the ready flag and destroy every link, the last attached first (the
 * probes are gone from the target; the object stays loaded): a command
 * pausing its probes attaches them again later, then calls
 * pyx_session__reattached() to set the ready flag again.
 */
void pyx_session__detach(struct pyx_session *session);
void pyx_session__reattached(struct pyx_session *session);

/*
 * Poll @follower's rings in @loop's event loop (from now on, and a last time
 * before the loop's final interval) until pyx_session__unfollow(); the
 * follower stays owned by its creator.
 */
int pyx_session__follow(struct pyx_session *loop, struct pyx_session *follower);
void pyx_session__unfollow(struct pyx_session *loop, struct pyx_session *follower);

/* Handle every record waiting in the rings now (from a tick: before a pause). */
void pyx_session__consume(struct pyx_session *session);

void *pyx_session__skel(const struct pyx_session *session);

/* Drop counters from the control block, and their names for output. */
void pyx_session__drops(const struct pyx_session *session, uint64_t drops[PYX_DROP__MAX]);
const char *pyx_drop_reason_name(enum pyx_drop_reason reason);

/* Nanoseconds since the probes went live. */
uint64_t pyx_session__elapsed_ns(const struct pyx_session *session);

void pyx_session__destroy(struct pyx_session *session);

#endif /* PYX_SESSION_H */
