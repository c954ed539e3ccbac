/* SPDX-License-Identifier: GPL-2.0-only */
/* ABI of bpf/info.bpf.c: the probe self-check of `pyxtrace info -p`. */
#ifndef __PYXTRACE_INFO_H
#define __PYXTRACE_INFO_H

#include "common.h"

/* Entry points of one module counted by `info --module` (numpy's core module has ~700). */
#define PYX_INFO_MAX_ENTRIES 8192

struct pyx_info_cfg {
	__u32 tgid; /* host PID of the target; hits of other processes are ignored */
	__u32 __pad;
};

/* Sent once per thread, on its first hit, so the ring buffer path is exercised too. */
struct pyx_info_hit {
	struct pyx_rec_hdr hdr; /* PYX_REC_INFO_HIT */
	__u32 tid;
	__u32 __pad;
	__u64 time_ns; /* bpf_ktime_get_boot_ns */
	char comm[PYX_COMM_LEN];
};

#endif /* __PYXTRACE_INFO_H */
