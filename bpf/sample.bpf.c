// SPDX-License-Identifier: GPL-2.0-only
/*
 * One exact snapshot of a running thread, taken in the thread itself: a
 * per-thread cpu-clock perf event fires while it runs; if it interrupted
 * user code, the interrupted registers are the thread's real ones. Walk its
 * Python frames and copy the top of its stack right there, once per thread
 * asked for (the `wanted` map), then stop caring about it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/sample.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_sample_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"
#include "lib/capture.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* Threads still waiting for their exact sample. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} wanted SEC(".maps");

static __always_inline void send_pystack(struct task_struct *task, __u32 tid)
{
	struct pyx_rec_pystack *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return;
	}
	capture_pystack(task, tid, rec);
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline void send_native(struct pt_regs *regs, __u32 tid)
{
	struct pyx_rec_native *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return;
	}
	capture_native(regs, tid, pyx_cfg.stack_bytes, rec);
	bpf_ringbuf_submit(rec, 0);
}

/* For -vv: how the per-thread events fared. */
__u64 fired;
__u64 in_kernel;
__u64 taken;

SEC("perf_event")
int sample_thread(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tid = (__u32)pid_tgid;
	struct pt_regs copy = {}, *regs = &copy;
	__u64 cs;

	__sync_fetch_and_add(&fired, 1);
	if (!pyx_ready() || (pid_tgid >> 32) != pyx_cfg.tgid || !bpf_map_lookup_elem(&wanted, &tid))
		return 0;
	/*
	 * The context is rewritten by the verifier and only allows whole-word
	 * loads of its registers; cs is a 16-bit field of pt_regs, so load the
	 * word it starts.
	 */
	cs = *(__u64 *)((void *)&ctx->regs + __builtin_offsetof(struct pt_regs, cs));
	capture_ctx_regs(&ctx->regs, &copy);
	/* Interrupted in the kernel: its user registers are not in ctx; wait for the next tick. */
	if ((cs & 3) != 3) {
		__sync_fetch_and_add(&in_kernel, 1);
		return 0;
	}
	if (bpf_map_delete_elem(&wanted, &tid))
		return 0; /* another CPU took this thread's sample */
	__sync_fetch_and_add(&taken, 1);
	send_pystack(task, tid);
	send_native(regs, tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
