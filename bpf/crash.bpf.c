// SPDX-License-Identifier: GPL-2.0-only
/*
 * The last moments of a process, recorded as they happen: fatal signals
 * generated for its threads (tp_btf/signal_generate: the typed tracepoint
 * has the siginfo, so the fault address, and needs no tracefs), calls of
 * Py_FatalError, abort() and __assert_fail() (uprobes, cookie = kind), and
 * its exit status. Each event carries the thread's Python frames and its
 * registers and top of stack at that moment: the process may be gone a
 * microsecond later, so nothing is read afterwards but the files.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/crash.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_crash_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"
#include "lib/capture.bpf.h"

#define PYX_SNAP_CFG (&pyx_cfg.snap)
#include "lib/codesnap.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* New executable mappings of the target, read first (see the session's urgent ring). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} urgent SEC(".maps");

#define SIGILL	4
#define SIGTRAP 5
#define SIGABRT 6
#define SIGBUS	7
#define SIGFPE	8
#define SIGSEGV 11

static __always_inline bool fatal_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	       sig == SIGABRT || sig == SIGTRAP;
}

/* @task's tid in its own (innermost) PID namespace: read now, /proc may be gone later. */
static __always_inline __u32 ns_tid_of(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level & 31]);
	return (__u32)upid.nr;
}

static __always_inline struct pyx_rec_crash *new_record(__u32 kind, __u32 tid)
{
	struct pyx_rec_crash *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return NULL;
	}
	rec->hdr.type = PYX_REC_CRASH;
	rec->hdr.size = sizeof(*rec);
	rec->kind = kind;
	rec->tid = tid;
	rec->flags = 0;
	rec->signal = 0;
	rec->code = 0;
	rec->sender = (__u32)bpf_get_current_pid_tgid();
	rec->result = 0;
	rec->line = 0;
	rec->exit_code = 0;
	rec->ns_tid = tid;
	rec->time_ns = bpf_ktime_get_ns();
	rec->addr = 0;
	rec->rss_bytes = 0;
	rec->cgroup[0] = 0;
	rec->message[0] = 0;
	rec->file[0] = 0;
	rec->function[0] = 0;
	rec->py.hdr.type = PYX_REC_PYSTACK;
	rec->py.hdr.size = sizeof(rec->py);
	rec->py.nr_frames = 0;
	rec->py.status = PYX_WALK_NO_THREAD_STATE;
	rec->native.hdr.type = PYX_REC_NATIVE;
	rec->native.hdr.size = sizeof(rec->native);
	rec->native.stack_len = 0;
	rec->native.flags = PYX_NATIVE_NO_STACK;
	for (int i = 0; i < PYX_CRASH_CODES; i++) {
		rec->codes[i].code = 0;
		rec->codes[i].hdr_len = 0;
		for (int j = 0; j < PYX_SNAP__PARTS; j++) {
			rec->codes[i].addr[j] = 0;
			rec->codes[i].len[j] = 0;
		}
	}
	return rec;
}

/* Registers at the thread's last entry into the kernel (a fault, a syscall). */
static __always_inline void copy_task_regs(struct task_struct *task, struct pt_regs *regs)
{
	struct pt_regs *saved = (struct pt_regs *)bpf_task_pt_regs(task);

	if (!saved)
		return;
	regs->r15 = BPF_CORE_READ(saved, r15);
	regs->r14 = BPF_CORE_READ(saved, r14);
	regs->r13 = BPF_CORE_READ(saved, r13);
	regs->r12 = BPF_CORE_READ(saved, r12);
	regs->bp = BPF_CORE_READ(saved, bp);
	regs->bx = BPF_CORE_READ(saved, bx);
	regs->r11 = BPF_CORE_READ(saved, r11);
	regs->r10 = BPF_CORE_READ(saved, r10);
	regs->r9 = BPF_CORE_READ(saved, r9);
	regs->r8 = BPF_CORE_READ(saved, r8);
	regs->ax = BPF_CORE_READ(saved, ax);
	regs->cx = BPF_CORE_READ(saved, cx);
	regs->dx = BPF_CORE_READ(saved, dx);
	regs->si = BPF_CORE_READ(saved, si);
	regs->di = BPF_CORE_READ(saved, di);
	regs->ip = BPF_CORE_READ(saved, ip);
	regs->sp = BPF_CORE_READ(saved, sp);
}

