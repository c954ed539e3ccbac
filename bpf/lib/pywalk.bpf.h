/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The Python frame walker, shared by every BPF object that attributes work
 * to Python code. It knows no CPython version: struct pyx_py_layout
 * (include/pyxtrace/pywalk.h, filled by user/python/layout.c) says where
 * everything is.
 *
 * Safety: every loop is a bpf_loop() with a fixed bound, every pointer
 * comes from a checked read, a failed read ends the walk with PYX_WALK_TORN
 * and keeps the frames read so far, and a frame pointing to itself ends it
 * too. Nothing is written to the target.
 *
 * The includer defines, before including this file:
 *   PYX_WALK_LAYOUT    an expression giving the const volatile layout (its
 *                      rodata config: volatile, or clang folds it to zero);
 *   PYX_WALK_SLEEPABLE 1 in a sleepable program that walks *another* task
 *                      (bpf_copy_from_user_task), 0 for probes in the
 *                      traced task itself (bpf_probe_read_user).
 */
#ifndef __PYX_PYWALK_BPF_H
#define __PYX_PYWALK_BPF_H

#include <bpf/bpf_core_read.h>
#include <pyxtrace/pywalk.h>

#ifndef PYX_WALK_LAYOUT
#error "define PYX_WALK_LAYOUT before including pywalk.bpf.h"
#endif
#ifndef PYX_WALK_SLEEPABLE
#define PYX_WALK_SLEEPABLE 0
#endif

#define PYX_FRAME_BUF 128

static __always_inline int pywalk_read(struct task_struct *task, void *dst, __u32 size, __u64 addr)
{
	if (!addr)
		return -1;
#if PYX_WALK_SLEEPABLE
	return bpf_copy_from_user_task(dst, size, (const void *)addr, task, 0);
#else
	return bpf_probe_read_user(dst, size, (const void *)addr);
#endif
}

static __always_inline int pywalk_read_u64(struct task_struct *task, __u64 addr, __u64 *value)
{
	return pywalk_read(task, value, sizeof(*value), addr);
}

/* x86-64: pthread_self() and PyThreadState.thread_id are the thread pointer, %fs base. */
static __always_inline __u64 pywalk_thread_pointer(struct task_struct *task)
{
	return BPF_CORE_READ(task, thread.fsbase);
}

struct pywalk_find {
	struct task_struct *task;
	__u64 want;   /* thread pointer to match */
	__u64 interp; /* interpreter being walked */
	__u64 ts;     /* next thread state of its list, 0 at the end */
	__u64 found;
	int status;
};

/* One step through "every interpreter's thread list": a thread state or the next interpreter. */
static long pywalk_find_step(__u64 index, void *data)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	struct pywalk_find *c = data;
	__u64 id = 0;

	if (!c->ts) {
		if (pywalk_read_u64(c->task, c->interp + L->interp_next, &c->interp))
			goto torn;
		if (!c->interp) {
			c->status = PYX_WALK_NO_THREAD_STATE;
			return 1;
		}
		if (pywalk_read_u64(c->task, c->interp + L->interp_threads_head, &c->ts))
			goto torn;
		return 0;
	}
	if (pywalk_read_u64(c->task, c->ts + L->ts_thread_id, &id))
		goto torn;
	if (id == c->want) {
		c->found = c->ts;
		c->status = PYX_WALK_OK;
		return 1;
	}
	if (pywalk_read_u64(c->task, c->ts + L->ts_next, &c->ts))
		goto torn;
	return 0;
torn:
	c->status = PYX_WALK_TORN;
	return 1;
}

/*
 * The O(1) path: the thread state the gilstate slot holds for this thread,
 * if it checks out (its thread_id is this thread's). 0 when it does not.
 */
static __always_inline __u64 pywalk_fast_tstate(struct task_struct *task, __u64 thread_pointer,
						__u64 *interp)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	__u64 ts = 0, id = 0;

	if (!L->tstate_fast ||
	    pywalk_read_u64(task, thread_pointer + (__u64)L->tstate_fs_offset, &ts) || !ts ||
	    pywalk_read_u64(task, ts + L->ts_thread_id, &id) || id != thread_pointer ||
	    pywalk_read_u64(task, ts + L->ts_interp, interp) || !*interp)
		return 0;
	return ts;
}

