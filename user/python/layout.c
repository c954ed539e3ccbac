// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "elf/dwarf.h"
#include "elf/elf.h"
#include "elf/x86.h"
#include "python/layout.h"

#define N PYX_OFF_NONE

/*
 * Per-minor layouts, x86-64, GIL builds. Measured with gdb `ptype/o` on the
 * rig's interpreters: pyenv 3.8.18-3.13.0, Debian 3.9.2, 3.11.2, 3.13.5,
 * 3.14.10 and 3.15.2, each release and debug (Py_DEBUG) build: the debug
 * builds agree on every field here. For 3.13+ they are the fallback and
 * the cross-check of the target's _Py_DebugOffsets, which lacks a few of
 * them (_co_firsttraceable, owner values, tag bits, 3.14's holds_gil).
 */
struct minor_layout {
	unsigned int minor;
	struct pyx_py_layout walk;
	struct pyx_code_layout code;
	/*
	 * The gilstate's thread-state slot: the Py_tss_t autoTSSkey in
	 * _PyRuntime ({int _is_initialized; pthread_key_t _key}) up to 3.14,
	 * or an accessor that loads the _Py_tss_gilstate TLS variable (3.15).
	 */
	unsigned int autotss;
	const char *tls_accessor;
};

#define CODE_FIELDS_38(linefmt, linetable)                                                 \
	.lines = linefmt, .co_name = 112, .co_qualname = N, .co_filename = 104,             \
	.co_firstlineno = 40, .co_linetable = linetable, .co_code_adaptive = N,             \
	.co_firsttraceable = N, .bytes_size = 16, .bytes_data = 32, .str_length = 16,       \
	.str_state = 32, .str_ascii_size = 48, .str_compact_size = 72

#define CODE_FIELDS_311(firstlineno, adaptive, firsttraceable, ascii, compact)              \
	.lines = PYX_LINES_LOCATIONS, .instr_model = PYX_INSTR_POINTER, .co_name = 120,      \
	.co_qualname = 128, .co_filename = 112, .co_firstlineno = firstlineno,              \
	.co_linetable = 136, .co_code_adaptive = adaptive, .co_firsttraceable = firsttraceable, \
	.bytes_size = 16, .bytes_data = 32, .str_length = 16, .str_state = 32,              \
	.str_ascii_size = ascii, .str_compact_size = compact

/* ≤3.10: PyFrameObject chain from tstate->frame. */
#define FRAME_OBJECTS(lasti, model)                                                         \
	.frame_model = PYX_FRAMES_OBJECTS, .instr_model = model, .ts_frame = 24,            \
	.cframe_current_frame = N, .ts_base_frame = N, .frame_previous = 24,                \
	.frame_code = 32, .frame_instr = lasti, .frame_owner = N, .frame_is_entry = N,      \
	.owner_boundary = N, .owner_generator = N, .code_firstlineno = 40,                  \
	.code_tag_mask = ~0ull, .ts_interp = 16

