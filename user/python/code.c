// SPDX-License-Identifier: GPL-2.0-only
/*
 * Code objects of a live interpreter, read from outside: names, file and
 * the line of an instruction. Everything read is untrusted (the target
 * runs on while we read, and a stale address may hold anything): every
 * length is bounded and every table validated before use, so bad data
 * turns into an error, never a crash or a runaway read.
 *
 * Line tables are decoded from their format descriptions (co_lnotab in
 * Python 3.8's Objects/lnotab_notes.txt, the 3.10 co_linetable notes, and
 * Objects/locations.md for 3.11+); tests/unit/test_linetable.c holds the
 * decoders to the interpreters' own answers.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include <pyxtrace/pywalk.h>

#include "python/code.h"

/* Bounds on what one code object may make us read and keep. */
#define NAME_MAX_CHARS	1024	   /* co_name, co_qualname */
#define FILE_MAX_CHARS	4096	   /* co_filename */
#define TABLE_MAX_BYTES (1u << 20) /* co_lnotab / co_linetable */
#define CODE_HDR_MAX	1024	   /* every field code.c reads lies below this offset */
#define PEEK_BYTES	256	   /* read speculatively with a header: most objects fit */
#define MAX_ENTRIES	(1u << 16) /* cached code objects before the cache starts over */

/* ---- line tables ---- */

struct lt_iter {
	enum pyx_linetable_format format;
	const uint8_t *p, *end;
	uint64_t addr;	/* byte offset where the next range starts */
	int64_t line;	/* running line */
	bool tail_done; /* co_lnotab: the open-ended last range was produced */
};

struct lt_range {
	uint64_t start, stop; /* [start, stop) in bytes; stop UINT64_MAX: open-ended */
	int64_t line;
	bool has_line;
};

static int lt_init(struct lt_iter *it, enum pyx_linetable_format format, const uint8_t *table,
		   size_t len, int firstlineno)
{
	static const uint8_t empty[1];

	if (format != PYX_LINES_LNOTAB && format != PYX_LINES_LINETABLE_310 &&
	    format != PYX_LINES_LOCATIONS)
		return -EINVAL;
	if (!table && len)
		return -EINVAL;
	/* NULL + 0 is undefined in C: give an empty table somewhere to point. */
	if (!table)
		table = empty;
	*it = (struct lt_iter){
		.format = format,
		.p = table,
		.end = table + len,
		.line = firstlineno,
	};
	return 0;
}

/*
 * Bytes after the first of a location entry never have bit 7 set (that
 * bit is what marks an entry start), so a set bit means a truncated entry
 * or garbage.
 */
static int lt_skip(struct lt_iter *it, unsigned int n)
{
	while (n--) {
		if (it->p == it->end || (*it->p & 0x80))
			return -EINVAL;
		it->p++;
	}
	return 0;
}

/* Unsigned varint: 6-bit chunks, least significant first, 0x40 = more follow. */
static int lt_varint(struct lt_iter *it, uint64_t *out)
{
	unsigned int shift = 0;
	uint64_t v = 0;
	uint8_t b;

	do {
		/* Six chunks (36 bits) hold any value CPython writes. */
		if (it->p == it->end || shift > 30)
			return -EINVAL;
		b = *it->p++;
		if (b & 0x80)
			return -EINVAL;
		v |= (uint64_t)(b & 0x3f) << shift;
		shift += 6;
	} while (b & 0x40);
	*out = v;
	return 0;
}

/* Signed varint: the sign in bit 0 of the unsigned one. */
static int lt_svarint(struct lt_iter *it, int64_t *out)
{
	uint64_t v;
	int rc;

	rc = lt_varint(it, &v);
	if (rc)
		return rc;
	*out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
	return 0;
}