struct snap_ctx {
	struct pyx_rec_crash *rec;
	__u32 slot; /* next free code slot */
};

/* One frame of the record: copy its code object unless the previous slot has it. */
static long snap_frame(__u64 i, void *data)
{
	struct snap_ctx *c = data;
	struct pyx_rec_crash *rec = c->rec;
	struct pyx_code_snap *snap;
	struct pyx_pyframe *f;
	__u64 code;

	if (i >= rec->py.nr_frames || c->slot >= PYX_CRASH_CODES)
		return 1;
	f = &rec->py.frames[i & (PYX_MAX_FRAMES - 1)];
	code = f->code;
	if (!code || (f->flags & PYX_FRAME_C_SHIM))
		return 0;
	if (c->slot && rec->codes[(c->slot - 1) & (PYX_CRASH_CODES - 1)].code == code)
		return 0; /* recursion */
	snap = &rec->codes[c->slot & (PYX_CRASH_CODES - 1)];
	c->slot++;
	snap_code(snap, code);
	return 0;
}

/*
 * The code objects of the record's Python frames, copied while they exist:
 * what user/python/code.c reads to name a frame (its header, then each
 * part's window), read back from the record in user space.
 */
static __always_inline void snap_codes(struct pyx_rec_crash *rec)
{
	struct snap_ctx c = {.rec = rec};

	if (pyx_cfg.snap.code_hdr_len)
		bpf_loop(PYX_MAX_FRAMES, snap_frame, &c, 0);
}

