// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyx_code_cache against a fake target: a memory image holding code
 * objects, str and bytes objects built by hand in each version's layout
 * (the offsets measured on the rig's interpreters), read through a fake
 * pyx_mem that fails any read touching an unmapped byte and counts reads.
 */
#include <errno.h>
#include <stdlib.h>

#include <linux/types.h>
#include <pyxtrace/pywalk.h>

#include "check.h"
#include "python/code.h"

/* ---- the fake target ---- */

#define MAIN_BASE 0x7f0000000000ull
#define MAIN_SIZE (24u << 20)
#define TAIL_BASE 0x7e0000000000ull /* objects placed to end exactly where the mapping ends */
#define TAIL_SIZE (64u << 10)
#define HOLE	  0x7d0000000000ull /* never mapped */

struct img {
	uint8_t *main, *tail;
	size_t main_used, tail_used;
	int reads;
	size_t max_read;
	bool gone;
};

static struct img *img_new(void)
{
	struct img *m = calloc(1, sizeof(*m));

	m->main = calloc(1, MAIN_SIZE);
	m->tail = calloc(1, TAIL_SIZE);
	/* Nothing at the very start of a mapping, as in a real heap. */
	m->main_used = 64;
	return m;
}

static void img_free(struct img *m)
{
	free(m->main);
	free(m->tail);
	free(m);
}

static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct img *m = ctx;

	m->reads++;
	if (len > m->max_read)
		m->max_read = len;
	if (m->gone)
		return -ESRCH;
	if (addr >= MAIN_BASE && addr - MAIN_BASE <= MAIN_SIZE &&
	    len <= MAIN_SIZE - (addr - MAIN_BASE)) {
		memcpy(buf, m->main + (addr - MAIN_BASE), len);
		return 0;
	}
	if (addr >= TAIL_BASE && addr - TAIL_BASE <= TAIL_SIZE &&
	    len <= TAIL_SIZE - (addr - TAIL_BASE)) {
		memcpy(buf, m->tail + (addr - TAIL_BASE), len);
		return 0;
	}
	return -EFAULT;
}

static struct pyx_mem img_mem(struct img *m)
{
	return (struct pyx_mem){.read = fake_read, .ctx = m};
}

/* @size bytes, 16-byte aligned; with @at_end, ending exactly at the end of a mapping. */
static uint64_t img_alloc(struct img *m, size_t size, bool at_end)
{
	uint64_t addr;

	if (at_end) {
		/* One such object per image, so that nothing follows it. */
		if (m->tail_used || size > TAIL_SIZE)
			abort();
		m->tail_used = size;
		return TAIL_BASE + TAIL_SIZE - size;
	}
	addr = MAIN_BASE + m->main_used;
	m->main_used = (m->main_used + size + 15) & ~(size_t)15;
	if (m->main_used > MAIN_SIZE)
		abort();
	return addr;
}

static uint8_t *img_at(struct img *m, uint64_t addr)
{
	if (addr >= TAIL_BASE && addr < TAIL_BASE + TAIL_SIZE)
		return m->tail + (addr - TAIL_BASE);
	return m->main + (addr - MAIN_BASE);
}

static void put64(struct img *m, uint64_t addr, uint64_t v)
{
	memcpy(img_at(m, addr), &v, 8);
}

static void put32(struct img *m, uint64_t addr, uint32_t v)
{
	memcpy(img_at(m, addr), &v, 4);
}

/* ---- layouts: offsets measured on the rig's interpreters (x86-64, GIL builds) ---- */

#define STR_311 .str_length = 16, .str_state = 32, .str_ascii_size = 48, .str_compact_size = 72
#define STR_312 .str_length = 16, .str_state = 32, .str_ascii_size = 40, .str_compact_size = 56
#define BYTES	.bytes_size = 16, .bytes_data = 32
#define UP_TO_310(fmt, instr)                                                            \
	.lines = fmt, .instr_model = instr, .co_name = 112, .co_qualname = PYX_OFF_NONE, \
	.co_filename = 104, .co_firstlineno = 40, .co_linetable = 120,                   \
	.co_code_adaptive = PYX_OFF_NONE, .co_firsttraceable = PYX_OFF_NONE, BYTES, STR_311
