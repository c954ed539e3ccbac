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

const volatile struct pyx_centry_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"

/*
 * Signature class of each entry point, filled by user space before ready;
 * PYX_CENTRY_NO_RETURN when it has no return probe (its calls are counted,
 * never pushed: nothing would pop them).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PYX_CENTRY_MAX);
	__type(key, __u32);
	__type(value, __u32);
} signatures SEC(".maps");

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
};

struct shadow {
	__u32 depth;
	__u32 __pad;
	struct pending calls[PYX_CENTRY_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct shadow);
} shadows SEC(".maps");

/* A zeroed shadow stack to insert from (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shadow);
} empty_shadow SEC(".maps");

static __always_inline struct pyx_centry_stats *stats_of(__u32 index)
{
	return bpf_map_lookup_elem(&stats, &index);
}

static __always_inline bool ours(void)
{
	return pyx_ready() && (bpf_get_current_pid_tgid() >> 32) == pyx_cfg.tgid;
}

SEC("uprobe.multi")
int centry_enter(struct pt_regs *ctx)
{
	__u32 index = (__u32)bpf_get_attach_cookie(ctx), tid = (__u32)bpf_get_current_pid_tgid();
	struct pyx_centry_stats *st = stats_of(index);
	struct shadow *sh;
	__u32 zero = 0, d;

	__u32 *sig = bpf_map_lookup_elem(&signatures, &index);

	if (!ours() || !st)
		return 0;
	st->calls++;
	if (!sig || (*sig & PYX_CENTRY_NO_RETURN))
		return 0;
	sh = bpf_map_lookup_elem(&shadows, &tid);
	if (!sh) {
		struct shadow *empty = bpf_map_lookup_elem(&empty_shadow, &zero);

		if (!empty)
			return 0;
		empty->depth = 0;
		bpf_map_update_elem(&shadows, &tid, empty, BPF_NOEXIST);
		sh = bpf_map_lookup_elem(&shadows, &tid);
		if (!sh) {
			pyx_count_drop(PYX_DROP_OVERFLOW);
			return 0;
		}
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
	sh->depth = d + 1;
	return 0;
}

/* Whether the calling thread has an exception set right now. */
static __always_inline bool exception_set(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 tstate, interp, exc = 0;

	tstate = pywalk_fast_tstate(task, pywalk_thread_pointer(task), &interp);
	if (!tstate || pywalk_read_u64(task, tstate + pyx_cfg.layout.ts_exception, &exc))
		return false;
	return exc != 0;
}

static __always_inline void classify(struct pyx_centry_stats *st, __u32 index, __u64 ret)
{
	__u32 *sig = bpf_map_lookup_elem(&signatures, &index);

	if (!sig)
		return;
	switch (*sig & ~PYX_CENTRY_NO_RETURN) {
	case PYX_CENTRY_SIG_OBJECT:
		/* Without exception checks a NULL is taken for an error, and bad returns go unseen. */
		if (!pyx_cfg.check_exceptions) {
			if (!ret)
				st->errors++;
		} else if (!ret) {
			if (exception_set())
				st->errors++;
			else
				st->null_no_exception++;
		} else if (exception_set()) {
			st->value_with_exception++;
		}
		break;
	case PYX_CENTRY_SIG_INT:
		if ((__s32)ret == -1)
			st->errors++;
		break;
	case PYX_CENTRY_SIG_SSIZE:
		if ((__s64)ret == -1)
			st->errors++;
		break;
	default:
		break;
	}
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
	struct pop_ctx c = { .sp = PT_REGS_SP(ctx), .index = index, .found = -1 };
	struct pending *p;
	__u64 ns;

	if (!ours() || !st)
		return 0;
	st->returns++;
	classify(st, index, PT_REGS_RC(ctx));
	c.sh = bpf_map_lookup_elem(&shadows, &tid);
	if (!c.sh)
		return 0;
	bpf_loop(PYX_CENTRY_DEPTH, pop_lost, &c, 0);
	if (c.found < 0)
		return 0;
	p = &c.sh->calls[c.found & (PYX_CENTRY_DEPTH - 1)];
	ns = bpf_ktime_get_ns() - p->start_ns;
	c.sh->depth = (__u32)c.found;
	st->total_ns += ns;
	if (!st->min_ns || ns < st->min_ns)
		st->min_ns = ns;
	if (ns > st->max_ns)
		st->max_ns = ns;
	record_latency(index, ns);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