/* The current thread's stacks at this probe into @rec, then send it. */
static __always_inline void submit_with_stack(struct pt_regs *ctx, struct pyx_rec_crash *rec,
					      __u32 tid)
{
	struct pt_regs regs;

	capture_pystack(bpf_get_current_task_btf(), tid, &rec->py);
	snap_codes(rec);
	capture_ctx_regs(ctx, &regs);
	capture_native(&regs, tid, pyx_cfg.stack_bytes, &rec->native);
	rec->flags |= PYX_CRASH_HAS_STACK;
	bpf_ringbuf_submit(rec, 0);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	struct task_struct *current = bpf_get_current_task_btf();
	struct pyx_rec_crash *rec;
	struct pt_regs regs = {};

	if (!pyx_ready() || task->tgid != pyx_cfg.tgid || !fatal_signal(sig))
		return 0;
	rec = new_record(PYX_CRASH_SIGNAL, task->pid);
	if (!rec)
		return 0;
	rec->signal = sig;
	rec->result = result;
	rec->ns_tid = ns_tid_of(task);
	/* SEND_SIG_NOINFO and SEND_SIG_PRIV are the pointers 0 and 1. */
	if ((unsigned long)info > 1) {
		rec->code = BPF_CORE_READ(info, si_code);
		/* Kernel-generated (code > 0) faults carry the faulting address. */
		if (rec->code > 0 && sig != SIGABRT)
			rec->addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	}
	/* Another process's memory cannot be read from here: no stack then. */
	if (current->tgid == pyx_cfg.tgid) {
		if (current != task)
			rec->flags |= PYX_CRASH_FROM_OTHER;
		capture_pystack(task, task->pid, &rec->py);
		snap_codes(rec);
		copy_task_regs(task, &regs);
		capture_native(&regs, task->pid, pyx_cfg.stack_bytes, &rec->native);
		rec->flags |= PYX_CRASH_HAS_STACK;
	} else {
		rec->flags |= PYX_CRASH_FROM_OTHER;
	}
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* Raised errors sent in the current one-second window, and its start. */
__u64 raise_window_ns;
__u64 raises_in_window;

/* Whether a raise event is past this second's budget (counted as a drop then). */
static __always_inline bool rate_limited(void)
{
	__u64 now = bpf_ktime_get_ns(), start = raise_window_ns;

	if (now - start >= 1000000000ull &&
	    __sync_val_compare_and_swap(&raise_window_ns, start, now) == start)
		raises_in_window = 0;
	if (__sync_fetch_and_add(&raises_in_window, 1) < PYX_CRASH_RAISES_PER_SEC)
		return false;
	pyx_count_drop(PYX_DROP_RATE_LIMITED);
	return true;
}

/* One event from a uprobe: its kind, arguments and the thread's stacks. */
static __always_inline int report_call(struct pt_regs *ctx, __u64 cookie, __u64 pid_tgid)
{
	__u32 kind = (__u32)cookie, tid = (__u32)pid_tgid;
	struct pyx_rec_crash *rec;

	if ((kind == PYX_CRASH_MEMORY_ERROR || kind == PYX_CRASH_RECURSION_ERROR) && rate_limited())
		return 0;
	rec = new_record(kind, tid);
	if (!rec)
		return 0;
	rec->ns_tid = ns_tid_of(bpf_get_current_task_btf());
	if (kind == PYX_CRASH_FATAL_ERROR && (cookie & PYX_CRASH_COOKIE_FATAL_FUNC)) {
		bpf_probe_read_user_str(rec->function, sizeof(rec->function),
					(void *)PT_REGS_PARM1(ctx));
		bpf_probe_read_user_str(rec->message, sizeof(rec->message),
					(void *)PT_REGS_PARM2(ctx));
	} else if (kind == PYX_CRASH_FATAL_ERROR) {
		bpf_probe_read_user_str(rec->message, sizeof(rec->message),
					(void *)PT_REGS_PARM1(ctx));
	} else if (kind == PYX_CRASH_ASSERT) {
		bpf_probe_read_user_str(rec->message, sizeof(rec->message),
					(void *)PT_REGS_PARM1(ctx));
		bpf_probe_read_user_str(rec->file, sizeof(rec->file), (void *)PT_REGS_PARM2(ctx));
		rec->line = (__u32)PT_REGS_PARM3(ctx);
		bpf_probe_read_user_str(rec->function, sizeof(rec->function),
					(void *)PT_REGS_PARM4(ctx));
	} else if (kind == PYX_CRASH_NEGATIVE_REFCOUNT) {
		/* _Py_NegativeRefcount(filename, lineno, op): where the Py_DECREF was. */
		bpf_probe_read_user_str(rec->file, sizeof(rec->file), (void *)PT_REGS_PARM1(ctx));
		rec->line = (__u32)PT_REGS_PARM2(ctx);
	} else if (kind == PYX_CRASH_RECURSION_ERROR) {
		/* _PyErr_Format(tstate, type, format, ...): the format says where. */
		bpf_probe_read_user_str(rec->message, sizeof(rec->message),
					(void *)PT_REGS_PARM3(ctx));
	}
	submit_with_stack(ctx, rec, tid);
	return 0;
}

/*
 * Py_FatalError(msg), _Py_FatalErrorFunc(func, msg), abort(),
 * __assert_fail(expr, file, line, func), _PyErr_NoMemory(tstate) or
 * PyErr_NoMemory(), _Py_NegativeRefcount(file, line, op); the cookie says
 * which kind. PYX_CRASH_RECURSION_ERROR: _PyErr_Format(tstate, type,
 * format, ...), through which every RecursionError is raised
 * (_Py_CheckRecursiveCall, _Py_CheckRecursiveCallPy); other types pass by
 * (formatted errors are rare on a healthy path). One program for all: each
 * that captures stacks costs ~23 ms of verification per process.
 */
SEC("uprobe.multi")
int on_call(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid(), type = PT_REGS_PARM2(ctx), kind;

	barrier_var(type);
	if (!pyx_ready() || (pid_tgid >> 32) != pyx_cfg.tgid)
		return 0;
	kind = bpf_get_attach_cookie(ctx);
	if (kind == PYX_CRASH_RECURSION_ERROR &&
	    (!pyx_cfg.recursion_error || type != pyx_cfg.recursion_error))
		return 0;
	return report_call(ctx, kind, pid_tgid);
}

#define PAGE_SIZE_4K 4096

/* --module: each C entry point's return class. */
#include "lib/signatures.bpf.h"

/*
 * --module: a C entry point returns (the cookie is its index). One that
 * returns an object must return NULL exactly when it sets an exception:
 * anything else is a bad return, which CPython turns into a SystemError
 * (release) or an abort (debug) some time later, far from its cause.
 */
SEC("uretprobe.multi")
int on_centry_return(struct pt_regs *ctx)
{
	__u64 ret = PT_REGS_RC(ctx), pid_tgid = bpf_get_current_pid_tgid(), tstate, interp, exc = 0;
	struct task_struct *task;
	struct pyx_rec_crash *rec;
	__u32 index, *sig, tid = (__u32)pid_tgid, why;

	barrier_var(ret);
	if (!pyx_ready() || (pid_tgid >> 32) != pyx_cfg.tgid)
		return 0;
	index = (__u32)bpf_get_attach_cookie(ctx);
	sig = bpf_map_lookup_elem(&signatures, &index);
	if (!sig || *sig != PYX_CENTRY_SIG_OBJECT)
		return 0;
	task = bpf_get_current_task_btf();
	tstate = pywalk_fast_tstate(task, pywalk_thread_pointer(task), &interp);
	if (!tstate || pywalk_read_u64(task, tstate + pyx_cfg.layout.ts_exception, &exc))
		return 0;
	if (!ret && !exc)
		why = PYX_CRASH_BAD_NULL_NO_EXCEPTION;
	else if (ret && exc)
		why = PYX_CRASH_BAD_VALUE_WITH_EXCEPTION;
	else
		return 0;
	rec = new_record(PYX_CRASH_BAD_RETURN, tid);
	if (!rec)
		return 0;
	rec->ns_tid = ns_tid_of(task);
	rec->line = index;
	rec->code = (__s32)why;
	rec->addr = ret;
	submit_with_stack(ctx, rec, tid);
	return 0;
}

/*
 * The OOM killer chose a thread of the target (the whole process will be
 * killed). Fired in the task that ran out of memory, maybe another process:
 * no stack, but the victim's resident memory and its memory cgroup.
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *task, uid_t uid)
{
	struct pyx_rec_crash *rec;
	struct mm_struct *mm;
	const char *name;
	__s64 pages = 0;
	int i;

	if (!pyx_ready() || task->tgid != pyx_cfg.tgid)
		return 0;
	rec = new_record(PYX_CRASH_OOM_KILL, task->pid);
	if (!rec)
		return 0;
	rec->ns_tid = ns_tid_of(task);
	mm = task->mm;
	if (mm) {
		/* File, anonymous and shmem pages (MM_SWAPENTS, index 2, is not resident). */
		for (i = 0; i < 4; i++)
			if (i != 2)
				pages += BPF_CORE_READ(mm, rss_stat[i].count);
		rec->rss_bytes = pages > 0 ? (__u64)pages * PAGE_SIZE_4K : 0;
	}
	name = BPF_CORE_READ(task, cgroups, subsys[memory_cgrp_id], cgroup, kn, name);
	if (name)
		bpf_probe_read_kernel_str(rec->cgroup, sizeof(rec->cgroup), name);
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* The last thread of the target exits: its wait status. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task, bool group_dead)
{
	struct pyx_rec_crash *rec;

	if (!pyx_ready() || task->tgid != pyx_cfg.tgid || !group_dead)
		return 0;
	rec = new_record(PYX_CRASH_EXIT, task->pid);
	if (!rec)
		return 0;
	rec->exit_code = (__u32)task->exit_code;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* The target's executable pages when last told: a change means code was mapped or unmapped. */
__u64 last_exec_vm;

/*
 * The target changed its mappings (mmap, munmap, mprotect release the mmap
 * lock taken for writing): if its executable pages changed, the dynamic
 * loader mapped (or dropped) code, e.g. a module imported after attach.
 * Neither kprobes nor fentry are available on every kernel we run on; this
 * typed tracepoint is.
 */
SEC("tp_btf/mmap_lock_released")
int BPF_PROG(on_mm_write, struct mm_struct *mm, bool write)
{
	struct pyx_rec_crash_map *rec;
	__u64 exec_vm, last = last_exec_vm;

	if (!write || !pyx_ready() || (bpf_get_current_pid_tgid() >> 32) != pyx_cfg.tgid)
		return 0;
	/*
	 * The process tearing its memory down as it exits: nothing to unwind
	 * with a new map of it (rebuilding the unwinder of a dying process
	 * took ~0.5 s, the event loop stalled all that time).
	 */
	if (bpf_get_current_task_btf()->flags & PYX_PF_EXITING)
		return 0;
	exec_vm = BPF_CORE_READ(mm, exec_vm);
	if (exec_vm == last || __sync_val_compare_and_swap(&last_exec_vm, last, exec_vm) != last)
		return 0;
	rec = bpf_ringbuf_reserve(&urgent, sizeof(*rec), 0);
	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return 0;
	}
	rec->hdr.type = PYX_REC_CRASH_MAP;
	rec->hdr.size = sizeof(*rec);
	rec->tid = (__u32)bpf_get_current_pid_tgid();
	rec->__pad = 0;
	rec->addr = 0;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