/*
 * Find the thread state whose thread_id is @thread_pointer: the gilstate
 * slot when the layout has one, else (or when it does not check out) every
 * interpreter's thread list. Both stay right while the thread has released
 * the GIL (the "current thread" globals are NULL or another thread's then).
 * *source says which one answered.
 */
static __always_inline int pywalk_find_tstate(struct task_struct *task, __u64 thread_pointer,
					      __u64 *tstate, __u64 *interp, __u32 *source)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	struct pywalk_find c = {
		.task = task,
		.want = thread_pointer,
		.status = PYX_WALK_NO_THREAD_STATE,
	};

	*tstate = pywalk_fast_tstate(task, thread_pointer, interp);
	if (*tstate) {
		*source = PYX_TSTATE_FAST;
		return PYX_WALK_OK;
	}
	*source = PYX_TSTATE_THREAD_LIST;
	if (pywalk_read_u64(task, L->runtime + L->rt_interpreters_head, &c.interp) || !c.interp)
		return PYX_WALK_TORN;
	if (pywalk_read_u64(task, c.interp + L->interp_threads_head, &c.ts))
		return PYX_WALK_TORN;
	bpf_loop(PYX_MAX_INTERPRETERS * PYX_MAX_THREADS, pywalk_find_step, &c, 0);
	if (c.status == PYX_WALK_OK) {
		*tstate = c.found;
		*interp = c.interp;
	}
	return c.status;
}

/* 1 if @tstate holds the GIL, 0 if not, 2 when this build does not say. */
static __always_inline __u32 pywalk_holds_gil(struct task_struct *task, __u64 tstate, __u64 interp)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	__u64 holder = 0;
	__u32 flag = 0;

	switch (L->gil_model) {
	case PYX_GIL_RUNTIME_CURRENT:
		if (pywalk_read_u64(task, L->runtime + L->rt_tstate_current, &holder))
			return 2;
		return holder == tstate;
	case PYX_GIL_INTERP_HOLDER:
		if (pywalk_read(task, &flag, sizeof(flag), interp + L->interp_gil_locked) ||
		    pywalk_read_u64(task, interp + L->interp_gil_holder, &holder))
			return 2;
		return flag && holder == tstate;
	case PYX_GIL_TSTATE_FLAG:
		if (pywalk_read(task, &flag, sizeof(flag), tstate + L->ts_holds_gil))
			return 2;
		return flag != 0;
	default:
		return 2;
	}
}

static __always_inline __u64 frame_field_u64(const __u8 *buf, __u32 off)
{
	if (off > PYX_FRAME_BUF - 8)
		return 0;
	return *(const __u64 *)(buf + off);
}

static __always_inline __u32 frame_field_u32(const __u8 *buf, __u32 off)
{
	if (off > PYX_FRAME_BUF - 4)
		return 0;
	return *(const __u32 *)(buf + off);
}

static __always_inline __u8 frame_field_u8(const __u8 *buf, __u32 off)
{
	if (off > PYX_FRAME_BUF - 1)
		return 0;
	return buf[off];
}

/* Scratch for one walk, in a per-CPU map: the BPF stack is too small for the frames. */
struct pywalk_frames {
	struct pyx_pyframe frames[PYX_MAX_FRAMES];
	__u8 buf[PYX_FRAME_BUF];
};

/* One per CPU, in every object that includes the walker. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pywalk_frames);
} pywalk_scratch SEC(".maps");

static __always_inline struct pywalk_frames *pywalk_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pywalk_scratch, &zero);
}

struct pywalk_state {
	struct task_struct *task;
	struct pywalk_frames *out;
	__u64 frame; /* next frame to read */
	__u64 base;  /* 3.15: the sentinel that ends the chain */
	__u32 n;
	__u32 status;
	__u32 python_left; /* stop after this many Python frames (C shims not counted); 0: all */
	__u32 __pad;
};