static const struct minor_layout minor_layouts[] = {
	{
		.minor = 8,
		.autotss = 1392,
		.walk = {
			FRAME_OBJECTS(104, PYX_INSTR_LASTI_BYTES),
			.gil_model = PYX_GIL_RUNTIME_CURRENT,
			.rt_interpreters_head = 32, .rt_tstate_current = 1368,
			.interp_next = 0, .interp_id = 16, .interp_threads_head = 8,
			.interp_gil_locked = N, .interp_gil_holder = N,
			.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = N,
			.ts_holds_gil = N, .ts_exception = 88,
		},
		.code = { CODE_FIELDS_38(PYX_LINES_LNOTAB, 120), .instr_model = PYX_INSTR_LASTI_BYTES },
	},
	{
		.minor = 9,
		.autotss = 584,
		.walk = {
			FRAME_OBJECTS(104, PYX_INSTR_LASTI_BYTES),
			.gil_model = PYX_GIL_RUNTIME_CURRENT,
			.rt_interpreters_head = 32, .rt_tstate_current = 568,
			.interp_next = 0, .interp_id = 24, .interp_threads_head = 8,
			.interp_gil_locked = N, .interp_gil_holder = N,
			.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = N,
			.ts_holds_gil = N, .ts_exception = 88,
		},
		.code = { CODE_FIELDS_38(PYX_LINES_LNOTAB, 120), .instr_model = PYX_INSTR_LASTI_BYTES },
	},
	{
		.minor = 10,
		.autotss = 584,
		.walk = {
			FRAME_OBJECTS(96, PYX_INSTR_LASTI_UNITS),
			.gil_model = PYX_GIL_RUNTIME_CURRENT,
			.rt_interpreters_head = 32, .rt_tstate_current = 568,
			.interp_next = 0, .interp_id = 24, .interp_threads_head = 8,
			.interp_gil_locked = N, .interp_gil_holder = N,
			.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = N,
			.ts_holds_gil = N, .ts_exception = 88,
		},
		.code = { CODE_FIELDS_38(PYX_LINES_LINETABLE_310, 120), .instr_model = PYX_INSTR_LASTI_UNITS },
	},
	{
		.minor = 11,
		.autotss = 592,
		.walk = {
			.frame_model = PYX_FRAMES_INTERPRETER, .instr_model = PYX_INSTR_POINTER,
			.gil_model = PYX_GIL_RUNTIME_CURRENT, .code_tag_mask = ~0ull,
			.rt_interpreters_head = 40, .rt_tstate_current = 576,
			.interp_next = 0, .interp_id = 48, .interp_threads_head = 16,
			.interp_gil_locked = N, .interp_gil_holder = N,
			.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
			.ts_holds_gil = N, .ts_exception = 96, .ts_frame = 56, .cframe_current_frame = 8,
			.ts_base_frame = N, .frame_previous = 48, .frame_code = 32,
			.frame_instr = 56, .frame_owner = 69, .frame_is_entry = 68,
			.owner_boundary = N, .owner_generator = 1, .code_firstlineno = 72,
		},
		.code = { CODE_FIELDS_311(72, 184, 168, 48, 72) },
	},
	{
		.minor = 12,
		.autotss = 1544,
		.walk = {
			.frame_model = PYX_FRAMES_INTERPRETER, .instr_model = PYX_INSTR_POINTER,
			.gil_model = PYX_GIL_INTERP_HOLDER, .code_tag_mask = ~0ull,
			.rt_interpreters_head = 40, .rt_tstate_current = N,
			.interp_next = 0, .interp_id = 8, .interp_threads_head = 72,
			.interp_gil_locked = 1056, .interp_gil_holder = 1048,
			.ts_next = 8, .ts_interp = 16, .ts_thread_id = 136, .ts_native_thread_id = 144,
			.ts_holds_gil = N, .ts_exception = 96, .ts_frame = 56, .cframe_current_frame = 0,
			.ts_base_frame = N, .frame_previous = 8, .frame_code = 0,
			.frame_instr = 56, .frame_owner = 70, .frame_is_entry = N,
			.owner_boundary = 3, .owner_generator = 1, .code_firstlineno = 68,
		},
		.code = { CODE_FIELDS_311(68, 192, 176, 40, 56) },
	},
	{
		.minor = 13,
		.autotss = 2160,
		.walk = {
			.frame_model = PYX_FRAMES_INTERPRETER, .instr_model = PYX_INSTR_POINTER,
			.gil_model = PYX_GIL_INTERP_HOLDER, .code_tag_mask = ~0ull,
			.rt_interpreters_head = 632, .rt_tstate_current = N,
			.interp_next = 7264, .interp_id = 7272, .interp_threads_head = 7344,
			.interp_gil_locked = 7768, .interp_gil_holder = 7760,
			.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
			.ts_holds_gil = N, .ts_exception = 112, .ts_frame = 72, .cframe_current_frame = N,
			.ts_base_frame = N, .frame_previous = 8, .frame_code = 0,
			.frame_instr = 56, .frame_owner = 70, .frame_is_entry = N,
			.owner_boundary = 3, .owner_generator = 1, .code_firstlineno = 68,
		},
		.code = { CODE_FIELDS_311(68, 200, 184, 40, 56) },
	},
	{
		/* f_executable is a tagged _PyStackRef from 3.14: the low two bits are flags. */
		.minor = 14,
		.autotss = 2336,
		.walk = {
			.frame_model = PYX_FRAMES_INTERPRETER, .instr_model = PYX_INSTR_POINTER,
			.gil_model = PYX_GIL_TSTATE_FLAG, .code_tag_mask = ~3ull,
			.rt_interpreters_head = 808, .rt_tstate_current = N,
			.interp_next = 7272, .interp_id = 7280, .interp_threads_head = 7344,
			.interp_gil_locked = 7800, .interp_gil_holder = 7792,
			.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
			.ts_holds_gil = 36, .ts_exception = 112, .ts_frame = 72, .cframe_current_frame = N,
			.ts_base_frame = N, .frame_previous = 8, .frame_code = 0,
			.frame_instr = 56, .frame_owner = 74, .frame_is_entry = N,
			.owner_boundary = 3, .owner_generator = 1, .code_firstlineno = 68,
		},
		.code = { CODE_FIELDS_311(68, 208, 192, 40, 56) },
	},
	{
		/* 3.15: the chain ends at tstate->base_frame, a sentinel, not at NULL. */
		.minor = 15,
		.autotss = N,
		.tls_accessor = "PyGILState_GetThisThreadState",
		.walk = {
			.frame_model = PYX_FRAMES_INTERPRETER, .instr_model = PYX_INSTR_POINTER,
			.gil_model = PYX_GIL_TSTATE_FLAG, .code_tag_mask = ~3ull,
			.rt_interpreters_head = 936, .rt_tstate_current = N,
			.interp_next = 7264, .interp_id = 7272, .interp_threads_head = 7336,
			.interp_gil_locked = 7752, .interp_gil_holder = 7744,
			.ts_next = 8, .ts_interp = 16, .ts_thread_id = 176, .ts_native_thread_id = 184,
			.ts_holds_gil = 36, .ts_exception = 136, .ts_frame = 72, .cframe_current_frame = N,
			.ts_base_frame = 80, .frame_previous = 8, .frame_code = 0,
			.frame_instr = 56, .frame_owner = 74, .frame_is_entry = N,
			.owner_boundary = 3, .owner_generator = 1, .code_firstlineno = 68,
		},
		.code = { CODE_FIELDS_311(68, 208, 192, 40, 56) },
	},
};