static int lt_next_lnotab(struct lt_iter *it, struct lt_range *r)
{
	if (it->p == it->end) {
		/* Past the last entry the last line holds for any offset. */
		if (it->tail_done)
			return 0;
		it->tail_done = true;
		r->stop = UINT64_MAX;
		r->line = it->line;
		return 1;
	}
	if (it->end - it->p < 2)
		return -EINVAL;
	/* (address delta, line delta): the line changes at the new address. */
	r->line = it->line;
	it->addr += it->p[0];
	it->line += (int8_t)it->p[1];
	it->p += 2;
	r->stop = it->addr;
	return 1;
}

static int lt_next_310(struct lt_iter *it, struct lt_range *r)
{
	int8_t ldelta;

	if (it->p == it->end)
		return 0;
	if (it->end - it->p < 2)
		return -EINVAL;
	/* (range length, line delta): the delta applies to this range already. */
	it->addr += it->p[0];
	ldelta = (int8_t)it->p[1];
	it->p += 2;
	if (ldelta == -128) {
		/* No line, and the running line stays for the next range. */
		r->has_line = false;
	} else {
		it->line += ldelta;
		r->line = it->line;
	}
	r->stop = it->addr;
	return 1;
}

static int lt_next_locations(struct lt_iter *it, struct lt_range *r)
{
	unsigned int code, units;
	int64_t delta = 0;
	uint64_t ignored;
	int rc = 0, i;
	uint8_t b;

	if (it->p == it->end)
		return 0;
	b = *it->p++;
	if (!(b & 0x80))
		return -EINVAL;
	code = (b >> 3) & 15;
	units = (b & 7) + 1;
	if (code <= 9) {
		/* Short form: same line, columns in one byte. */
		rc = lt_skip(it, 1);
	} else if (code <= 12) {
		/* One-line form: line delta in the code, start and end column bytes. */
		delta = code - 10;
		rc = lt_skip(it, 2);
	} else if (code == 13) {
		/* No columns: just the line delta. */
		rc = lt_svarint(it, &delta);
	} else if (code == 14) {
		/* Long form: line delta, then end line delta, start and end column. */
		rc = lt_svarint(it, &delta);
		for (i = 0; i < 3 && !rc; i++)
			rc = lt_varint(it, &ignored);
	} else {
		/* No location: no line, and the running line is left alone. */
		r->has_line = false;
	}
	if (rc)
		return rc;
	if (r->has_line) {
		it->line += delta;
		r->line = it->line;
	}
	it->addr += units * 2;
	r->stop = it->addr;
	return 1;
}

/* Next range of the table: 1, 0 at the end, or -EINVAL. */
static int lt_next(struct lt_iter *it, struct lt_range *r)
{
	int rc;

	r->start = it->addr;
	r->has_line = true;
	r->line = 0;
	switch (it->format) {
	case PYX_LINES_LNOTAB:
		rc = lt_next_lnotab(it, r);
		break;
	case PYX_LINES_LINETABLE_310:
		rc = lt_next_310(it, r);
		break;
	default:
		rc = lt_next_locations(it, r);
		break;
	}
	/* Deltas are small; a running line outside int is a table of garbage. */
	if (rc > 0 && (it->line > INT_MAX || it->line < INT_MIN))
		return -EINVAL;
	return rc;
}

static int lt_range_line(const struct lt_range *r)
{
	/* Line 0 and below is what synthetic code objects may claim: unknown. */
	return r->has_line && r->line > 0 ? (int)r->line : 0;
}

int pyx_line_for_offset(enum pyx_linetable_format format, const uint8_t *table, size_t len,
			int firstlineno, uint32_t offset)
{
	struct lt_iter it;
	struct lt_range r;
	bool found = false;
	int rc, line = 0;

	rc = lt_init(&it, format, table, len, firstlineno);
	if (rc)
		return rc;
	/*
	 * Read to the end even once the answer is known: a table corrupt
	 * anywhere is rejected, exactly as pyx_line_map__build rejects it.
	 */
	while ((rc = lt_next(&it, &r)) > 0) {
		if (!found && offset >= r.start && offset < r.stop) {
			found = true;
			line = lt_range_line(&r);
		}
	}
	return rc < 0 ? rc : line;
}

