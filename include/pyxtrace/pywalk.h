/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of the Python frame walker (bpf/lib/pywalk.bpf.h): how to walk one
 * interpreter build, given as data by user/python/layout.c (the only place
 * that knows CPython versions), and the frames it produces.
 */
#ifndef __PYXTRACE_PYWALK_H
#define __PYXTRACE_PYWALK_H

#include "common.h"

#define PYX_MAX_FRAMES 128
#define PYX_MAX_INTERPRETERS 16 /* sub-interpreters walked when looking for a thread */
#define PYX_MAX_THREADS 1024	/* thread-list entries walked per interpreter */
#define PYX_OFF_NONE 0xffffffffu /* a field this build does not have */

/* What a frame pointer in the thread state points to. */
enum pyx_frame_model {
	PYX_FRAMES_OBJECTS = 1,	    /* ≤3.10: PyFrameObject chain (f_back) */
	PYX_FRAMES_INTERPRETER = 2, /* 3.11+: _PyInterpreterFrame chain (previous) */
};

/* What the instruction field of a frame holds. */
enum pyx_instr_model {
	PYX_INSTR_LASTI_BYTES = 1, /* int f_lasti, a byte offset (≤3.9) */
	PYX_INSTR_LASTI_UNITS = 2, /* int f_lasti, in code units (3.10) */
	PYX_INSTR_POINTER = 3,	   /* pointer into co_code_adaptive (3.11+) */
};

/* Where "this thread holds the GIL" can be read. */
enum pyx_gil_model {
	PYX_GIL_UNKNOWN = 0,
	PYX_GIL_RUNTIME_CURRENT = 1, /* _PyRuntime.gilstate.tstate_current == tstate (≤3.11) */
	PYX_GIL_INTERP_HOLDER = 2,   /* interp GIL locked && last_holder == tstate (3.12, 3.13) */
	PYX_GIL_TSTATE_FLAG = 3,     /* int tstate->holds_gil (3.14+) */
};

/*
 * Offsets are byte offsets, PYX_OFF_NONE when the build lacks the field.
 * Everything the walker does differently per version is expressed here.
 */
struct pyx_py_layout {
	__u64 runtime;		 /* runtime address of _PyRuntime */
	__u64 code_tag_mask;	 /* AND-ed into the frame's code pointer (~3 on 3.14+: tagged) */
	__u32 frame_model;	 /* enum pyx_frame_model */
	__u32 instr_model;	 /* enum pyx_instr_model */
	__u32 gil_model;	 /* enum pyx_gil_model */
	__u32 rt_interpreters_head;
	__u32 rt_tstate_current; /* PYX_GIL_RUNTIME_CURRENT */
	__u32 interp_next;
	__u32 interp_id;
	__u32 interp_threads_head;
	__u32 interp_gil_locked; /* PYX_GIL_INTERP_HOLDER */
	__u32 interp_gil_holder;
	__u32 ts_next;
	__u32 ts_thread_id;	 /* pthread_self(): the thread pointer (fsbase) on x86-64 glibc */
	__u32 ts_native_thread_id;
	__u32 ts_holds_gil;	 /* PYX_GIL_TSTATE_FLAG */
	__u32 ts_frame;		 /* frame, cframe or current_frame */
	__u32 cframe_current_frame; /* NONE unless ts_frame points to a _PyCFrame (3.11, 3.12) */
	__u32 ts_base_frame;	 /* 3.15: the sentinel frame that ends the chain */
	__u32 frame_previous;	 /* f_back / previous */
	__u32 frame_code;	 /* f_code / f_executable */
	__u32 frame_instr;	 /* f_lasti / prev_instr / instr_ptr */
	__u32 frame_owner;	 /* u8 owner (3.11+) */
	__u32 frame_is_entry;	 /* u8 is_entry (3.11) */
	__u32 owner_boundary;	 /* owner >= this: a C frame, not Python (3.12+); NONE */
	__u32 owner_generator;	 /* owner value of a generator's frame (never incomplete); NONE */
	__u32 code_firstlineno;	 /* int, read as the reuse guard */
	__u32 frame_read_offset; /* each frame is read from here... */
	__u32 frame_read_size;	 /* ...for this many bytes: covers every frame_* field above */
	__u32 walk_flags;	 /* PYX_WALK_* */
	__u32 ts_interp;	 /* tstate->interp */
	/*
	 * O(1) path to a thread's PyThreadState, valid while it has released
	 * the GIL too: the word at thread pointer + tstate_fs_offset (the
	 * gilstate's pthread TSS slot up to 3.14, the _Py_tss_gilstate TLS
	 * variable on 3.15). Checked against thread_id before use; the thread
	 * lists are walked when it is absent or does not check out.
	 */
	__u32 tstate_fast;	 /* 1 when tstate_fs_offset is valid */
	__u32 ts_exception;	 /* the raised exception: curexc_type (≤3.11), current_exception */
	__s64 tstate_fs_offset;
};