/*
 * Where each field sits inside _Py_DebugOffsets itself, per minor (the
 * struct grows groups and fields every release). Measured with gdb on
 * Debian's 3.13.5, 3.14.10 and 3.15.2 debug files and pyenv 3.13.0.
 */
struct debug_offsets_map {
	unsigned int minor;
	unsigned int size;
	unsigned int interpreters_head;
	unsigned int interp_id, interp_next, interp_threads_head;
	unsigned int interp_gil_locked, interp_gil_holder;
	unsigned int ts_next, ts_current_frame, ts_base_frame, ts_thread_id, ts_native_thread_id;
	unsigned int ts_holds_gil;
	unsigned int frame_previous, frame_executable, frame_instr_ptr, frame_owner;
	unsigned int code_filename, code_name, code_qualname, code_linetable, code_firstlineno;
	unsigned int code_adaptive;
	unsigned int bytes_size, bytes_data;
	unsigned int str_state, str_length, str_ascii_size, str_compact_size;
};

#define M 0 /* not in this minor's _Py_DebugOffsets: keep the table's value */

static const struct debug_offsets_map debug_offsets_maps[] = {
	{ 13, 584, 40, 56, 64, 72, 136, 144, 168, 184, M, 192, 200, M,
	  232, 240, 248, 264, 280, 288, 296, 304, 312, 344, 520, 528, 544, 552, 560, M },
	{ 14, 760, 40, 56, 64, 72, 144, 152, 192, 208, M, 216, 224, M,
	  256, 264, 272, 288, 320, 328, 336, 344, 352, 384, 600, 608, 624, 632, 640, M },
	{ 15, 888, 40, 56, 64, 72, 144, 152, 192, 208, 216, 240, 248, 272,
	  320, 328, 336, 352, 384, 392, 400, 408, 416, 448, 696, 704, 720, 728, 736, 744 },
};

