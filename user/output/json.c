// SPDX-License-Identifier: GPL-2.0-only
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "output/json.h"

void pyx_json_init(struct pyx_json *json, FILE *out)
{
	memset(json, 0, sizeof(*json));
	json->out = out;
}

/* Separator before a new value: a comma unless first in its container or right after a key. */
static void value_prefix(struct pyx_json *json)
{
	if (json->after_key) {
		json->after_key = false;
		return;
	}
	if (json->depth > 0 && json->need_comma[json->depth - 1])
		fputc(',', json->out);
	if (json->depth > 0)
		json->need_comma[json->depth - 1] = true;
}

static void container_begin(struct pyx_json *json, char open)
{
	value_prefix(json);
	fputc(open, json->out);
	if (json->depth < PYX_JSON_MAX_DEPTH)
		json->need_comma[json->depth] = false;
	json->depth++;
}

static void container_end(struct pyx_json *json, char close)
{
	if (json->depth > 0)
		json->depth--;
	fputc(close, json->out);
}

void pyx_json_object_begin(struct pyx_json *json)
{
	container_begin(json, '{');
}

void pyx_json_object_end(struct pyx_json *json)
{
	container_end(json, '}');
}

void pyx_json_array_begin(struct pyx_json *json)
{
	container_begin(json, '[');
}

void pyx_json_array_end(struct pyx_json *json)
{
	container_end(json, ']');
}

/* Length of a valid UTF-8 sequence starting at @s (at most @len bytes), 0 if invalid. */
static size_t utf8_sequence_len(const unsigned char *s, size_t len)
{
	size_t need, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (need > len)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

void pyx_json_string_len(struct pyx_json *json, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	value_prefix(json);
	fputc('"', json->out);
	while (i < len) {
		unsigned char c = s[i];

		switch (c) {
		case '"':
			fputs("\\\"", json->out);
			break;
		case '\\':
			fputs("\\\\", json->out);
			break;
		case '\n':
			fputs("\\n", json->out);
			break;
		case '\r':
			fputs("\\r", json->out);
			break;
		case '\t':
			fputs("\\t", json->out);
			break;
		default:
			if (c < 0x20) {
				fprintf(json->out, "\\u%04x", c);
				break;
			}
			n = utf8_sequence_len(s + i, len - i);
			if (!n) {
				/* Not UTF-8: keep the byte visible as U+FFFD. */
				fputs("\\ufffd", json->out);
				break;
			}
			fwrite(s + i, 1, n, json->out);
			i += n;
			continue;
		}
		i++;
	}
	fputc('"', json->out);
}

void pyx_json_string(struct pyx_json *json, const char *str)
{
	if (!str) {
		pyx_json_null(json);
		return;
	}
	pyx_json_string_len(json, str, strlen(str));
}

void pyx_json_key(struct pyx_json *json, const char *key)
{
	pyx_json_string(json, key);
	fputc(':', json->out);
	json->after_key = true;
}

void pyx_json_u64(struct pyx_json *json, uint64_t value)
{
	value_prefix(json);
	fprintf(json->out, "%" PRIu64, value);
}

void pyx_json_double(struct pyx_json *json, double value)
{
	if (!isfinite(value)) {
		pyx_json_null(json);
		return;
	}
	value_prefix(json);
	fprintf(json->out, "%.6g", value);
}

void pyx_json_i64(struct pyx_json *json, int64_t value)
{
	value_prefix(json);
	fprintf(json->out, "%" PRId64, value);
}

void pyx_json_bool(struct pyx_json *json, bool value)
{
	value_prefix(json);
	fputs(value ? "true" : "false", json->out);
}

void pyx_json_null(struct pyx_json *json)
{
	value_prefix(json);
	fputs("null", json->out);
}

void pyx_json_hex(struct pyx_json *json, uint64_t value)
{
	value_prefix(json);
	fprintf(json->out, "\"0x%" PRIx64 "\"", value);
}

void pyx_json_kv_string(struct pyx_json *json, const char *key, const char *str)
{
	pyx_json_key(json, key);
	pyx_json_string(json, str);
}

void pyx_json_kv_u64(struct pyx_json *json, const char *key, uint64_t value)
{
	pyx_json_key(json, key);
	pyx_json_u64(json, value);
}

void pyx_json_kv_double(struct pyx_json *json, const char *key, double value)
{
	pyx_json_key(json, key);
	pyx_json_double(json, value);
}

void pyx_json_kv_i64(struct pyx_json *json, const char *key, int64_t value)
{
	pyx_json_key(json, key);
	pyx_json_i64(json, value);
}

void pyx_json_kv_bool(struct pyx_json *json, const char *key, bool value)
{
	pyx_json_key(json, key);
	pyx_json_bool(json, value);
}

void pyx_json_kv_hex(struct pyx_json *json, const char *key, uint64_t value)
{
	pyx_json_key(json, key);
	pyx_json_hex(json, value);
}

void pyx_json_kv_null(struct pyx_json *json, const char *key)
{
	pyx_json_key(json, key);
	pyx_json_null(json);
}

void pyx_json_document_end(struct pyx_json *json)
{
	fputc('\n', json->out);
	fflush(json->out);
	json->depth = 0;
	json->after_key = false;
	memset(json->need_comma, 0, sizeof(json->need_comma));
}
