// SPDX-License-Identifier: GPL-2.0-only
#include <stdlib.h>

#include "check.h"
#include "output/json.h"

/* Run @emit against a memory stream and return what it wrote (caller frees). */
static char *capture(void (*emit)(struct pyx_json *json))
{
	struct pyx_json json;
	size_t size = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &size);

	pyx_json_init(&json, f);
	emit(&json);
	fclose(f);
	return buf;
}

static void emit_nested(struct pyx_json *json)
{
	pyx_json_object_begin(json);
	pyx_json_kv_string(json, "a", "x");
	pyx_json_key(json, "list");
	pyx_json_array_begin(json);
	pyx_json_u64(json, 1);
	pyx_json_i64(json, -2);
	pyx_json_object_begin(json);
	pyx_json_kv_bool(json, "t", true);
	pyx_json_object_end(json);
	pyx_json_array_begin(json);
	pyx_json_array_end(json);
	pyx_json_array_end(json);
	pyx_json_kv_null(json, "n");
	pyx_json_kv_hex(json, "addr", 0x7f0012345678ull);
	pyx_json_kv_string(json, "none", NULL);
	pyx_json_object_end(json);
	pyx_json_document_end(json);
}

static void emit_escapes(struct pyx_json *json)
{
	static const char raw[] = "q\"b\\n\n\x01t\t\xc3\xa9\xff\xe2\x82";

	pyx_json_array_begin(json);
	pyx_json_string_len(json, raw, sizeof(raw) - 1);
	pyx_json_array_end(json);
	pyx_json_document_end(json);
}

static void emit_two_documents(struct pyx_json *json)
{
	pyx_json_object_begin(json);
	pyx_json_kv_u64(json, "i", 1);
	pyx_json_object_end(json);
	pyx_json_document_end(json);
	pyx_json_object_begin(json);
	pyx_json_kv_u64(json, "i", 2);
	pyx_json_object_end(json);
	pyx_json_document_end(json);
}

int main(void)
{
	char *out;

	out = capture(emit_nested);
	CHECK_STR(out,
		  "{\"a\":\"x\",\"list\":[1,-2,{\"t\":true},[]],\"n\":null,\"addr\":\"0x7f0012345678\",\"none\":null}\n");
	free(out);

	/* Invalid UTF-8 (a lone 0xff, a truncated 3-byte sequence) becomes U+FFFD; valid é stays. */
	out = capture(emit_escapes);
	CHECK_STR(out, "[\"q\\\"b\\\\n\\n\\u0001t\\t\xc3\xa9\\ufffd\\ufffd\\ufffd\"]\n");
	free(out);

	out = capture(emit_two_documents);
	CHECK_STR(out, "{\"i\":1}\n{\"i\":2}\n");
	free(out);
	return check_done();
}
