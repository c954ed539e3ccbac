/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/crash.bpf.c: the last moments of a process — fatal signals
 * (tp_btf/signal_generate, with the fault address), Py_FatalError, abort(),
 * failed C assertions — each with the thread's Python frames, registers and
 * stack at that moment, and the process's exit status.
 */
#ifndef __PYXTRACE_CRASH_H
#define __PYXTRACE_CRASH_H

#include "stack.h"

enum pyx_crash_kind {
	PYX_CRASH_SIGNAL = 1,	    /* a fatal signal generated for a thread of the target */
	PYX_CRASH_FATAL_ERROR = 2,  /* Py_FatalError / _Py_FatalErrorFunc called */
	PYX_CRASH_ABORT = 3,	    /* abort() called */
	PYX_CRASH_ASSERT = 4,	    /* __assert_fail() called: a failed C assert() */
	PYX_CRASH_EXIT = 5,	    /* the process exited (its last thread): no stack */
	PYX_CRASH_MEMORY_ERROR = 6, /* MemoryError raised (_PyErr_NoMemory / PyErr_NoMemory) */
};

/* BPF cookies of the uprobes: the kind, and for fatal errors which function. */
#define PYX_CRASH_COOKIE_FATAL_FUNC (1ull << 32) /* _Py_FatalErrorFunc(func, msg) */

/*
 * Code objects of the innermost Python frames, copied with the event: the
 * process is usually gone before user space could read them. Per code
 * object its header and the objects a traceback needs (name, qualname,
 * file name, line table), each a window of fixed size from its start.
 */
#define PYX_CRASH_CODES 32
#define PYX_SNAP_HDR	512  /* >= the code object bytes user/python/code.c reads */
#define PYX_SNAP_STR	384  /* a str object's header and up to ~300 ASCII characters */
#define PYX_SNAP_TABLE	2048 /* a bytes object's header and a line table of up to ~2000 bytes */

enum pyx_snap_part {
	PYX_SNAP_NAME = 0,
	PYX_SNAP_QUALNAME = 1,
	PYX_SNAP_FILENAME = 2,
	PYX_SNAP_LINETABLE = 3,
	PYX_SNAP__PARTS = 4,
};

struct pyx_code_snap {
	__u64 code;		     /* the code object; 0: slot unused */
	__u64 addr[PYX_SNAP__PARTS]; /* where each part was read from; 0: not read */
	__u32 hdr_len;		     /* bytes of hdr that were read */
	__u32 len[PYX_SNAP__PARTS];  /* bytes of each part that were read */
	__u32 __pad;
	__u8 hdr[PYX_SNAP_HDR];
	__u8 str[3][PYX_SNAP_STR];
	__u8 table[PYX_SNAP_TABLE];
};

/*
 * Raised exceptions (MemoryError) are events too, but a caught one in a loop
 * must not flood: at most this many per second, the rest counted in
 * drops.rate_limited.
 */
#define PYX_CRASH_RAISES_PER_SEC 10

struct pyx_crash_cfg {
	__u32 tgid;
	__u32 stack_bytes;		/* <= PYX_NATIVE_STACK_MAX */
	__u32 code_hdr_len;		/* <= PYX_SNAP_HDR; 0: no code snapshots */
	__u32 co_part[PYX_SNAP__PARTS]; /* offsets of the parts' pointers in a code object */
	__u32 __pad;
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
