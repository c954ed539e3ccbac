// SPDX-License-Identifier: GPL-2.0-only
/*
 * Calls of a module's C entry points. Two uprobe_multi links (a link is
 * all-entry or all-return), the BPF cookie naming the entry point.
 *
 * Pairing: each thread keeps a shadow stack of its pending calls keyed by
 * the stack pointer at entry. A return pops its own call (the sp just past
 * the return address) after popping any deeper call that never returned:
 * the kernel keeps at most 64 pending return probes per task and silently
 * drops deeper ones, and longjmp-style exits skip returns. Those are
 * counted as lost, never timed wrong. Recursion pairs naturally: every
 * activation has its own sp.
 *
 * Classification: PyObject* entry points returning NULL with an exception
 * set are errors, NULL without one or a value with one are bad returns
 * (CPython turns them into SystemError); int and Py_ssize_t ones return -1
 * on error; void ones report nothing. The exception is the calling
 * thread's, read through the gilstate slot (the walker's fast path).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/centry.h>
#include "lib/ctl.bpf.h"
#include "lib/hist.bpf.h"

#define EEXIST 17 /* errno values are not in vmlinux.h */

const volatile struct pyx_centry_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"
#include "lib/capture.bpf.h"

/* Reported calls (--slow, --errors, --args); user space sizes it (small when unused). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/*
 * New callers: their code objects must be read while the target lives, so
 * user space handles these before (and between) the long records above.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} urgent SEC(".maps");

/*
 * Calls per (entry point, innermost Python frames): no BTF key type, so
 * user space can shrink the key to the frames asked for (--callers N).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(key_size, sizeof(struct pyx_centry_caller_key));
	__uint(value_size, sizeof(__u64));
} callers SEC(".maps");

/*
 * Per-CPU scratch (the walker's frames, the caller key) is shared by every
 * run of these programs on a CPU, and a uprobe program can be preempted by
 * another thread of the target hitting a probe on the same CPU: the second
 * one finds it busy and counts a drop instead of corrupting the first.
 */
struct centry_scratch {
	__u32 busy;
	__u32 __pad;
	struct pyx_centry_caller_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct centry_scratch);
} scratch SEC(".maps");

static __always_inline struct centry_scratch *scratch_claim(void)
{
	__u32 zero = 0;
	struct centry_scratch *sc = bpf_map_lookup_elem(&scratch, &zero);

	if (!sc)
		return NULL;
	if (sc->busy) {
		pyx_count_drop(PYX_DROP_BUSY);
		return NULL;
	}
	sc->busy = 1;
	return sc;
}

static __always_inline void scratch_release(struct centry_scratch *sc)
{
	sc->busy = 0;
}

/*
 * PYX_CENTRY_NO_RETURN in an entry's class: it has no return probe (its
 * calls are counted, never pushed: nothing would pop them).
 */
#include "lib/signatures.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYX_CENTRY_MAX);
	__type(key, __u32);
	__type(value, struct pyx_centry_stats);
} stats SEC(".maps");

/*
 * Per entry point, per CPU: an array, not a hash, so the lookup at every
 * return is inlined (a hash lookup cost ~60 ns a call). User space sizes it
 * to the module's entry points before load: ~1 KiB each per CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYX_CENTRY_MAX);
	__type(key, __u32);
	__type(value, struct pyx_centry_hist);
} hists SEC(".maps");

static __always_inline void record_latency(__u32 index, __u64 ns)
{
	struct pyx_centry_hist *h = bpf_map_lookup_elem(&hists, &index);
	__u32 slot = pyx_hist_slot(ns);

	if (h && slot < PYX_HIST_SLOTS)
		h->slots[slot]++;
}

struct pending {
	__u64 sp;
	__u64 start_ns;
	__u32 index;
	__u32 __pad;
	__u64 tstate;		     /* the thread state found at the entry (callers), 0 if none */
	__u64 args[PYX_CENTRY_ARGS]; /* --args only */
};

struct shadow {
	__u32 depth;
	__u32 __pad;
	struct pending calls[PYX_CENTRY_DEPTH];
};

