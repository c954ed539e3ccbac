// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "output/callers.h"
#include "output/json.h"
#include "target/process.h"

struct pyx_callers {
	struct pyx_code_cache *cache;
	unsigned int depth;
	void *sites; /* tsearch tree of struct pyx_caller_frame, by (code, instr) */
	struct pyx_caller_row *rows;
	size_t nr_rows;
	size_t cap_rows;
};

size_t pyx_callers_key_size(unsigned int depth)
{
	struct pyx_centry_caller_key key;

	return offsetof(struct pyx_centry_caller_key, frames) + depth * sizeof(key.frames[0]);
}

struct pyx_callers *pyx_callers__new(struct pyx_code_cache *cache, unsigned int depth)
{
	struct pyx_callers *c;

	if (!cache || !depth || depth > PYX_CENTRY_CALLERS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cache = cache;
	c->depth = depth;
	return c;
}

static void free_site(void *site)
{
	free(site);
}

void pyx_callers__free(struct pyx_callers *c)
{
	if (!c)
		return;
	tdestroy(c->sites, free_site);
	free(c->rows);
	free(c);
}

static int site_cmp(const void *a, const void *b)
{
	const struct pyx_caller_frame *x = a, *y = b;

	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	if (x->instr != y->instr)
		return x->instr < y->instr ? -1 : 1;
	return 0;
}

/* The site of (@code, @instr), resolved if it can be now; NULL when out of memory. */
static const struct pyx_caller_frame *site_of(struct pyx_callers *c, uint64_t code, uint64_t instr)
{
	struct pyx_caller_frame want = {.code = code, .instr = instr}, *site, **found;

	found = tfind(&want, &c->sites, site_cmp);
	if (found) {
		site = *found;
	} else {
		site = calloc(1, sizeof(*site));
		if (!site)
			return NULL;
		*site = want;
		found = tsearch(site, &c->sites, site_cmp);
		if (!found || *found != site) {
			free(site);
			return NULL;
		}
	}
	/*
	 * A frame calling C code is executing, never incomplete: resolve it as a
	 * generator's frame is (no incomplete check). Unreadable now (the process
	 * exited): retried at the next read, named by address meanwhile.
	 */
	if (!site->resolved && code &&
	    !pyx_code_cache__resolve(c->cache, code, PYX_CODE_NO_GUARD, instr, true, &site->info) &&
	    !site->info.shim)
		site->resolved = true;
	return site;
}

void pyx_callers__learn(struct pyx_callers *c, const struct pyx_centry_caller_key *key)
{
	uint32_t i;

	for (i = 0; i < key->nr_frames && i < c->depth; i++)
		site_of(c, key->frames[i].code, key->frames[i].instr);
}

static int str_cmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* Same caller: equal resolved frames (function, file, line), or equal addresses. */
static int frame_identity_cmp(const struct pyx_caller_frame *x, const struct pyx_caller_frame *y)
{
	int d;

	if (x->resolved != y->resolved)
		return x->resolved ? -1 : 1;
	if (!x->resolved)
		return site_cmp(x, y);
	d = str_cmp(x->info.file, y->info.file);
	if (!d)
		d = str_cmp(x->info.qualname, y->info.qualname);
	if (!d && x->info.line != y->info.line)
		d = x->info.line < y->info.line ? -1 : 1;
	return d;
}

static int row_identity_cmp(const void *a, const void *b)
{
	const struct pyx_caller_row *x = a, *y = b;
	uint32_t i;
	int d;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->nr_frames != y->nr_frames)
		return x->nr_frames < y->nr_frames ? -1 : 1;
	for (i = 0; i < x->nr_frames; i++) {
		d = frame_identity_cmp(x->frames[i], y->frames[i]);
		if (d)
			return d;
	}
	return 0;
}

static int row_count_cmp(const void *a, const void *b)
{
	const struct pyx_caller_row *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return row_identity_cmp(a, b);
}

