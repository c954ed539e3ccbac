/* SPDX-License-Identifier: GPL-2.0-only */
/* The log-linear latency bucket of include/pyxtrace/common.h, branch-light for the verifier. */
#ifndef __PYX_HIST_BPF_H
#define __PYX_HIST_BPF_H

#include <pyxtrace/common.h>

/* Index of the highest set bit of a non-zero @v (0..63), by halving. */
static __always_inline __u32 pyx_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* Bucket of @ns: the power of two, then the next two bits below the top one. */
static __always_inline __u32 pyx_hist_slot(__u64 ns)
{
	__u32 power, sub;

	if (ns < (1ull << PYX_HIST_MIN_SHIFT))
		return 0;
	power = pyx_log2(ns);
	if (power >= PYX_HIST_MIN_SHIFT + PYX_HIST_POWERS)
		return PYX_HIST_SLOTS - 1;
	sub = (__u32)(ns >> (power - 2)) & (PYX_HIST_SUB - 1);
	return 1 + (power - PYX_HIST_MIN_SHIFT) * PYX_HIST_SUB + sub;
}

#endif /* __PYX_HIST_BPF_H */
