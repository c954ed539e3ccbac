/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where a CPython build keeps what the frame walker and the code-object
 * reader need, from the best source available: the target's own
 * _Py_DebugOffsets (3.13+), else the per-minor tables below (3.8-3.12,
 * measured on release and debug builds: Py_DEBUG does not move these
 * fields), else DWARF. DWARF, when present, also cross-checks the result.
 */
#ifndef PYX_PYTHON_LAYOUT_H
#define PYX_PYTHON_LAYOUT_H

#include <linux/types.h>
#include <pyxtrace/pywalk.h>

#include "python/code.h"
#include "python/detect.h"

struct pyx_python_layout {
	struct pyx_py_layout walk; /* for BPF */
	struct pyx_code_layout code;
	const char *source;	   /* "_Py_DebugOffsets", "table" or "dwarf" */
	const char *fast_tstate;   /* the O(1) thread-state path, NULL: thread lists only */
	char crosscheck[160];	   /* DWARF agreement: "" not checked, "ok", or what differed */
};

/*
 * Fill @out for @py in @proc. On failure returns -errno with a one-line
 * reason in @why (-EPROTONOSUPPORT: a build this version of pyxtrace cannot
 * walk, e.g. free-threaded).
 */
int pyx_python__layout(struct pyx_python *py, struct pyx_process *proc,
		       struct pyx_python_layout *out, char *why, size_t why_size);

#endif /* PYX_PYTHON_LAYOUT_H */
