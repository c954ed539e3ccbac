// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace stack: the Python stack of every thread of a live process,
 * without stopping it (a BPF task iterator reads each thread's frames;
 * names and lines are decoded here from the target's code objects).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/types.h>
#include <pyxtrace/stack.h>

#include "stack.skel.h"
#include "cmd/cmd.h"
#include "output/json.h"
#include "output/objects.h"
#include "python/code.h"
#include "python/detect.h"
#include "python/layout.h"
#include "session.h"
#include "target/launch.h"
#include "target/process.h"
#include "util/log.h"

PYX_SKEL_OPS(stack_bpf);

struct stack_run {
	struct pyx_ctx *ctx;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct bpf_link *iter_link; /* owned by the session */
	char *data;		    /* every record the iterator wrote */
	size_t size;
	bool partial; /* the target went away while we read it */
};

static void stack_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s stack [-p PID [--container ID] | -- CMD [ARGS...]] [--json] [-o FILE]\n"
		"\n"
		"The Python stack of every thread of a live process, innermost frame last,\n"
		"like a traceback: function, file and line being executed, and where C code\n"
		"sits between Python frames. Threads blocked in system calls included. The\n"
		"process is never stopped: its memory is read by a BPF task iterator.\n",
		prog);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s stack -p 1234\n"
		"  %s stack --container 3f2a9c -p 1 --json\n",
		prog, prog);
}

static int stack_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct stack_run *run = cookie;
	struct stack_bpf *skel = skel_ptr;
	LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info linfo = {};
	int err;

	/* Only this process's threads: the kernel skips every other task. */
	linfo.task.pid = (__u32)run->proc->pid;
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	run->iter_link = bpf_program__attach_iter(skel->progs.dump_thread, &opts);
	if (!run->iter_link) {
		err = -errno;
		pyx_error(run->ctx, "cannot create the task iterator: %s", strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, run->iter_link);
}

/* Run the iterator once: every thread of the target, one record each. */
static int read_iterator(struct stack_run *run)
{
	size_t cap = 64 * 1024;
	ssize_t n;
	int fd;

	fd = bpf_iter_create(bpf_link__fd(run->iter_link));
	if (fd < 0)
		return -errno;
	run->data = malloc(cap);
	if (!run->data) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (cap - run->size < 8192) {
			char *grown = realloc(run->data, cap * 2);

			if (!grown) {
				close(fd);
				return -ENOMEM;
			}
			run->data = grown;
			cap *= 2;
		}
		n = read(fd, run->data + run->size, cap - run->size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (n == 0)
			break;
		run->size += (size_t)n;
	}
	close(fd);
	return 0;
}

static int mem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return pyx_process__read(ctx, addr, buf, len);
}

static const char *walk_status_name(__u32 status)
{
	switch (status) {
	case PYX_WALK_OK:
		return "ok";
	case PYX_WALK_TRUNCATED:
		return "truncated";
	case PYX_WALK_TORN:
		return "torn";
	case PYX_WALK_NO_THREAD_STATE:
		return "no-thread-state";
	default:
		return "unknown";
	}
}