int pyx_line_map__build(struct pyx_line_map *map, enum pyx_linetable_format format,
			const uint8_t *table, size_t len, int firstlineno)
{
	struct pyx_line_range *ranges = NULL, *grown;
	uint32_t nr = 0, cap = 0, end = 0;
	struct lt_iter it;
	struct lt_range r;
	int rc, line;

	memset(map, 0, sizeof(*map));
	rc = lt_init(&it, format, table, len, firstlineno);
	if (rc)
		return rc;
	while ((rc = lt_next(&it, &r)) > 0) {
		if (r.start == r.stop)
			continue;
		if (r.start >= UINT32_MAX || (r.stop != UINT64_MAX && r.stop >= UINT32_MAX)) {
			rc = -EINVAL;
			break;
		}
		end = r.stop == UINT64_MAX ? UINT32_MAX : (uint32_t)r.stop;
		line = lt_range_line(&r);
		/* Ranges are contiguous from 0: only a change of line needs an entry. */
		if (nr && ranges[nr - 1].line == line)
			continue;
		if (nr == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(ranges, cap * sizeof(*ranges));
			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			ranges = grown;
		}
		ranges[nr].start = (uint32_t)r.start;
		ranges[nr].line = line;
		nr++;
	}
	if (rc < 0) {
		free(ranges);
		return rc;
	}
	map->ranges = ranges;
	map->nr = nr;
	map->end = end;
	return 0;
}

