/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/profile.bpf.c: the target's threads sampled while they run
 * (per-CPU cpu-clock perf events, filtered to the target in BPF), each
 * sample the thread's Python frames as a PYX_REC_PYSTACK record (pywalk.h).
 * `calls` in sampled mode: time shares, not call counts.
 */
#ifndef __PYXTRACE_PROFILE_H
#define __PYXTRACE_PROFILE_H

#include "pywalk.h"

struct pyx_profile_cfg {
	__u32 tgid;
	__u32 tid; /* only this host TID; 0: every thread */
	struct pyx_py_layout layout;
};

#endif /* __PYXTRACE_PROFILE_H */
