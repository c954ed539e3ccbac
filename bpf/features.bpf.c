// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel readiness checks for `pyxtrace info`: each program is loaded (and
 * attached where that is the question) on its own, so one missing feature
 * does not hide the others.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 uprobe_hits;
__u64 uprobe_multi_hits;

SEC("uprobe")
int probe_uprobe(void *ctx)
{
	__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

SEC("uprobe.multi")
int probe_uprobe_multi(void *ctx)
{
	__sync_fetch_and_add(&uprobe_multi_hits, 1);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ringbuf SEC(".maps");

SEC("uprobe")
int probe_ringbuf_output(void *ctx)
{
	__u64 *slot = bpf_ringbuf_reserve(&probe_ringbuf, sizeof(*slot), 0);

	if (slot) {
		*slot = 1;
		bpf_ringbuf_submit(slot, 0);
	}
	return 0;
}

/* A sleepable task iterator that reads another task's user memory: how `stack` walks threads. */
SEC("iter.s/task")
int probe_task_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	__u64 word = 0;

	if (task && task->mm)
		bpf_copy_from_user_task(&word, sizeof(word), (void *)task->mm->start_stack, task, 0);
	return 0;
}

/* Typed signal tracepoint: carries the siginfo (fault address) `crash` needs. */
SEC("tp_btf/signal_generate")
int BPF_PROG(probe_tp_btf, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