#define FROM_311(first, adaptive, traceable, str)                                             \
	.lines = PYX_LINES_LOCATIONS, .instr_model = PYX_INSTR_POINTER, .co_name = 120,       \
	.co_qualname = 128, .co_filename = 112, .co_firstlineno = first, .co_linetable = 136, \
	.co_code_adaptive = adaptive, .co_firsttraceable = traceable, BYTES, str

static const struct {
	const char *name;
	struct pyx_code_layout l;
} versions[] = {
	{"3.8", {UP_TO_310(PYX_LINES_LNOTAB, PYX_INSTR_LASTI_BYTES)}},
	{"3.9", {UP_TO_310(PYX_LINES_LNOTAB, PYX_INSTR_LASTI_BYTES)}},
	{"3.10", {UP_TO_310(PYX_LINES_LINETABLE_310, PYX_INSTR_LASTI_UNITS)}},
	{"3.11", {FROM_311(72, 184, 168, STR_311)}},
	{"3.12", {FROM_311(68, 192, 176, STR_312)}},
	{"3.13", {FROM_311(68, 200, 184, STR_312)}},
	{"3.14", {FROM_311(68, 208, 192, STR_312)}},
	{"3.15", {FROM_311(68, 208, 192, STR_312)}},
};

/* ---- objects ---- */

static size_t utf8_decode(const char *s, uint32_t *cps)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = 0;

	while (*p) {
		if (*p < 0x80) {
			cps[n++] = *p++;
		} else if ((*p & 0xe0) == 0xc0) {
			cps[n++] = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
			p += 2;
		} else if ((*p & 0xf0) == 0xe0) {
			cps[n++] = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
			p += 3;
		} else {
			cps[n++] = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) |
				   ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu);
			p += 4;
		}
	}
	return n;
}

enum str_shape {
	COMPACT,
	LEGACY,	     /* non-compact: characters elsewhere, at data.any */
	COMPACT_END, /* compact, ending where the mapping ends */
	LEGACY_END,  /* legacy, its header ending where the mapping ends */
};

/*
 * A str object with @n characters @cps in @kind (0: the narrowest, as
 * CPython stores them) and @extra_state or-ed into the state word.
 */
static uint64_t mk_str_cps(struct img *m, const struct pyx_code_layout *l, const uint32_t *cps,
			   size_t n, unsigned int kind, enum str_shape shape, uint32_t extra_state)
{
	uint32_t max = 0, state;
	uint64_t obj, data;
	bool ascii;
	size_t i, hdr;

	for (i = 0; i < n; i++)
		max = cps[i] > max ? cps[i] : max;
	if (!kind)
		kind = max < 0x100 ? 1 : max < 0x10000 ? 2 : 4;
	ascii = max < 0x80 && kind == 1;
	/* interned, kind, compact, ascii; bit 7 is "ready" up to 3.11 */
	state = 1 | kind << 2 | (shape != LEGACY && shape != LEGACY_END) << 5 | ascii << 6 |
		(l->str_ascii_size == 48 ? 1u << 7 : 0) | extra_state;
	if (shape == LEGACY || shape == LEGACY_END) {
		obj = img_alloc(m, l->str_compact_size + 8, shape == LEGACY_END);
		data = img_alloc(m, (n + 1) * kind, false);
		put64(m, obj + l->str_compact_size, data);
	} else {
		hdr = ascii ? l->str_ascii_size : l->str_compact_size;
		obj = img_alloc(m, hdr + (n + 1) * kind, shape == COMPACT_END);
		data = obj + hdr;
	}
	put64(m, obj + 8, 0x1234); /* ob_type: never looked at */
	put64(m, obj + l->str_length, n);
	put32(m, obj + l->str_state, state);
	for (i = 0; i < n; i++) {
		if (kind == 1)
			*img_at(m, data + i) = (uint8_t)cps[i];
		else if (kind == 2)
			memcpy(img_at(m, data + 2 * i), &(uint16_t){(uint16_t)cps[i]}, 2);
		else
			put32(m, data + 4 * i, cps[i]);
	}
	return obj;
}

