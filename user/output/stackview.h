/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One thread's stack as the user sees it, from what BPF captured of it:
 * the Python frame walker's record and, optionally, the thread's registers
 * with a copy of its user stack. Python frames are resolved through the
 * caller's code-object cache; with native frames, both are unwound and
 * merged (unwind/mixed.h) so each eval-loop activation shows the Python
 * frames it runs. Printed the way `pyxtrace stack` prints a thread, in text
 * and in JSON, so every command that captures a thread (stack, watch at a
 * uprobe, crash) shows it the same way.
 *
 * Errors: NULL+errno.
 */
#ifndef PYX_OUTPUT_STACKVIEW_H
#define PYX_OUTPUT_STACKVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/types.h>
#include <pyxtrace/stack.h>

struct pyx_code_cache;
struct pyx_ctx;
struct pyx_json;
struct pyx_process;
struct pyx_python;
struct pyx_python_layout;
struct pyx_unwinder;

/* Scratch arrays for one thread's frames, reused by each build, and what resolves them. */
struct pyx_stackview;

/*
 * @ctx: for -vv detail on the native unwind. @cache: the caller's code-object
 * cache, shared, not owned. @unwinder: NULL for Python-only views (native
 * records are then ignored). Everything is borrowed and must outlive the view.
 */
struct pyx_stackview *pyx_stackview__new(const struct pyx_ctx *ctx, struct pyx_process *proc,
					 const struct pyx_python *py,
					 const struct pyx_python_layout *layout,
					 struct pyx_code_cache *cache,
					 struct pyx_unwinder *unwinder);
void pyx_stackview__free(struct pyx_stackview *v);

/*
 * Resolve through @cache from now on: a caller that trusts code objects only
 * for a while (frames walked without a reuse guard) swaps in a fresh cache.
 * Frames built earlier point into the old cache: build again before printing.
 */
void pyx_stackview__set_cache(struct pyx_stackview *v, struct pyx_code_cache *cache);

/*
 * The PYX_REC_NATIVE record of @py's thread when one starts at @next, with
 * @len bytes left in the buffer, and its sizes are consistent (BPF writes it
 * right after the thread's Python frames when it captures native stacks);
 * NULL otherwise. The caller skips its hdr.size bytes.
 */
const struct pyx_rec_native *pyx_stackview__native_after(const struct pyx_rec_pystack *py,
							 const void *next, size_t len);

/*
 * Build the frames of one thread, replacing the previous ones: @py's Python
 * frames, merged with the native frames unwound from @native (may be NULL).
 * @stack_only: unwind from the stack copy alone, never reading the live
 * process (one that may be gone); code objects are still read through the
 * cache, and show as unreadable if they are gone. @py and @native must stay
 * valid while the view is printed. Returns the number of frames (lines) built.
 */
size_t pyx_stackview__build(struct pyx_stackview *v, const struct pyx_rec_pystack *py,
			    const struct pyx_rec_native *native, bool stack_only);

/* The native frames of the last build are approximate: the thread was on a CPU when read. */
bool pyx_stackview__approximate(const struct pyx_stackview *v);

/* A code object of the last build was unreadable because the process exited. */
bool pyx_stackview__partial(const struct pyx_stackview *v);

/*
 * The frames of the last build in traceback order (outermost first), one
 * line each prefixed by @indent: `File "f", line N, in qualname`, a native
 * `sym+0x.. in obj+0x.. at file:line`, `[C code]`, and the notes on a
 * truncated, torn or approximate stack, or one without Python frames.
 */
void pyx_stackview__print_text(const struct pyx_stackview *v, FILE *out, const char *indent);

/*
 * As pyx_stackview__print_text(), the @skip outermost frames replaced by one
 * line saying so: for a stack that shares them with the one printed before.
 */
void pyx_stackview__print_text_from(const struct pyx_stackview *v, FILE *out, const char *indent,
				    size_t skip);

/*
 * A key per frame of the last build, outermost first (native: its pc;
 * Python: code object and line): equal keys in the same position are the
 * same frame. Returns how many were written (at most @max).
 */
size_t pyx_stackview__keys(const struct pyx_stackview *v, uint64_t *keys, size_t max);

/* The frames of the last build as a JSON array value, innermost first (docs/schema.md frame). */
void pyx_stackview__print_json(const struct pyx_stackview *v, struct pyx_json *json);

#endif /* PYX_OUTPUT_STACKVIEW_H */