/* NSpid of a thread: its TID inside the target's PID namespace. */
static pid_t ns_tid_of(pid_t pid, pid_t tid)
{
	char path[64], line[256];
	pid_t ns_tid = tid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (tok = strtok_r(line + 6, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
			ns_tid = (pid_t)atoi(tok);
		break;
	}
	fclose(f);
	return ns_tid;
}

/* One resolved frame of a thread, innermost first. */
struct out_frame {
	bool boundary;
	bool resolved;
	struct pyx_frame_info info;
	uint64_t code;
};

/*
 * Turn the walker's frames into what a traceback shows: resolved Python
 * frames, incomplete ones dropped, and a boundary wherever C code runs
 * between two Python frames (a 3.12+ shim frame, or below a 3.11 entry
 * frame). Boundaries with no Python frame outside them are dropped: the
 * thread's own start-up code is not news.
 */
static size_t resolve_frames(struct stack_run *run, struct pyx_code_cache *cache,
			     const struct pyx_rec_pystack *rec, struct out_frame *out)
{
	size_t n = 0, last_python = 0;
	bool any_python = false;
	__u32 i;

	for (i = 0; i < rec->nr_frames && i < PYX_MAX_FRAMES; i++) {
		const struct pyx_pyframe *f = &rec->frames[i];
		struct out_frame *o = &out[n];

		memset(o, 0, sizeof(*o));
		if (f->flags & PYX_FRAME_C_SHIM) {
			if (n && !out[n - 1].boundary) {
				o->boundary = true;
				n++;
			}
			continue;
		}
		o->code = f->code;
		if (pyx_code_cache__resolve(cache, f->code, f->guard, f->instr,
					    f->flags & PYX_FRAME_GENERATOR, &o->info)) {
			if (!pyx_process__alive(run->proc))
				run->partial = true;
		} else if (o->info.incomplete) {
			continue;
		} else {
			o->resolved = true;
		}
		n++;
		any_python = true;
		last_python = n;
		if ((f->flags & PYX_FRAME_ENTRY) && i + 1 < rec->nr_frames) {
			out[n].boundary = true;
			out[n].resolved = false;
			n++;
		}
	}
	return any_python ? last_python : 0;
}

static void print_frame_json(struct pyx_json *json, const struct out_frame *f)
{
	pyx_json_object_begin(json);
	if (f->boundary) {
		pyx_json_kv_string(json, "kind", "boundary");
	} else {
		pyx_json_kv_string(json, "kind", "python");
		pyx_json_kv_string(json, "function", f->resolved ? f->info.function : NULL);
		pyx_json_kv_string(json, "qualname", f->resolved ? f->info.qualname : NULL);
		pyx_json_kv_string(json, "file", f->resolved ? f->info.file : NULL);
		if (f->resolved && f->info.line > 0)
			pyx_json_kv_i64(json, "line", f->info.line);
		else
			pyx_json_kv_null(json, "line");
		pyx_json_kv_hex(json, "code", f->code);
	}
	pyx_json_object_end(json);
}

static void print_thread_text(FILE *out, const struct pyx_rec_pystack *rec, pid_t ns_tid,
			      const struct out_frame *frames, size_t n)
{
	static const char *const gil[] = { "", ", holds the GIL", "" };
	size_t i;

	fprintf(out, "\nThread %u", rec->tid);
	if ((__u32)ns_tid != rec->tid)
		fprintf(out, " (tid %d in container)", ns_tid);
	fprintf(out, " \"%.*s\"%s", PYX_COMM_LEN, rec->comm, gil[rec->holds_gil > 2 ? 2 : rec->holds_gil]);
	if (rec->status == PYX_WALK_NO_THREAD_STATE) {
		fputs(": not a Python thread\n", out);
		return;
	}
	fputs(":\n  Traceback (most recent call last):\n", out);
	if (rec->status == PYX_WALK_TRUNCATED)
		fprintf(out, "    ... more frames (only the innermost %d are shown)\n", PYX_MAX_FRAMES);
	for (i = n; i-- > 0;) {
		const struct out_frame *f = &frames[i];

		if (f->boundary)
			fputs("    [C code]\n", out);
		else if (!f->resolved)
			fprintf(out, "    <unreadable code object 0x%" PRIx64 ">\n", f->code);
		else
			fprintf(out, "    File \"%s\", line %d, in %s\n", f->info.file, f->info.line,
				f->info.qualname);
	}
	if (rec->status == PYX_WALK_TORN)
		fputs("    [the stack changed while it was read: frames above are complete, others were skipped]\n",
		      out);
	if (!n && rec->status == PYX_WALK_OK)
		fputs("    (no Python frames)\n", out);
}

static int print_stacks(struct stack_run *run)
{
	struct pyx_mem mem = { .read = mem_read, .ctx = run->proc };
	struct pyx_ctx *ctx = run->ctx;
	struct pyx_code_cache *cache;
	struct out_frame *frames;
	struct pyx_json json;
	size_t off, nthreads = 0;
	char label[160];

	cache = pyx_code_cache__new(&run->layout.code, mem);
	frames = calloc(PYX_MAX_FRAMES * 2, sizeof(*frames));
	if (!cache || !frames) {
		pyx_code_cache__free(cache);
		free(frames);
		pyx_error(ctx, "out of memory");
		return PYX_EXIT_FAILURE;
	}
	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_hdr *hdr = (const void *)(run->data + off);

		if (hdr->size < sizeof(*hdr) || off + hdr->size > run->size)
			break;
		nthreads++;
		off += hdr->size;
	}
	if (ctx->json) {
		pyx_json_init(&json, ctx->out);
		pyx_json_object_begin(&json);
		pyx_out_process(&json, "process", run->proc);
		pyx_out_python(&json, "python", run->py);
		pyx_json_key(&json, "threads");
		pyx_json_array_begin(&json);
	} else {
		fprintf(ctx->out, "Process %s: Python %s, %zu thread%s\n",
			pyx_process_label(run->proc, label, sizeof(label)), run->py->version, nthreads,
			nthreads == 1 ? "" : "s");
	}
	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_pystack *rec = (const void *)(run->data + off);
		size_t n, i;
		pid_t ns_tid;

		if (rec->hdr.size < sizeof(rec->hdr) || off + rec->hdr.size > run->size)
			break;
		off += rec->hdr.size;
		if (rec->hdr.type != PYX_REC_PYSTACK)
			continue;
		n = resolve_frames(run, cache, rec, frames);
		ns_tid = ns_tid_of(run->proc->pid, (pid_t)rec->tid);
		if (!ctx->json) {
			print_thread_text(ctx->out, rec, ns_tid, frames, n);
			continue;
		}
		pyx_json_object_begin(&json);
		pyx_json_kv_u64(&json, "tid", rec->tid);
		pyx_json_kv_i64(&json, "ns_tid", ns_tid);
		pyx_json_key(&json, "name");
		pyx_json_string_len(&json, rec->comm, strnlen(rec->comm, sizeof(rec->comm)));
		if (rec->holds_gil <= 1)
			pyx_json_kv_bool(&json, "holds_gil", rec->holds_gil);
		else
			pyx_json_kv_null(&json, "holds_gil");
		if (rec->status == PYX_WALK_NO_THREAD_STATE)
			pyx_json_kv_null(&json, "interpreter");
		else
			pyx_json_kv_u64(&json, "interpreter", rec->interp_id);
		pyx_json_kv_string(&json, "status", walk_status_name(rec->status));
		pyx_json_kv_bool(&json, "truncated", rec->status == PYX_WALK_TRUNCATED);
		pyx_json_key(&json, "frames");
		pyx_json_array_begin(&json);
		for (i = 0; i < n; i++)
			print_frame_json(&json, &frames[i]);
		pyx_json_array_end(&json);
		pyx_json_object_end(&json);
	}
	if (ctx->json) {
		pyx_json_array_end(&json);
		pyx_json_kv_bool(&json, "partial", run->partial);
		pyx_json_key(&json, "offsets");
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "source", run->layout.source);
		pyx_json_kv_string(&json, "crosscheck",
				   run->layout.crosscheck[0] ? run->layout.crosscheck : NULL);
		pyx_json_object_end(&json);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
	} else if (run->partial) {
		fputs("\n(the process exited while it was read: stacks above may be partial)\n",
		      ctx->out);
	}
	free(frames);
	pyx_code_cache__free(cache);
	return PYX_EXIT_OK;
}

