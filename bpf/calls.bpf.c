// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exact Python calls from hooks inside the eval loop, found by
 * user/python/evalhooks.c, where USDT is gone, broken or never built.
 *
 * 3.11+, where one eval-loop activation runs many Python frames:
 * - resume: the handlers of RESUME and its quickened/instrumented forms,
 *   the first instruction every Python frame executes, at its start and at
 *   each resumption of a generator or coroutine. The frame is the thread's
 *   current one (stored before the eval loop jumps to it).
 * - pop: the functions that clear and pop a finished frame, whether it
 *   returned or was left by an exception (_PyEval_FrameClearAndPop and kin):
 *   the dying frame is an argument, so the pairing needs no guess. An
 *   exception set in the thread state at that moment makes it an exception.
 *   3.11 also needs the eval loop's return (an entry frame's C caller may
 *   have inlined its pop whole).
 * - yield: the handlers of YIELD_VALUE: the generator on top is suspended.
 *
 * ≤3.10, one activation per frame: the eval function's entry (start or
 * resumption, the frame an argument), RETURN_VALUE, YIELD_VALUE, and
 * PyTraceBack_Here(frame): an exception reached that frame, so the frames
 * above it have just ended by it.
 *
 * Each thread keeps a shadow stack of its started frames (task local
 * storage). A start counts a call of its code object; an end pairs with its
 * entry and records inclusive time (wall clock, suspensions included), self
 * time (running in the frame itself) and the latency histogram. A suspended
 * generator's entry waits in a hash keyed by its frame until it resumes.
 * Where a hook is missing (a yield handler the kernel would single-step, a
 * generator resumed by throw()), the next hook of the thread notices what
 * ended: frames found above the one it concerns.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/calls.h>
#include "lib/ctl.bpf.h"
#include "lib/hist.bpf.h"

const volatile struct pyx_calls_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT	   (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 0
#include "lib/pywalk.bpf.h"
#define PYX_SNAP_CFG (&pyx_cfg.snap)
#include "lib/codesnap.bpf.h"

/* Code objects seen for the first time: read by user space while they live. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); /* ~1100 new code objects at once */
} urgent SEC(".maps");

/* flow: every event in order (sized by user space; calls leaves it a page). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PYX_CALLS_FUNCTIONS);
	__type(key, struct pyx_calls_key);
	__type(value, struct pyx_calls_stats);
} stats SEC(".maps");

#define ENTRY_GENERATOR (1u << 0) /* owned by a generator or coroutine */
#define ENTRY_UNTIMED	(1u << 1) /* resumed, but its start was never seen: no record */
#define ENTRY_RAISED	(1u << 2) /* an exception reached it (calls_raise) */

struct entry {
	__u64 frame;
	__u64 previous; /* its caller's frame, when it started */
	__u64 code;
	__u64 guard;
	__u64 start_ns;	 /* the call's start */
	__u64 resume_ns; /* the start of the current running stretch */
	__u64 ran_ns;	 /* running stretches before the current one (generators) */
	__u64 child_ns;	 /* running time of its callees */
	__u32 flags;
	__u32 generation; /* pyx_generation when it was pushed */
};

#define EVALS_MAX 16 /* C -> Python nesting remembered per thread (3.11) */

struct shadow {
	__u32 depth;
	__u32 overflow; /* frames started past PYX_CALLS_DEPTH: counted, not timed */
	__u64 tstate;	/* the thread's PyThreadState, found once (thread_state()) */
	__u64 entry_frame; /* 3.11: the frame the eval loop was just entered for (its RESUME is next) */
	__u32 nr_evals;		/* 3.11: eval-loop activations entered from C, innermost last... */
	__u32 seq;		/* hooks run by the thread (shadow_of() counts them) */
	__u32 push_seq;		/* seq when RESUME last pushed an entry */
	__u32 generation;	/* pyx_generation its entries belong to */
	__u64 evals[EVALS_MAX]; /* ...and the frame each was entered for */
	struct entry e[PYX_CALLS_DEPTH];
};

/*
 * Entry @i of @sh, bounded for the verifier: the barrier keeps the compiler
 * from dropping a mask it can prove redundant, which the verifier cannot.
 */
static __always_inline struct entry *entry_at(struct shadow *sh, __u32 i)
{
	barrier_var(i);
	return &sh->e[i & (PYX_CALLS_DEPTH - 1)];
}

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shadow);
} shadows SEC(".maps");

/* Suspended generators and coroutines, by frame address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PYX_CALLS_SUSPENDED);
	__type(key, __u64);
	__type(value, struct entry);
} suspended SEC(".maps");

/* A zeroed value to create stats entries from (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pyx_calls_stats);
} zero_stats SEC(".maps");

static __always_inline bool ours(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	return pyx_ready() && (id >> 32) == pyx_cfg.tgid &&
	       (!pyx_cfg.tid || (__u32)id == pyx_cfg.tid);
}

static __always_inline bool in_opset(const volatile __u64 *set, __u8 op)
{
	return (set[(op >> 6) & 3] >> (op & 63)) & 1;
}

/*
 * flow: event @event of entry @e at @depth, @caller the entry under it
 * (CALL) or NULL. Dead code for calls (the config is constant at load).
 */
#define FLOW_WAKEUP_BYTES (1024 * 1024)

