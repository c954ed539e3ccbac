// SPDX-License-Identifier: GPL-2.0-only
/*
 * One thread's stack as the user sees it: Python frames resolved, native
 * frames unwound and merged with them, printed as text or JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output/json.h"
#include "output/stackview.h"
#include "python/code.h"
#include "python/detect.h"
#include "python/layout.h"
#include "target/process.h"
#include "unwind/mixed.h"
#include "unwind/unwind.h"
#include "util/log.h"

/* Native frames per thread, inlined ones included. */
#define STACKVIEW_MAX_NATIVE 256
/* Python frames after resolving: each walked frame plus, after a 3.11 entry frame, a boundary. */
#define STACKVIEW_MAX_PYTHON (PYX_MAX_FRAMES * 2)
/* Lines of a mixed stack: every native and every Python frame at most. */
#define STACKVIEW_MAX_LINES (STACKVIEW_MAX_NATIVE + STACKVIEW_MAX_PYTHON)

/* One resolved frame of a thread, innermost first. */
struct out_frame {
	bool boundary;
	bool resolved;
	struct pyx_frame_info info;
	uint64_t code;
};

/* One line of a printed stack: a Python frame, a native frame, or a C boundary marker. */
struct disp_frame {
	const struct out_frame *py;	       /* Python frame or boundary */
	const struct pyx_native_frame *native; /* or a native frame */
};

struct pyx_stackview {
	const struct pyx_ctx *ctx;
	struct pyx_process *proc;
	const struct pyx_python *py;
	const struct pyx_python_layout *layout;
	struct pyx_code_cache *cache;
	struct pyx_unwinder *unwinder;

	struct out_frame *frames;	 /* STACKVIEW_MAX_PYTHON */
	bool *boundaries;		 /* STACKVIEW_MAX_PYTHON, for pyx_mix_stacks() */
	struct pyx_native_frame *native; /* STACKVIEW_MAX_NATIVE */
	struct pyx_mixed *mixed;	 /* STACKVIEW_MAX_LINES */
	struct disp_frame *disp;	 /* STACKVIEW_MAX_LINES */

	/* The last build. */
	const struct pyx_rec_pystack *rec;
	size_t n;
	bool approximate;
	bool partial;
};

struct pyx_stackview *pyx_stackview__new(const struct pyx_ctx *ctx, struct pyx_process *proc,
					 const struct pyx_python *py,
					 const struct pyx_python_layout *layout,
					 struct pyx_code_cache *cache,
					 struct pyx_unwinder *unwinder)
{
	struct pyx_stackview *v = malloc(sizeof(*v));

	if (!v)
		return NULL;
	*v = (struct pyx_stackview){.ctx = ctx,
				    .proc = proc,
				    .py = py,
				    .layout = layout,
				    .cache = cache,
				    .unwinder = unwinder};
	v->frames = calloc(STACKVIEW_MAX_PYTHON, sizeof(*v->frames));
	v->boundaries = calloc(STACKVIEW_MAX_PYTHON, sizeof(*v->boundaries));
	v->native = calloc(STACKVIEW_MAX_NATIVE, sizeof(*v->native));
	v->mixed = calloc(STACKVIEW_MAX_LINES, sizeof(*v->mixed));
	v->disp = calloc(STACKVIEW_MAX_LINES, sizeof(*v->disp));
	if (!v->frames || !v->boundaries || !v->native || !v->mixed || !v->disp) {
		pyx_stackview__free(v);
		errno = ENOMEM;
		return NULL;
	}
	return v;
}

void pyx_stackview__free(struct pyx_stackview *v)
{
	if (!v)
		return;
	free(v->disp);
	free(v->mixed);
	free(v->native);
	free(v->boundaries);
	free(v->frames);
	free(v);
}

void pyx_stackview__set_cache(struct pyx_stackview *v, struct pyx_code_cache *cache)
{
	v->cache = cache;
}

const struct pyx_rec_native *pyx_stackview__native_after(const struct pyx_rec_pystack *py,
							 const void *next, size_t len)
{
	const struct pyx_rec_native *rec = next;
	/* Everything but the stack bytes, of which only stack_len are written. */
	const size_t fixed = sizeof(*rec) - sizeof(rec->stack);

	if (len < sizeof(rec->hdr))
		return NULL;
	if (rec->hdr.type != PYX_REC_NATIVE || rec->hdr.size > len || rec->hdr.size < fixed ||
	    rec->hdr.size - fixed < rec->stack_len || rec->tid != py->tid)
		return NULL;
	return rec;
}

/*
 * Turn the walker's frames into resolved frames, innermost first: Python
 * frames (incomplete ones dropped, as tracebacks do) and one boundary per
 * C activation edge — a 3.12+ shim frame, or right outside a 3.11 entry
 * frame. Every boundary is kept here (mixing with native frames pairs
 * activations by them); display_python() thins them for Python-only views.
 */
