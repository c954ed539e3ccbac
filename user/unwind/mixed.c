// SPDX-License-Identifier: GPL-2.0-only
#include "unwind/mixed.h"

static size_t push(struct pyx_mixed *out, size_t n, size_t max, enum pyx_mixed_kind kind,
		   size_t index)
{
	if (n < max) {
		out[n].kind = kind;
		out[n].index = index;
		n++;
	}
	return n;
}

/*
 * Emit the next activation's Python frames starting at *py: one frame, or
 * the frames up to the boundary that closes the activation (consumed: the
 * native frames show that C code). An activation may have no Python frame
 * left (all incomplete): then only its boundary is consumed, which keeps
 * later activations paired with the right native frames.
 */
static size_t emit_group(const bool *boundary, size_t n_python, bool one_per_eval, size_t *py,
			 struct pyx_mixed *out, size_t n, size_t max)
{
	if (one_per_eval) {
		if (*py < n_python)
			n = push(out, n, max, PYX_MIXED_PYTHON, (*py)++);
		return n;
	}
	while (*py < n_python && !boundary[*py]) {
		n = push(out, n, max, PYX_MIXED_PYTHON, *py);
		(*py)++;
	}
	if (*py < n_python)
		(*py)++; /* the boundary */
	return n;
}

size_t pyx_mix_stacks(const struct pyx_native_frame *native, size_t n_native,
		      const bool *python_boundary, size_t n_python, bool one_per_eval,
		      bool (*is_eval)(void *ctx, const struct pyx_native_frame *frame), void *ctx,
		      struct pyx_mixed *out, size_t max)
{
	size_t n = 0, i, py = 0;

	for (i = 0; i < n_native; i++) {
		/*
		 * Inlined frames share their outer frame's pc: only the
		 * outermost entry of an eval activation is the activation.
		 */
		if (is_eval(ctx, &native[i]) && !native[i].inlined && py < n_python) {
			n = emit_group(python_boundary, n_python, one_per_eval, &py, out, n, max);
			continue;
		}
		n = push(out, n, max, PYX_MIXED_NATIVE, i);
	}
	while (py < n_python)
		n = emit_group(python_boundary, n_python, one_per_eval, &py, out, n, max);
	return n;
}