static __always_inline void flow_emit(__u32 event, const struct entry *e, __u32 depth, __u64 now,
				      __u64 duration_ns, __u32 flags, const struct entry *caller)
{
	struct pyx_rec_flow *rec;
	__u64 avail;

	if (!pyx_cfg.flow || (pyx_cfg.flow_depth && depth > pyx_cfg.flow_depth))
		return;
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return;
	}
	rec->hdr.type = PYX_REC_FLOW;
	rec->hdr.size = sizeof(*rec);
	rec->event = event;
	rec->tid = (__u32)bpf_get_current_pid_tgid();
	rec->depth = depth;
	rec->flags = flags | ((e->flags & ENTRY_UNTIMED) ? PYX_FLOW_F_UNTIMED : 0);
	rec->time_ns = now;
	rec->duration_ns = duration_ns;
	rec->fn.code = e->code;
	rec->fn.guard = e->guard;
	rec->caller.code = caller ? caller->code : 0;
	rec->caller.guard = caller ? caller->guard : 0;
	/*
	 * A wakeup per event costs the target more than the event itself: user
	 * space polls the ring on a timer and is woken only as the ring fills.
	 */
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(rec, avail >= FLOW_WAKEUP_BYTES && avail < 2 * FLOW_WAKEUP_BYTES
					? BPF_RB_FORCE_WAKEUP
					: BPF_RB_NO_WAKEUP);
}

static __always_inline void announce_code(const struct pyx_calls_key *key)
{
	struct pyx_rec_calls_code *rec = bpf_ringbuf_reserve(&urgent, sizeof(*rec), 0);

	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return;
	}
	rec->hdr.type = PYX_REC_CALLS_CODE;
	rec->hdr.size = sizeof(*rec);
	rec->key = *key;
	rec->snap.code = 0;
	rec->snap.hdr_len = 0;
	if (key->guard != PYX_CALLS_NATIVE_GUARD)
		snap_code(&rec->snap, key->code);
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline struct pyx_calls_stats *stats_of(const struct pyx_calls_key *key,
							bool create)
{
	struct pyx_calls_stats *st = bpf_map_lookup_elem(&stats, key);
	__u32 zero = 0;
	void *init;

	if (st || !create)
		return st;
	init = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!init)
		return NULL;
	if (bpf_map_update_elem(&stats, key, init, BPF_NOEXIST) == 0)
		announce_code(key);
	st = bpf_map_lookup_elem(&stats, key);
	if (!st)
		pyx_count_drop(PYX_DROP_MAP_FULL);
	return st;
}

/*
 * What a start needs of code object @code, in one read: its guard (struct
 * pyx_calls_key) and, ≤3.10, whether it is a generator's.
 */
static __always_inline int read_code(struct task_struct *task, __u64 code, __u64 *guard,
				     bool *generator)
{
	struct pywalk_frames *walk = pywalk_scratch_get();
	__u32 len = pyx_cfg.span_len;
	__u8 *buf;

	if (!walk || !len || len > PYX_CALLS_SPAN_MAX || len > PYX_FRAME_BUF)
		return -1;
	buf = walk->buf;
	if (pywalk_read(task, buf, len, code + pyx_cfg.span_off))
		return -1;
	*guard = frame_field_u64(buf, pyx_cfg.span_filename) ^
		 (frame_field_u64(buf, pyx_cfg.span_name) << 1) ^
		 ((__u64)frame_field_u32(buf, pyx_cfg.span_firstlineno) << 48);
	/* A module's code at a freed one's address can reuse its file name's too: not its table. */
	if (pyx_cfg.span_linetable != PYX_OFF_NONE)
		*guard ^= frame_field_u64(buf, pyx_cfg.span_linetable) << 3;
	*generator = pyx_cfg.span_flags != PYX_OFF_NONE &&
		     (frame_field_u32(buf, pyx_cfg.span_flags) & PYX_CALLS_CO_GENERATOR_FLAGS);
	return 0;
}

/* The thread's current frame and its fields. */
struct cur_frame {
	__u64 frame;
	__u64 previous;
	__u64 code;
	__u64 guard;
	__u64 instr;
	__u32 flags; /* PYX_FRAME_* */
};

/*
 * The thread's PyThreadState: found once, then checked with one read (its
 * thread_id is still this thread's) instead of three (the gilstate slot).
 */
static __always_inline __u64 thread_state(struct task_struct *task, struct shadow *sh)
{
	const volatile struct pyx_py_layout *L = &pyx_cfg.layout;
	__u64 thread_pointer = pywalk_thread_pointer(task), id = 0, tstate = 0, interp = 0;
	__u32 source;

	if (sh->tstate && !pywalk_read_u64(task, sh->tstate + L->ts_thread_id, &id) &&
	    id == thread_pointer)
		return sh->tstate;
	if (pywalk_find_tstate(task, thread_pointer, &tstate, &interp, &source) != PYX_WALK_OK)
		tstate = 0;
	sh->tstate = tstate;
	return tstate;
}

/* Where the current frame of the thread whose thread state is @tstate is. */
static __always_inline int current_frame_addr(struct task_struct *task, __u64 tstate, __u64 *frame)
{
	const volatile struct pyx_py_layout *L = &pyx_cfg.layout;

	if (!tstate || pywalk_read_u64(task, tstate + L->ts_frame, frame) || !*frame)
		return -1;
	if (L->cframe_current_frame != PYX_OFF_NONE &&
	    (pywalk_read_u64(task, *frame + L->cframe_current_frame, frame) || !*frame))
		return -1;
	return 0;
}

/*
 * The word at @off in the thread's PyThreadState found before, read with
 * its check (thread_id still this thread's) in one read: the fields hooks
 * need lie close to thread_id (3.11+), so a hook pays one read, not two.
 * -1: none known, too far apart, or it did not check out (the caller looks
 * the thread state up again).
 */
