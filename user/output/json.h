/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A streaming JSON writer: one document per line (JSON Lines), so a live
 * command can emit one document per interval and a consumer can read them
 * as they come. It tracks nesting and commas; callers only say what comes
 * next. Strings are escaped to valid JSON whatever bytes they hold (a
 * target's file names need not be UTF-8).
 */
#ifndef PYX_OUTPUT_JSON_H
#define PYX_OUTPUT_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PYX_JSON_MAX_DEPTH 32

struct pyx_json {
	FILE *out;
	int depth;
	bool need_comma[PYX_JSON_MAX_DEPTH];
	bool after_key;
};

void pyx_json_init(struct pyx_json *json, FILE *out);

void pyx_json_object_begin(struct pyx_json *json);
void pyx_json_object_end(struct pyx_json *json);
void pyx_json_array_begin(struct pyx_json *json);
void pyx_json_array_end(struct pyx_json *json);
void pyx_json_key(struct pyx_json *json, const char *key);

void pyx_json_string(struct pyx_json *json, const char *str);
void pyx_json_string_len(struct pyx_json *json, const char *str, size_t len);
void pyx_json_u64(struct pyx_json *json, uint64_t value);
void pyx_json_double(struct pyx_json *json, double value);
void pyx_json_i64(struct pyx_json *json, int64_t value);
void pyx_json_bool(struct pyx_json *json, bool value);
void pyx_json_null(struct pyx_json *json);
/* An address as a "0x..." string: JSON numbers lose precision above 2^53. */
void pyx_json_hex(struct pyx_json *json, uint64_t value);

/* key + value shorthands; a NULL string becomes null. */
void pyx_json_kv_string(struct pyx_json *json, const char *key, const char *str);
void pyx_json_kv_u64(struct pyx_json *json, const char *key, uint64_t value);
void pyx_json_kv_i64(struct pyx_json *json, const char *key, int64_t value);
/* A finite double ("%.6g"); null otherwise. */
void pyx_json_kv_double(struct pyx_json *json, const char *key, double value);
void pyx_json_kv_bool(struct pyx_json *json, const char *key, bool value);
void pyx_json_kv_hex(struct pyx_json *json, const char *key, uint64_t value);
void pyx_json_kv_null(struct pyx_json *json, const char *key);

/* Ends the current top-level document with a newline and flushes it. */
void pyx_json_document_end(struct pyx_json *json);

#endif /* PYX_OUTPUT_JSON_H */