static int add_row(struct pyx_callers *c, const struct pyx_centry_caller_key *key, uint64_t count)
{
	struct pyx_caller_row *row;
	uint32_t i;

	if (c->nr_rows == c->cap_rows) {
		size_t cap = c->cap_rows ? c->cap_rows * 2 : 64;
		void *rows = reallocarray(c->rows, cap, sizeof(*c->rows));

		if (!rows)
			return -ENOMEM;
		c->rows = rows;
		c->cap_rows = cap;
	}
	row = &c->rows[c->nr_rows];
	memset(row, 0, sizeof(*row));
	row->index = key->index;
	row->count = count;
	for (i = 0; i < key->nr_frames && i < c->depth; i++) {
		row->frames[i] = site_of(c, key->frames[i].code, key->frames[i].instr);
		if (!row->frames[i])
			return -ENOMEM;
	}
	row->nr_frames = i;
	c->nr_rows++;
	return 0;
}

int pyx_callers__read(struct pyx_callers *c, int map_fd)
{
	struct pyx_centry_caller_key key = {}, next = {};
	size_t i, kept;
	void *prev = NULL;
	uint64_t count;
	int err;

	c->nr_rows = 0;
	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(map_fd, &key, &count))
			continue; /* deleted meanwhile: never, the kernel only adds */
		err = add_row(c, &key, count);
		if (err)
			return err;
	}
	/* Merge rows whose frames resolve alike, then order them by count. */
	qsort(c->rows, c->nr_rows, sizeof(*c->rows), row_identity_cmp);
	for (i = 0, kept = 0; i < c->nr_rows; i++) {
		if (kept && !row_identity_cmp(&c->rows[kept - 1], &c->rows[i]))
			c->rows[kept - 1].count += c->rows[i].count;
		else
			c->rows[kept++] = c->rows[i];
	}
	c->nr_rows = kept;
	qsort(c->rows, c->nr_rows, sizeof(*c->rows), row_count_cmp);
	return 0;
}

size_t pyx_callers__of(const struct pyx_callers *c, uint32_t index,
		       const struct pyx_caller_row **rows)
{
	size_t lo = 0, hi = c->nr_rows, end;

	/* Rows are sorted by index: the first one of @index, then its run. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->rows[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < c->nr_rows && c->rows[end].index == index; end++)
		;
	*rows = c->rows + lo;
	return end - lo;
}

void pyx_callers_print_text(FILE *out, const struct pyx_caller_row *row)
{
	uint32_t i;

	if (!row->nr_frames) {
		fputs("(no Python frame)", out);
		return;
	}
	for (i = 0; i < row->nr_frames; i++) {
		const struct pyx_caller_frame *f = row->frames[i];

		if (i)
			fputs(" <- ", out);
		if (f->resolved)
			fprintf(out, "%s (%s:%d)", f->info.qualname, pyx_basename(f->info.file),
				f->info.line);
		else
			fprintf(out, "<code object 0x%llx>", (unsigned long long)f->code);
	}
}

static void frame_fields_json(struct pyx_json *json, const struct pyx_caller_frame *f)
{
	pyx_json_kv_string(json, "function", f && f->resolved ? f->info.function : NULL);
	pyx_json_kv_string(json, "qualname", f && f->resolved ? f->info.qualname : NULL);
	pyx_json_kv_string(json, "file", f && f->resolved ? f->info.file : NULL);
	if (f && f->resolved && f->info.line > 0)
		pyx_json_kv_i64(json, "line", f->info.line);
	else
		pyx_json_kv_null(json, "line");
}

void pyx_callers_print_json(struct pyx_json *json, const struct pyx_caller_row *rows, size_t n)
{
	size_t i;
	uint32_t k;

	pyx_json_array_begin(json);
	for (i = 0; i < n; i++) {
		pyx_json_object_begin(json);
		/* The innermost frame flat, for the common --callers 1. */
		frame_fields_json(json, rows[i].nr_frames ? rows[i].frames[0] : NULL);
		pyx_json_kv_u64(json, "count", rows[i].count);
		pyx_json_key(json, "frames");
		pyx_json_array_begin(json);
		for (k = 0; k < rows[i].nr_frames; k++) {
			pyx_json_object_begin(json);
			frame_fields_json(json, rows[i].frames[k]);
			pyx_json_kv_hex(json, "code", rows[i].frames[k]->code);
			pyx_json_object_end(json);
		}
		pyx_json_array_end(json);
		pyx_json_object_end(json);
	}
	pyx_json_array_end(json);
}