#undef M

static const struct minor_layout *find_minor(unsigned int minor)
{
	size_t i;

	for (i = 0; i < sizeof(minor_layouts) / sizeof(minor_layouts[0]); i++)
		if (minor_layouts[i].minor == minor)
			return &minor_layouts[i];
	return NULL;
}

static const struct debug_offsets_map *find_map(unsigned int minor)
{
	size_t i;

	for (i = 0; i < sizeof(debug_offsets_maps) / sizeof(debug_offsets_maps[0]); i++)
		if (debug_offsets_maps[i].minor == minor)
			return &debug_offsets_maps[i];
	return NULL;
}

/*
 * Take one value from the blob into @dst. A value must be a plausible
 * offset inside its struct (they are all well under 64 KiB); anything else
 * means the blob is not what we think it is.
 */
static int take(const uint8_t *blob, unsigned int pos, __u32 *dst, char *differs, size_t size)
{
	uint64_t value;

	if (!pos)
		return 0;
	memcpy(&value, blob + pos, sizeof(value));
	if (value >= 65536)
		return -EINVAL;
	if (*dst != PYX_OFF_NONE && *dst != (__u32)value && !differs[0])
		snprintf(differs, size, "_Py_DebugOffsets field at %u says %llu, table %u", pos,
			 (unsigned long long)value, *dst);
	*dst = (__u32)value;
	return 0;
}

static int apply_debug_offsets(struct pyx_python_layout *out, const uint8_t *blob,
			       const struct debug_offsets_map *m, char *differs, size_t size)
{
	struct pyx_py_layout *w = &out->walk;
	struct pyx_code_layout *c = &out->code;
	const struct {
		unsigned int pos;
		__u32 *dst;
	} fields[] = {
		{ m->interpreters_head, &w->rt_interpreters_head },
		{ m->interp_id, &w->interp_id },
		{ m->interp_next, &w->interp_next },
		{ m->interp_threads_head, &w->interp_threads_head },
		{ m->interp_gil_locked, &w->interp_gil_locked },
		{ m->interp_gil_holder, &w->interp_gil_holder },
		{ m->ts_next, &w->ts_next },
		{ m->ts_current_frame, &w->ts_frame },
		{ m->ts_base_frame, &w->ts_base_frame },
		{ m->ts_thread_id, &w->ts_thread_id },
		{ m->ts_native_thread_id, &w->ts_native_thread_id },
		{ m->ts_holds_gil, &w->ts_holds_gil },
		{ m->frame_previous, &w->frame_previous },
		{ m->frame_executable, &w->frame_code },
		{ m->frame_instr_ptr, &w->frame_instr },
		{ m->frame_owner, &w->frame_owner },
		{ m->code_firstlineno, &w->code_firstlineno },
		{ m->code_filename, &c->co_filename },
		{ m->code_name, &c->co_name },
		{ m->code_qualname, &c->co_qualname },
		{ m->code_linetable, &c->co_linetable },
		{ m->code_firstlineno, &c->co_firstlineno },
		{ m->code_adaptive, &c->co_code_adaptive },
		{ m->bytes_size, &c->bytes_size },
		{ m->bytes_data, &c->bytes_data },
		{ m->str_state, &c->str_state },
		{ m->str_length, &c->str_length },
		{ m->str_ascii_size, &c->str_ascii_size },
		{ m->str_compact_size, &c->str_compact_size },
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (take(blob, fields[i].pos, fields[i].dst, differs, size))
			return -EINVAL;
	return 0;
}

/* The window read per frame: from the first to the end of the last field the walker extracts. */
static void size_frame_read(struct pyx_py_layout *w)
{
	__u32 start = PYX_OFF_NONE, end = 0, fields[][2] = {
		{ w->frame_previous, 8 }, { w->frame_code, 8 },
		{ w->frame_instr, w->instr_model == PYX_INSTR_POINTER ? 8 : 4 },
		{ w->frame_owner, 1 }, { w->frame_is_entry, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i][0] == PYX_OFF_NONE)
			continue;
		if (fields[i][0] + fields[i][1] > end)
			end = fields[i][0] + fields[i][1];
		if (fields[i][0] < start)
			start = fields[i][0];
	}
	w->frame_read_offset = start;
	w->frame_read_size = end - start;
}