static size_t resolve_frames(struct pyx_stackview *v, const struct pyx_rec_pystack *rec)
{
	struct out_frame *out = v->frames;
	size_t n = 0;
	__u32 i;

	for (i = 0; i < rec->nr_frames && i < PYX_MAX_FRAMES; i++) {
		const struct pyx_pyframe *f = &rec->frames[i];
		struct out_frame *o = &out[n];

		memset(o, 0, sizeof(*o));
		if (f->flags & PYX_FRAME_C_SHIM) {
			o->boundary = true;
			n++;
			continue;
		}
		o->code = f->code;
		if (pyx_code_cache__resolve(v->cache, f->code,
					    (f->flags & PYX_FRAME_GUARDED) ? f->guard
									   : PYX_CODE_NO_GUARD,
					    f->instr, f->flags & PYX_FRAME_GENERATOR, &o->info)) {
			if (!pyx_process__alive(v->proc))
				v->partial = true;
		} else if (o->info.shim) {
			o->boundary = true;
			n++;
			continue;
		} else if (o->info.incomplete) {
			continue;
		} else {
			o->resolved = true;
		}
		n++;
		if (f->flags & PYX_FRAME_ENTRY) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].boundary = true;
			n++;
		}
	}
	return n;
}

/*
 * The Python-only view: a boundary only between two Python frames, once.
 * Compacts @frames in place and returns the new count.
 */
static size_t display_python(struct out_frame *frames, size_t n)
{
	size_t i, kept = 0;

	for (i = 0; i < n; i++) {
		if (frames[i].boundary && (!kept || frames[kept - 1].boundary))
			continue;
		frames[kept++] = frames[i];
	}
	while (kept && frames[kept - 1].boundary)
		kept--;
	return kept;
}

/* Whether a native frame is an activation of the interpreter's eval loop (or its .cold part). */
static bool is_eval_frame(void *cookie, const struct pyx_native_frame *frame)
{
	const struct pyx_python_symbol_info *eval = cookie;
	static const char name[] = "_PyEval_EvalFrameDefault";

	if (frame->symbol && !strncmp(frame->symbol, name, sizeof(name) - 1) &&
	    (frame->symbol[sizeof(name) - 1] == '\0' || frame->symbol[sizeof(name) - 1] == '.'))
		return true;
	return eval->origin && eval->size && frame->lookup_pc >= eval->address &&
	       frame->lookup_pc < eval->address + eval->size;
}

/* Python frames (n of them, resolved) merged with the native frames unwound from @nrec. */
static size_t build_mixed(struct pyx_stackview *v, const struct pyx_rec_pystack *rec,
			  const struct pyx_rec_native *nrec, bool stack_only, size_t n)
{
	size_t n_native = 0, n_mixed, i;
	struct pyx_stack_copy copy;
	struct pyx_regs regs;

	_Static_assert(sizeof(regs) == sizeof(nrec->regs), "pt_regs order");
	memcpy(&regs, nrec->regs, sizeof(regs));
	copy.start = nrec->stack_start;
	copy.data = nrec->stack;
	copy.len = nrec->stack_len;
	v->approximate = nrec->flags & PYX_NATIVE_APPROXIMATE;
	if (pyx_unwinder__unwind(v->unwinder, (pid_t)rec->tid, &regs, &copy, stack_only, v->native,
				 STACKVIEW_MAX_NATIVE, &n_native))
		n_native = 0;
	pyx_debug(v->ctx, "thread %u: ip 0x%llx sp 0x%llx, %u stack bytes%s%s, %zu native frames",
		  rec->tid, (unsigned long long)regs.ip, (unsigned long long)regs.sp,
		  nrec->stack_len, (nrec->flags & PYX_NATIVE_NO_STACK) ? " (copy failed)" : "",
		  (nrec->flags & PYX_NATIVE_APPROXIMATE) ? " (approximate)" : "", n_native);
	for (i = 0; i < n; i++)
		v->boundaries[i] = v->frames[i].boundary;
	/* The cookie is void * for any caller; is_eval_frame() only reads it. */
	n_mixed = pyx_mix_stacks(v->native, n_native, v->boundaries, n,
				 v->layout->walk.frame_model == PYX_FRAMES_OBJECTS, is_eval_frame,
				 (void *)&v->py->symbols[PYX_SYM_EVAL_FRAME], v->mixed,
				 STACKVIEW_MAX_LINES);
	for (i = 0; i < n_mixed; i++) {
		if (v->mixed[i].kind == PYX_MIXED_NATIVE)
			v->disp[i] = (struct disp_frame){.native = &v->native[v->mixed[i].index]};
		else
			v->disp[i] = (struct disp_frame){.py = &v->frames[v->mixed[i].index]};
	}
	return n_mixed;
}

size_t pyx_stackview__build(struct pyx_stackview *v, const struct pyx_rec_pystack *py,
			    const struct pyx_rec_native *native, bool stack_only)
{
	size_t n, i;

	v->rec = py;
	v->approximate = false;
	v->partial = false;
	n = resolve_frames(v, py);
	if (native && v->unwinder) {
		v->n = build_mixed(v, py, native, stack_only, n);
		return v->n;
	}
	n = display_python(v->frames, n);
	for (i = 0; i < n; i++)
		v->disp[i] = (struct disp_frame){.py = &v->frames[i]};
	v->n = n;
	return n;
}

