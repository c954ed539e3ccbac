/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/crash.bpf.c: the last moments of a process — fatal signals
 * (tp_btf/signal_generate, with the fault address), Py_FatalError, abort(),
 * failed C assertions — each with the thread's Python frames, registers and
 * stack at that moment, and the process's exit status.
 */
#ifndef __PYXTRACE_CRASH_H
#define __PYXTRACE_CRASH_H

#include "centry.h"
#include "codesnap.h"
#include "stack.h"

/* Code objects copied with an event, innermost first. */
#define PYX_CRASH_CODES 32

enum pyx_crash_kind {
	PYX_CRASH_SIGNAL = 1,		 /* a fatal signal generated for a thread of the target */
	PYX_CRASH_FATAL_ERROR = 2,	 /* Py_FatalError / _Py_FatalErrorFunc called */
	PYX_CRASH_ABORT = 3,		 /* abort() called */
	PYX_CRASH_ASSERT = 4,		 /* __assert_fail() called: a failed C assert() */
	PYX_CRASH_EXIT = 5,		 /* the process exited (its last thread): no stack */
	PYX_CRASH_MEMORY_ERROR = 6,	 /* MemoryError raised (_PyErr_NoMemory / PyErr_NoMemory) */
	PYX_CRASH_RECURSION_ERROR = 7,	 /* RecursionError raised (_PyErr_Format with its type) */
	PYX_CRASH_NEGATIVE_REFCOUNT = 8, /* debug builds: _Py_NegativeRefcount(file, line, op) */
	PYX_CRASH_OOM_KILL =
		9, /* the OOM killer chose the process (tp_btf/mark_victim): no stack */
	PYX_CRASH_BAD_RETURN = 10, /* --module: a C entry point returned NULL without an
				    * exception or a value with one: line = its index, code =
				    * PYX_CRASH_BAD_*, addr = the value */
};

/* PYX_CRASH_BAD_RETURN: which (in code). */
enum pyx_crash_bad_return {
	PYX_CRASH_BAD_NULL_NO_EXCEPTION = 1,
	PYX_CRASH_BAD_VALUE_WITH_EXCEPTION = 2,
};

/* BPF cookies of the uprobes: the kind, and for fatal errors which function. */
#define PYX_CRASH_COOKIE_FATAL_FUNC (1ull << 32) /* _Py_FatalErrorFunc(func, msg) */

/*
 * Raised exceptions (MemoryError) are events too, but a caught one in a loop
 * must not flood: at most this many per second, the rest counted in
 * drops.rate_limited.
 */
#define PYX_CRASH_RAISES_PER_SEC 10

struct pyx_crash_cfg {
	__u32 tgid;
	__u32 stack_bytes;     /* <= PYX_NATIVE_STACK_MAX */
	__u64 recursion_error; /* the RecursionError type object (*PyExc_RecursionError) */
	__u32 __pad;
	struct pyx_codesnap_cfg snap;
	struct pyx_py_layout layout;
};

#define PYX_CRASH_MESSAGE_LEN 256
#define PYX_CRASH_NAME_LEN    128

/* Set when the stack records hold the thread's state at the event. */
#define PYX_CRASH_HAS_STACK (1u << 0)
/* The signal was sent by another thread (or process): its registers are its last kernel entry's. */
#define PYX_CRASH_FROM_OTHER (1u << 1)

struct pyx_rec_crash {
	struct pyx_rec_hdr hdr; /* PYX_REC_CRASH */
	__u32 kind;		/* enum pyx_crash_kind */
	__u32 tid;		/* the thread it happened to (host TID) */
	__u32 flags;		/* PYX_CRASH_* */
	__u32 signal;
	__s32 code;   /* si_code */
	__u32 sender; /* host TID that generated the signal */
	__s32 result; /* signal_generate's result: 0 delivered, 1 ignored, 2 already pending... */
	__u32 line;   /* __assert_fail's line */
	__u32 exit_code; /* PYX_CRASH_EXIT: wait status (signal | 0x80 core, or status << 8) */
	__u32 ns_tid;	 /* tid in the thread's own PID namespace (a container's) */
	__u64 time_ns;	 /* CLOCK_MONOTONIC */
	__u64 addr;	 /* fault address (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) */
	__u64 rss_bytes; /* PYX_CRASH_OOM_KILL: the victim's resident memory */
	char cgroup[PYX_CRASH_NAME_LEN];     /* PYX_CRASH_OOM_KILL: its memory cgroup's name */
	char message[PYX_CRASH_MESSAGE_LEN]; /* fatal error message, assertion expression */
	char file[PYX_CRASH_NAME_LEN];	     /* __assert_fail's file */
	char function[PYX_CRASH_NAME_LEN];   /* _Py_FatalErrorFunc's / __assert_fail's function */
	struct pyx_rec_pystack py;
	struct pyx_rec_native native;
	struct pyx_code_snap codes[PYX_CRASH_CODES]; /* distinct code objects, innermost first */
};

/*
 * PYX_REC_CRASH_MAP, on the "urgent" ring: the target changed its mappings
 * (maybe a module imported after attach): user space re-reads its objects
 * for unwinding while they can still be opened.
 */
struct pyx_rec_crash_map {
	struct pyx_rec_hdr hdr;
	__u32 tid;
	__u32 __pad;
	__u64 addr; /* unused (0) */
};

#endif /* __PYXTRACE_CRASH_H */