/*
 * Per thread, in the task itself (task local storage): found from the task
 * pointer without hashing, created zeroed at the thread's first call, freed
 * with the thread.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shadow);
} shadows SEC(".maps");

static __always_inline struct pyx_centry_stats *stats_of(__u32 index)
{
	return bpf_map_lookup_elem(&stats, &index);
}

static __always_inline bool ours(void)
{
	return pyx_ready() && (bpf_get_current_pid_tgid() >> 32) == pyx_cfg.tgid;
}

/*
 * Count this call under its innermost cfg.callers Python frames (C shim
 * frames skipped): the Python code that called the entry point, directly or
 * through C code of its own. No Python frame (a thread without a thread
 * state, or one that never ran Python) is a key with no frames.
 */
static __always_inline __u64 count_caller(__u32 index)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct centry_scratch *sc = scratch_claim();
	struct pywalk_frames *walk = pywalk_scratch_get();
	__u32 want = pyx_cfg.callers, nr = 0, kept = 0, source, i;
	__u64 tstate = 0, interp = 0, one = 1, *count;
	long err;

	if (!sc)
		return 0;
	if (!walk || want > PYX_CENTRY_CALLERS_MAX)
		goto out_release;
	if (pywalk_find_tstate(task, pywalk_thread_pointer(task), &tstate, &interp, &source) !=
	    PYX_WALK_OK)
		tstate = 0;
	else
		/* Room for a C shim frame between each two Python frames. */
		pywalk_frames_upto(task, tstate, walk, 2 * want + 2, want, &nr);
	for (i = 0; i < 2 * PYX_CENTRY_CALLERS_MAX + 2 && i < nr; i++) {
		struct pyx_pyframe *f = &walk->frames[i & (PYX_MAX_FRAMES - 1)];

		if (kept >= want || kept >= PYX_CENTRY_CALLERS_MAX)
			break;
		if (f->flags & PYX_FRAME_C_SHIM)
			continue;
		sc->key.frames[kept & (PYX_CENTRY_CALLERS_MAX - 1)].code = f->code;
		sc->key.frames[kept & (PYX_CENTRY_CALLERS_MAX - 1)].instr = f->instr;
		kept++;
	}
	sc->key.index = index;
	sc->key.nr_frames = kept;
	/* Frames past those found are hashed too (when asked for): zero them. */
	for (i = 0; i < PYX_CENTRY_CALLERS_MAX; i++) {
		if (i < kept)
			continue;
		sc->key.frames[i].code = 0;
		sc->key.frames[i].instr = 0;
	}
	count = bpf_map_lookup_elem(&callers, &sc->key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		goto out_release;
	}
	err = bpf_map_update_elem(&callers, &sc->key, &one, BPF_NOEXIST);
	if (!err) {
		struct pyx_rec_centry_caller *rec = bpf_ringbuf_reserve(&urgent, sizeof(*rec), 0);

		/* Without it the caller is named at the next read, if its code is still there. */
		if (!rec) {
			pyx_count_drop(PYX_DROP_RINGBUF);
			goto out_release;
		}
		rec->hdr.type = PYX_REC_CENTRY_CALLER;
		rec->hdr.size = sizeof(*rec);
		rec->key = sc->key;
		bpf_ringbuf_submit(rec, 0);
	} else if (err == -EEXIST) {
		/* Another CPU inserted it just now. */
		count = bpf_map_lookup_elem(&callers, &sc->key);
		if (count)
			__sync_fetch_and_add(count, 1);
	} else if (err) {
		pyx_count_drop(PYX_DROP_MAP_FULL);
	}
out_release:
	scratch_release(sc);
	return tstate;
}

SEC("uprobe.multi")
int centry_enter(struct pt_regs *ctx)
{
	__u32 index = (__u32)bpf_get_attach_cookie(ctx);
	struct pyx_centry_stats *st = stats_of(index);
	__u32 *sig = bpf_map_lookup_elem(&signatures, &index);
	__u64 tstate = 0;
	struct shadow *sh;
	__u32 d;

	if (!ours() || !st)
		return 0;
	st->calls++;
	if (pyx_cfg.callers)
		tstate = count_caller(index);
	if (!sig || (*sig & PYX_CENTRY_NO_RETURN))
		return 0;
	sh = bpf_task_storage_get(&shadows, bpf_get_current_task_btf(), NULL,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!sh) {
		pyx_count_drop(PYX_DROP_OVERFLOW);
		return 0;
	}
	d = sh->depth;
	/*
	 * The kernel keeps at most 64 pending return probes per task and
	 * silently skips deeper ones: this call's return will not be seen.
	 */
	if (d >= PYX_CENTRY_DEPTH) {
		st->unpaired++;
		pyx_count_drop(PYX_DROP_RETURN_DEPTH);
		return 0;
	}
	sh->calls[d].sp = PT_REGS_SP(ctx);
	sh->calls[d].start_ns = bpf_ktime_get_ns();
	sh->calls[d].index = index;
	sh->calls[d].tstate = tstate;
	if (pyx_cfg.report & PYX_CENTRY_REPORT_ARGS) {
		sh->calls[d].args[0] = PT_REGS_PARM1(ctx);
		sh->calls[d].args[1] = PT_REGS_PARM2(ctx);
		sh->calls[d].args[2] = PT_REGS_PARM3(ctx);
		sh->calls[d].args[3] = PT_REGS_PARM4(ctx);
	}
	sh->depth = d + 1;
	return 0;
}