static __always_inline int tstate_word_checked(struct task_struct *task, struct shadow *sh,
					       __u32 off, __u64 *value)
{
	__u32 id_off = pyx_cfg.layout.ts_thread_id;
	__u32 lo = id_off < off ? id_off : off, hi = (id_off > off ? id_off : off) + 8;
	struct pywalk_frames *walk = pywalk_scratch_get();
	__u32 len = hi - lo;

	if (!sh->tstate || !walk || off == PYX_OFF_NONE || hi <= lo || len > PYX_FRAME_BUF ||
	    pywalk_read(task, walk->buf, len, sh->tstate + lo) ||
	    frame_field_u64(walk->buf, id_off - lo) != pywalk_thread_pointer(task))
		return -1;
	*value = frame_field_u64(walk->buf, off - lo);
	return 0;
}

/* The thread's current frame through tstate_word_checked(). */
static __always_inline int current_frame_checked(struct task_struct *task, struct shadow *sh,
						 __u64 *frame)
{
	const volatile struct pyx_py_layout *L = &pyx_cfg.layout;

	if (tstate_word_checked(task, sh, L->ts_frame, frame) || !*frame)
		return -1;
	if (L->cframe_current_frame != PYX_OFF_NONE &&
	    (pywalk_read_u64(task, *frame + L->cframe_current_frame, frame) || !*frame))
		return -1;
	return 0;
}

/*
 * Read frame @frame into @out. @previous non-zero: the frame is taken only
 * if its previous frame is that one (else -1, its code object not read).
 */
static __always_inline int read_frame_of(struct task_struct *task, __u64 frame, __u64 previous,
					 struct cur_frame *out)
{
	const volatile struct pyx_py_layout *L = &pyx_cfg.layout;
	struct pywalk_frames *walk = pywalk_scratch_get();
	__u32 read_size = L->frame_read_size, base_off = L->frame_read_offset;
	__u8 *buf;

	if (!walk)
		return -1;
	buf = walk->buf;
	if (read_size > PYX_FRAME_BUF || !read_size ||
	    pywalk_read(task, buf, read_size, frame + base_off))
		return -1;
	out->frame = frame;
	out->previous = frame_field_u64(buf, L->frame_previous - base_off);
	if (previous && out->previous != previous)
		return -1;
	out->code = frame_field_u64(buf, L->frame_code - base_off) & L->code_tag_mask;
	out->flags = 0;
	if (L->instr_model == PYX_INSTR_POINTER)
		out->instr = frame_field_u64(buf, L->frame_instr - base_off);
	else /* f_lasti, -1 until the frame first runs */
		out->instr = (__u64)(__s64)(__s32)frame_field_u32(buf, L->frame_instr - base_off);
	if (L->frame_owner != PYX_OFF_NONE) {
		__u8 owner = frame_field_u8(buf, L->frame_owner - base_off);

		if (L->owner_boundary != PYX_OFF_NONE && owner >= L->owner_boundary)
			out->flags |= PYX_FRAME_C_SHIM;
		else if (owner == L->owner_generator)
			out->flags |= PYX_FRAME_GENERATOR;
	}
	out->guard = 0;
	if (out->code && !(out->flags & PYX_FRAME_C_SHIM)) {
		bool generator = false;

		/* (The frame's fields are out of the scratch buffer: the code may use it.) */
		if (read_code(task, out->code, &out->guard, &generator))
			return -1;
		if (generator)
			out->flags |= PYX_FRAME_GENERATOR;
	}
	return 0;
}

static __always_inline int read_frame(struct task_struct *task, __u64 frame, struct cur_frame *out)
{
	return read_frame_of(task, frame, 0, out);
}

static __always_inline int read_current_frame(struct task_struct *task, __u64 tstate,
					      struct cur_frame *out)
{
	__u64 frame = 0;

	if (current_frame_addr(task, tstate, &frame))
		return -1;
	return read_frame(task, frame, out);
}

/*
 * A generator's frame runs RESUME at its first start (oparg 0) and after
 * each yield (oparg 1-3). The frame's instruction field holds either the
 * RESUME itself (when the handler has already stored it) or the instruction
 * before: a YIELD_VALUE for a resumption, the prologue for a start.
 */
static __always_inline bool is_resumption(struct task_struct *task, __u64 instr)
{
	__u8 unit[2] = {};

	if (!instr || pywalk_read(task, unit, sizeof(unit), instr))
		return false;
	if (in_opset(pyx_cfg.yield_ops, unit[0]))
		return true;
	return in_opset(pyx_cfg.resume_ops, unit[0]) && (unit[1] & 3);
}

/*
 * Bumped by user space each time it attaches the hooks again after a pause
 * (--max-overhead): what the shadow stacks and suspended entries hold from
 * before is stale, its ends were never seen.
 */
volatile __u32 pyx_generation;