static uint64_t mk_str(struct img *m, const struct pyx_code_layout *l, const char *utf8,
		       enum str_shape shape)
{
	uint32_t *cps = malloc((strlen(utf8) + 1) * sizeof(*cps));
	uint64_t obj = mk_str_cps(m, l, cps, utf8_decode(utf8, cps), 0, shape, 0);

	free(cps);
	return obj;
}

static uint64_t mk_bytes(struct img *m, const struct pyx_code_layout *l, const void *data,
			 size_t len, bool at_end)
{
	uint64_t obj = img_alloc(m, l->bytes_data + len + (at_end ? 0 : 1), at_end);

	put64(m, obj + l->bytes_size, len);
	memcpy(img_at(m, obj + l->bytes_data), data, len);
	return obj;
}

/*
 * The table every test code object has, per format: 12 code units whose
 * lines (first line 10) are below.
 */
static const int unit_lines[12] = {11, 11, 11, 12, 12, 12, 12, 14, 14, 11, 11, 11};
#define NUNITS 12

static uint64_t mk_table(struct img *m, const struct pyx_code_layout *l)
{
	/* (addr delta, line delta): +1 at 0, +1 at 6, +2 at 14, -3 at 18 */
	static const uint8_t lnotab[] = {0, 1, 6, 1, 8, 2, 4, 0xfd};
	/* (length, line delta): [0,6) +1, [6,14) +1, [14,18) +2, [18,24) -3 */
	static const uint8_t lt310[] = {6, 1, 8, 1, 4, 2, 6, 0xfd};
	/* 3 units one-line +1, 4 units one-line +1, 2 units one-line +2, 3 units no-column -3 */
	static const uint8_t loc[] = {0xda, 0, 0, 0xdb, 0, 0, 0xe1, 0, 0, 0xea, 0x07};

	if (l->lines == PYX_LINES_LNOTAB)
		return mk_bytes(m, l, lnotab, sizeof(lnotab), false);
	if (l->lines == PYX_LINES_LINETABLE_310)
		return mk_bytes(m, l, lt310, sizeof(lt310), false);
	return mk_bytes(m, l, loc, sizeof(loc), false);
}

struct code_spec {
	uint64_t name, qualname, file, table;
	int32_t firstlineno;
	int32_t firsttraceable;
};

static size_t code_size(const struct pyx_code_layout *l)
{
	return l->co_code_adaptive == PYX_OFF_NONE ? 200 : l->co_code_adaptive + 2 * NUNITS;
}

static void put_code(struct img *m, const struct pyx_code_layout *l, uint64_t code,
		     const struct code_spec *s)
{
	memset(img_at(m, code), 0, code_size(l));
	put64(m, code + 8, 0x5678); /* ob_type */
	if (l->co_code_adaptive != PYX_OFF_NONE)
		put64(m, code + 16, NUNITS); /* ob_size: code units */
	put64(m, code + l->co_name, s->name);
	if (l->co_qualname != PYX_OFF_NONE)
		put64(m, code + l->co_qualname, s->qualname);
	put64(m, code + l->co_filename, s->file);
	put64(m, code + l->co_linetable, s->table);
	put32(m, code + l->co_firstlineno, (uint32_t)s->firstlineno);
	if (l->co_firsttraceable != PYX_OFF_NONE)
		put32(m, code + l->co_firsttraceable, (uint32_t)s->firsttraceable);
}

static uint64_t mk_code(struct img *m, const struct pyx_code_layout *l, const struct code_spec *s)
{
	uint64_t code = img_alloc(m, code_size(l), false);

	put_code(m, l, code, s);
	return code;
}

