/* SPDX-License-Identifier: GPL-2.0-only */
/* ABI of bpf/launch.bpf.c: holding a launched command at exec and at its entry point. */
#ifndef __PYXTRACE_LAUNCH_H
#define __PYXTRACE_LAUNCH_H

#include "common.h"

struct pyx_launch_cfg {
	__u32 tgid; /* the forked child, before it execs */
	__u32 __pad;
};

#endif /* __PYXTRACE_LAUNCH_H */
