/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of process discovery (bpf/discovery.bpf.c, user/discovery.c): which
 * processes come into scope (exec, fork), leave it (exit) and map new code
 * (a module imported), told to user space as they happen.
 */
#ifndef __PYXTRACE_DISCOVERY_H
#define __PYXTRACE_DISCOVERY_H

#include "common.h"

/* Which processes are in scope. */
enum pyx_discovery_scope {
	PYX_SCOPE_CHILDREN = 1,	 /* the tracked processes and every descendant */
	PYX_SCOPE_CONTAINER = 2, /* also every exec inside one PID namespace (pid_ns) */
	PYX_SCOPE_ALL = 3,	 /* every exec on the host */
};

struct pyx_discovery_cfg {
	__u32 scope;	 /* enum pyx_discovery_scope */
	__u32 self_tgid; /* pyxtrace itself: never in scope */
	__u32 pid_ns;	 /* PYX_SCOPE_CONTAINER: the container's PID namespace (inode) */
	__u32 __pad;
};

/* What happened to a process. */
enum pyx_discovery_event {
	PYX_DISCOVERY_EXEC = 1,	  /* a process in scope ran execve: a new image */
	PYX_DISCOVERY_FORK = 2,	  /* a tracked process forked a new process (parent set) */
	PYX_DISCOVERY_EXIT = 3,	  /* a tracked process ended (exit_code: its wait status) */
	PYX_DISCOVERY_MAPPED = 4, /* a tracked process's executable pages changed */
};

/* Per tracked process (the tracked map's value). */
struct pyx_discovery_proc {
	__u64 exec_vm; /* executable pages when last told (PYX_DISCOVERY_MAPPED) */
};

/* FORK: the child shares its parent's memory (vfork, posix_spawn): it will exec or exit. */
#define PYX_DISCOVERY_SHARED_MM (1u << 0)

/* PYX_REC_DISCOVERY. */
struct pyx_rec_discovery {
	struct pyx_rec_hdr hdr;
	__u32 event;  /* enum pyx_discovery_event */
	__u32 pid;    /* host PID (thread-group id) */
	__u32 parent; /* FORK: the parent's PID */
	__u32 exit_code;
	__u64 time_ns;
	__u32 flags; /* PYX_DISCOVERY_* */
	__u32 __pad;
};

#endif /* __PYXTRACE_DISCOVERY_H */