/*
 * Whether the calling thread has an exception set right now. @tstate: its
 * thread state found at the call's entry, saving the lookup (a C function
 * switching thread states before returning, as a sub-interpreter bridge
 * might, would be misread); 0: look it up through the gilstate slot.
 */
static __always_inline bool exception_set(__u64 tstate)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 interp, exc = 0;

	if (!tstate)
		tstate = pywalk_fast_tstate(task, pywalk_thread_pointer(task), &interp);
	if (!tstate || pywalk_read_u64(task, tstate + pyx_cfg.layout.ts_exception, &exc))
		return false;
	return exc != 0;
}

/* Count the return's class; returns its PYX_CENTRY_WHY_* error bits. */
static __always_inline __u32 classify(struct pyx_centry_stats *st, __u32 index, __u64 ret,
				      __u64 tstate)
{
	__u32 *sig = bpf_map_lookup_elem(&signatures, &index);

	if (!sig)
		return 0;
	switch (*sig & ~PYX_CENTRY_NO_RETURN) {
	case PYX_CENTRY_SIG_OBJECT:
		/* Without exception checks a NULL is taken for an error, and bad returns go unseen. */
		if (!pyx_cfg.check_exceptions) {
			if (ret)
				return 0;
		} else if (!ret) {
			if (!exception_set(tstate)) {
				st->null_no_exception++;
				return PYX_CENTRY_WHY_NULL_NO_EXCEPTION;
			}
		} else {
			if (!exception_set(tstate))
				return 0;
			st->value_with_exception++;
			return PYX_CENTRY_WHY_VALUE_WITH_EXCEPTION;
		}
		break;
	case PYX_CENTRY_SIG_INT:
		if ((__s32)ret != -1)
			return 0;
		break;
	case PYX_CENTRY_SIG_SSIZE:
		if ((__s64)ret != -1)
			return 0;
		break;
	default:
		return 0;
	}
	st->errors++;
	return PYX_CENTRY_WHY_ERROR;
}

/*
 * Send one call to user space: with the thread's stacks when it is slow or
 * failed (the return probe's registers are the caller's, the entry point
 * having returned), else only its arguments and return value.
 */
static __always_inline void report(struct pt_regs *ctx, __u32 tid, __u32 index, __u32 why,
				   const struct pending *p, __u64 now, __u64 ns)
{
	struct pyx_rec_centry_stack *big = NULL;
	struct pyx_rec_centry_call *small = NULL;
	struct centry_scratch *sc;
	struct pyx_centry_call *call;
	struct pt_regs regs = {};

	if (why & ~PYX_CENTRY_WHY_ARGS) {
		big = bpf_ringbuf_reserve(&events, sizeof(*big), 0);
		if (!big)
			goto out_drop;
		big->hdr.type = PYX_REC_CENTRY_STACK;
		big->hdr.size = sizeof(*big);
		call = &big->call;
	} else {
		small = bpf_ringbuf_reserve(&events, sizeof(*small), 0);
		if (!small)
			goto out_drop;
		small->hdr.type = PYX_REC_CENTRY_CALL;
		small->hdr.size = sizeof(*small);
		call = &small->call;
	}
	call->tid = tid;
	call->index = index;
	call->why = why;
	call->timed = p != NULL;
	call->time_ns = now;
	call->duration_ns = ns;
	call->ret = PT_REGS_RC(ctx);
	for (int i = 0; i < PYX_CENTRY_ARGS; i++)
		call->args[i] = p ? p->args[i] : 0;
	if (small) {
		bpf_ringbuf_submit(small, 0);
		return;
	}
	sc = scratch_claim();
	if (sc) {
		capture_pystack(bpf_get_current_task_btf(), tid, &big->py);
		scratch_release(sc);
	} else {
		big->py.hdr.type = PYX_REC_PYSTACK;
		big->py.hdr.size = sizeof(big->py);
		big->py.tid = tid;
		big->py.status = PYX_WALK_TORN;
		big->py.nr_frames = 0;
	}
	capture_ctx_regs(ctx, &regs);
	capture_native(&regs, tid, pyx_cfg.stack_bytes, &big->native);
	bpf_ringbuf_submit(big, 0);
	return;
out_drop:
	pyx_count_drop(PYX_DROP_RINGBUF);
}