/*
 * Read each frame's co_firstlineno as a guard against code-object address
 * reuse, for consumers that resolve names long after the walk (aggregating
 * commands). `stack` resolves at once and checks the instruction pointer
 * against the code object instead, so it skips the extra read per frame.
 */
#define PYX_WALK_READ_GUARD (1u << 0)

/* Frame flags. */
#define PYX_FRAME_BOUNDARY (1u << 0) /* C code runs between this frame and the next one */
#define PYX_FRAME_ENTRY (1u << 1)    /* 3.11 is_entry: the first frame of a C eval call */
#define PYX_FRAME_C_SHIM (1u << 2)   /* a non-Python frame (owner >= boundary): no code */
#define PYX_FRAME_GENERATOR (1u << 3) /* owned by a generator or coroutine */
#define PYX_FRAME_GUARDED (1u << 4)   /* guard holds co_firstlineno (PYX_WALK_READ_GUARD) */

struct pyx_pyframe {
	__u64 code;  /* PyCodeObject address, tag bits cleared; 0 for a C shim frame */
	__u64 instr; /* raw instruction field: f_lasti, or the instruction pointer */
	__u32 guard; /* co_firstlineno, to tell a reused code-object address */
	__u32 flags; /* PYX_FRAME_* */
};

/* How a walk ended. */
enum pyx_walk_status {
	PYX_WALK_OK = 0,	/* reached the bottom */
	PYX_WALK_TRUNCATED = 1, /* more than PYX_MAX_FRAMES frames */
	PYX_WALK_TORN = 2,	/* a read failed or a frame looked wrong: frames so far are kept */
	PYX_WALK_NO_THREAD_STATE = 3, /* the thread is not (yet / any more) a Python thread */
};

/* One thread's Python stack. Frames innermost first; only nr_frames are meaningful. */
/* Where the walker found a thread's PyThreadState. */
enum pyx_tstate_source {
	PYX_TSTATE_NONE = 0,
	PYX_TSTATE_FAST = 1,	    /* the gilstate TSS slot or TLS variable (tstate_fs_offset) */
	PYX_TSTATE_THREAD_LIST = 2, /* the interpreters' thread lists */
};

struct pyx_rec_pystack {
	struct pyx_rec_hdr hdr; /* PYX_REC_PYSTACK; size covers nr_frames frames */
	__u32 tid;		/* host TID */
	__u32 status;		/* enum pyx_walk_status */
	__u32 tstate_source;	/* enum pyx_tstate_source */
	__u32 __pad;
	__u64 tstate;
	__u64 interp_id;
	__u64 thread_id;	/* pthread_self() as the thread state records it */
	__u32 holds_gil;	/* 0, 1, or 2 = unknown */
	__u32 nr_frames;
	char comm[PYX_COMM_LEN];
	struct pyx_pyframe frames[PYX_MAX_FRAMES];
};

#endif /* __PYXTRACE_PYWALK_H */
