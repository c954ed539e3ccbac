/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI shared by every BPF object and its user side: record tags, drop
 * reasons and the control block. Fixed-width types, enums and defines only;
 * the includer provides __u32/__u64 (vmlinux.h in BPF, <linux/types.h> in
 * user space).
 */
#ifndef __PYXTRACE_COMMON_H
#define __PYXTRACE_COMMON_H

#define PYX_COMM_LEN 16

/* Every ring buffer record starts with struct pyx_rec_hdr; type is one of these. */
enum pyx_rec_type {
	PYX_REC_NONE = 0,
	PYX_REC_INFO_HIT = 1,
	PYX_REC_PYSTACK = 2,	   /* struct pyx_rec_pystack (pywalk.h) */
	PYX_REC_NATIVE = 3,	   /* struct pyx_rec_native (stack.h) */
	PYX_REC_CENTRY_CALL = 4,   /* struct pyx_rec_centry_call (centry.h) */
	PYX_REC_CENTRY_STACK = 5,  /* struct pyx_rec_centry_stack (centry.h) */
	PYX_REC_CENTRY_CALLER = 6, /* struct pyx_rec_centry_caller (centry.h) */
	PYX_REC_CRASH = 7,	   /* struct pyx_rec_crash (crash.h) */
	PYX_REC_CRASH_MAP = 8,	   /* struct pyx_rec_crash_map (crash.h) */
	PYX_REC_CALLS_CODE = 9,	   /* struct pyx_rec_calls_code (calls.h) */
	PYX_REC_FLOW = 10,	   /* struct pyx_rec_flow (calls.h) */
	PYX_REC_DISCOVERY = 11,	   /* struct pyx_rec_discovery (discovery.h) */
};

struct pyx_rec_hdr {
	__u32 type;
	__u32 size; /* whole record, header included */
};

/*
 * Why an event was lost. Counted in the control block by BPF, shown by
 * user space under "drops" with the names in user/session.c.
 */
enum pyx_drop_reason {
	PYX_DROP_RINGBUF = 0, /* bpf_ringbuf_reserve failed: consumer too slow */
	PYX_DROP_OVERFLOW,    /* a bounded per-thread structure was full */
	PYX_DROP_READ,	      /* a read of target memory failed mid-record */
	PYX_DROP_RETURN_DEPTH, /* a call deeper than the 64 pending returns the kernel keeps per task */
	PYX_DROP_MAP_FULL,     /* an aggregation map was full: a new key was not counted */
	PYX_DROP_BUSY,	       /* per-CPU scratch in use by a preempted program: not recorded */
	PYX_DROP_RATE_LIMITED, /* an event past its per-second budget (a caught error in a loop) */
	PYX_DROP_UNPAIRED,     /* a call whose end was never seen: counted, not timed */
	PYX_DROP__MAX = 8,
};

/*
 * Log-linear latency histograms, computed in the kernel: 4 buckets per
 * power of two from 2^PYX_HIST_MIN_SHIFT ns (bucket 0 holds everything
 * shorter) up to 2^(PYX_HIST_MIN_SHIFT + PYX_HIST_POWERS) ns (the last
 * bucket holds everything longer).
 */
#define PYX_HIST_MIN_SHIFT 6  /* 64 ns */
#define PYX_HIST_POWERS	   30 /* to ~68 s */
#define PYX_HIST_SUB	   4  /* buckets per power of two */
#define PYX_HIST_SLOTS	   (PYX_HIST_POWERS * PYX_HIST_SUB + 2)

/*
 * One per BPF object, in its own ".data.ctl" section so the session finds it
 * by name whatever the skeleton: user space sets ready after every probe is
 * attached (no half-attached data) and reads the drop counters.
 */
struct pyx_ctl {
	__u32 ready;
	__u32 __pad;
	__u64 drops[PYX_DROP__MAX];
};

#endif /* __PYXTRACE_COMMON_H */