struct pop_ctx {
	struct shadow *sh;
	__u64 sp;
	__u32 index;
	int found; /* depth of this call's entry, -1 when not pending */
};

/*
 * Pop calls deeper than this return's (their sp is below its): they will
 * never return. Bounded by the shadow depth.
 */
static long pop_lost(__u64 i, void *data)
{
	struct pop_ctx *c = data;
	struct shadow *sh = c->sh;
	__u32 d = sh->depth;
	struct pending *p;
	struct pyx_centry_stats *st;

	if (!d || d > PYX_CENTRY_DEPTH)
		return 1;
	p = &sh->calls[(d - 1) & (PYX_CENTRY_DEPTH - 1)];
	/* At entry sp pointed at the return address; after the return it is 8 above. */
	if (p->sp + 8 == c->sp && p->index == c->index) {
		c->found = (int)(d - 1);
		return 1;
	}
	if (p->sp + 8 > c->sp)
		return 1; /* an outer call: this return's entry was never seen (it was deeper) */
	st = stats_of(p->index);
	if (st)
		st->lost_returns++;
	sh->depth = d - 1;
	return 0;
}

SEC("uretprobe.multi")
int centry_return(struct pt_regs *ctx)
{
	__u32 index = (__u32)bpf_get_attach_cookie(ctx), tid = (__u32)bpf_get_current_pid_tgid();
	struct pyx_centry_stats *st = stats_of(index);
	struct pop_ctx c = {.sp = PT_REGS_SP(ctx), .index = index, .found = -1};
	__u64 ret = PT_REGS_RC(ctx), ns = 0, now;
	struct pending *p = NULL;
	__u32 why;

	/* The verifier wants context loads at fixed offsets: load ret before clang moves it. */
	barrier_var(ret);
	if (!ours() || !st)
		return 0;
	now = bpf_ktime_get_ns();
	st->returns++;
	c.sh = bpf_task_storage_get(&shadows, bpf_get_current_task_btf(), NULL, 0);
	if (c.sh) {
		__u32 d = c.sh->depth;
		struct pending *top = &c.sh->calls[(d - 1) & (PYX_CENTRY_DEPTH - 1)];

		/* Almost always the top entry is this return's: skip the loop's call then. */
		if (d && d <= PYX_CENTRY_DEPTH && top->sp + 8 == c.sp && top->index == index)
			c.found = (int)(d - 1);
		else
			bpf_loop(PYX_CENTRY_DEPTH, pop_lost, &c, 0);
	}
	if (c.sh && c.found >= 0) {
		p = &c.sh->calls[c.found & (PYX_CENTRY_DEPTH - 1)];
		ns = now - p->start_ns;
		c.sh->depth = (__u32)c.found;
		st->total_ns += ns;
		if (!st->min_ns || ns < st->min_ns)
			st->min_ns = ns;
		if (ns > st->max_ns)
			st->max_ns = ns;
		record_latency(index, ns);
	}
	/* The popped entry stays intact below the new depth until the next entry reuses it. */
	why = classify(st, index, ret, p ? p->tstate : 0);
	if (!pyx_cfg.report)
		return 0;
	if (!(pyx_cfg.report & PYX_CENTRY_REPORT_ERRORS))
		why = 0;
	if ((pyx_cfg.report & PYX_CENTRY_REPORT_SLOW) && p && ns >= pyx_cfg.slow_ns)
		why |= PYX_CENTRY_WHY_SLOW;
	if (pyx_cfg.report & PYX_CENTRY_REPORT_ARGS)
		why |= PYX_CENTRY_WHY_ARGS;
	if (why)
		report(ctx, tid, index, why, p, now, ns);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
