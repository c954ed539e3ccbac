/* SPDX-License-Identifier: GPL-2.0-only */
/* ABI of bpf/walkbench.bpf.c: the cost of a frame walk at a uprobe (bench/). */
#ifndef __PYXTRACE_WALKBENCH_H
#define __PYXTRACE_WALKBENCH_H

#include "pywalk.h"

struct pyx_walkbench_cfg {
	__u32 tgid;
	__u32 __pad;
	struct pyx_py_layout layout;
};

#endif /* __PYXTRACE_WALKBENCH_H */