static int stack_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common)
{
	struct stack_run run = { .ctx = ctx };
	struct pyx_stack_cfg cfg = {};
	struct pyx_session_opts opts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = &run,
		.attach = stack_attach,
		.resume_pid = common->resume_pid,
	};
	struct pyx_session *session = NULL;
	int err, ret = PYX_EXIT_FAILURE;
	char why[512];

	err = pyx_cmd_open_target(ctx, common, &run.proc);
	if (err)
		return err;
	err = pyx_python__detect(run.proc, &run.py, why, sizeof(why));
	if (!err)
		err = pyx_python__layout(run.py, run.proc, &run.layout, why, sizeof(why));
	if (err) {
		pyx_error(ctx, "%s", why);
		goto out_free;
	}
	cfg.tgid = (__u32)run.proc->pid;
	cfg.layout = run.layout.walk;
	err = pyx_session__start(&session, &stack_bpf_ops, &opts);
	if (err)
		goto out_free;
	err = read_iterator(&run);
	if (err) {
		pyx_error(ctx, "reading the threads of process %d failed: %s", run.proc->pid,
			  strerror(-err));
		goto out_destroy;
	}
	if (!run.size && !pyx_process__alive(run.proc)) {
		pyx_error(ctx, "process %d exited before its threads could be read", run.proc->pid);
		goto out_destroy;
	}
	ret = print_stacks(&run);
out_destroy:
	pyx_session__destroy(session);
out_free:
	free(run.data);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
	return ret;
}

static int stack_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct pyx_common_opts common;
	int err, ret;

	err = pyx_cmd_parse(ctx, &pyx_cmd_stack, PYX_OPT_TARGET | PYX_OPT_OUTPUT, argc, argv, NULL,
			    NULL, NULL, NULL, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	pyx_log_setup_libbpf(ctx);
	if (!common.pid && !common.launch_argv)
		return pyx_usage_error(ctx, &pyx_cmd_stack, "a target is required: -p PID or -- CMD");
	if (pyx_cmd_open_output(ctx))
		return PYX_EXIT_FAILURE;
	if (common.launch_argv)
		ret = pyx_launch_run(ctx, &common, stack_target);
	else
		ret = stack_target(ctx, &common);
	if (pyx_cmd_close_output(ctx) && ret == PYX_EXIT_OK)
		ret = PYX_EXIT_FAILURE;
	return ret;
}

const struct pyx_cmd pyx_cmd_stack = {
	.name = "stack",
	.summary = "Python stacks of every thread, without stopping the process",
	.usage = stack_usage,
	.run = stack_run,
};
