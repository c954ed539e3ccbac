/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control block and drop counting every BPF object shares. Include once
 * per .bpf.c; user/session.c finds both sections by name.
 */
#ifndef __PYX_CTL_BPF_H
#define __PYX_CTL_BPF_H

#include <pyxtrace/common.h>

struct pyx_ctl pyx_ctl SEC(".data.ctl");

/* include/linux/sched.h: the task is exiting (set before its memory is torn down). */
#define PYX_PF_EXITING 0x00000004

static __always_inline bool pyx_ready(void)
{
	return pyx_ctl.ready != 0;
}

static __always_inline void pyx_count_drop(enum pyx_drop_reason reason)
{
	if (reason < PYX_DROP__MAX)
		__sync_fetch_and_add(&pyx_ctl.drops[reason], 1);
}

#endif /* __PYX_CTL_BPF_H */