/*
 * One field to compare with DWARF: type, member path (NULL for a sizeof;
 * "a|b" tries a, then b, for members renamed between versions), our value.
 */
struct dwarf_check {
	const char *what;
	const char *type;
	const char *path;
	__u32 value;
};

static int member_offset_any(struct pyx_dwarf *dw, const char *type, const char *paths,
			     uint64_t *offset)
{
	char path[64];
	const char *next;
	int err = -ENOENT;

	for (; paths; paths = next ? next + 1 : NULL) {
		next = strchr(paths, '|');
		snprintf(path, sizeof(path), "%.*s", next ? (int)(next - paths) : (int)strlen(paths),
			 paths);
		err = pyx_dwarf__member_offset(dw, type, path, offset);
		if (err != -ENOENT)
			return err;
	}
	return err;
}

/*
 * Compare the layout with the interpreter's own DWARF, when it has any: a
 * table or a _Py_DebugOffsets map that drifted from the real build shows
 * up here instead of as wrong frames. Member names follow the layout's
 * model (which frame chain it walks), so this needs no version check.
 */
static void crosscheck_dwarf(struct pyx_python *py, struct pyx_python_layout *out)
{
	const struct pyx_py_layout *w = &out->walk;
	const struct pyx_code_layout *c = &out->code;
	bool objects = w->frame_model == PYX_FRAMES_OBJECTS;
	bool cframe = w->cframe_current_frame != PYX_OFF_NONE;
	const char *frame_type = objects ? "PyFrameObject" : "_PyInterpreterFrame";
	const struct dwarf_check checks[] = {
		{ "interpreters head", "_PyRuntimeState", "interpreters.head", w->rt_interpreters_head },
		{ "interpreter next", "PyInterpreterState", "next", w->interp_next },
		{ "interpreter id", "PyInterpreterState", "id", w->interp_id },
		{ "thread list", "PyInterpreterState", objects ? "tstate_head" : "threads.head",
		  w->interp_threads_head },
		{ "thread next", "PyThreadState", "next", w->ts_next },
		{ "thread id", "PyThreadState", "thread_id", w->ts_thread_id },
		{ "thread exception", "PyThreadState", "current_exception|curexc_type",
		  w->ts_exception },
		{ "thread frame", "PyThreadState",
		  objects ? "frame" : cframe ? "cframe" : "current_frame", w->ts_frame },
		{ "cframe frame", "_PyCFrame", cframe ? "current_frame" : NULL,
		  w->cframe_current_frame },
		{ "frame previous", frame_type, objects ? "f_back" : "previous", w->frame_previous },
		{ "frame code", frame_type, objects ? "f_code" : "f_executable|f_code", w->frame_code },
		{ "frame owner", frame_type, w->frame_owner != PYX_OFF_NONE ? "owner" : NULL,
		  w->frame_owner },
		{ "code name", "PyCodeObject", "co_name", c->co_name },
		{ "code file", "PyCodeObject", "co_filename", c->co_filename },
		{ "code first line", "PyCodeObject", "co_firstlineno", c->co_firstlineno },
		{ "code bytecode", "PyCodeObject",
		  c->co_code_adaptive != PYX_OFF_NONE ? "co_code_adaptive" : NULL, c->co_code_adaptive },
		{ "ASCII header", "PyASCIIObject", NULL, c->str_ascii_size },
		{ "compact header", "PyCompactUnicodeObject", NULL, c->str_compact_size },
	};
	struct pyx_dwarf *dw;
	unsigned int agreed = 0;
	size_t i;
	int fd;

	fd = py->dwarf.source == PYX_DWARF_EMBEDDED ? py->interp->fd : py->dwarf.fd;
	if (py->dwarf.source == PYX_DWARF_NONE || fd < 0)
		return;
	dw = pyx_dwarf__open_fd(fd, -1);
	if (!dw)
		return;
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const struct dwarf_check *chk = &checks[i];
		uint64_t found;
		int err;

		if (chk->value == PYX_OFF_NONE || (!chk->path && chk->type == frame_type))
			continue;
		if (chk->path)
			err = member_offset_any(dw, chk->type, chk->path, &found);
		else
			err = pyx_dwarf__type_size(dw, chk->type, &found);
		if (err == -ENOENT && !chk->path)
			continue;
		if (err) {
			snprintf(out->crosscheck, sizeof(out->crosscheck),
				 "%s: %s.%s not found in DWARF", chk->what, chk->type,
				 chk->path ? chk->path : "sizeof");
			goto out_close;
		}
		if (found != chk->value) {
			snprintf(out->crosscheck, sizeof(out->crosscheck),
				 "%s: DWARF says %llu, %s says %u", chk->what,
				 (unsigned long long)found, out->source, chk->value);
			goto out_close;
		}
		agreed++;
	}
	snprintf(out->crosscheck, sizeof(out->crosscheck), "ok (%u fields agree)", agreed);
