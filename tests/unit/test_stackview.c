// SPDX-License-Identifier: GPL-2.0-only
/*
 * output/stackview.c without a target: which native record belongs to a
 * thread, and the Python-only view of frames whose code objects cannot be
 * read (boundaries thinned, notes, partial), in text and JSON. Resolving
 * real code objects is test_code's; mixing with native frames, test_unwind's
 * and the integration tests'.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/types.h>
#include <pyxtrace/stack.h>

#include "check.h"
#include "output/json.h"
#include "output/stackview.h"
#include "pyx.h"
#include "python/code.h"
#include "python/detect.h"
#include "python/layout.h"
#include "target/process.h"

#define TID 4242

/* A target whose memory is all unmapped: every code object is unreadable. */
static int unmapped_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	(void)ctx, (void)addr, (void)buf, (void)len;
	return -EFAULT;
}

static struct pyx_rec_native *native_rec(__u32 tid, __u32 stack_len, __u32 size_extra)
{
	struct pyx_rec_native *rec = calloc(1, sizeof(*rec));
	const size_t fixed = sizeof(*rec) - sizeof(rec->stack);

	rec->hdr.type = PYX_REC_NATIVE;
	rec->hdr.size = (__u32)(fixed + stack_len + size_extra);
	rec->tid = tid;
	rec->stack_len = stack_len;
	return rec;
}

static void test_native_after(void)
{
	struct pyx_rec_pystack py = {.tid = TID};
	const size_t fixed =
		sizeof(struct pyx_rec_native) - sizeof(((struct pyx_rec_native *)0)->stack);
	struct pyx_rec_native *rec = native_rec(TID, 512, 0);

	/* Exactly the record, or more buffer after it. */
	CHECK(pyx_stackview__native_after(&py, rec, rec->hdr.size) == rec);
	CHECK(pyx_stackview__native_after(&py, rec, sizeof(*rec)) == rec);
	/* The buffer ends inside it, or before its header does. */
	CHECK(!pyx_stackview__native_after(&py, rec, rec->hdr.size - 1));
	CHECK(!pyx_stackview__native_after(&py, rec, sizeof(rec->hdr) - 1));
	CHECK(!pyx_stackview__native_after(&py, rec, 0));
	/* Another thread's, or another kind of record. */
	rec->tid = TID + 1;
	CHECK(!pyx_stackview__native_after(&py, rec, rec->hdr.size));
	rec->tid = TID;
	rec->hdr.type = PYX_REC_PYSTACK;
	CHECK(!pyx_stackview__native_after(&py, rec, rec->hdr.size));
	rec->hdr.type = PYX_REC_NATIVE;
	/* Sizes that do not hold the fixed part, or the stack it claims. */
	rec->hdr.size = (__u32)fixed - 8;
	rec->stack_len = 0;
	CHECK(!pyx_stackview__native_after(&py, rec, sizeof(*rec)));
	rec->hdr.size = (__u32)fixed + 100;
	rec->stack_len = 101;
	CHECK(!pyx_stackview__native_after(&py, rec, sizeof(*rec)));
	rec->stack_len = 100;
	CHECK(pyx_stackview__native_after(&py, rec, sizeof(*rec)) == rec);
	free(rec);
}

/* Everything the view printed, text or JSON, for one build. */
static char *print(struct pyx_stackview *v, bool json)
{
	struct pyx_json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (json) {
		pyx_json_init(&j, out);
		pyx_stackview__print_json(v, &j);
	} else {
		pyx_stackview__print_text(v, out, "  ");
	}
	fclose(out);
	return buf;
}

static void check_printed(struct pyx_stackview *v, bool json, const char *want)
{
	char *got = print(v, json);

	CHECK_STR(got, want);
	free(got);
}

static void add_frame(struct pyx_rec_pystack *rec, __u64 code, __u32 flags)
{
	rec->frames[rec->nr_frames++] = (struct pyx_pyframe){.code = code, .flags = flags};
}

