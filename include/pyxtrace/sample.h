/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/sample.bpf.c: a thread sampled in itself by a per-thread
 * cpu-clock perf event, so its registers are exact even though it was
 * running (the saved registers of a running thread are stale). Emits the
 * records of stack.h/pywalk.h through the ring buffer.
 */
#ifndef __PYXTRACE_SAMPLE_H
#define __PYXTRACE_SAMPLE_H

#include "stack.h"

struct pyx_sample_cfg {
	__u32 tgid;
	__u32 stack_bytes; /* <= PYX_NATIVE_STACK_MAX */
	struct pyx_py_layout layout;
};

#endif /* __PYXTRACE_SAMPLE_H */