int pyx_line_map__lookup(const struct pyx_line_map *map, uint32_t offset)
{
	uint32_t lo = 0, hi = map->nr, mid;

	if (!map->nr || (map->end != UINT32_MAX && offset >= map->end))
		return 0;
	/* The last range starting at or before @offset; the first starts at 0. */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (map->ranges[mid].start <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return map->ranges[lo].line;
}

void pyx_line_map__free(struct pyx_line_map *map)
{
	if (!map)
		return;
	free(map->ranges);
	memset(map, 0, sizeof(*map));
}

/* ---- interned strings: what pyx_frame_info points to, kept until the cache dies ---- */

struct strpool {
	char **slots;
	size_t cap; /* power of two, or 0 */
	size_t nr;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	while (len--) {
		h ^= (uint8_t)*s++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int strpool_grow(struct strpool *sp)
{
	size_t cap = sp->cap ? sp->cap * 2 : 256, i, j;
	char **slots;

	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < sp->cap; i++) {
		if (!sp->slots[i])
			continue;
		j = hash_bytes(sp->slots[i], strlen(sp->slots[i])) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = sp->slots[i];
	}
	free(sp->slots);
	sp->slots = slots;
	sp->cap = cap;
	return 0;
}

/* @s holds @len bytes and no NUL; returns the pool's copy, or NULL (ENOMEM). */
static const char *strpool_intern(struct strpool *sp, const char *s, size_t len)
{
	size_t i;
	char *copy;

	if ((sp->nr + 1) * 2 > sp->cap && strpool_grow(sp)) {
		errno = ENOMEM;
		return NULL;
	}
	i = hash_bytes(s, len) & (sp->cap - 1);
	while (sp->slots[i]) {
		if (!strncmp(sp->slots[i], s, len) && sp->slots[i][len] == '\0')
			return sp->slots[i];
		i = (i + 1) & (sp->cap - 1);
	}
	copy = malloc(len + 1);
	if (!copy) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	sp->slots[i] = copy;
	sp->nr++;
	return copy;
}

static void strpool_free(struct strpool *sp)
{
	size_t i;

	for (i = 0; i < sp->cap; i++)
		free(sp->slots[i]);
	free(sp->slots);
	memset(sp, 0, sizeof(*sp));
}

/* ---- the cache ---- */

struct code_entry {
	uint64_t addr;	/* 0: free slot */
	uint32_t guard; /* co_firstlineno as read */
	int32_t firsttraceable;
	const char *name, *qualname, *file;
	struct pyx_line_map lines;
};

struct pyx_code_cache {
	struct pyx_code_layout layout;
	struct pyx_mem mem;
	uint32_t hdr_len; /* bytes of the code object holding every field we read */
	struct code_entry *slots;
	size_t cap, nr;
	struct strpool strings;
};

static bool off_ok(uint32_t off, uint32_t size)
{
	return off != PYX_OFF_NONE && off + size <= CODE_HDR_MAX;
}

static bool layout_ok(const struct pyx_code_layout *l)
{
	if (l->lines != PYX_LINES_LNOTAB && l->lines != PYX_LINES_LINETABLE_310 &&
	    l->lines != PYX_LINES_LOCATIONS)
		return false;
	if (l->instr_model != PYX_INSTR_LASTI_BYTES && l->instr_model != PYX_INSTR_LASTI_UNITS &&
	    l->instr_model != PYX_INSTR_POINTER)
		return false;
	if (!off_ok(l->co_name, 8) || !off_ok(l->co_filename, 8) || !off_ok(l->co_firstlineno, 4) ||
	    !off_ok(l->co_linetable, 8))
		return false;
	if (l->co_qualname != PYX_OFF_NONE && !off_ok(l->co_qualname, 8))
		return false;
	if (l->instr_model == PYX_INSTR_POINTER &&
	    (l->co_code_adaptive == PYX_OFF_NONE || !off_ok(l->co_firsttraceable, 4)))
		return false;
	if (!off_ok(l->bytes_size, 8) || !off_ok(l->bytes_data, 0) ||
	    l->bytes_size + 8 > l->bytes_data)
		return false;
	if (!off_ok(l->str_length, 8) || !off_ok(l->str_state, 4) ||
	    !off_ok(l->str_ascii_size, 0) || !off_ok(l->str_compact_size, 8) ||
	    l->str_ascii_size > l->str_compact_size)
		return false;
	return true;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

uint32_t pyx_code_header_len(const struct pyx_code_layout *l)
{
	uint32_t hdr;

	hdr = max_u32(l->co_name + 8, l->co_filename + 8);
	hdr = max_u32(hdr, l->co_firstlineno + 4);
	hdr = max_u32(hdr, l->co_linetable + 8);
	if (l->co_qualname != PYX_OFF_NONE)
		hdr = max_u32(hdr, l->co_qualname + 8);
	if (l->instr_model == PYX_INSTR_POINTER)
		hdr = max_u32(hdr, l->co_firsttraceable + 4);
	return hdr;
}

struct pyx_code_cache *pyx_code_cache__new(const struct pyx_code_layout *layout, struct pyx_mem mem)
{
	struct pyx_code_cache *cache;

	if (!layout || !mem.read || !layout_ok(layout)) {
		errno = EINVAL;
		return NULL;
	}
	cache = calloc(1, sizeof(*cache));
	if (!cache) {
		errno = ENOMEM;
		return NULL;
	}
	cache->layout = *layout;
	cache->mem = mem;
	cache->hdr_len = pyx_code_header_len(layout);
	return cache;
}

static void entries_clear(struct pyx_code_cache *cache)
{
	size_t i;

	for (i = 0; i < cache->cap; i++) {
		if (cache->slots[i].addr)
			pyx_line_map__free(&cache->slots[i].lines);
		cache->slots[i].addr = 0;
	}
	cache->nr = 0;
}

void pyx_code_cache__free(struct pyx_code_cache *cache)
{
	if (!cache)
		return;
	entries_clear(cache);
	free(cache->slots);
	strpool_free(&cache->strings);
	free(cache);
}

static size_t slot_of(const struct pyx_code_cache *cache, uint64_t addr)
{
	/* Objects are 16-byte aligned: mix the address before masking. */
	uint64_t h = addr * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (cache->cap - 1);
}

static struct code_entry *entry_find(struct pyx_code_cache *cache, uint64_t addr)
{
	size_t i;

	if (!cache->cap)
		return NULL;
	for (i = slot_of(cache, addr); cache->slots[i].addr; i = (i + 1) & (cache->cap - 1)) {
		if (cache->slots[i].addr == addr)
			return &cache->slots[i];
	}
	return NULL;
}

/* A slot for a new entry at @addr (not in the cache), or NULL (ENOMEM). */
static struct code_entry *entry_slot(struct pyx_code_cache *cache, uint64_t addr)
{
	struct code_entry *old = cache->slots;
	size_t old_cap = cache->cap, i, j;

	/*
	 * A target that keeps making code objects (exec, eval) would grow the
	 * cache forever: past the limit it starts over. Interned strings stay,
	 * since callers may still hold them.
	 */
	if (cache->nr >= MAX_ENTRIES)
		entries_clear(cache);
	if ((cache->nr + 1) * 2 > cache->cap) {
		size_t cap = cache->cap ? cache->cap * 2 : 256;

		cache->slots = calloc(cap, sizeof(*cache->slots));
		if (!cache->slots) {
			cache->slots = old;
			return NULL;
		}
		cache->cap = cap;
		for (i = 0; i < old_cap; i++) {
			if (!old[i].addr)
				continue;
			j = slot_of(cache, old[i].addr);
			while (cache->slots[j].addr)
				j = (j + 1) & (cap - 1);
			cache->slots[j] = old[i];
		}
		free(old);
	}
	for (i = slot_of(cache, addr); cache->slots[i].addr; i = (i + 1) & (cache->cap - 1))
		;
	return &cache->slots[i];
}

static uint64_t get_u64(const uint8_t *buf, uint32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static uint32_t get_u32(const uint8_t *buf, uint32_t off)
{
	uint32_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static int mem_read(struct pyx_code_cache *cache, uint64_t addr, void *buf, size_t len)
{
	return pyx_mem_read(cache->mem, addr, buf, len);
}

/*
 * Read @want bytes at @addr, hoping @want covers the object; when that runs
 * into unmapped memory (the object ends near the end of a mapping) settle
 * for the @need bytes that certainly exist. Returns the bytes read, or
 * -errno.
 */
static long read_peek(struct pyx_code_cache *cache, uint64_t addr, void *buf, size_t want,
		      size_t need)
{
	int rc;

	rc = mem_read(cache, addr, buf, want);
	if (rc == -EFAULT && need < want)
		rc = mem_read(cache, addr, buf, need);
	else
		need = want;
	return rc ? rc : (long)need;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	/*
	 * NUL would cut the C string short and a lone surrogate (legal in a
	 * str, e.g. from surrogateescape) is not UTF-8: both become U+FFFD so
	 * what we hand out is always valid UTF-8.
	 */
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* @n characters of @kind (1, 2, 4 bytes) to UTF-8 in @out (room for 4 * @n). */
static int to_utf8(const uint8_t *data, size_t n, unsigned int kind, bool ascii, char *out,
		   size_t *out_len)
{
	size_t i, len = 0;
	uint32_t cp;
	uint16_t u16;

	for (i = 0; i < n; i++) {
		if (kind == 1) {
			cp = data[i];
		} else if (kind == 2) {
			memcpy(&u16, data + 2 * i, 2);
			cp = u16;
		} else {
			memcpy(&cp, data + 4 * i, 4);
		}
		if ((ascii && cp >= 0x80) || cp > 0x10ffff)
			return -EINVAL;
		len += put_utf8(out + len, cp);
	}
	*out_len = len;
	return 0;
}

/* The str at @addr, converted to UTF-8 and interned. */
static int read_str(struct pyx_code_cache *cache, uint64_t addr, size_t max_chars, const char **out)
{
	const struct pyx_code_layout *l = &cache->layout;
	uint32_t need = max_u32(l->str_length + 8, l->str_state + 4), data_off, state, kind;
	uint8_t peek[CODE_HDR_MAX + PEEK_BYTES];
	uint8_t *heap = NULL, *data;
	bool compact, ascii;
	size_t nbytes, len;
	uint64_t data_addr;
	int64_t length;
	char *utf8;
	long got;
	int rc;

	got = read_peek(cache, addr, peek, l->str_compact_size + 8 + PEEK_BYTES, need);
	if (got < 0)
		return (int)got;
	memcpy(&length, peek + l->str_length, sizeof(length));
	state = get_u32(peek, l->str_state);
	kind = (state >> 2) & 7;
	compact = state & (1u << 5);
	ascii = state & (1u << 6);
	/* Kind 0 is a not-yet-ready legacy string (<= 3.11): not readable from here. */
	if ((kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1) || length < 0)
		return -EINVAL;
	if ((uint64_t)length > max_chars)
		return -ENAMETOOLONG;
	nbytes = (size_t)length * kind;

	if (compact) {
		/* The characters follow the header, whose size depends on "ascii". */
		data_off = ascii ? l->str_ascii_size : l->str_compact_size;
		data_addr = addr + data_off;
	} else {
		/* Legacy (non-compact) string: the characters are elsewhere, at data.any. */
		if ((uint64_t)got < l->str_compact_size + 8) {
			rc = mem_read(cache, addr + l->str_compact_size, &data_addr, 8);
			if (rc)
				return rc;
		} else {
			data_addr = get_u64(peek, l->str_compact_size);
		}
		data_off = UINT32_MAX;
	}
	if (data_off != UINT32_MAX && data_off + nbytes <= (uint64_t)got) {
		data = peek + data_off;
	} else {
		heap = malloc(nbytes ? nbytes : 1);
		if (!heap)
			return -ENOMEM;
		rc = nbytes ? mem_read(cache, data_addr, heap, nbytes) : 0;
		if (rc) {
			free(heap);
			return rc;
		}
		data = heap;
	}
	utf8 = malloc((size_t)length * 4 + 1);
	if (!utf8) {
		free(heap);
		return -ENOMEM;
	}
	rc = to_utf8(data, (size_t)length, kind, ascii, utf8, &len);
	free(heap);
	if (!rc) {
		*out = strpool_intern(&cache->strings, utf8, len);
		if (!*out)
			rc = -ENOMEM;
	}
	free(utf8);
	return rc;
}

int pyx_code_cache__str(struct pyx_code_cache *cache, uint64_t addr, size_t max_chars,
			const char **out)
{
	return read_str(cache, addr, max_chars, out);
}

/* The bytes object at @addr (the line table), decoded into @map. */
static int read_table(struct pyx_code_cache *cache, uint64_t addr, int firstlineno,
		      struct pyx_line_map *map)
{
	const struct pyx_code_layout *l = &cache->layout;
	uint8_t peek[CODE_HDR_MAX + PEEK_BYTES];
	uint8_t *heap = NULL;
	const uint8_t *data;
	int64_t size;
	long got;
	int rc;

	got = read_peek(cache, addr, peek, l->bytes_data + PEEK_BYTES, l->bytes_size + 8);
	if (got < 0)
		return (int)got;
	memcpy(&size, peek + l->bytes_size, sizeof(size));
	if (size < 0 || size > TABLE_MAX_BYTES)
		return -EINVAL;
	if (l->bytes_data + (uint64_t)size <= (uint64_t)got) {
		data = peek + l->bytes_data;
	} else {
		heap = malloc((size_t)size);
		if (!heap)
			return -ENOMEM;
		rc = mem_read(cache, addr + l->bytes_data, heap, (size_t)size);
		if (rc) {
			free(heap);
			return rc;
		}
		data = heap;
	}
	rc = pyx_line_map__build(map, l->lines, data, (size_t)size, firstlineno);
	free(heap);
	return rc;
}

/* Read the code object at @addr into @e (not yet in the cache). */
static int read_code(struct pyx_code_cache *cache, uint64_t addr, struct code_entry *e)
{
	const struct pyx_code_layout *l = &cache->layout;
	uint8_t hdr[CODE_HDR_MAX];
	int rc;

	memset(e, 0, sizeof(*e));
	rc = mem_read(cache, addr, hdr, cache->hdr_len);
	if (rc)
		return rc;
	e->addr = addr;
	e->guard = get_u32(hdr, l->co_firstlineno);
	e->firsttraceable = l->instr_model == PYX_INSTR_POINTER
				    ? (int32_t)get_u32(hdr, l->co_firsttraceable)
				    : 0;
	rc = read_str(cache, get_u64(hdr, l->co_name), NAME_MAX_CHARS, &e->name);
	if (!rc && l->co_qualname != PYX_OFF_NONE)
		rc = read_str(cache, get_u64(hdr, l->co_qualname), NAME_MAX_CHARS, &e->qualname);
	if (!rc)
		rc = read_str(cache, get_u64(hdr, l->co_filename), FILE_MAX_CHARS, &e->file);
	if (!rc)
		rc = read_table(cache, get_u64(hdr, l->co_linetable), (int32_t)e->guard, &e->lines);
	if (!e->qualname)
		e->qualname = e->name;
	return rc;
}

/* Byte offset of the instruction; -1: not started yet; -2: makes no sense. */
static int64_t instr_offset(const struct pyx_code_cache *cache, uint64_t code, uint64_t instr)
{
	int32_t lasti = (int32_t)(uint32_t)instr; /* an int, however the walker widened it */
	int64_t off;

	switch (cache->layout.instr_model) {
	case PYX_INSTR_LASTI_BYTES:
		return lasti >= 0 ? lasti : lasti == -1 ? -1 : -2;
	case PYX_INSTR_LASTI_UNITS:
		return lasti >= 0 ? (int64_t)lasti * 2 : lasti == -1 ? -1 : -2;
	default:
		off = (int64_t)(instr - (code + cache->layout.co_code_adaptive));
		/*
		 * A frame that has not run its first instruction points one unit
		 * before the code (3.11, 3.12); anything else outside or between
		 * code units is a torn read.
		 */
		if (off == -2)
			return -1;
		if (off < 0 || (off & 1) || off >= UINT32_MAX)
			return -2;
		return off;
	}
}

int pyx_code_cache__resolve(struct pyx_code_cache *cache, uint64_t code, uint32_t guard,
			    uint64_t instr, bool generator, struct pyx_frame_info *out)
{
	struct code_entry fresh, *e;
	int64_t off;
	int rc;

	if (!cache || !out)
		return -EINVAL;
	if (!code)
		return -EFAULT;
	e = entry_find(cache, code);
	if (!e || (guard != PYX_CODE_NO_GUARD && e->guard != guard)) {
		/* New, or the address now holds another code object: read it again. */
		rc = read_code(cache, code, &fresh);
		if (rc) {
			pyx_line_map__free(&fresh.lines);
			return rc;
		}
		if (e) {
			pyx_line_map__free(&e->lines);
		} else {
			e = entry_slot(cache, code);
			if (!e) {
				pyx_line_map__free(&fresh.lines);
				return -ENOMEM;
			}
			cache->nr++;
		}
		*e = fresh;
		/*
		 * Still not what the walker saw: the object changed after the
		 * walk. Keep what is there now, but this frame is unknown.
		 */
		if (guard != PYX_CODE_NO_GUARD && e->guard != guard)
			return -ESTALE;
	}

	memset(out, 0, sizeof(*out));
	out->function = e->name;
	out->qualname = e->qualname;
	out->file = e->file;
	out->firstlineno = (int32_t)e->guard;
	off = instr_offset(cache, code, instr);
	if (off == -1)
		out->line = out->firstlineno > 0 ? out->firstlineno : 0;
	else if (off >= 0)
		out->line = pyx_line_map__lookup(&e->lines, (uint32_t)off);
	/* Before its first traceable instruction a frame is only being set up. */
	if (cache->layout.instr_model == PYX_INSTR_POINTER && !generator && off >= -1)
		out->incomplete = (off == -1 ? -1 : off / 2) < e->firsttraceable;
	/*
	 * 3.12 marks its C-entry frames with owner FRAME_OWNED_BY_CSTACK, but a
	 * walk that races the frame's set-up may see the shim's code before the
	 * owner: recognise the shim by its code object too.
	 */
	out->shim = e->file && e->name && !strcmp(e->file, "<shim>") &&
		    !strcmp(e->name, "<interpreter trampoline>");
	return 0;
}
