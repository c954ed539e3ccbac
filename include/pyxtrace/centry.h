/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/centry.bpf.c: calls of a module's C entry points, entry and
 * return paired per thread, each return classified by the entry point's
 * signature class. Aggregated in the kernel per entry point (index = the
 * probe's BPF cookie = the entry's index in user space's table).
 */
#ifndef __PYXTRACE_CENTRY_H
#define __PYXTRACE_CENTRY_H

#include "stack.h"

#define PYX_CENTRY_MAX	 8192 /* entry points per module (numpy's core has ~700) */
#define PYX_CENTRY_DEPTH 64   /* pending calls remembered per thread */

/* Signature classes (user/python/entrypoints.h enum pyx_signature). */
enum pyx_centry_sig {
	PYX_CENTRY_SIG_OBJECT = 1,
	PYX_CENTRY_SIG_INT = 2,
	PYX_CENTRY_SIG_SSIZE = 3,
	PYX_CENTRY_SIG_VOID = 4,
};

#define PYX_CENTRY_NO_RETURN (1u << 8) /* or-ed into the signature: no return probe */

#define PYX_CENTRY_CALLERS_MAX 8 /* Python frames per caller (--callers N) */
#define PYX_CENTRY_ARGS	       4 /* integer/pointer arguments kept per call (--args) */

struct pyx_centry_cfg {
	__u32 tgid;
	__u32 check_exceptions; /* read the thread's exception at PyObject* returns (bad returns) */
	__u32 callers;	   /* Python frames per caller key, <= PYX_CENTRY_CALLERS_MAX; 0: off */
	__u32 report;	   /* PYX_CENTRY_REPORT_*: calls sent one by one */
	__u64 slow_ns;	   /* PYX_CENTRY_REPORT_SLOW: calls at least this long */
	__u32 stack_bytes; /* native stack copied with a reported call, <= PYX_NATIVE_STACK_MAX */
	__u32 __pad;
	struct pyx_py_layout layout; /* for the thread's exception and Python callers */
};

/* Which calls are sent one by one through the ring buffer. */
#define PYX_CENTRY_REPORT_SLOW	 (1u << 0) /* --slow: with the thread's stacks */
#define PYX_CENTRY_REPORT_ERRORS (1u << 1) /* --errors: errors and bad returns, with stacks */
#define PYX_CENTRY_REPORT_ARGS	 (1u << 2) /* --args: every call, arguments and return value */

/* Why a call was reported (or-ed). */
#define PYX_CENTRY_WHY_SLOW		    (1u << 0)
#define PYX_CENTRY_WHY_ERROR		    (1u << 1)
#define PYX_CENTRY_WHY_NULL_NO_EXCEPTION    (1u << 2)
#define PYX_CENTRY_WHY_VALUE_WITH_EXCEPTION (1u << 3)
#define PYX_CENTRY_WHY_ARGS		    (1u << 4)

/* One reported call, at its return. */
struct pyx_centry_call {
	__u32 tid;
	__u32 index;   /* the entry point */
	__u32 why;     /* PYX_CENTRY_WHY_* */
	__u32 timed;   /* 0 when its entry was not seen: duration_ns and args unknown */
	__u64 time_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) at the return */
	__u64 duration_ns;
	__u64 args[PYX_CENTRY_ARGS]; /* rdi rsi rdx rcx at the entry */
	__u64 ret;		     /* rax at the return */
};

/* PYX_REC_CENTRY_CALL: a reported call without stacks (--args). */
struct pyx_rec_centry_call {
	struct pyx_rec_hdr hdr;
	struct pyx_centry_call call;
};

/*
 * PYX_REC_CENTRY_STACK: a reported call with the thread's Python frames and
 * native registers and stack at the return (the caller's frames: the entry
 * point itself has returned). One record, so nothing pairs them up later.
 */
struct pyx_rec_centry_stack {
	struct pyx_rec_hdr hdr;
	struct pyx_centry_call call;
	struct pyx_rec_pystack py;
	struct pyx_rec_native native;
};

/*
 * Key of the callers map: an entry point and the innermost @nr_frames
 * Python frames at its calls. User space sets the map's key size to cover
 * only the frames asked for (--callers N), so the hash covers no padding.
 */
struct pyx_centry_caller_key {
	__u32 index;
	__u32 nr_frames;
	struct {
		__u64 code;
		__u64 instr;
	} frames[PYX_CENTRY_CALLERS_MAX];
};

/*
 * PYX_REC_CENTRY_CALLER: a key counted for the first time. Sent while the
 * call runs, so user space reads its code objects while they are alive.
 */
struct pyx_rec_centry_caller {
	struct pyx_rec_hdr hdr;
	struct pyx_centry_caller_key key;
};

/* Per entry point, per CPU; user space sums the CPUs. */
struct pyx_centry_stats {
	__u64 calls;
	__u64 returns;
	__u64 errors;		    /* NULL with an exception set / -1 */
	__u64 null_no_exception;    /* bad return: NULL and no exception (SystemError) */
	__u64 value_with_exception; /* bad return: a value while an exception is set */
	__u64 lost_returns; /* an entry whose return never came (kernel dropped it, longjmp) */
	__u64 unpaired;	    /* calls deeper than PYX_CENTRY_DEPTH: counted, not timed */
	__u64 total_ns;
	__u64 min_ns;
	__u64 max_ns;
};

/* Latency histogram of one entry point (per CPU, created at its first timed return). */
struct pyx_centry_hist {
	__u64 slots[PYX_HIST_SLOTS];
};

#endif /* __PYXTRACE_CENTRY_H */