out_close:
	pyx_dwarf__close(dw);
}

/*
 * The DWARF cross-check once per interpreter build (build-id): reading the
 * debug file's compressed DWARF is most of a process's inspection, and
 * process discovery inspects every process of a build alike.
 */
#define CROSSCHECK_CACHE 16

static void crosscheck_cached(struct pyx_python *py, struct pyx_python_layout *out)
{
	static struct {
		char build_id[sizeof(py->build_id)];
		const char *source;
		char crosscheck[sizeof(out->crosscheck)];
	} cache[CROSSCHECK_CACHE];
	static unsigned int next;
	unsigned int i;

	if (!py->build_id[0]) {
		crosscheck_dwarf(py, out);
		return;
	}
	for (i = 0; i < CROSSCHECK_CACHE; i++)
		if (cache[i].source == out->source && !strcmp(cache[i].build_id, py->build_id)) {
			memcpy(out->crosscheck, cache[i].crosscheck, sizeof(out->crosscheck));
			return;
		}
	crosscheck_dwarf(py, out);
	i = next++ % CROSSCHECK_CACHE;
	memcpy(cache[i].build_id, py->build_id, sizeof(cache[i].build_id));
	cache[i].source = out->source;
	memcpy(cache[i].crosscheck, out->crosscheck, sizeof(cache[i].crosscheck));
}

/* The first bytes of function @name in @obj, read from the file (code is file-backed). */
static int read_function(struct pyx_process *proc, struct pyx_object *obj, const char *name,
			 uint8_t *code, size_t len, uint64_t *vaddr)
{
	struct pyx_elf *elf = pyx_process__object_elf(proc, obj);
	struct pyx_elf_sym sym;

	if (!elf || pyx_elf__find_symbol(elf, name, &sym) || sym.type != 2 /* STT_FUNC */)
		return -ENOENT;
	if (sym.size && sym.size < len)
		len = sym.size;
	*vaddr = sym.value;
	return pyx_elf__read_vaddr(elf, sym.value, code, len);
}

/*
 * glibc's pthread TSD layout, from the target's own pthread_getspecific():
 * libpthread's before glibc 2.34, libc's after (both may define it; the
 * libpthread one is the real one where it exists).
 */
static int find_tsd_layout(struct pyx_process *proc, struct pyx_x86_tsd *tsd)
{
	/* "libc.so.6" (2.34+) or "libc-2.31.so"; never "libcap.so". */
	static const char *const libs[] = { "libpthread", "libc" };
	uint8_t code[64];
	uint64_t vaddr;
	size_t i, j;

	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		for (j = 0; j < proc->nr_objects; j++) {
			struct pyx_object *obj = &proc->objects[j];

			const char *base = pyx_basename(obj->path);
			size_t n = strlen(libs[i]);

			if (strncmp(base, libs[i], n) || (base[n] != '.' && base[n] != '-') ||
			    read_function(proc, obj, "pthread_getspecific", code, sizeof(code), &vaddr))
				continue;
			if (!pyx_x86_tsd_access(code, sizeof(code), vaddr, tsd))
				return 0;
		}
	}
	return -ENOENT;
}