/* The raw instruction field of a frame at byte @offset, the way the walker reports it. */
static uint64_t instr_at(const struct pyx_code_layout *l, uint64_t code, int64_t offset)
{
	switch (l->instr_model) {
	case PYX_INSTR_LASTI_BYTES:
		return (uint32_t)(int32_t)offset;
	case PYX_INSTR_LASTI_UNITS:
		return (uint32_t)(int32_t)(offset / 2);
	default:
		return code + l->co_code_adaptive + (uint64_t)offset;
	}
}

/* ---- per version: names of every string shape, lines, the instruction models ---- */

static void test_version(const char *ver, const struct pyx_code_layout *l)
{
	struct img *m = img_new();
	struct pyx_code_cache *cache = pyx_code_cache__new(l, img_mem(m));
	bool pointer = l->instr_model == PYX_INSTR_POINTER;
	struct pyx_frame_info fi, again;
	struct code_spec a = {
		.name = mk_str(m, l, "compute", COMPACT),		  /* compact ASCII */
		.qualname = mk_str(m, l, "Klasse.名前.compute", COMPACT), /* compact UCS2 */
		.file = mk_str(m, l, "/srv/😀/app.py", COMPACT),		  /* compact UCS4 */
		.table = mk_table(m, l),
		.firstlineno = 10,
		.firsttraceable = 2,
	};
	struct code_spec b = {
		.name = mk_str(m, l, "café", COMPACT),		   /* compact UCS1 */
		.qualname = mk_str(m, l, "naïve.名前.x😀", LEGACY), /* legacy UCS4 */
		.file = mk_str(m, l, "/tmp/légacy.py", LEGACY),	   /* legacy UCS1 */
		.table = a.table,
		.firstlineno = 10,
	};
	struct code_spec c = {
		.name = mk_str(m, l, "plain", LEGACY),	   /* legacy ASCII */
		.qualname = mk_str(m, l, "名前", LEGACY),  /* legacy UCS2 */
		.file = mk_str(m, l, "x.py", COMPACT_END), /* ends where the mapping ends */
		.table = a.table,
		.firstlineno = 10,
	};
	uint64_t ca = mk_code(m, l, &a), cb = mk_code(m, l, &b), cc = mk_code(m, l, &c);
	int i, reads, bad = 0, rc;
	const char *old_function;

	fprintf(stderr, "-- %s\n", ver);
	if (!CHECK(cache != NULL))
		return;

	/* Names in every string shape, qualname only from 3.11. */
	if (!CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 6), false, &fi), 0))
		return;
	CHECK_STR(fi.function, "compute");
	CHECK_STR(fi.qualname, pointer ? "Klasse.名前.compute" : "compute");
	CHECK_STR(fi.file, "/srv/😀/app.py");
	CHECK_EQ(fi.firstlineno, 10);
	CHECK_EQ(fi.line, 12);
	CHECK(!fi.incomplete);
	CHECK_EQ(pyx_code_cache__resolve(cache, cb, 10, instr_at(l, cb, 0), false, &fi), 0);
	CHECK_STR(fi.function, "café");
	CHECK_STR(fi.qualname, pointer ? "naïve.名前.x😀" : "café");
	CHECK_STR(fi.file, "/tmp/légacy.py");
	CHECK_EQ(pyx_code_cache__resolve(cache, cc, 10, instr_at(l, cc, 0), false, &fi), 0);
	CHECK_STR(fi.function, "plain");
	CHECK_STR(fi.qualname, pointer ? "名前" : "plain");
	CHECK_STR(fi.file, "x.py");

	/* Every code unit, from the cache: no read at all. */
	reads = m->reads;
	for (i = 0; i < NUNITS; i++) {
		rc = pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 2 * i), true, &fi);
		if (rc || fi.line != unit_lines[i] || fi.incomplete) {
			fprintf(stderr, "%s: unit %d: rc %d line %d (want %d)\n", ver, i, rc,
				fi.line, unit_lines[i]);
			bad++;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(m->reads, reads);
	pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 0), false, &again);
	CHECK(again.function == fi.function && again.file == fi.file); /* same strings */

	/* Before the first instruction: f_lasti -1, or one unit before the code (3.11, 3.12). */
	if (pointer) {
		CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, -2), false, &fi),
			 0);
		CHECK_EQ(fi.line, 10);
		CHECK(fi.incomplete);
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, -2), true, &fi);
		CHECK(!fi.incomplete); /* generators are never incomplete */
		/* Most functions have nothing before RESUME: not started is still incomplete. */
		b.firsttraceable = 0;
		put_code(m, l, cb, &b);
		pyx_code_cache__resolve(cache, cb, 10, instr_at(l, cb, 0), false, &fi);
		CHECK(!fi.incomplete);
		pyx_code_cache__resolve(cache, cb, 10, instr_at(l, cb, -2), false, &fi);
		CHECK(fi.incomplete);
		CHECK_EQ(fi.line, 10);
		/* _co_firsttraceable is 2: units 0 and 1 are frame setup (COPY_FREE_VARS, ...) */
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 2), false, &fi);
		CHECK(fi.incomplete);
		CHECK_EQ(fi.line, 11);
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 4), false, &fi);
		CHECK(!fi.incomplete);
		/* Torn pointers: odd, outside the code, before it, NULL. */
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 5), false, &fi);
		CHECK_EQ(fi.line, 0);
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 2 * NUNITS), false, &fi);
		CHECK_EQ(fi.line, 0);
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, -64), false, &fi);
		CHECK_EQ(fi.line, 0);
		CHECK(!fi.incomplete);
		CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, 0, false, &fi), 0);
		CHECK_EQ(fi.line, 0);
		CHECK_STR(fi.function, "compute");
	} else {
		/* f_lasti is an int: -1 however the walker widened it. */
		CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, 0xffffffffu, false, &fi), 0);
		CHECK_EQ(fi.line, 10);
		CHECK(!fi.incomplete);
		CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, UINT64_MAX, false, &fi), 0);
		CHECK_EQ(fi.line, 10);
		pyx_code_cache__resolve(cache, ca, 10, (uint32_t)-8, false, &fi);
		CHECK_EQ(fi.line, 0);
		/* Past the code: co_lnotab's last line holds on; 3.10 has none there. */
		pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 2 * NUNITS + 100), false,
					&fi);
		CHECK_EQ(fi.line, l->lines == PYX_LINES_LNOTAB ? 11 : 0);
	}

	/*
	 * The address is reused by another code object (first line 500): a
	 * walker reporting the new guard makes us read it again. Strings handed
	 * out before stay valid.
	 */
	old_function = again.function;
	a.name = mk_str(m, l, "reborn", COMPACT);
	a.firstlineno = 500;
	put_code(m, l, ca, &a);
	reads = m->reads;
	CHECK_EQ(pyx_code_cache__resolve(cache, ca, 500, instr_at(l, ca, 14), false, &fi), 0);
	CHECK(m->reads > reads);
	CHECK_STR(fi.function, "reborn");
	CHECK_EQ(fi.firstlineno, 500);
	CHECK_EQ(fi.line, 504);
	CHECK_STR(old_function, "compute");
	/* A walker still reporting the old guard: read again, and the frame is stale. */
	reads = m->reads;
	CHECK_EQ(pyx_code_cache__resolve(cache, ca, 10, instr_at(l, ca, 14), false, &fi), -ESTALE);
	CHECK(m->reads > reads);
	CHECK_EQ(pyx_code_cache__resolve(cache, ca, 500, instr_at(l, ca, 0), false, &fi), 0);
	CHECK_EQ(fi.line, 501);

	pyx_code_cache__free(cache);
	img_free(m);
}

