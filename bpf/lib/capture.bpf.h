/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A snapshot of the current thread from inside itself (a perf event that
 * interrupted it, a uprobe it hit): its Python frames and its registers
 * plus the top of its user stack, for unwinding and merging in user space
 * (user/output/stackview.c). Fills records already reserved by the caller.
 * Include after lib/pywalk.bpf.h.
 */
#ifndef __PYX_CAPTURE_BPF_H
#define __PYX_CAPTURE_BPF_H

#include <pyxtrace/stack.h>

/*
 * @task's Python frames, innermost first, read the way the including object
 * configured the walker: through the current mm (the current thread, or
 * another thread of its process), or, in a sleepable program, through
 * bpf_copy_from_user_task (any task: stack.bpf.c's iterator).
 */
static __always_inline void capture_pystack(struct task_struct *task, __u32 tid,
					    struct pyx_rec_pystack *rec)
{
	struct pywalk_frames *walk = pywalk_scratch_get();
	__u64 tstate = 0, interp = 0;
	__u32 nr = 0;

	rec->hdr.type = PYX_REC_PYSTACK;
	rec->hdr.size = sizeof(*rec);
	rec->tid = tid;
	rec->__pad = 0;
	rec->tstate = 0;
	rec->interp_id = 0;
	rec->thread_id = pywalk_thread_pointer(task);
	rec->holds_gil = 2;
	rec->nr_frames = 0;
	bpf_probe_read_kernel_str(rec->comm, sizeof(rec->comm), task->comm);
	rec->status =
		pywalk_find_tstate(task, rec->thread_id, &tstate, &interp, &rec->tstate_source);
	if (rec->status != PYX_WALK_OK || !walk)
		return;
	rec->tstate = tstate;
	if (pywalk_read_u64(task, interp + PYX_WALK_LAYOUT->interp_id, &rec->interp_id))
		rec->interp_id = 0;
	rec->holds_gil = pywalk_holds_gil(task, tstate, interp);
	rec->status = pywalk_frames(task, tstate, walk, &nr);
	rec->nr_frames = nr;
	bpf_probe_read_kernel(rec->frames, sizeof(rec->frames), walk->frames);
}

/*
 * Copy a program context's user registers (a uprobe's pt_regs, a perf
 * event's regs) to the BPF stack, field by field: contexts only allow
 * whole-word loads at fixed offsets.
 */
static __always_inline void capture_ctx_regs(const struct pt_regs *ctx, struct pt_regs *regs)
{
	regs->r15 = ctx->r15;
	regs->r14 = ctx->r14;
	regs->r13 = ctx->r13;
	regs->r12 = ctx->r12;
	regs->bp = ctx->bp;
	regs->bx = ctx->bx;
	regs->r11 = ctx->r11;
	regs->r10 = ctx->r10;
	regs->r9 = ctx->r9;
	regs->r8 = ctx->r8;
	regs->ax = ctx->ax;
	regs->cx = ctx->cx;
	regs->dx = ctx->dx;
	regs->si = ctx->si;
	regs->di = ctx->di;
	regs->ip = ctx->ip;
	regs->sp = ctx->sp;
}

/*
 * @regs (a copy on the BPF stack: context layouts differ per program type)
 * and @bytes of the current thread's stack from sp up, halving when the
 * copy runs past the end of the stack mapping.
 */
static __always_inline void capture_native(const struct pt_regs *regs, __u32 tid, __u32 bytes,
					   struct pyx_rec_native *rec)
{
	__u32 len = bytes;
	int i;

	rec->hdr.type = PYX_REC_NATIVE;
	rec->hdr.size = sizeof(*rec);
	rec->tid = tid;
	rec->flags = 0;
	rec->__pad = 0;
	rec->regs[0] = regs->r15;
	rec->regs[1] = regs->r14;
	rec->regs[2] = regs->r13;
	rec->regs[3] = regs->r12;
	rec->regs[4] = regs->bp;
	rec->regs[5] = regs->bx;
	rec->regs[6] = regs->r11;
	rec->regs[7] = regs->r10;
	rec->regs[8] = regs->r9;
	rec->regs[9] = regs->r8;
	rec->regs[10] = regs->ax;
	rec->regs[11] = regs->cx;
	rec->regs[12] = regs->dx;
	rec->regs[13] = regs->si;
	rec->regs[14] = regs->di;
	rec->regs[15] = regs->ip;
	rec->regs[16] = regs->sp;
	rec->stack_start = regs->sp;
	rec->stack_len = 0;
	if (len > PYX_NATIVE_STACK_MAX)
		len = PYX_NATIVE_STACK_MAX;
	for (i = 0; i < 8 && len >= 256; i++) {
		if (!bpf_probe_read_user(rec->stack, len, (void *)rec->stack_start)) {
			rec->stack_len = len;
			break;
		}
		len /= 2;
	}
	if (!rec->stack_len)
		rec->flags |= PYX_NATIVE_NO_STACK;
}

#endif /* __PYX_CAPTURE_BPF_H */
