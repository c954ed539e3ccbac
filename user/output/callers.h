/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Python callers of C entry points, counted in the kernel per (entry point,
 * innermost Python frames) (bpf/centry.bpf.c, map "callers"), turned into
 * function/file/line rows here. A frame is a code object address and an
 * instruction: it is resolved as soon as the kernel reports a new key (the
 * call is still running, so its code objects are alive) and remembered, so
 * callers of a process that exits are still named in its final table.
 *
 * Errors: 0/-errno; NULL+errno.
 */
#ifndef PYX_OUTPUT_CALLERS_H
#define PYX_OUTPUT_CALLERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/types.h>
#include <pyxtrace/centry.h>

#include "python/code.h"

struct pyx_json;

/* One frame of a caller: resolved, or only its code object address. */
struct pyx_caller_frame {
	uint64_t code;
	uint64_t instr;
	bool resolved;
	struct pyx_frame_info info; /* strings owned by the code cache */
};

/* Calls of one entry point under the same resolved Python frames. */
struct pyx_caller_row {
	uint32_t index; /* entry point */
	uint32_t nr_frames;
	const struct pyx_caller_frame *frames[PYX_CENTRY_CALLERS_MAX]; /* innermost first */
	uint64_t count;
};

struct pyx_callers;

/* @cache outlives the result; @depth: frames per key (--callers N), 1..PYX_CENTRY_CALLERS_MAX. */
struct pyx_callers *pyx_callers__new(struct pyx_code_cache *cache, unsigned int depth);
void pyx_callers__free(struct pyx_callers *c);

/* Bytes of struct pyx_centry_caller_key the kernel hashes for @depth frames. */
size_t pyx_callers_key_size(unsigned int depth);

/* Resolve the frames of a key the kernel just inserted, while its calls run. */
void pyx_callers__learn(struct pyx_callers *c, const struct pyx_centry_caller_key *key);

/*
 * Re-read every key of the kernel map @map_fd into rows: merged by resolved
 * frame (two instructions on one line are one caller), sorted by entry
 * point, then count descending. 0 or -errno.
 */
int pyx_callers__read(struct pyx_callers *c, int map_fd);

/* The rows of entry point @index (after pyx_callers__read); returns their number. */
size_t pyx_callers__of(const struct pyx_callers *c, uint32_t index,
		       const struct pyx_caller_row **rows);

/* "main (app.py:12) <- run (app.py:40)": the frames, innermost first. */
void pyx_callers_print_text(FILE *out, const struct pyx_caller_row *row);

/* A JSON array of @n rows: {function, qualname, file, line, count, frames:[...]}. */
void pyx_callers_print_json(struct pyx_json *json, const struct pyx_caller_row *rows, size_t n);

#endif /* PYX_OUTPUT_CALLERS_H */
