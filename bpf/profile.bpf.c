// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sampling the target's Python stacks: one cpu-clock perf event per CPU
 * (threads started later are sampled too), this program filters to the
 * target and sends the interrupted thread's Python frames. Used where no
 * exact hook applies (a JIT running the code) or when asked (--sampled).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/profile.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_profile_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"
#include "lib/capture.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct pyx_rec_pystack *rec;

	if (!pyx_ready() || (pid_tgid >> 32) != pyx_cfg.tgid || (pyx_cfg.tid && tid != pyx_cfg.tid))
		return 0;
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return 0;
	}
	capture_pystack(bpf_get_current_task_btf(), tid, rec);
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