bool pyx_stackview__approximate(const struct pyx_stackview *v)
{
	return v->approximate;
}

bool pyx_stackview__partial(const struct pyx_stackview *v)
{
	return v->partial;
}

static void print_native_text(FILE *out, const char *indent, const struct pyx_native_frame *nf)
{
	fputs(indent, out);
	if (nf->symbol)
		fprintf(out, "%s%s+0x%" PRIx64, nf->inlined ? "(inlined) " : "", nf->symbol,
			nf->symbol_offset);
	else
		fprintf(out, "0x%" PRIx64, nf->pc);
	if (nf->object)
		fprintf(out, " in %s+0x%" PRIx64, pyx_basename(nf->object), nf->object_offset);
	if (nf->file)
		fprintf(out, " at %s:%d", nf->file, nf->line);
	fputc('\n', out);
}

size_t pyx_stackview__keys(const struct pyx_stackview *v, uint64_t *keys, size_t max)
{
	size_t i, k = 0;

	for (i = v->n; i-- > 0 && k < max;) {
		const struct disp_frame *d = &v->disp[i];

		if (d->native)
			keys[k++] = d->native->pc * 2 + d->native->inlined;
		else if (d->py->boundary)
			keys[k++] = 1;
		else
			keys[k++] = d->py->code * 31 + (uint64_t)d->py->info.line;
	}
	return k;
}

void pyx_stackview__print_text(const struct pyx_stackview *v, FILE *out, const char *indent)
{
	pyx_stackview__print_text_from(v, out, indent, 0);
}

void pyx_stackview__print_text_from(const struct pyx_stackview *v, FILE *out, const char *indent,
				    size_t skip)
{
	__u32 status = v->rec ? v->rec->status : PYX_WALK_OK;
	size_t i;

	if (skip > v->n)
		skip = v->n;
	if (status == PYX_WALK_TRUNCATED && !skip)
		fprintf(out, "%s... more frames (only the innermost %d are shown)\n", indent,
			PYX_MAX_FRAMES);
	if (skip)
		fprintf(out, "%s... (%zu outer frames as above)\n", indent, skip);
	for (i = v->n - skip; i-- > 0;) {
		const struct disp_frame *d = &v->disp[i];
		const struct out_frame *f = d->py;

		if (d->native)
			print_native_text(out, indent, d->native);
		else if (f->boundary)
			fprintf(out, "%s[C code]\n", indent);
		else if (!f->resolved)
			fprintf(out, "%s<unreadable code object 0x%" PRIx64 ">\n", indent, f->code);
		else
			fprintf(out, "%sFile \"%s\", line %d, in %s\n", indent, f->info.file,
				f->info.line, f->info.qualname);
	}
	if (v->approximate)
		fprintf(out,
			"%s[native frames approximate: the thread was running on a CPU when read]\n",
			indent);
	if (status == PYX_WALK_TORN)
		fprintf(out,
			"%s[the stack changed while it was read: frames above are complete, others were skipped]\n",
			indent);
	if (!v->n && status == PYX_WALK_OK)
		fprintf(out, "%s(no Python frames)\n", indent);
}

static void print_frame_json(struct pyx_json *json, const struct disp_frame *d, bool approximate)
{
	const struct pyx_native_frame *nf = d->native;
	const struct out_frame *f = d->py;

	pyx_json_object_begin(json);
	if (nf) {
		pyx_json_kv_string(json, "kind", "native");
		pyx_json_kv_string(json, "function", nf->symbol);
		pyx_json_kv_string(json, "object", nf->object);
		pyx_json_kv_hex(json, "offset", nf->object_offset);
		pyx_json_kv_hex(json, "address", nf->pc);
		pyx_json_kv_string(json, "file", nf->file);
		if (nf->line > 0)
			pyx_json_kv_i64(json, "line", nf->line);
		else
			pyx_json_kv_null(json, "line");
		pyx_json_kv_bool(json, "inlined", nf->inlined);
		pyx_json_kv_bool(json, "approximate", approximate);
	} else if (f->boundary) {
		pyx_json_kv_string(json, "kind", "boundary");
	} else {
		pyx_json_kv_string(json, "kind", "python");
		pyx_json_kv_string(json, "function", f->resolved ? f->info.function : NULL);
		pyx_json_kv_string(json, "qualname", f->resolved ? f->info.qualname : NULL);
		pyx_json_kv_string(json, "file", f->resolved ? f->info.file : NULL);
		if (f->resolved && f->info.line > 0)
			pyx_json_kv_i64(json, "line", f->info.line);
		else
			pyx_json_kv_null(json, "line");
		pyx_json_kv_hex(json, "code", f->code);
	}
	pyx_json_object_end(json);
}

void pyx_stackview__print_json(const struct pyx_stackview *v, struct pyx_json *json)
{
	size_t i;

	pyx_json_array_begin(json);
	for (i = 0; i < v->n; i++)
		print_frame_json(json, &v->disp[i], v->approximate);
	pyx_json_array_end(json);
}