/* ---- what must fail, and how ---- */

struct fixture {
	struct img *m;
	const struct pyx_code_layout *l;
	struct pyx_code_cache *cache;
	struct code_spec spec;
};

static void fx_init(struct fixture *fx, const struct pyx_code_layout *l)
{
	fx->m = img_new();
	fx->l = l;
	fx->cache = pyx_code_cache__new(l, img_mem(fx->m));
	fx->spec = (struct code_spec){
		.name = mk_str(fx->m, l, "f", COMPACT),
		.qualname = mk_str(fx->m, l, "f", COMPACT),
		.file = mk_str(fx->m, l, "f.py", COMPACT),
		.table = mk_table(fx->m, l),
		.firstlineno = 10,
	};
}

static void fx_fini(struct fixture *fx)
{
	pyx_code_cache__free(fx->cache);
	img_free(fx->m);
}

/* Resolve a fresh code object of @fx's spec with one field changed by the caller. */
static int fx_resolve(struct fixture *fx, const struct code_spec *s, struct pyx_frame_info *fi)
{
	uint64_t code = mk_code(fx->m, fx->l, s);

	return pyx_code_cache__resolve(fx->cache, code, (uint32_t)s->firstlineno,
				       instr_at(fx->l, code, 6), false, fi);
}

static void test_unreadable(const struct pyx_code_layout *l)
{
	struct pyx_frame_info fi;
	struct code_spec s;
	struct fixture fx;
	uint64_t code;

	fx_init(&fx, l);
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, HOLE, 10, 0, false, &fi), -EFAULT);
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, 0, 10, 0, false, &fi), -EFAULT);
	/* A code object straddling the end of a mapping. */
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, MAIN_BASE + MAIN_SIZE - 64, 0, 0, false, &fi),
		 -EFAULT);
	s = fx.spec;
	s.name = HOLE;
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EFAULT);
	s = fx.spec;
	s.file = 0;
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EFAULT);
	s = fx.spec;
	s.table = HOLE + 4096;
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EFAULT);
	if (l->co_qualname != PYX_OFF_NONE) {
		s = fx.spec;
		s.qualname = 8;
		CHECK_EQ(fx_resolve(&fx, &s, &fi), -EFAULT);
	}
	/* A legacy string whose characters are gone. */
	s = fx.spec;
	s.file = mk_str(fx.m, l, "gone.py", LEGACY);
	put64(fx.m, s.file + l->str_compact_size, HOLE);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EFAULT);

	/* Failures are not cached: once readable, the same address resolves. */
	s = fx.spec;
	s.name = HOLE;
	code = mk_code(fx.m, l, &s);
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, 0), false, &fi),
		 -EFAULT);
	put64(fx.m, code + l->co_name, fx.spec.name);
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, 0), false, &fi), 0);
	CHECK_STR(fi.function, "f");

	/* The target exits: -ESRCH passes through. */
	code = mk_code(fx.m, l, &fx.spec);
	fx.m->gone = true;
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code, 10, 0, false, &fi), -ESRCH);
	fx_fini(&fx);
}

