/* SPDX-License-Identifier: GPL-2.0-only */
/* ABI of bpf/stack.bpf.c: `pyxtrace stack`, every thread of one process. */
#ifndef __PYXTRACE_STACK_H
#define __PYXTRACE_STACK_H

#include "pywalk.h"

struct pyx_stack_cfg {
	__u32 tgid; /* host PID of the target */
	__u32 __pad;
	struct pyx_py_layout layout;
};

#endif /* __PYXTRACE_STACK_H */
