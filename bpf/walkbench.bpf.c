// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/walk_cost: the same uprobe either does nothing (the probe floor) or
 * finds the thread's PyThreadState and walks its Python frames, as the
 * per-call commands will. The difference is the walk's cost. Counters let
 * the benchmark check that walks really happened and how deep they went.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <pyxtrace/walkbench.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_walkbench_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"

__u64 hits;
__u64 walks_ok;
__u64 frames_walked;
__u64 fast_lookups;

SEC("uprobe")
int probe_empty(void *ctx)
{
	if (!pyx_ready() || (bpf_get_current_pid_tgid() >> 32) != pyx_cfg.tgid)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

/* The return side of the bare floor: an empty return probe. */
SEC("uretprobe")
int probe_empty_return(void *ctx)
{
	return 0;
}

SEC("uprobe")
int probe_walk(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pywalk_frames *scratch;
	__u64 tstate = 0, interp = 0;
	__u32 nr = 0, source = 0;

	if (!pyx_ready() || (bpf_get_current_pid_tgid() >> 32) != pyx_cfg.tgid)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	scratch = pywalk_scratch_get();
	if (!scratch)
		return 0;
	if (pywalk_find_tstate(task, pywalk_thread_pointer(task), &tstate, &interp, &source) !=
	    PYX_WALK_OK)
		return 0;
	if (source == PYX_TSTATE_FAST)
		__sync_fetch_and_add(&fast_lookups, 1);
	if (pywalk_frames(task, tstate, scratch, &nr) == PYX_WALK_OK)
		__sync_fetch_and_add(&walks_ok, 1);
	__sync_fetch_and_add(&frames_walked, nr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