static void test_corrupt(const struct pyx_code_layout *l)
{
	uint32_t cps[4200], i;
	struct pyx_frame_info fi;
	struct code_spec s;
	struct fixture fx;

	fx_init(&fx, l);
	for (i = 0; i < 4200; i++)
		cps[i] = 'a' + i % 26;

	/* Line tables: negative size, over 1 MiB, cut short. */
	s = fx.spec;
	s.table = mk_bytes(fx.m, l, "", 0, false);
	put64(fx.m, s.table + l->bytes_size, (uint64_t)-1);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	put64(fx.m, s.table + l->bytes_size, (1u << 20) + 1);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	put64(fx.m, s.table + l->bytes_size, 1ull << 62);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	if (l->lines == PYX_LINES_LOCATIONS)
		s.table = mk_bytes(fx.m, l, "\xda\x00", 2, false); /* one-line form, one column */
	else
		s.table = mk_bytes(fx.m, l, "\x06", 1, false); /* half a pair */
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);

	/* Strings: impossible kinds and flags, characters that cannot be. */
	s = fx.spec;
	s.name = mk_str_cps(fx.m, l, cps, 3, 1, COMPACT, 0);
	put32(fx.m, s.name + l->str_state, 1 | 1 << 5 | 1 << 6); /* kind 0: wchar_t, not ready */
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	put32(fx.m, s.name + l->str_state, 1 | 3 << 2 | 1 << 5);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	put32(fx.m, s.name + l->str_state, 1 | 2 << 2 | 1 << 5 | 1 << 6); /* "ascii" but UCS2 */
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	s.name = mk_str(fx.m, l, "abc", COMPACT);
	*img_at(fx.m, s.name + l->str_ascii_size + 1) = 0xe9; /* "ascii" data with é */
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	cps[0] = 0x110000;
	s.name = mk_str_cps(fx.m, l, cps, 2, 4, COMPACT, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);
	cps[0] = 'a';
	s.name = mk_str(fx.m, l, "abc", COMPACT);
	put64(fx.m, s.name + l->str_length, (uint64_t)-1);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -EINVAL);

	/* Lengths: names up to 1024 characters, file names up to 4096; never a huge read. */
	s = fx.spec;
	s.name = mk_str_cps(fx.m, l, cps, 1024, 0, COMPACT, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_EQ(strlen(fi.function), 1024);
	s.name = mk_str_cps(fx.m, l, cps, 1025, 0, COMPACT, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -ENAMETOOLONG);
	s = fx.spec;
	s.file = mk_str_cps(fx.m, l, cps, 4096, 4, LEGACY, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_EQ(strlen(fi.file), 4096);
	s.file = mk_str_cps(fx.m, l, cps, 4097, 0, COMPACT, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -ENAMETOOLONG);
	put64(fx.m, s.file + l->str_length, 1ull << 40);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), -ENAMETOOLONG);
	CHECK(fx.m->max_read <= 4096 * 4);

	/* NUL and lone surrogates (surrogateescape file names) come out as U+FFFD. */
	s = fx.spec;
	cps[0] = 'a', cps[1] = 0, cps[2] = 0xdc80, cps[3] = 'z';
	s.file = mk_str_cps(fx.m, l, cps, 4, 2, COMPACT, 0);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_STR(fi.file, "a\xef\xbf\xbd\xef\xbf\xbdz");

	/* A bad layout is refused up front. */
	{
		struct pyx_code_layout bad = *l;

		errno = 0;
		CHECK(pyx_code_cache__new(NULL, img_mem(fx.m)) == NULL && errno == EINVAL);
		CHECK(pyx_code_cache__new(l, (struct pyx_mem){0}) == NULL && errno == EINVAL);
		bad.co_name = PYX_OFF_NONE;
		CHECK(pyx_code_cache__new(&bad, img_mem(fx.m)) == NULL && errno == EINVAL);
		bad = *l;
		bad.lines = 0;
		CHECK(pyx_code_cache__new(&bad, img_mem(fx.m)) == NULL && errno == EINVAL);
		bad = *l;
		bad.instr_model = PYX_INSTR_POINTER;
		bad.co_code_adaptive = PYX_OFF_NONE;
		CHECK(pyx_code_cache__new(&bad, img_mem(fx.m)) == NULL && errno == EINVAL);
	}
	CHECK_EQ(pyx_code_cache__resolve(NULL, 1, 1, 0, false, &fi), -EINVAL);
	fx_fini(&fx);
}

