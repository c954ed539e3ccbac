/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Exact Python call hooks inside the eval loop, where USDT is gone, broken
 * or never built: opcode handlers found through the computed-goto table
 * (opcode_targets) read from the live process, and functions of the
 * interpreter. 3.11+ (one C activation runs many Python frames): the
 * RESUME and YIELD_VALUE families and the functions that pop a finished
 * frame. ≤3.10 (one activation per frame): the eval function's entry,
 * RETURN_VALUE, YIELD_VALUE and PyTraceBack_Here. Opcode numbers are per
 * minor version.
 */
#ifndef PYX_PYTHON_EVALHOOKS_H
#define PYX_PYTHON_EVALHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include <pyxtrace/calls.h>

#include "elf/x86.h"
#include "python/detect.h"

enum pyx_eval_hook_kind {
	PYX_HOOK_RESUME = 1,  /* a frame starts or resumes */
	PYX_HOOK_YIELD,	      /* a generator/coroutine frame suspends */
	PYX_HOOK_POP,	      /* a finished frame is popped (returned or raised) */
	PYX_HOOK_EVAL_RETURN, /* 3.11: the eval loop returns to C (an entry frame ended) */
	PYX_HOOK_EVAL_ENTER,  /* 3.11: the eval loop entered for a frame (its RESUME is next) */
	PYX_HOOK_FRAME_ENTER, /* ≤3.10: the eval function's entry: a frame starts or resumes */
	PYX_HOOK_RETURN,      /* ≤3.10: RETURN_VALUE */
	PYX_HOOK_UNWIND,      /* ≤3.10: PyTraceBack_Here: an exception reached a frame */
	PYX_HOOK_RAISE,	      /* 3.11+: PyTraceBack_Here: the same, marks the frame */
	PYX_HOOK__MAX,
};

struct pyx_eval_hook {
	enum pyx_eval_hook_kind kind;
	char what[64];	    /* "RESUME_CHECK (207)", "_PyEval_FrameClearAndPop" */
	uint64_t vaddr;	    /* link-time address of the handler or function */
	unsigned int delta; /* the probe's offset from it */
	enum pyx_probe_class cls;
	__u32 pop_arg; /* PYX_CALLS_POP_ARG*: which argument is the frame */
	bool rare;     /* an opcode run once per code object before it is quickened */
};

#define PYX_EVAL_HOOKS_MAX 24

struct pyx_eval_hooks {
	struct pyx_object *object;	 /* the interpreter: executable or libpython */
	const char *table_symbol_origin; /* "symtab", "debug file", "shape" (no symbol) */
	uint64_t table;			 /* link-time address of opcode_targets */
	uint64_t resume_ops[PYX_CALLS_OPSET_WORDS];
	uint64_t yield_ops[PYX_CALLS_OPSET_WORDS];
	struct pyx_eval_hook hooks[PYX_EVAL_HOOKS_MAX];
	size_t nr_hooks;
	size_t single_stepped;	/* hot hooks on an instruction the kernel single-steps */
	size_t yields_unhooked; /* YIELD_VALUE forms left to late detection (single-stepped) */
	bool legacy;		/* ≤3.10: one eval activation per frame */
	bool raise_hooked;	/* 3.11+: PyTraceBack_Here hooked (PYX_HOOK_RAISE) */
	uint32_t co_flags; /* ≤3.10: offset of co_flags (frames have no owner field); else NONE */
	/* ≤3.10: what tells a generator's frame suspended (PYX_CALLS_GEN_*), at this offset */
	uint32_t gen_state_model;
	uint32_t gen_state_off;
};

/*
 * Find the hooks of @py in @proc. -EPROTONOSUPPORT before 3.11, -ENOENT
 * when a piece is missing (e.g. no symbols for the opcode table), with a
 * one-line reason in @why that says what to do.
 */
int pyx_eval_hooks__find(struct pyx_process *proc, struct pyx_python *py,
			 struct pyx_eval_hooks *out, char *why, size_t why_size);

const char *pyx_eval_hook_kind_name(enum pyx_eval_hook_kind kind);

/*
 * Whether @proc asked for the JIT (PYTHON_JIT set and not "0", on 3.13+
 * where builds may have one): JIT-compiled code passes none of the hooks.
 * The variable's value goes to @value.
 */
bool pyx_eval_hooks__jit_requested(const struct pyx_process *proc, const struct pyx_python *py,
				   char *value, size_t size);

#endif /* PYX_PYTHON_EVALHOOKS_H */