static long pywalk_frame_step(__u64 index, void *data)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	struct pywalk_state *s = data;
	__u32 read_size = L->frame_read_size, base_off = L->frame_read_offset, flags = 0;
	struct pyx_pyframe *f;
	__u64 code, previous;
	__u8 *buf;

	if (!s->frame || s->frame == s->base)
		return 1;
	if (s->n >= PYX_MAX_FRAMES) {
		s->status = PYX_WALK_TRUNCATED;
		return 1;
	}
	buf = s->out->buf;
	if (read_size > PYX_FRAME_BUF || !read_size ||
	    pywalk_read(s->task, buf, read_size, s->frame + base_off)) {
		s->status = PYX_WALK_TORN;
		return 1;
	}
	f = &s->out->frames[s->n & (PYX_MAX_FRAMES - 1)];
	/* Field offsets are relative to the frame; the buffer starts base_off into it. */
	code = frame_field_u64(buf, L->frame_code - base_off) & L->code_tag_mask;
	previous = frame_field_u64(buf, L->frame_previous - base_off);
	if (L->frame_owner != PYX_OFF_NONE) {
		__u8 owner = frame_field_u8(buf, L->frame_owner - base_off);

		if (L->owner_boundary != PYX_OFF_NONE && owner >= L->owner_boundary)
			flags |= PYX_FRAME_C_SHIM | PYX_FRAME_BOUNDARY;
		else if (owner == L->owner_generator)
			flags |= PYX_FRAME_GENERATOR;
	}
	if (L->frame_is_entry != PYX_OFF_NONE && frame_field_u8(buf, L->frame_is_entry - base_off))
		flags |= PYX_FRAME_ENTRY | PYX_FRAME_BOUNDARY;
	f->flags = flags;
	f->guard = 0;
	f->code = 0;
	f->instr = 0;
	if (!(flags & PYX_FRAME_C_SHIM)) {
		f->code = code;
		if (L->instr_model == PYX_INSTR_POINTER)
			f->instr = frame_field_u64(buf, L->frame_instr - base_off);
		else
			f->instr = (__u64)(__s64)(__s32)frame_field_u32(buf,
									L->frame_instr - base_off);
		if (L->walk_flags & PYX_WALK_READ_GUARD) {
			if (pywalk_read(s->task, &f->guard, sizeof(f->guard),
					code + L->code_firstlineno)) {
				s->status = PYX_WALK_TORN;
				return 1;
			}
			f->flags |= PYX_FRAME_GUARDED;
		}
	}
	s->n++;
	if (s->python_left && !(flags & PYX_FRAME_C_SHIM) && !--s->python_left)
		return 1;
	if (previous == s->frame) {
		s->status = PYX_WALK_TORN;
		return 1;
	}
	s->frame = previous;
	return 0;
}

/*
 * Walk the frames of @tstate into @out->frames (innermost first), at most
 * @limit of them, stopping after @python Python frames (0: no such stop):
 * callers that need only the innermost few read no more. Returns the status
 * (PYX_WALK_OK also when stopped early); *nr is the number of frames filled.
 */
static __always_inline __u32 pywalk_frames_upto(struct task_struct *task, __u64 tstate,
						struct pywalk_frames *out, __u32 limit,
						__u32 python, __u32 *nr)
{
	const volatile struct pyx_py_layout *L = PYX_WALK_LAYOUT;
	struct pywalk_state s = {
		.task = task, .out = out, .status = PYX_WALK_OK, .python_left = python};

	*nr = 0;
	if (pywalk_read_u64(task, tstate + L->ts_frame, &s.frame))
		return PYX_WALK_TORN;
	if (L->cframe_current_frame != PYX_OFF_NONE && s.frame &&
	    pywalk_read_u64(task, s.frame + L->cframe_current_frame, &s.frame))
		return PYX_WALK_TORN;
	if (L->ts_base_frame != PYX_OFF_NONE &&
	    pywalk_read_u64(task, tstate + L->ts_base_frame, &s.base))
		return PYX_WALK_TORN;
	bpf_loop(limit, pywalk_frame_step, &s, 0);
	*nr = s.n;
	return s.status;
}

/* Walk every frame of @tstate, as pywalk_frames_upto(). */
static __always_inline __u32 pywalk_frames(struct task_struct *task, __u64 tstate,
					   struct pywalk_frames *out, __u32 *nr)
{
	/* One iteration more than frames, so a deeper stack is seen as truncated. */
	return pywalk_frames_upto(task, tstate, out, PYX_MAX_FRAMES + 1, 0, nr);
}

#endif /* __PYX_PYWALK_BPF_H */