/*
 * Where the thread pointer leads to each thread's PyThreadState in O(1)
 * (see struct pyx_py_layout). Optional: without it the walker uses the
 * thread lists, so every failure here only costs speed.
 */
static void setup_fast_tstate(const struct minor_layout *table, struct pyx_python *py,
			      struct pyx_process *proc, struct pyx_python_layout *out)
{
	struct pyx_py_layout *w = &out->walk;
	struct pyx_x86_tsd tsd;
	int32_t tss[2]; /* Py_tss_t: _is_initialized, _key */
	uint8_t code[32];
	uint64_t vaddr;
	int64_t disp;

	if (table->autotss != PYX_OFF_NONE) {
		if (pyx_process__read(proc, w->runtime + table->autotss, tss, sizeof(tss)) ||
		    tss[0] != 1 || tss[1] < 0 || tss[1] >= 32 /* glibc's first-level block */ ||
		    find_tsd_layout(proc, &tsd))
			return;
		w->tstate_fs_offset = ((int64_t)tss[1] + tsd.add) * (1 << tsd.shift) + tsd.load;
		w->tstate_fast = 1;
		out->fast_tstate = "gilstate TSS slot";
		return;
	}
	/* Local-exec TLS only: a shared libpython reaches its TLS through __tls_get_addr. */
	if (table->tls_accessor && !py->shared &&
	    !read_function(proc, py->interp, table->tls_accessor, code, sizeof(code), &vaddr) &&
	    !pyx_x86_fs_load(code, sizeof(code), vaddr, &disp) && disp < 0) {
		w->tstate_fs_offset = disp;
		w->tstate_fast = 1;
		out->fast_tstate = "gilstate TLS variable";
	}
}

int pyx_python__layout(struct pyx_python *py, struct pyx_process *proc,
		       struct pyx_python_layout *out, char *why, size_t why_size)
{
	const struct minor_layout *table = find_minor(py->minor);
	const struct debug_offsets_map *map;
	uint8_t blob[1024];
	char differs[160] = "";

	memset(out, 0, sizeof(*out));
	if (py->free_threaded) {
		snprintf(why, why_size,
			 "Python %s is a free-threaded build, which this pyxtrace cannot walk yet",
			 py->version);
		return -EPROTONOSUPPORT;
	}
	if (!table) {
		snprintf(why, why_size,
			 "no frame layout for Python %s (pyxtrace knows CPython 3.%d-3.%d)",
			 py->version, PYX_PYTHON_MIN_MINOR, PYX_PYTHON_MAX_MINOR);
		return -EPROTONOSUPPORT;
	}
	if (!py->symbols[PYX_SYM_RUNTIME].origin) {
		snprintf(why, why_size, "%s has no _PyRuntime symbol", py->interp->path);
		return -ENOENT;
	}
	out->walk = table->walk;
	out->code = table->code;
	out->walk.runtime = py->symbols[PYX_SYM_RUNTIME].address;
	out->source = "table";

	map = find_map(py->minor);
	if (map && py->debug_offsets_present) {
		if (map->size > sizeof(blob) ||
		    pyx_process__read(proc, out->walk.runtime, blob, map->size)) {
			snprintf(why, why_size, "cannot read _Py_DebugOffsets of process %d",
				 proc->pid);
			return -ESRCH;
		}
		if (memcmp(blob, "xdebugpy", 8) || apply_debug_offsets(out, blob, map, differs,
									 sizeof(differs))) {
			snprintf(why, why_size,
				 "_Py_DebugOffsets of process %d is not the %u.%u layout pyxtrace knows",
				 proc->pid, py->major, py->minor);
			return -EPROTO;
		}
		out->source = "_Py_DebugOffsets";
		/* The table and the target disagreeing is worth knowing; the target wins. */
		if (differs[0])
			snprintf(out->crosscheck, sizeof(out->crosscheck), "%s", differs);
	}
	size_frame_read(&out->walk);
	setup_fast_tstate(table, py, proc, out);
	if (!out->crosscheck[0])
		crosscheck_cached(py, out);
	py->offsets_source = out->source;
	return 0;
}
