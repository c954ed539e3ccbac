/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * From a frame the walker reported (code object address, raw instruction
 * field) to what a traceback shows: function, qualname, file, line.
 * Code objects are read from the target (read-only) once and cached by
 * (address, guard); line tables are decoded here, per format.
 */
#ifndef PYX_PYTHON_CODE_H
#define PYX_PYTHON_CODE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads target memory: returns 0, or -errno (-EFAULT unmapped, -ESRCH gone). */
struct pyx_mem {
	int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
};

/*
 * Read @len bytes at @addr through @mem: 0 or -errno. Objects never live in
 * the first page: a NULL-ish address is a torn read, not a read to make.
 */
static inline int pyx_mem_read(struct pyx_mem mem, uint64_t addr, void *buf, size_t len)
{
	int rc;

	if (addr < 4096 || addr + len < addr)
		return -EFAULT;
	rc = mem.read(mem.ctx, addr, buf, len);
	return rc > 0 ? -EIO : rc;
}

enum pyx_linetable_format {
	PYX_LINES_LNOTAB = 1,	 /* ≤3.9 co_lnotab: (byte delta u8, line delta s8) pairs */
	PYX_LINES_LINETABLE_310, /* 3.10 co_linetable: (byte delta u8, line delta s8, -128 = none) */
	PYX_LINES_LOCATIONS,	 /* 3.11+ co_linetable location entries (Objects/locations.md) */
};

/* Everything code.c needs to know about one interpreter build (filled by layout.c). */
struct pyx_code_layout {
	enum pyx_linetable_format lines;
	unsigned int instr_model; /* enum pyx_instr_model (include/pyxtrace/pywalk.h) */
	uint32_t co_name;
	uint32_t co_qualname; /* PYX_OFF_NONE before 3.11 */
	uint32_t co_filename;
	uint32_t co_firstlineno;
	uint32_t co_linetable;	    /* co_lnotab (≤3.9) or co_linetable: a bytes object */
	uint32_t co_code_adaptive;  /* 3.11+: inline bytecode; PYX_OFF_NONE before */
	uint32_t co_firsttraceable; /* 3.11+: int, first instruction a traceback shows */
	uint32_t bytes_size;	    /* PyBytesObject ob_size */
	uint32_t bytes_data;	    /* PyBytesObject ob_sval */
	uint32_t str_length;	    /* PyASCIIObject length */
	uint32_t
		str_state; /* PyASCIIObject state (bit fields, same positions 3.8-3.15 GIL builds) */
	uint32_t str_ascii_size; /* sizeof(PyASCIIObject): data of compact ASCII strings */
	uint32_t
		str_compact_size; /* sizeof(PyCompactUnicodeObject): data of other compact strings */
};

/*
 * Line of the instruction at byte offset @offset in a code object whose
 * table is @table (@len bytes) and first line @firstlineno. Returns the
 * line (> 0), 0 when the instruction has no line, -EINVAL on a corrupt
 * table. Pure: no memory access (unit-tested against every interpreter's
 * own co_lines()/co_positions()).
 */
int pyx_line_for_offset(enum pyx_linetable_format format, const uint8_t *table, size_t len,
			int firstlineno, uint32_t offset);

/*
 * A whole table decoded once into sorted ranges, so a cached code object
 * answers any offset by binary search instead of a rescan. Same answers
 * as pyx_line_for_offset (the unit test holds both to the interpreters).
 */
struct pyx_line_range {
	uint32_t start; /* byte offset; the range ends where the next one starts */
	int32_t line;	/* > 0, or 0: no line */
};

struct pyx_line_map {
	struct pyx_line_range *ranges;
	uint32_t nr;
	uint32_t end; /* offsets >= end have no line (UINT32_MAX: open-ended, co_lnotab) */
};

/* Decode @table into @map (freed with pyx_line_map__free). 0, -EINVAL, -ENOMEM. */
int pyx_line_map__build(struct pyx_line_map *map, enum pyx_linetable_format format,
			const uint8_t *table, size_t len, int firstlineno);
/* Line at byte @offset: > 0, or 0 when it has none. */
int pyx_line_map__lookup(const struct pyx_line_map *map, uint32_t offset);
void pyx_line_map__free(struct pyx_line_map *map);

struct pyx_frame_info {
	const char *function; /* co_name; valid while the cache lives */
	const char *qualname; /* co_qualname on 3.11+, else co_name */
	const char *file;     /* co_filename */
	int firstlineno;
	int line;	 /* of the instruction being executed; 0 when unknown */
	bool incomplete; /* 3.11+: a frame that has not started running (skipped by tracebacks) */
	bool shim;	 /* 3.12's C-entry shim code ("<interpreter trampoline>" in "<shim>") */
};

struct pyx_code_cache;

/*
 * Bytes at the start of a code object that resolving it reads (every field
 * above lies below): for copying code objects elsewhere, e.g. in BPF.
 */
uint32_t pyx_code_header_len(const struct pyx_code_layout *layout);

struct pyx_code_cache *pyx_code_cache__new(const struct pyx_code_layout *layout,
					   struct pyx_mem mem);
void pyx_code_cache__free(struct pyx_code_cache *cache);

/* @guard value for frames walked without reading co_firstlineno: trust the cache. */
#define PYX_CODE_NO_GUARD UINT32_MAX

/*
 * Resolve one frame. @guard is the co_firstlineno the walker read with the
 * frame: a cached entry whose guard differs is a reused address and is
 * re-read (PYX_CODE_NO_GUARD: no check; the caller keeps the cache short-lived). @generator says the frame is owned by a generator (never
 * incomplete). Returns 0, or -errno when the code object cannot be read
 * (the caller marks the frame unknown).
 */
int pyx_code_cache__resolve(struct pyx_code_cache *cache, uint64_t code, uint32_t guard,
			    uint64_t instr, bool generator, struct pyx_frame_info *out);

/*
 * The str object at @addr as UTF-8, at most @max_chars characters
 * (-ENAMETOOLONG beyond), interned in @cache: valid while it lives.
 */
int pyx_code_cache__str(struct pyx_code_cache *cache, uint64_t addr, size_t max_chars,
			const char **out);

#endif /* PYX_PYTHON_CODE_H */