/* Objects that end where their mapping ends: a speculative read past them must not fail them. */
static void test_mapping_ends(const struct pyx_code_layout *l)
{
	static const uint8_t loc[] = {0xda, 0, 0, 0xdb, 0, 0, 0xe1, 0, 0, 0xea, 0x07};
	static const uint8_t lnotab[] = {0, 1, 6, 1, 8, 2, 4, 0xfd};
	static const uint8_t lt310[] = {6, 1, 8, 1, 4, 2, 6, 0xfd};
	struct pyx_frame_info fi;
	struct code_spec s;
	struct fixture fx;
	const void *t;
	uint64_t code;

	t = l->lines == PYX_LINES_LNOTAB	  ? lnotab
	    : l->lines == PYX_LINES_LINETABLE_310 ? lt310
						  : loc;
	fx_init(&fx, l);
	s = fx.spec;
	s.table = mk_bytes(fx.m, l, t, l->lines == PYX_LINES_LOCATIONS ? sizeof(loc) : 8, true);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_EQ(fi.line, 12);
	fx_fini(&fx);

	fx_init(&fx, l);
	s = fx.spec;
	s.name = mk_str(fx.m, l, "名", COMPACT_END);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_STR(fi.function, "名");
	fx_fini(&fx);

	fx_init(&fx, l);
	s = fx.spec;
	s.file = mk_str(fx.m, l, "/ünï/cödé.py", LEGACY_END);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_STR(fi.file, "/ünï/cödé.py");
	fx_fini(&fx);

	/* The code object itself, exactly as long as the fields read. */
	fx_init(&fx, l);
	code = img_alloc(fx.m, code_size(l), true);
	put_code(fx.m, l, code, &fx.spec);
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, 14), false, &fi), 0);
	CHECK_EQ(fi.line, 14);
	fx_fini(&fx);
}