static void test_python_only(void)
{
	/* Nothing is ever read: any layout pyx_code_cache__new() accepts. */
	const struct pyx_code_layout code = {.lines = PYX_LINES_LNOTAB,
					     .instr_model = PYX_INSTR_LASTI_BYTES,
					     .co_qualname = PYX_OFF_NONE,
					     .bytes_data = 8};
	struct pyx_process alive = {.pid = getpid()}, gone = {.pid = 0x3ffffe};
	struct pyx_python_layout layout = {.code = code};
	struct pyx_rec_pystack *rec = calloc(1, sizeof(*rec));
	struct pyx_rec_native *nrec = native_rec(TID, 0, 0);
	struct pyx_code_cache *cache;
	struct pyx_python py = {0};
	struct pyx_ctx ctx = {0};
	struct pyx_stackview *v;

	cache = pyx_code_cache__new(&code, (struct pyx_mem){.read = unmapped_read});
	if (!CHECK(cache))
		return;
	v = pyx_stackview__new(&ctx, &alive, &py, &layout, cache, NULL);
	if (!CHECK(v))
		return;

	/* No thread state: no frames, and no note either. */
	rec->tid = TID;
	rec->status = PYX_WALK_NO_THREAD_STATE;
	CHECK_EQ(pyx_stackview__build(v, rec, NULL, false), 0);
	check_printed(v, false, "");
	check_printed(v, true, "[]");
	rec->status = PYX_WALK_OK;
	CHECK_EQ(pyx_stackview__build(v, rec, NULL, false), 0);
	check_printed(v, false, "  (no Python frames)\n");

	/*
	 * Innermost first: a shim, A (a 3.11 entry frame: C code called it),
	 * a shim, B, a shim. Python-only, a boundary shows only between two
	 * Python frames, once.
	 */
	add_frame(rec, 0, PYX_FRAME_C_SHIM);
	add_frame(rec, 0xa0, PYX_FRAME_ENTRY);
	add_frame(rec, 0, PYX_FRAME_C_SHIM);
	add_frame(rec, 0xb0, 0);
	add_frame(rec, 0, PYX_FRAME_C_SHIM);
	rec->status = PYX_WALK_TORN;
	/* Without an unwinder the native record is ignored. */
	CHECK_EQ(pyx_stackview__build(v, rec, nrec, false), 3);
	CHECK(!pyx_stackview__approximate(v));
	CHECK(!pyx_stackview__partial(v));
	check_printed(
		v, false,
		"  <unreadable code object 0xb0>\n"
		"  [C code]\n"
		"  <unreadable code object 0xa0>\n"
		"  [the stack changed while it was read: frames above are complete, others were skipped]\n");
	check_printed(v, true,
		      "[{\"kind\":\"python\",\"function\":null,\"qualname\":null,\"file\":null,"
		      "\"line\":null,\"code\":\"0xa0\"},"
		      "{\"kind\":\"boundary\"},"
		      "{\"kind\":\"python\",\"function\":null,\"qualname\":null,\"file\":null,"
		      "\"line\":null,\"code\":\"0xb0\"}]");

	/* Keys, outermost first: B, the boundary, A; the outer two skipped when printing. */
	{
		uint64_t keys[8];
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);

		CHECK_EQ(pyx_stackview__keys(v, keys, 8), 3);
		CHECK(keys[0] == 0xb0 * 31 && keys[1] == 1 && keys[2] == 0xa0 * 31);
		CHECK_EQ(pyx_stackview__keys(v, keys, 2), 2);
		pyx_stackview__print_text_from(v, out, "  ", 2);
		fclose(out);
		CHECK_STR(
			buf,
			"  ... (2 outer frames as above)\n"
			"  <unreadable code object 0xa0>\n"
			"  [the stack changed while it was read: frames above are complete, others were skipped]\n");
		free(buf);
	}

	rec->status = PYX_WALK_TRUNCATED;
	CHECK_EQ(pyx_stackview__build(v, rec, NULL, false), 3);
	check_printed(v, false,
		      "  ... more frames (only the innermost 128 are shown)\n"
		      "  <unreadable code object 0xb0>\n"
		      "  [C code]\n"
		      "  <unreadable code object 0xa0>\n");
	pyx_stackview__free(v);

	/* Unreadable because the process is gone: the stack is partial. */
	v = pyx_stackview__new(&ctx, &gone, &py, &layout, cache, NULL);
	if (CHECK(v)) {
		CHECK_EQ(pyx_stackview__build(v, rec, NULL, false), 3);
		CHECK(pyx_stackview__partial(v));
		rec->nr_frames = 1;
		CHECK_EQ(pyx_stackview__build(v, rec, NULL, false), 0);
		CHECK(!pyx_stackview__partial(v));
	}
	pyx_stackview__free(v);
	pyx_code_cache__free(cache);
	free(nrec);
	free(rec);
}

int main(void)
{
	test_native_after();
	test_python_only();
	return check_done();
}
