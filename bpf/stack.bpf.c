// SPDX-License-Identifier: GPL-2.0-only
/*
 * `pyxtrace stack`: the Python stack of every thread of one process, read
 * by a sleepable task iterator with bpf_copy_from_user_task. No ptrace, no
 * signal, no stop: threads blocked in syscalls and threads running on other
 * CPUs are read as they are. Each thread's record is written to the
 * iterator's seq_file, so user space gets them all, in order, with no ring
 * buffer to overflow.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <pyxtrace/stack.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_stack_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 1
#include "lib/pywalk.bpf.h"
#include "lib/capture.bpf.h"

struct scratch {
	struct pyx_rec_pystack rec;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/*
 * One native record buffer per CPU (sleepable programs run with migration
 * disabled, so the current CPU's slot is ours alone). A plain array indexed
 * by CPU, sized to the CPUs by user space: per-CPU maps cap values at 32 KiB.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pyx_rec_native);
} native_map SEC(".maps");

/*
 * Registers and the top of the user stack, for unwinding in user space.
 * bpf_get_task_stack() gives no user stack for another task, so copy it:
 * from sp up, as much as asked, halving when the copy runs past the end of
 * the stack mapping (the main thread's stack ends just above its frames).
 */
static __always_inline void dump_native(struct bpf_iter__task *ctx, struct task_struct *task)
{
	__u32 cpu = bpf_get_smp_processor_id(), len;
	struct pyx_rec_native *rec;
	struct pt_regs *regs;
	__u64 size;
	int i;

	rec = bpf_map_lookup_elem(&native_map, &cpu);
	if (!rec)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return;
	rec->hdr.type = PYX_REC_NATIVE;
	rec->tid = task->pid;
	rec->flags = 0;
	rec->__pad = 0;
	/* On a CPU right now (and not us): saved registers are from its last kernel entry. */
	if (BPF_CORE_READ(task, on_cpu))
		rec->flags |= PYX_NATIVE_APPROXIMATE;
	rec->regs[0] = BPF_CORE_READ(regs, r15);
	rec->regs[1] = BPF_CORE_READ(regs, r14);
	rec->regs[2] = BPF_CORE_READ(regs, r13);
	rec->regs[3] = BPF_CORE_READ(regs, r12);
	rec->regs[4] = BPF_CORE_READ(regs, bp);
	rec->regs[5] = BPF_CORE_READ(regs, bx);
	rec->regs[6] = BPF_CORE_READ(regs, r11);
	rec->regs[7] = BPF_CORE_READ(regs, r10);
	rec->regs[8] = BPF_CORE_READ(regs, r9);
	rec->regs[9] = BPF_CORE_READ(regs, r8);
	rec->regs[10] = BPF_CORE_READ(regs, ax);
	rec->regs[11] = BPF_CORE_READ(regs, cx);
	rec->regs[12] = BPF_CORE_READ(regs, dx);
	rec->regs[13] = BPF_CORE_READ(regs, si);
	rec->regs[14] = BPF_CORE_READ(regs, di);
	rec->regs[15] = BPF_CORE_READ(regs, ip);
	rec->regs[16] = BPF_CORE_READ(regs, sp);
	rec->stack_start = rec->regs[16];
	rec->stack_len = 0;
	len = pyx_cfg.stack_bytes;
	if (len > PYX_NATIVE_STACK_MAX)
		len = PYX_NATIVE_STACK_MAX;
	for (i = 0; i < 8 && len >= 256; i++) {
		if (!bpf_copy_from_user_task(rec->stack, len, (void *)rec->stack_start, task, 0)) {
			rec->stack_len = len;
			break;
		}
		len /= 2;
	}
	if (!rec->stack_len)
		rec->flags |= PYX_NATIVE_NO_STACK;
	/*
	 * stack_len <= PYX_NATIVE_STACK_MAX by construction; say so to the
	 * verifier too, behind a barrier so clang keeps the check where it
	 * sees it.
	 */
	size = rec->stack_len;
	__asm__ volatile("" : "+r"(size));
	if (size > PYX_NATIVE_STACK_MAX)
		size = PYX_NATIVE_STACK_MAX;
	size += sizeof(*rec) - sizeof(rec->stack);
	rec->hdr.size = (__u32)size;
	bpf_seq_write(ctx->meta->seq, rec, size);
}

SEC("iter.s/task")
int dump_thread(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct pyx_rec_pystack *rec;
	struct scratch *scratch;
	__u64 size;
	__u32 zero = 0, nr;

	if (!task || !pyx_ready() || task->tgid != pyx_cfg.tgid)
		return 0;
	scratch = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!scratch)
		return 0;
	rec = &scratch->rec;
	/* Walked through bpf_copy_from_user_task: this iterator is sleepable. */
	capture_pystack(task, task->pid, rec);
	nr = rec->nr_frames;
	size = sizeof(*rec) - sizeof(rec->frames) +
	       (__u64)(nr & (PYX_MAX_FRAMES * 2 - 1)) * sizeof(rec->frames[0]);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	rec->hdr.size = (__u32)size;
	bpf_seq_write(ctx->meta->seq, rec, size);
	if (pyx_cfg.native)
		dump_native(ctx, task);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
