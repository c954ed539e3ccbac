/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One stack from two: the native frames of a thread (unwind.h) and its
 * Python frames (the walker), merged the way gdb's `bt` and `py-bt` would
 * read together. Each native activation of the interpreter's eval loop is
 * replaced by the Python frames it runs: one frame per activation when
 * every Python call is its own C call (≤3.10), else the run of frames up to
 * the next boundary (3.11+, where Python-to-Python calls stay inside one
 * activation and a boundary marks where C code entered the loop again).
 */
#ifndef PYX_UNWIND_MIXED_H
#define PYX_UNWIND_MIXED_H

#include <stdbool.h>
#include <stddef.h>

#include "unwind/unwind.h"

enum pyx_mixed_kind {
	PYX_MIXED_NATIVE = 1,
	PYX_MIXED_PYTHON = 2,
};

/* One entry of the merged stack: which input frame it is. */
struct pyx_mixed {
	enum pyx_mixed_kind kind;
	size_t index; /* into the native or the Python array */
};

/*
 * @native, @n_native: innermost first. @python_boundary[i]: true when
 * Python frame i is a boundary marker, not a Python frame: exactly one
 * closes each eval activation (3.11+), leading and repeated ones included,
 * so activations pair with the native eval frames in order. @is_eval says whether a native frame is the eval loop.
 * Fills @out (innermost first, at most @max entries); returns how many.
 * Boundary markers are consumed (the native frames show the C code).
 * Python frames left over (the native unwind ended early) are appended.
 */
size_t pyx_mix_stacks(const struct pyx_native_frame *native, size_t n_native,
		      const bool *python_boundary, size_t n_python, bool one_per_eval,
		      bool (*is_eval)(void *ctx, const struct pyx_native_frame *frame), void *ctx,
		      struct pyx_mixed *out, size_t max);

#endif /* PYX_UNWIND_MIXED_H */
