/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/centry.bpf.c: calls of a module's C entry points, entry and
 * return paired per thread, each return classified by the entry point's
 * signature class. Aggregated in the kernel per entry point (index = the
 * probe's BPF cookie = the entry's index in user space's table).
 */
#ifndef __PYXTRACE_CENTRY_H
#define __PYXTRACE_CENTRY_H

#include "pywalk.h"

#define PYX_CENTRY_MAX 8192	/* entry points per module (numpy's core has ~700) */
#define PYX_CENTRY_DEPTH 64	/* pending calls remembered per thread */

/* Signature classes (user/python/entrypoints.h enum pyx_signature). */
enum pyx_centry_sig {
	PYX_CENTRY_SIG_OBJECT = 1,
	PYX_CENTRY_SIG_INT = 2,
	PYX_CENTRY_SIG_SSIZE = 3,
	PYX_CENTRY_SIG_VOID = 4,
};

#define PYX_CENTRY_NO_RETURN (1u << 8) /* or-ed into the signature: no return probe */

struct pyx_centry_cfg {
	__u32 tgid;
	__u32 check_exceptions; /* read the thread's exception at PyObject* returns (bad returns) */
	struct pyx_py_layout layout; /* for the thread's current exception */
};

/* Per entry point, per CPU; user space sums the CPUs. */
struct pyx_centry_stats {
	__u64 calls;
	__u64 returns;
	__u64 errors;		/* NULL with an exception set / -1 */
	__u64 null_no_exception; /* bad return: NULL and no exception (SystemError) */
	__u64 value_with_exception; /* bad return: a value while an exception is set */
	__u64 lost_returns;	/* an entry whose return never came (kernel dropped it, longjmp) */
	__u64 unpaired;		/* calls deeper than PYX_CENTRY_DEPTH: counted, not timed */
	__u64 total_ns;
	__u64 min_ns;
	__u64 max_ns;
};

/* Latency histogram of one entry point (per CPU, created at its first timed return). */
struct pyx_centry_hist {
	__u64 slots[PYX_HIST_SLOTS];
};

#endif /* __PYXTRACE_CENTRY_H */