static __always_inline struct shadow *shadow_of(struct task_struct *task, bool create)
{
	struct shadow *sh = bpf_task_storage_get(&shadows, task, NULL,
						 create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	__u32 generation = pyx_generation;

	if (!sh)
		return NULL;
	sh->seq++;
	if (sh->generation != generation) {
		sh->generation = generation;
		sh->depth = 0;
		sh->overflow = 0;
		sh->nr_evals = 0;
		sh->entry_frame = 0;
	}
	return sh;
}

/*
 * What every hook starts with: the target's thread, the time, and its
 * shadow stack (created on @create). NULL: not ours, or nothing to do.
 */
static __always_inline struct shadow *hook_begin(struct task_struct **task, __u64 *now, bool create)
{
	if (!ours())
		return NULL;
	*now = bpf_ktime_get_ns();
	*task = bpf_get_current_task_btf();
	return shadow_of(*task, create);
}

/* Push @e; flow: as event @event (CALL or RESUME). */
static __always_inline void push(struct shadow *sh, const struct entry *e, __u32 event)
{
	__u32 d = sh->depth;

	if (d >= PYX_CALLS_DEPTH) {
		sh->overflow++;
		pyx_count_drop(PYX_DROP_OVERFLOW);
		return;
	}
	*entry_at(sh, d) = *e;
	sh->depth = d + 1;
	flow_emit(event, e, d + 1, e->resume_ns, 0, 0,
		  event == PYX_FLOW_CALL && d ? entry_at(sh, d - 1) : NULL);
}

/*
 * The top entry, a generator or coroutine, stops running: keep it aside
 * until it resumes. Its running stretch counts as its parent's callee time.
 */
static __always_inline void suspend_top(struct shadow *sh, __u64 now)
{
	__u32 d = sh->depth;
	struct entry *e;

	if (!d || d > PYX_CALLS_DEPTH)
		return;
	d--;
	e = entry_at(sh, d);
	e->ran_ns += now - e->resume_ns;
	flow_emit(PYX_FLOW_SUSPEND, e, d + 1, now, now - e->resume_ns, 0, NULL);
	if (d) {
		struct entry *parent = entry_at(sh, (d - 1));

		parent->child_ns += now - e->resume_ns;
	}
	if (!(e->flags & ENTRY_UNTIMED))
		bpf_map_update_elem(&suspended, &e->frame, e, BPF_ANY);
	sh->depth = d;
}

/* Suspensions noticed late, at the thread's next hook: at most this many at once. */
#define SETTLE_MAX 4

/*
 * Where no yield hook runs (a handler the kernel would single-step, or a
 * generator resumed by throw()), a suspended generator is still on top
 * when the thread's next frame starts: if the new frame's caller is not the
 * top entry and the top entry is a generator, that generator has yielded.
 * The caller is the first Python frame under the new one (past a C shim).
 */
static __always_inline void settle(struct task_struct *task, struct shadow *sh,
				   const struct cur_frame *cur, __u64 now)
{
	const volatile struct pyx_py_layout *L = &pyx_cfg.layout;
	__u64 caller = cur->previous;
	bool shim_checked = false;
	__u32 i;

	for (i = 0; i < SETTLE_MAX; i++) {
		__u32 d = sh->depth;
		struct entry *top;

		if (!d || d > PYX_CALLS_DEPTH)
			return;
		top = entry_at(sh, (d - 1));
		if (top->frame == caller || top->frame == cur->frame ||
		    !(top->flags & ENTRY_GENERATOR))
			return;
		if (!shim_checked && caller && L->owner_boundary != PYX_OFF_NONE) {
			__u8 owner = 0;

			shim_checked = true;
			if (!pywalk_read(task, &owner, sizeof(owner), caller + L->frame_owner) &&
			    owner >= L->owner_boundary) {
				__u64 above = 0;

				if (!pywalk_read_u64(task, caller + L->frame_previous, &above))
					caller = above;
				continue;
			}
		}
		suspend_top(sh, now);
	}
}

static __always_inline void end_above(struct task_struct *task, struct shadow *sh, __u32 n,
				      __u64 now);

/* A frame starts (a call, counted) or resumes (a generator: not a call). */
static __always_inline void enter_frame(struct task_struct *task, struct shadow *sh,
					const struct cur_frame *cur, bool resumption, __u64 now)
{
	struct pyx_calls_key key;
	struct pyx_calls_stats *st;
	struct entry e = {};

	if (sh->depth && sh->depth <= PYX_CALLS_DEPTH &&
	    entry_at(sh, (sh->depth - 1))->frame == cur->frame) {
		/*
		 * The same start seen twice (INSTRUMENTED_RESUME goes on into
		 * RESUME: no other hook between), or a resumption whose
		 * suspension went unseen: nothing new.
		 */
		if (resumption || sh->push_seq + 1 == sh->seq)
			return;
		/* A new frame at the address of one that ended unseen. */
		end_above(task, sh, 1, now);
	}
	e.frame = cur->frame;
	e.previous = cur->previous;
	e.code = cur->code;
	e.guard = cur->guard;
	e.start_ns = now;
	e.resume_ns = now;
	e.generation = sh->generation;
	if (cur->flags & PYX_FRAME_GENERATOR) {
		e.flags = ENTRY_GENERATOR;
		if (resumption) {
			struct entry *saved = bpf_map_lookup_elem(&suspended, &cur->frame);

			if (saved && saved->code == cur->code && saved->guard == cur->guard &&
			    saved->generation == sh->generation) {
				/* An exception caught in an earlier run can be raised again: no new mark. */
				e.flags |= saved->flags & ENTRY_RAISED;
				e.start_ns = saved->start_ns;
				e.ran_ns = saved->ran_ns;
				e.child_ns = saved->child_ns;
				bpf_map_delete_elem(&suspended, &cur->frame);
			} else {
				e.flags |= ENTRY_UNTIMED; /* started before we attached */
			}
			push(sh, &e, PYX_FLOW_RESUME);
			return;
		}
	}
	key.code = cur->code;
	key.guard = cur->guard;
	st = stats_of(&key, true);
	if (st)
		st->calls++;
	push(sh, &e, PYX_FLOW_CALL);
	sh->push_seq = sh->seq;
}

/* The top entry of a thread's shadow stack, if it has one. */
static __always_inline struct entry *top_of(struct shadow *sh)
{
	__u32 d = sh->depth;

	if (!d || d > PYX_CALLS_DEPTH)
		return NULL;
	return entry_at(sh, d - 1);
}

/*
 * The eval loop keeps its frame in a register, the same one at a given
 * instruction whatever the path to it: where a RESUME probe sits (≤3.10: a
 * RETURN_VALUE probe), some general register holds the frame that starts
 * (returns). Which one is learned per probe site from the frames found
 * through the thread state: a register that ever held something else is
 * out (the set only shrinks). Once LEARN_SAMPLES frames agree, a start
 * takes the frame from the register, and trusts it only when its previous
 * frame is the thread's top entry (a Python call from the frame on top:
 * the common case); any other start (from C, the first after attaching,
 * one in RECHECK_EVERY) goes through the thread state and goes on
 * teaching. Two reads a call fewer on 3.11/3.12, one on 3.13+.
 */
#define FRAME_SITES    PYX_CALLS_FRAME_SITES
#define LEARN_SAMPLES  PYX_CALLS_LEARN_SAMPLES
#define FRAME_REGS     PYX_CALLS_FRAME_REGS
#define FRAME_REGS_ALL ((1ull << FRAME_REGS) - 1)
#define RECHECK_EVERY  256

/* (64-bit: clang's BPF atomics) */
__u64 site_excluded[FRAME_SITES]; /* per site: registers that did not hold the frame */
__u64 site_samples[FRAME_SITES];  /* per site: frames compared, up to LEARN_SAMPLES */

/* The general registers in PYX_CALLS_FRAME_REGS's order (callee-saved first: likelier homes). */
static __always_inline void frame_regs(struct pt_regs *ctx, __u64 *regs)
{
	regs[0] = ctx->bx;
	regs[1] = ctx->bp;
	regs[2] = ctx->r12;
	regs[3] = ctx->r13;
	regs[4] = ctx->r14;
	regs[5] = ctx->r15;
	regs[6] = ctx->ax;
	regs[7] = ctx->cx;
	regs[8] = ctx->dx;
	regs[9] = ctx->si;
	regs[10] = ctx->di;
	regs[11] = ctx->r8;
	regs[12] = ctx->r9;
	regs[13] = ctx->r10;
	regs[14] = ctx->r11;
}

/* Frame @frame was found the slow way at site @site: the registers that did not hold it are out. */
static __always_inline void learn_frame_reg(__u32 site, const __u64 *regs, __u64 frame)
{
	__u64 missed = 0;
	__u32 i;

	site &= FRAME_SITES - 1;
	for (i = 0; i < FRAME_REGS; i++)
		if (regs[i] != frame)
			missed |= 1ull << i;
	if (missed & ~site_excluded[site])
		__sync_fetch_and_or(&site_excluded[site], missed);
	if (site_samples[site] < LEARN_SAMPLES)
		__sync_fetch_and_add(&site_samples[site], 1);
}

/* The register learned for @site, or -1. */
static __always_inline int frame_reg(__u32 site)
{
	__u64 left;
	__u32 i;

	site &= FRAME_SITES - 1;
	if (site_samples[site] < LEARN_SAMPLES)
		return -1;
	left = ~site_excluded[site] & FRAME_REGS_ALL;
	for (i = 0; i < FRAME_REGS; i++)
		if (left & (1ull << i))
			return i;
	return -1;
}

/* The fast start: the frame from the learned register, if it is a call from the top entry. */
static __always_inline bool frame_from_reg(struct task_struct *task, struct shadow *sh,
					   const __u64 *regs, __u32 site, struct cur_frame *cur)
{
	struct entry *top = top_of(sh);
	int reg = frame_reg(site);

	/* One start in RECHECK_EVERY goes the slow way all the same: a wrong register is ruled out. */
	if (reg < 0 || !top || !top->frame || !(sh->seq & (RECHECK_EVERY - 1)))
		return false;
	return !read_frame_of(task, regs[reg & 15], top->frame, cur) && cur->code &&
	       !(cur->flags & PYX_FRAME_C_SHIM);
}

/* 3.11+: RESUME and its forms, the first instruction of every frame's run (cookie: the site). */
SEC("uprobe.multi")
int BPF_UPROBE(calls_resume)
{
	struct task_struct *task;
	struct cur_frame cur;
	struct shadow *sh;
	__u64 now, frame, regs[FRAME_REGS];
	__u32 site;
	int err;

	frame_regs(ctx, regs);
	site = bpf_get_attach_cookie(ctx);
	sh = hook_begin(&task, &now, true);
	if (!sh)
		return 0;
	/*
	 * 3.11: an entry frame's RESUME can run before the eval loop has stored
	 * it as the current frame (Debian's LTO build: the main script's module
	 * read as a stale frame); its frame came with the eval call instead.
	 */
	frame = sh->entry_frame;
	sh->entry_frame = 0;
	if (frame) {
		err = read_frame(task, frame, &cur);
		if (!err)
			learn_frame_reg(site, regs, frame);
	} else if (frame_from_reg(task, sh, regs, site, &cur)) {
		err = 0;
	} else {
		err = current_frame_checked(task, sh, &frame)
			      ? read_current_frame(task, thread_state(task, sh), &cur)
			      : read_frame(task, frame, &cur);
		err = err || !cur.code || (cur.flags & PYX_FRAME_C_SHIM);
		if (!err)
			learn_frame_reg(site, regs, cur.frame);
	}
	if (err) {
		pyx_count_drop(PYX_DROP_READ);
		return 0;
	}
	settle(task, sh, &cur, now);
	enter_frame(task, sh, &cur,
		    (cur.flags & PYX_FRAME_GENERATOR) && is_resumption(task, cur.instr), now);
	return 0;
}

static __always_inline void record(struct task_struct *task, const struct entry *e, __u64 now,
				   bool exception)
{
	__u64 total = now - e->start_ns;
	__u64 ran = e->ran_ns + (now - e->resume_ns);
	struct pyx_calls_key key = {.code = e->code, .guard = e->guard};
	struct pyx_calls_stats *st;
	__u32 slot;

	if (e->flags & ENTRY_UNTIMED)
		return;
	st = stats_of(&key, false);
	if (!st)
		return;
	if (exception)
		st->exceptions++;
	st->timed++;
	st->total_ns += total;
	st->self_ns += ran > e->child_ns ? ran - e->child_ns : 0;
	if (!st->min_ns || total < st->min_ns)
		st->min_ns = total;
	if (total > st->max_ns)
		st->max_ns = total;
	slot = pyx_hist_slot(total);
	if (slot < PYX_HIST_SLOTS)
		st->slots[slot]++;
}

/* The thread's exception, read through the thread state the pop function got. */
static __always_inline bool exception_set(struct task_struct *task, __u64 tstate)
{
	__u64 exc = 0;

	if (!tstate || pyx_cfg.layout.ts_exception == PYX_OFF_NONE)
		return false;
	pywalk_read_u64(task, tstate + pyx_cfg.layout.ts_exception, &exc);
	return exc != 0;
}

/*
 * Whether entry @e may have ended by an exception: with PyTraceBack_Here
 * hooked (3.11+), only one an exception reached can; its end reads the
 * thread's exception to tell.
 */
static __always_inline bool may_have_raised(const struct entry *e)
{
	return !pyx_cfg.raise_marked || (e->flags & ENTRY_RAISED);
}

/* The entry at index @d (the top) ended: record it and pop it. */
static __always_inline void finish(struct task_struct *task, struct shadow *sh, __u32 d, __u64 now,
				   bool exception)
{
	struct entry *e = entry_at(sh, d);

	record(task, e, now, exception);
	flow_emit(PYX_FLOW_RETURN, e, d + 1, now, now - e->start_ns,
		  exception ? PYX_FLOW_F_EXCEPTION : 0, NULL);
	if (d) {
		struct entry *parent = entry_at(sh, (d - 1));

		parent->child_ns += now - e->resume_ns;
	}
	sh->depth = d;
}

/* How far below the top a frame is looked for (entries above it ended unseen). */
#define POP_SEARCH 8

/* How many entries from the top @frame is (1: the top), 0 when not among the top ones. */
static __always_inline __u32 find_frame(struct shadow *sh, __u64 frame)
{
	__u32 d = sh->depth, i;

	if (d > PYX_CALLS_DEPTH)
		return 0;
	for (i = 0; i < POP_SEARCH && i < d; i++)
		if (entry_at(sh, (d - 1 - i))->frame == frame)
			return i + 1;
	return 0;
}

/*
 * ≤3.10: whether generator frame @frame, ended unseen, is only suspended:
 * else it was left by an exception that a bare raise re-raised (no
 * PyTraceBack_Here for it). Read at the thread's next hook: the frame may
 * be freed by then, but not yet reused by another call of the thread.
 */
static __always_inline bool generator_suspended(struct task_struct *task, __u64 frame)
{
	__u64 word = 0;

	if (pyx_cfg.gen_state_model == PYX_CALLS_GEN_UNKNOWN ||
	    pywalk_read_u64(task, frame + pyx_cfg.gen_state_off, &word))
		return true;
	if (pyx_cfg.gen_state_model == PYX_CALLS_GEN_STACKTOP)
		return word != 0;
	return (__s8)(word & 0xff) == -1; /* FRAME_SUSPENDED */
}

/*
 * The @n entries on top ended without their own hook: generators suspended
 * (no yield hook ran), frames left by an exception (≤3.10, where no hook
 * sees that exit: timed to now, the first moment known) or, on 3.11+, whose
 * pop went unseen (not timed). An open-coded iterator: the verifier checks
 * the body once, not once per unrolled step and caller.
 */
static __always_inline void end_above(struct task_struct *task, struct shadow *sh, __u32 n,
				      __u64 now)
{
	int i;

	bpf_for(i, 0, n < POP_SEARCH ? n : POP_SEARCH)
	{
		__u32 d = sh->depth;
		struct entry *top;

		if (!d || d > PYX_CALLS_DEPTH)
			break;
		top = entry_at(sh, d - 1);
		if ((top->flags & ENTRY_GENERATOR) && generator_suspended(task, top->frame)) {
			suspend_top(sh, now);
		} else if (pyx_cfg.stale_are_exceptions) {
			finish(task, sh, d - 1, now, true);
		} else {
			pyx_count_drop(PYX_DROP_UNPAIRED);
			flow_emit(PYX_FLOW_LOST, top, d, now, 0, 0, NULL);
			sh->depth = d - 1;
		}
	}
}

/* @frame ended: pop it (and what ended unseen above it). */
static __always_inline void pop_frame(struct task_struct *task, struct shadow *sh, __u64 frame,
				      __u64 tstate, bool check_exception, __u64 now)
{
	__u32 found = find_frame(sh, frame);

	if (!found) {
		/* One of the frames started past the depth limit, or before we attached. */
		if (sh->overflow)
			sh->overflow--;
		return;
	}
	end_above(task, sh, found - 1, now);
	if (!sh->depth || sh->depth > PYX_CALLS_DEPTH)
		return;
	check_exception = check_exception && may_have_raised(entry_at(sh, sh->depth - 1));
	if (check_exception && !tstate) {
		__u64 exc = 0;

		/* No thread state with the hook (3.11's _PyFrame_Clear): the one known, checked. */
		if (!tstate_word_checked(task, sh, pyx_cfg.layout.ts_exception, &exc)) {
			finish(task, sh, sh->depth - 1, now, exc != 0);
			return;
		}
		tstate = thread_state(task, sh);
	}
	finish(task, sh, sh->depth - 1, now, check_exception && exception_set(task, tstate));
}

/*
 * --module: a C entry point called (the cookie is its index). It goes on the
 * thread's shadow stack like a Python frame, keyed by the stack pointer at
 * entry, so the Python code calling it loses the time it takes from its
 * self time and C -> Python callbacks nest under it.
 */
SEC("uprobe.multi")
int BPF_UPROBE(calls_centry)
{
	struct pyx_calls_key key = {.guard = PYX_CALLS_NATIVE_GUARD};
	__u64 sp = PT_REGS_SP(ctx), now;
	struct task_struct *task;
	struct pyx_calls_stats *st;
	struct entry e = {};
	struct shadow *sh;

	barrier_var(sp);
	sh = hook_begin(&task, &now, true);
	if (!sh)
		return 0;
	key.code = bpf_get_attach_cookie(ctx);
	st = stats_of(&key, true);
	if (st)
		st->calls++;
	e.frame = sp; /* where the return address is */
	e.code = key.code;
	e.guard = key.guard;
	e.start_ns = now;
	e.resume_ns = now;
	push(sh, &e, PYX_FLOW_CALL);
	return 0;
}

/* --module: its return; the stack pointer is just past the return address. */
SEC("uretprobe.multi")
int BPF_URETPROBE(calls_cexit)
{
	__u64 sp = PT_REGS_SP(ctx), now;
	struct task_struct *task;
	struct shadow *sh;

	barrier_var(sp);
	sh = hook_begin(&task, &now, false);
	if (sh)
		pop_frame(task, sh, sp - 8, 0, false, now);
	return 0;
}

/* 3.11+: the functions that clear and pop a finished frame (returned or raised). */
SEC("uprobe.multi")
int BPF_UPROBE(calls_pop)
{
	struct task_struct *task;
	struct shadow *sh;
	__u64 frame, tstate = 0, now, arg1, arg2, cookie;

	/* Both registers read up front: the verifier refuses a ctx pointer picked by a branch. */
	arg1 = PT_REGS_PARM1(ctx);
	arg2 = PT_REGS_PARM2(ctx);
	barrier_var(arg1);
	barrier_var(arg2);
	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	cookie = bpf_get_attach_cookie(ctx);
	if (cookie == PYX_CALLS_POP_ARG2) {
		tstate = arg1;
		frame = arg2;
	} else {
		frame = arg1;
	}
	pop_frame(task, sh, frame, tstate, true, now);
	return 0;
}

/* How many of the @n top entries are Python frames above any C function's. */
static __always_inline __u32 python_on_top(struct shadow *sh, __u32 n)
{
	__u32 d = sh->depth, i;

	if (d > PYX_CALLS_DEPTH)
		return 0;
	for (i = 0; i < POP_SEARCH && i < n && i < d; i++)
		if (entry_at(sh, (d - 1 - i))->guard == PYX_CALLS_NATIVE_GUARD)
			break;
	return i;
}

/*
 * ≤3.10: _PyEval_EvalFrameDefault runs each frame in its own activation,
 * from its start and at each resumption of a generator (f_lasti >= 0).
 * The frame is an argument (the cookie says which).
 */
SEC("uprobe.multi")
int BPF_UPROBE(calls_frame_enter)
{
	struct task_struct *task;
	struct cur_frame cur;
	struct shadow *sh;
	__u64 frame, arg1, arg2, now;
	__u32 found;

	arg1 = PT_REGS_PARM1(ctx);
	arg2 = PT_REGS_PARM2(ctx);
	barrier_var(arg1);
	barrier_var(arg2);
	sh = hook_begin(&task, &now, true);
	if (!sh)
		return 0;
	frame = bpf_get_attach_cookie(ctx) == PYX_CALLS_POP_ARG2 ? arg2 : arg1;
	if (read_frame(task, frame, &cur) || !cur.code) {
		pyx_count_drop(PYX_DROP_READ);
		return 0;
	}
	/*
	 * Python frames above its caller have ended (an exception, a yield
	 * from); a C function above it (--module) is what called it.
	 */
	found = find_frame(sh, cur.previous);
	if (found > 1)
		end_above(task, sh, python_on_top(sh, found - 1), now);
	enter_frame(task, sh, &cur, (__s64)cur.instr >= 0, now);
	return 0;
}

/*
 * ≤3.10: RETURN_VALUE: the thread's current frame returns (cookie: the
 * site). The eval loop's frame is in a register there too, learned as for
 * RESUME: when it holds the top entry's frame, that is the one returning
 * (no read); otherwise the thread state says which.
 */
SEC("uprobe.multi")
int BPF_UPROBE(calls_return)
{
	__u64 frame = 0, tstate = 0, now, regs[FRAME_REGS];
	struct task_struct *task;
	struct shadow *sh;
	struct entry *top;
	__u32 site;
	int reg;

	frame_regs(ctx, regs);
	site = bpf_get_attach_cookie(ctx);
	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	top = top_of(sh);
	reg = frame_reg(site);
	if (reg >= 0 && top && top->frame && regs[reg & 15] == top->frame &&
	    (sh->seq & (RECHECK_EVERY - 1))) {
		pop_frame(task, sh, top->frame, 0, false, now);
		return 0;
	}
	tstate = thread_state(task, sh);
	if (current_frame_addr(task, tstate, &frame))
		return 0;
	learn_frame_reg(site, regs, frame);
	pop_frame(task, sh, frame, tstate, false, now);
	return 0;
}

/*
 * ≤3.10: PyTraceBack_Here(frame): an exception is in @frame, raised there
 * or come from the frames above it, which have ended by it just now.
 */
SEC("uprobe.multi")
int BPF_UPROBE(calls_unwind)
{
	struct task_struct *task;
	struct shadow *sh;
	__u64 frame = PT_REGS_PARM1(ctx), now;
	__u32 found;

	barrier_var(frame);
	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	found = find_frame(sh, frame);
	if (found > 1)
		end_above(task, sh, found - 1, now);
	return 0;
}

/*
 * 3.11+: PyTraceBack_Here: an exception reached the eval loop's current
 * frame, raised in it or come from a callee. Mark its entry: only a frame
 * marked can end by an exception (its pop reads the exception for those
 * only). The frame is the thread's current one, not the argument (a frame
 * object), so that the probe can sit past the function's entry on
 * whatever instruction the kernel emulates: marking twice is harmless.
 * Not found among the top entries: one started before we attached, whose
 * end is not recorded. No current frame known: every top entry.
 */
SEC("uprobe.multi")
int BPF_UPROBE(calls_raise)
{
	struct task_struct *task;
	struct shadow *sh;
	__u64 frame = 0, now;
	__u32 d, found, i;

	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	d = sh->depth;
	if (d > PYX_CALLS_DEPTH)
		return 0;
	if (current_frame_checked(task, sh, &frame) &&
	    current_frame_addr(task, thread_state(task, sh), &frame)) {
		for (i = 0; i < POP_SEARCH && i < d; i++)
			entry_at(sh, d - 1 - i)->flags |= ENTRY_RAISED;
		return 0;
	}
	found = find_frame(sh, frame);
	if (found && found <= d)
		entry_at(sh, d - found)->flags |= ENTRY_RAISED;
	return 0;
}

/* 3.11: _PyEval_EvalFrameDefault(tstate, frame, throwflag) entered: @frame's RESUME is next. */
SEC("uprobe.multi")
int BPF_UPROBE(calls_eval_enter)
{
	__u64 frame = PT_REGS_PARM2(ctx), throwflag = PT_REGS_PARM3(ctx);
	struct shadow *sh;

	barrier_var(frame);
	barrier_var(throwflag);
	if (!ours())
		return 0;
	sh = shadow_of(bpf_get_current_task_btf(), true);
	/* Thrown into (gen.throw()): it unwinds without running RESUME. */
	if (!sh)
		return 0;
	sh->entry_frame = (__u32)throwflag ? 0 : frame;
	/* Paired with its return (calls_eval_return) like the kernel pairs the uretprobe. */
	if (sh->nr_evals < EVALS_MAX)
		sh->evals[sh->nr_evals & (EVALS_MAX - 1)] = frame;
	sh->nr_evals++;
	return 0;
}

/*
 * 3.11: an entry frame (one the eval loop was called for from C) is
 * popped by its C caller, which LTO builds may have inlined every piece of
 * (Debian's _PyFunction_Vectorcall): when the eval loop returns, the top
 * entry is that frame if it is the one this activation was entered for
 * (calls_eval_enter), or, past the nesting remembered, if the thread's
 * current frame is its caller again.
 * A generator's frame is left alone: it may only have yielded.
 */
SEC("uretprobe.multi")
int BPF_URETPROBE(calls_eval_return)
{
	struct task_struct *task;
	struct cur_frame cur;
	struct shadow *sh;
	struct entry *top;
	__u64 now, tstate = 0, frame = 0;
	__u32 n;

	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	top = top_of(sh);
	sh->entry_frame = 0; /* an entry that never reached RESUME (it raised first) */
	n = sh->nr_evals;
	if (n) {
		sh->nr_evals = n - 1;
		if (n <= EVALS_MAX)
			frame = sh->evals[(n - 1) & (EVALS_MAX - 1)];
	}
	if (!top || (top->flags & ENTRY_GENERATOR))
		return 0;
	tstate = thread_state(task, sh);
	/* The frame this activation was entered for; past the nesting kept, its caller is current. */
	if (frame ? top->frame != frame
		  : read_current_frame(task, tstate, &cur) || cur.frame != top->previous)
		return 0;
	finish(task, sh, sh->depth - 1, now, may_have_raised(top) && exception_set(task, tstate));
	return 0;
}

SEC("uprobe.multi")
int BPF_UPROBE(calls_yield)
{
	struct task_struct *task;
	struct shadow *sh;
	struct entry *top;
	__u64 now;

	sh = hook_begin(&task, &now, false);
	if (!sh)
		return 0;
	top = top_of(sh);
	/* Not a generator: one resumed by throw(), whose RESUME did not run. */
	if (top && (top->flags & ENTRY_GENERATOR))
		suspend_top(sh, now);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
