/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/calls.bpf.c: exact Python calls from the eval loop's own hooks
 * (user/python/evalhooks.c), aggregated in the kernel per code object:
 * calls, exceptions, inclusive and self time, latency histogram.
 */
#ifndef __PYXTRACE_CALLS_H
#define __PYXTRACE_CALLS_H

#include "codesnap.h"
#include "pywalk.h"

#define PYX_CALLS_DEPTH	    256	  /* pending Python frames paired per thread */
#define PYX_CALLS_FUNCTIONS 32768 /* code objects counted */
#define PYX_CALLS_SUSPENDED 65536 /* generators/coroutines remembered while suspended */

#define PYX_CALLS_SPAN_MAX 128 /* == PYX_FRAME_BUF: read into the walker's frame buffer */

/* co_flags of generators, coroutines and async generators (CO_GENERATOR...). */
#define PYX_CALLS_CO_GENERATOR_FLAGS (0x20 | 0x80 | 0x200)

/* Opcode sets as 256-bit maps: bit (op & 63) of word (op >> 6). */
#define PYX_CALLS_OPSET_WORDS 4

struct pyx_calls_cfg {
	__u32 tgid;
	__u32 tid;				 /* --thread: only this host TID; 0: every thread */
	__u64 resume_ops[PYX_CALLS_OPSET_WORDS]; /* RESUME and its quickened/instrumented forms */
	__u64 yield_ops[PYX_CALLS_OPSET_WORDS];	 /* YIELD_VALUE and its instrumented form */
	__u32 stale_are_exceptions; /* ≤3.10: a frame ended unseen was left by an exception */
	/*
	 * One read per start covers what the start needs of its code object:
	 * co_filename, co_name, co_firstlineno (the guard) and, ≤3.10, co_flags
	 * (frames have no owner field). Offsets in the span; NONE: not there.
	 */
	__u32 span_off;
	__u32 span_len; /* <= PYX_CALLS_SPAN_MAX */
	__u32 span_filename;
	__u32 span_name;
	__u32 span_firstlineno;
	__u32 span_flags;
	__u32 span_linetable; /* its line table's address: one more for the guard; NONE */
	__u32 flow;	      /* pyxtrace flow: each event also goes to the events ring */
	__u32 flow_depth;     /* flow: only events of frames this deep or less; 0: all */
	/*
	 * 3.11+: PyTraceBack_Here is hooked: only the ends of frames an
	 * exception reached read the thread's exception. 0: every end reads it.
	 */
	__u32 raise_marked;
	/*
	 * ≤3.10: how a generator's frame found ended unseen tells whether it is
	 * suspended (else it was left by an exception, re-raised past
	 * PyTraceBack_Here): PYX_CALLS_GEN_*, the field at gen_state_off.
	 */
	__u32 gen_state_model;
	__u32 gen_state_off;
	__u32 __pad;
	struct pyx_codesnap_cfg snap;
	struct pyx_py_layout layout;
};

/*
 * The frame a RESUME probe's start belongs to (≤3.10: a RETURN_VALUE
 * probe's returning frame) is in one general register at that instruction,
 * learned per probe site (the cookie of each such probe, <
 * PYX_CALLS_FRAME_SITES) from PYX_CALLS_LEARN_SAMPLES frames found through
 * the thread state. Registers by bit, callee-saved first: rbx rbp r12 r13
 * r14 r15 rax rcx rdx rsi rdi r8 r9 r10 r11; the lowest bit not excluded is
 * used.
 */
#define PYX_CALLS_FRAME_SITES	8
#define PYX_CALLS_LEARN_SAMPLES 64
#define PYX_CALLS_FRAME_REGS	15

enum pyx_calls_gen_state {
	PYX_CALLS_GEN_UNKNOWN = 0,  /* a generator ended unseen is taken as suspended */
	PYX_CALLS_GEN_STACKTOP = 1, /* 3.8, 3.9: f_stacktop, non-NULL while suspended */
	PYX_CALLS_GEN_F_STATE = 2,  /* 3.10: f_state, FRAME_SUSPENDED (-1) while suspended */
};

/*
 * Which argument of a frame-pop function is the dying frame: the BPF cookie
 * of each pop probe.
 */
enum pyx_calls_pop_arg {
	PYX_CALLS_POP_ARG1 = 0, /* f(frame): _PyFrame_Clear (3.11) */
	PYX_CALLS_POP_ARG2 = 1, /* f(tstate, frame): _PyEval_FrameClearAndPop and kin */
};

/*
 * A code object as counted: its address, and a guard read from it at each
 * start (its name and file name pointers and first line, mixed), so that a
 * new code object at the address of a freed one (module and class bodies,
 * exec'd code, lambdas made in a loop) is counted on its own.
 */
struct pyx_calls_key {
	__u64 code;
	__u64 guard;
};

/*
 * A C entry point of a module given with --module: code is its index in
 * user space's table, guard this marker (no code object has it: a guard
 * mixes pointers shifted apart and a line number).
 */
#define PYX_CALLS_NATIVE_GUARD 0xffffffffffffffffull

/* Per code object, per CPU; user space sums the CPUs. */
struct pyx_calls_stats {
	__u64 calls;	  /* frames started (a resumption is not a call) */
	__u64 exceptions; /* frames left with an exception set */
	__u64 timed;	  /* calls whose end was paired with their start */
	__u64 total_ns;	  /* inclusive, wall clock from start to end */
	__u64 self_ns;	  /* running in this frame, not in its callees (nor suspended) */
	__u64 min_ns;
	__u64 max_ns;
	__u64 slots[PYX_HIST_SLOTS]; /* inclusive latency */
};

/*
 * PYX_REC_CALLS_CODE: a code object counted for the first time, with a copy
 * of it: short-lived ones are freed before user space could read them.
 */
struct pyx_rec_calls_code {
	struct pyx_rec_hdr hdr;
	struct pyx_calls_key key;
	struct pyx_code_snap snap;
};

/* What a PYX_REC_FLOW record tells. */
enum pyx_flow_event {
	PYX_FLOW_CALL = 1,    /* a frame started (a call) */
	PYX_FLOW_RETURN = 2,  /* a frame ended: returned, or raised (PYX_FLOW_F_EXCEPTION) */
	PYX_FLOW_RESUME = 3,  /* a generator or coroutine resumed */
	PYX_FLOW_SUSPEND = 4, /* a generator or coroutine suspended (yield, await) */
	PYX_FLOW_LOST = 5,    /* a frame that ended unseen (drops.unpaired): no time */
};

#define PYX_FLOW_F_EXCEPTION (1u << 0) /* RETURN: left with an exception set */
#define PYX_FLOW_F_UNTIMED   (1u << 1) /* its start was before the trace: no duration */

/*
 * PYX_REC_FLOW (events ring, flow only): one event of a thread, in the
 * order the thread made them. depth is the frame's place on the thread's
 * shadow stack (1: the outermost frame seen since the trace began).
 */
struct pyx_rec_flow {
	struct pyx_rec_hdr hdr;
	__u32 event; /* enum pyx_flow_event */
	__u32 tid;   /* host TID */
	__u32 depth;
	__u32 flags;	   /* PYX_FLOW_F_* */
	__u64 time_ns;	   /* CLOCK_MONOTONIC */
	__u64 duration_ns; /* RETURN: since the call (inclusive); SUSPEND: this run */
	struct pyx_calls_key fn;
	struct pyx_calls_key caller; /* CALL: the frame under it ({0, 0}: none seen) */
};

#endif /* __PYXTRACE_CALLS_H */