/* A line table of the largest size allowed, read past the speculative peek. */
static void test_big_table(const struct pyx_code_layout *l)
{
	size_t len = 1u << 20, i;
	struct pyx_frame_info fi;
	uint64_t code;
	int64_t last;
	struct code_spec s;
	struct fixture fx;
	uint8_t *t = malloc(len);

	fx_init(&fx, l);
	/* 3.11+: 1-unit short-form entries; earlier: (2 bytes, +0) pairs after a +1. */
	for (i = 0; i < len; i += 2) {
		t[i] = l->lines == PYX_LINES_LOCATIONS ? 0x80 : 2;
		t[i + 1] = 0;
	}
	if (l->lines == PYX_LINES_LOCATIONS)
		t[len - 2] = 0xe8, t[len - 1] = 2; /* the last unit: no-column form, +1 */
	else
		t[len - 1] = 1;
	s = fx.spec;
	s.table = mk_bytes(fx.m, l, t, len, false);
	CHECK_EQ(fx_resolve(&fx, &s, &fi), 0);
	CHECK_EQ(fi.line, 10);
	CHECK(fx.m->max_read >= len);
	/* The +1 at the very end: co_lnotab applies it where the code would end. */
	code = mk_code(fx.m, l, &s);
	last = l->lines == PYX_LINES_LNOTAB ? len : len - 2;
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, last), true, &fi),
		 0);
	CHECK_EQ(fi.line, 11);
	CHECK_EQ(
		pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, last - 2), true, &fi),
		0);
	CHECK_EQ(fi.line, 10);
	free(t);
	fx_fini(&fx);
}

/* More code objects than the cache keeps: it starts over, strings handed out stay valid. */
static void test_many(const struct pyx_code_layout *l)
{
	struct pyx_frame_info fi, first = {0};
	struct fixture fx;
	struct code_spec s;
	uint64_t code, code0 = 0;
	int i, bad = 0, reads;
	char name[32];

	fx_init(&fx, l);
	s = fx.spec;
	for (i = 0; i < 70000; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "fn%d", i / 1000);
			s.name = mk_str(fx.m, l, name, COMPACT);
		}
		code = mk_code(fx.m, l, &s);
		if (!code0)
			code0 = code;
		if (pyx_code_cache__resolve(fx.cache, code, 10, instr_at(l, code, 14), false,
					    &fi) ||
		    fi.line != 14)
			bad++;
		if (i == 0)
			first = fi;
	}
	CHECK_EQ(bad, 0);
	CHECK_STR(first.function, "fn0");
	CHECK_STR(first.file, "f.py");
	/* The first one was dropped when the cache started over: read again, same string. */
	reads = fx.m->reads;
	CHECK_EQ(pyx_code_cache__resolve(fx.cache, code0, 10, instr_at(l, code0, 0), false, &fi),
		 0);
	CHECK(fx.m->reads > reads);
	CHECK(fi.function == first.function);
	fx_fini(&fx);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		test_version(versions[i].name, &versions[i].l);
		test_unreadable(&versions[i].l);
		test_corrupt(&versions[i].l);
		test_mapping_ends(&versions[i].l);
		test_big_table(&versions[i].l);
	}
	test_many(&versions[0].l);
	test_many(&versions[4].l);
	return check_done();
}
