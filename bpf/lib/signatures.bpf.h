/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The signature class of each C entry point of a module (PYX_CENTRY_SIG_*,
 * by its index: the probes' cookie), filled by user space before ready
 * (probes/centry.c: pyx_centry_bpf_signature). Shared by centry.bpf.c
 * (error and bad-return counts) and crash.bpf.c (bad-return events).
 */
#ifndef __PYX_SIGNATURES_BPF_H
#define __PYX_SIGNATURES_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PYX_CENTRY_MAX);
	__type(key, __u32);
	__type(value, __u32);
} signatures SEC(".maps");

#endif /* __PYX_SIGNATURES_BPF_H */
