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
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/types.h>
#include <pyxtrace/stack.h>

#include <linux/perf_event.h>
#include <pyxtrace/sample.h>
#include <sys/syscall.h>

#include "sample.skel.h"
#include "stack.skel.h"
#include "cmd/cmd.h"
#include "output/json.h"
#include "output/objects.h"
#include "python/code.h"
#include "python/detect.h"
#include "python/layout.h"
#include "session.h"
#include "target/process.h"
#include "unwind/mixed.h"
#include "unwind/unwind.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(stack_bpf);
PYX_SKEL_OPS(sample_bpf);

/* How long to wait for running threads to be sampled in themselves (--native). */
#define SAMPLE_WAIT_NS (200ull * 1000 * 1000)
/* cpu-clock period of the per-thread sampling event: a running thread is caught within it. */
#define SAMPLE_PERIOD_NS 100000

/* One resolved frame of a thread, innermost first. */
struct out_frame {
	bool boundary;
	bool resolved;
	struct pyx_frame_info info;
	uint64_t code;
};

#define STACK_DEFAULT_STACK_BYTES (16 * 1024)
#define STACK_MAX_NATIVE	  256 /* native frames per thread, inlined ones included */

/* One line of a printed stack: a Python frame, a native frame, or a C boundary marker. */
struct disp_frame {
	const struct out_frame *py;	       /* Python frame or boundary */
	const struct pyx_native_frame *native; /* or a native frame */
};

struct stack_opts {
	bool thread_lists;    /* --thread-lookup list: skip the gilstate fast path */
	bool native;	      /* --native: mixed native and Python stacks */
	__u32 stack_bytes;    /* --stack-size */
	unsigned long count;  /* snapshots to take; 0 = until -d or Ctrl-C */
	uint64_t interval_ns; /* between snapshots */
	bool interval_set;
	bool count_set;
};

/* An exact snapshot of a thread that was running (--native), both halves of its stack. */
struct sampled {
	__u32 tid;
	struct pyx_rec_pystack *py;
	struct pyx_rec_native *native;
};

struct stack_run {
	struct pyx_ctx *ctx;
	const struct stack_opts *opts;
	struct pyx_code_cache *cache;
	struct out_frame *frames;
	struct pyx_unwinder *unwinder;
	struct pyx_native_frame *native;
	struct pyx_mixed *mixed;
	struct disp_frame *disp;
	bool *boundaries;
	struct sampled *sampled; /* exact snapshots of running threads (--native), by tid */
	size_t nr_sampled;
	unsigned long snapshots;
	size_t cap;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct bpf_link *iter_link; /* owned by the session */
	char *data;		    /* every record the iterator wrote */
	size_t size;
	bool partial; /* the target went away while we read it */
	bool target_exited;
};

static void stack_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s stack [-p PID [--container ID] | -- CMD [ARGS...]] [--count N] [-i TIME]\n"
		"       [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"The Python stack of every thread of a live process, innermost frame last,\n"
		"like a traceback: function, file and line being executed, and where C code\n"
		"sits between Python frames. Threads blocked in system calls included. The\n"
		"process is never stopped: its memory is read by a BPF task iterator.\n"
		"\n"
		"Options:\n"
		"  -n, --count N          take N snapshots (default 1; 0 = until -d or Ctrl-C)\n"
		"  -i, --interval TIME    between snapshots (default 1s)\n"
		"      --native           mixed stacks: the C frames (symbols, files, lines, inlined\n"
		"                         calls) with the Python frames each eval-loop frame runs\n"
		"      --stack-size SIZE  user stack copied per thread for --native (default 16K)\n"
		"      --thread-lookup auto|list\n"
		"                         find thread states through the gilstate slot when the\n"
		"                         build has one (auto), or always through the thread lists\n",
		prog);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s stack -p 1234\n"
		"  %s stack --container 3f2a9c -p 1 --json\n"
		"  %s stack -p 1234 -n 0 -i 100ms -d 10s     a snapshot every 100 ms for 10 s\n"
		"  %s stack --native -p 1234                 C and Python frames, like gdb bt + py-bt\n",
		prog, prog, prog, prog);
}

/* Native captures need one stack buffer per CPU; without them, keep the map tiny. */
static int stack_prepare(void *cookie, void *skel_ptr)
{
	struct stack_run *run = cookie;
	struct stack_bpf *skel = skel_ptr;
	int cpus = libbpf_num_possible_cpus();

	if (!run->opts->native)
		return 0;
	if (cpus < 1)
		return cpus ? cpus : -EINVAL;
	return bpf_map__set_max_entries(skel->maps.native_map, (__u32)cpus);
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
	run->size = 0;
	if (!run->data) {
		run->data = malloc(cap);
		if (!run->data) {
			close(fd);
			return -ENOMEM;
		}
		run->cap = cap;
	}
	for (;;) {
		if (run->cap - run->size < 8192) {
			char *grown = realloc(run->data, run->cap * 2);

			if (!grown) {
				close(fd);
				return -ENOMEM;
			}
			run->data = grown;
			run->cap *= 2;
		}
		n = read(fd, run->data + run->size, run->cap - run->size);
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

/*
 * Turn the walker's frames into resolved frames, innermost first: Python
 * frames (incomplete ones dropped, as tracebacks do) and one boundary per
 * C activation edge — a 3.12+ shim frame, or right outside a 3.11 entry
 * frame. Every boundary is kept here (mixing with native frames pairs
 * activations by them); display_python() thins them for Python-only views.
 */
static size_t resolve_frames(struct stack_run *run, struct pyx_code_cache *cache,
			     const struct pyx_rec_pystack *rec, struct out_frame *out)
{
	size_t n = 0;
	__u32 i;

	for (i = 0; i < rec->nr_frames && i < PYX_MAX_FRAMES; i++) {
		const struct pyx_pyframe *f = &rec->frames[i];
		struct out_frame *o = &out[n];

		memset(o, 0, sizeof(*o));
		if (f->flags & PYX_FRAME_C_SHIM) {
			o->boundary = true;
			n++;
			continue;
		}
		o->code = f->code;
		if (pyx_code_cache__resolve(cache, f->code,
					    (f->flags & PYX_FRAME_GUARDED) ? f->guard
									   : PYX_CODE_NO_GUARD,
					    f->instr, f->flags & PYX_FRAME_GENERATOR, &o->info)) {
			if (!pyx_process__alive(run->proc))
				run->partial = true;
		} else if (o->info.shim) {
			o->boundary = true;
			n++;
			continue;
		} else if (o->info.incomplete) {
			continue;
		} else {
			o->resolved = true;
		}
		n++;
		if (f->flags & PYX_FRAME_ENTRY) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].boundary = true;
			n++;
		}
	}
	return n;
}

/*
 * The Python-only view: a boundary only between two Python frames, once.
 * Compacts @frames in place and returns the new count.
 */
static size_t display_python(struct out_frame *frames, size_t n)
{
	size_t i, kept = 0;

	for (i = 0; i < n; i++) {
		if (frames[i].boundary && (!kept || frames[kept - 1].boundary))
			continue;
		frames[kept++] = frames[i];
	}
	while (kept && frames[kept - 1].boundary)
		kept--;
	return kept;
}

static void print_frame_json(struct pyx_json *json, const struct disp_frame *d, bool approximate)
{
	const struct pyx_native_frame *nf = d->native;
	const struct out_frame *f = d->py;

	pyx_json_object_begin(json);
	if (nf) {
		pyx_json_kv_string(json, "kind", "native");
		pyx_json_kv_string(json, "function", nf->symbol);
		pyx_json_kv_string(json, "object", nf->object);
		pyx_json_kv_hex(json, "offset", nf->object_offset);
		pyx_json_kv_hex(json, "address", nf->pc);
		pyx_json_kv_string(json, "file", nf->file);
		if (nf->line > 0)
			pyx_json_kv_i64(json, "line", nf->line);
		else
			pyx_json_kv_null(json, "line");
		pyx_json_kv_bool(json, "inlined", nf->inlined);
		pyx_json_kv_bool(json, "approximate", approximate);
	} else if (f->boundary) {
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

static void print_native_text(FILE *out, const struct pyx_native_frame *nf)
{
	fputs("    ", out);
	if (nf->symbol)
		fprintf(out, "%s%s+0x%" PRIx64, nf->inlined ? "(inlined) " : "", nf->symbol,
			nf->symbol_offset);
	else
		fprintf(out, "0x%" PRIx64, nf->pc);
	if (nf->object)
		fprintf(out, " in %s+0x%" PRIx64, pyx_basename(nf->object), nf->object_offset);
	if (nf->file)
		fprintf(out, " at %s:%d", nf->file, nf->line);
	fputc('\n', out);
}

static void print_thread_text(FILE *out, const struct pyx_rec_pystack *rec, pid_t ns_tid,
			      const struct disp_frame *frames, size_t n, bool approximate)
{
	static const char *const gil[] = {"", ", holds the GIL", ""};
	size_t i;

	fprintf(out, "\nThread %u", rec->tid);
	if ((__u32)ns_tid != rec->tid)
		fprintf(out, " (tid %d in container)", ns_tid);
	fprintf(out, " \"%.*s\"%s", PYX_COMM_LEN, rec->comm,
		gil[rec->holds_gil > 2 ? 2 : rec->holds_gil]);
	if (rec->status == PYX_WALK_NO_THREAD_STATE && !n) {
		fputs(": not a Python thread\n", out);
		return;
	}
	fputs(":\n  Traceback (most recent call last):\n", out);
	if (rec->status == PYX_WALK_TRUNCATED)
		fprintf(out, "    ... more frames (only the innermost %d are shown)\n",
			PYX_MAX_FRAMES);
	for (i = n; i-- > 0;) {
		const struct out_frame *f = frames[i].py;

		if (frames[i].native)
			print_native_text(out, frames[i].native);
		else if (f->boundary)
			fputs("    [C code]\n", out);
		else if (!f->resolved)
			fprintf(out, "    <unreadable code object 0x%" PRIx64 ">\n", f->code);
		else
			fprintf(out, "    File \"%s\", line %d, in %s\n", f->info.file,
				f->info.line, f->info.qualname);
	}
	if (approximate)
		fputs("    [native frames approximate: the thread was running on a CPU when read]\n",
		      out);
	if (rec->status == PYX_WALK_TORN)
		fputs("    [the stack changed while it was read: frames above are complete, others were skipped]\n",
		      out);
	if (!n && rec->status == PYX_WALK_OK)
		fputs("    (no Python frames)\n", out);
}

/* Whether a native frame is an activation of the interpreter's eval loop (or its .cold part). */
static bool is_eval_frame(void *cookie, const struct pyx_native_frame *frame)
{
	const struct pyx_python_symbol_info *eval = cookie;
	static const char name[] = "_PyEval_EvalFrameDefault";

	if (frame->symbol && !strncmp(frame->symbol, name, sizeof(name) - 1) &&
	    (frame->symbol[sizeof(name) - 1] == '\0' || frame->symbol[sizeof(name) - 1] == '.'))
		return true;
	return eval->origin && eval->size && frame->lookup_pc >= eval->address &&
	       frame->lookup_pc < eval->address + eval->size;
}

/*
 * The frames of one thread to print: Python-only, or merged with its
 * native frames when they were captured. Returns the count in run->disp.
 */
static struct sampled *find_sampled(struct stack_run *run, __u32 tid);

static size_t thread_frames(struct stack_run *run, const struct pyx_rec_pystack *rec,
			    const struct pyx_rec_native *nrec, bool *approximate)
{
	size_t n = resolve_frames(run, run->cache, rec, run->frames), n_native = 0, n_mixed, i;
	struct pyx_stack_copy copy;
	struct pyx_regs regs;

	*approximate = false;
	if (!nrec || !run->unwinder) {
		n = display_python(run->frames, n);
		for (i = 0; i < n; i++)
			run->disp[i] = (struct disp_frame){.py = &run->frames[i]};
		return n;
	}
	_Static_assert(sizeof(regs) == sizeof(nrec->regs), "pt_regs order");
	memcpy(&regs, nrec->regs, sizeof(regs));
	copy.start = nrec->stack_start;
	copy.data = nrec->stack;
	copy.len = nrec->stack_len;
	*approximate = nrec->flags & PYX_NATIVE_APPROXIMATE;
	if (pyx_unwinder__unwind(run->unwinder, (pid_t)rec->tid, &regs, &copy, false, run->native,
				 STACK_MAX_NATIVE, &n_native))
		n_native = 0;
	pyx_debug(run->ctx, "thread %u: ip 0x%llx sp 0x%llx, %u stack bytes%s%s, %zu native frames",
		  rec->tid, (unsigned long long)regs.ip, (unsigned long long)regs.sp,
		  nrec->stack_len, (nrec->flags & PYX_NATIVE_NO_STACK) ? " (copy failed)" : "",
		  (nrec->flags & PYX_NATIVE_APPROXIMATE) ? " (approximate)" : "", n_native);
	for (i = 0; i < n; i++)
		run->boundaries[i] = run->frames[i].boundary;
	n_mixed = pyx_mix_stacks(run->native, n_native, run->boundaries, n,
				 run->layout.walk.frame_model == PYX_FRAMES_OBJECTS, is_eval_frame,
				 &run->py->symbols[PYX_SYM_EVAL_FRAME], run->mixed,
				 STACK_MAX_NATIVE + PYX_MAX_FRAMES * 2);
	for (i = 0; i < n_mixed; i++) {
		if (run->mixed[i].kind == PYX_MIXED_NATIVE)
			run->disp[i] =
				(struct disp_frame){.native = &run->native[run->mixed[i].index]};
		else
			run->disp[i] = (struct disp_frame){.py = &run->frames[run->mixed[i].index]};
	}
	return n_mixed;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void print_stacks(struct stack_run *run, bool final)
{
	struct pyx_ctx *ctx = run->ctx;
	struct pyx_json json;
	size_t off, nthreads = 0;
	char label[160];

	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_hdr *hdr = (const void *)(run->data + off);

		if (hdr->size < sizeof(*hdr) || off + hdr->size > run->size)
			break;
		nthreads += hdr->type == PYX_REC_PYSTACK;
		off += hdr->size;
	}
	if (ctx->json) {
		pyx_json_init(&json, ctx->out);
		pyx_json_object_begin(&json);
		pyx_json_kv_u64(&json, "time_ns", realtime_ns());
		pyx_out_process(&json, "process", run->proc);
		pyx_out_python(&json, "python", run->py);
		pyx_json_key(&json, "threads");
		pyx_json_array_begin(&json);
	} else if (run->target_exited) {
		fprintf(ctx->out, "\nProcess %d exited.\n", run->proc->pid);
		return;
	} else {
		if (run->snapshots)
			fputs("\n", ctx->out);
		fprintf(ctx->out, "Process %s: Python %s, %zu thread%s\n",
			pyx_process_label(run->proc, label, sizeof(label)), run->py->version,
			nthreads, nthreads == 1 ? "" : "s");
	}
	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_pystack *rec = (const void *)(run->data + off);
		const struct pyx_rec_native *nrec = NULL;
		bool approximate;
		size_t n, i;
		pid_t ns_tid;

		if (rec->hdr.size < sizeof(rec->hdr) || off + rec->hdr.size > run->size)
			break;
		off += rec->hdr.size;
		if (rec->hdr.type != PYX_REC_PYSTACK)
			continue;
		/* With --native, the thread's registers and stack follow its Python frames. */
		if (off + sizeof(struct pyx_rec_hdr) <= run->size) {
			const struct pyx_rec_native *next = (const void *)(run->data + off);

			if (next->hdr.type == PYX_REC_NATIVE && off + next->hdr.size <= run->size &&
			    next->hdr.size >= sizeof(*next) - sizeof(next->stack) &&
			    next->hdr.size - (sizeof(*next) - sizeof(next->stack)) >=
				    next->stack_len &&
			    next->tid == rec->tid) {
				nrec = next;
				off += next->hdr.size;
			}
		}
		if (nrec && (nrec->flags & PYX_NATIVE_APPROXIMATE)) {
			struct sampled *sm = find_sampled(run, rec->tid);

			/* The exact sample of a running thread replaces both halves. */
			if (sm && sm->py && sm->native) {
				rec = sm->py;
				nrec = sm->native;
			}
		}
		n = thread_frames(run, rec, nrec, &approximate);
		ns_tid = pyx_ns_pid_of(run->proc->pid, (pid_t)rec->tid);
		if (!ns_tid)
			ns_tid = (pid_t)rec->tid;
		if (!ctx->json) {
			print_thread_text(ctx->out, rec, ns_tid, run->disp, n, approximate);
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
		pyx_json_kv_string(&json, "tstate_source",
				   rec->tstate_source == PYX_TSTATE_FAST	  ? "gilstate"
				   : rec->tstate_source == PYX_TSTATE_THREAD_LIST ? "thread-list"
										  : NULL);
		pyx_json_kv_bool(&json, "truncated", rec->status == PYX_WALK_TRUNCATED);
		pyx_json_key(&json, "frames");
		pyx_json_array_begin(&json);
		for (i = 0; i < n; i++)
			print_frame_json(&json, &run->disp[i], approximate);
		pyx_json_array_end(&json);
		pyx_json_object_end(&json);
	}
	if (ctx->json) {
		pyx_json_array_end(&json);
		pyx_json_kv_bool(&json, "partial", run->partial);
		pyx_json_kv_bool(&json, "target_exited", run->target_exited);
		pyx_json_key(&json, "offsets");
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "source", run->layout.source);
		pyx_json_kv_string(&json, "crosscheck",
				   run->layout.crosscheck[0] ? run->layout.crosscheck : NULL);
		pyx_json_kv_string(&json, "fast_tstate", run->layout.fast_tstate);
		pyx_json_object_end(&json);
		pyx_json_kv_bool(&json, "final", final);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
	} else if (run->partial) {
		fputs("\n(the process exited while it was read: stacks above may be partial)\n",
		      ctx->out);
	}
	fflush(ctx->out);
	run->snapshots++;
}

static struct sampled *find_sampled(struct stack_run *run, __u32 tid)
{
	size_t i;

	for (i = 0; i < run->nr_sampled; i++)
		if (run->sampled[i].tid == tid)
			return &run->sampled[i];
	return NULL;
}

static void free_sampled(struct stack_run *run)
{
	size_t i;

	for (i = 0; i < run->nr_sampled; i++) {
		free(run->sampled[i].py);
		free(run->sampled[i].native);
	}
	run->nr_sampled = 0;
}

static int sample_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct stack_run *run = cookie;
	const __u32 *tid = (const __u32 *)(hdr + 1);
	struct sampled *s;
	void *copy;

	if ((hdr->type != PYX_REC_PYSTACK || size < sizeof(struct pyx_rec_pystack)) &&
	    (hdr->type != PYX_REC_NATIVE || size < sizeof(struct pyx_rec_native)))
		return 0;
	s = find_sampled(run, *tid);
	if (!s)
		return 0;
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, hdr, size);
	if (hdr->type == PYX_REC_PYSTACK) {
		free(s->py);
		s->py = copy;
	} else {
		free(s->native);
		s->native = copy;
	}
	return 0;
}

struct sample_ctx {
	struct stack_run *run;
	const __u32 *tids;
	size_t nr_tids;
};

static int sample_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct sample_ctx *sc = cookie;
	struct sample_bpf *skel = skel_ptr;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_period = SAMPLE_PERIOD_NS,
	};
	__u8 one = 1;
	size_t i;
	int err;

	for (i = 0; i < sc->nr_tids; i++) {
		struct bpf_link *link;
		int fd;

		/* Per thread, any CPU: it fires only while that thread runs. */
		fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)sc->tids[i], -1, -1,
				  PERF_FLAG_FD_CLOEXEC);
		if (fd < 0)
			continue; /* gone already */
		link = bpf_program__attach_perf_event(skel->progs.sample_thread, fd);
		if (!link) {
			err = -errno;
			close(fd);
			return err;
		}
		/* The link owns the event now: destroying it closes the fd. */
		err = pyx_session__add_link(session, link);
		if (err)
			return err;
		bpf_map__update_elem(skel->maps.wanted, &sc->tids[i], sizeof(sc->tids[i]), &one,
				     sizeof(one), BPF_ANY);
	}
	return 0;
}

/* Stop waiting once every thread asked for has both records. */
static int sample_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct sample_ctx *sc = cookie;
	size_t i;

	for (i = 0; i < sc->run->nr_sampled; i++)
		if (!sc->run->sampled[i].py || !sc->run->sampled[i].native)
			return 0;
	pyx_session__request_stop(session);
	return 0;
}

static int sample_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct sample_ctx *sc = cookie;

	return sample_on_record(sc->run, hdr, size);
}

/*
 * A thread that was running on a CPU has stale saved registers: sample it
 * in itself instead (its Python frames too, so both halves of the mixed
 * stack are from the same instant). Threads that stop running before a
 * sample fires keep their approximate frames.
 */
static void sample_running_threads(struct stack_run *run)
{
	struct pyx_sample_cfg cfg = {.tgid = (__u32)run->proc->pid};
	struct sample_ctx sc = {.run = run};
	struct pyx_session *session;
	__u32 *tids = NULL;
	size_t off, n = 0;
	int err;

	free_sampled(run);
	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_native *rec = (const void *)(run->data + off);

		if (rec->hdr.size < sizeof(rec->hdr) || off + rec->hdr.size > run->size)
			break;
		off += rec->hdr.size;
		if (rec->hdr.type != PYX_REC_NATIVE || !(rec->flags & PYX_NATIVE_APPROXIMATE))
			continue;
		tids = realloc(tids, (n + 1) * sizeof(*tids));
		run->sampled = realloc(run->sampled, (n + 1) * sizeof(*run->sampled));
		if (!tids || !run->sampled)
			goto out_free;
		tids[n] = rec->tid;
		run->sampled[n] = (struct sampled){.tid = rec->tid};
		n++;
		run->nr_sampled = n;
	}
	if (!n)
		goto out_free;
	cfg.stack_bytes = run->opts->stack_bytes;
	cfg.layout = run->layout.walk;
	sc.tids = tids;
	sc.nr_tids = n;
	struct pyx_session_opts opts = {
		.ctx = run->ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run->proc->pid,
		.duration_ns = SAMPLE_WAIT_NS,
		.interval_ns = 5 * 1000 * 1000,
		.cookie = &sc,
		.attach = sample_attach,
		.on_record = sample_record,
		.on_interval = sample_on_interval,
	};
	err = pyx_session__start(&session, &sample_bpf_ops, &opts);
	if (err)
		pyx_debug(run->ctx, "sampling running threads failed: %s", strerror(-err));
	if (!err) {
		struct sample_bpf *skel;

		pyx_session__run(session);
		skel = pyx_session__skel(session);
		pyx_debug(
			run->ctx,
			"sampled running threads: %zu asked, %llu ticks, %llu in the kernel, %llu taken",
			n, (unsigned long long)skel->bss->fired,
			(unsigned long long)skel->bss->in_kernel,
			(unsigned long long)skel->bss->taken);
		pyx_session__destroy(session);
	}
out_free:
	free(tids);
}

/* One snapshot: run the iterator, print. Returns 0 or -errno (already reported). */
static int take_snapshot(struct stack_run *run, bool final)
{
	struct pyx_code_cache *fresh;
	int err = read_iterator(run);

	/*
	 * Frames carry no reuse guard (stack skips that read to stay cheap), so
	 * code objects are trusted for one snapshot only: a fresh cache each time.
	 */
	if (run->snapshots) {
		fresh = pyx_code_cache__new(&run->layout.code,
					    (struct pyx_mem){.read = mem_read, .ctx = run->proc});
		if (!fresh)
			return -ENOMEM;
		pyx_code_cache__free(run->cache);
		run->cache = fresh;
	}

	if (err) {
		if (!pyx_process__alive(run->proc))
			return -ESRCH;
		pyx_error(run->ctx, "reading the threads of process %d failed: %s", run->proc->pid,
			  strerror(-err));
		return err;
	}
	if (!run->size && !pyx_process__alive(run->proc))
		return -ESRCH;
	if (run->opts->native && run->unwinder)
		sample_running_threads(run);
	print_stacks(run, final);
	return 0;
}

static int stack_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct stack_run *run = cookie;
	int err;

	/* The target is gone: close the stream with an empty final snapshot saying so. */
	if (final && pyx_session__stop_reason(session) == PYX_STOP_TARGET_EXIT) {
		run->size = 0;
		run->target_exited = true;
		print_stacks(run, true);
		return 0;
	}
	if (run->opts->count && run->snapshots >= run->opts->count)
		return 0;
	err = take_snapshot(run,
			    final || (run->opts->count && run->snapshots + 1 >= run->opts->count));
	if (err == -ESRCH) {
		pyx_session__request_stop(session);
		return 0;
	}
	if (err)
		return err;
	if (run->opts->count && run->snapshots >= run->opts->count)
		pyx_session__request_stop(session);
	return 0;
}

static int stack_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct stack_opts *sopts = cookie;
	struct stack_run run = {.ctx = ctx, .opts = sopts};
	struct pyx_stack_cfg cfg = {};
	struct pyx_session_opts opts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = &run,
		.prepare = stack_prepare,
		.attach = stack_attach,
		.on_interval = stack_on_interval,
		.resume_pid = common->resume_pid,
		.target_pid = common->pid,
		.interval_ns = sopts->interval_ns,
		.duration_ns = common->duration_ns,
	};
	struct pyx_session *session = NULL;
	int err, ret = PYX_EXIT_FAILURE;

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	cfg.tgid = (__u32)run.proc->pid;
	cfg.layout = run.layout.walk;
	if (sopts->thread_lists) {
		cfg.layout.tstate_fast = 0;
		run.layout.fast_tstate = NULL;
	}
	cfg.native = sopts->native;
	cfg.stack_bytes = sopts->stack_bytes;
	if (sopts->native) {
		/* Symbolization data is read now, while every object is still mapped. */
		run.unwinder = pyx_unwinder__new(run.proc);
		if (!run.unwinder)
			pyx_warn(ctx, "native unwinding unavailable: %s", strerror(errno));
	}
	err = pyx_session__start(&session, &stack_bpf_ops, &opts);
	if (err)
		goto out_free;
	run.cache = pyx_code_cache__new(&run.layout.code,
					(struct pyx_mem){.read = mem_read, .ctx = run.proc});
	run.frames = calloc(PYX_MAX_FRAMES * 2, sizeof(*run.frames));
	run.native = calloc(STACK_MAX_NATIVE, sizeof(*run.native));
	run.mixed = calloc(STACK_MAX_NATIVE + PYX_MAX_FRAMES * 2, sizeof(*run.mixed));
	run.disp = calloc(STACK_MAX_NATIVE + PYX_MAX_FRAMES * 2, sizeof(*run.disp));
	run.boundaries = calloc(PYX_MAX_FRAMES * 2, sizeof(*run.boundaries));
	if (!run.cache || !run.frames || !run.native || !run.mixed || !run.disp ||
	    !run.boundaries) {
		pyx_error(ctx, "out of memory");
		goto out_destroy;
	}
	if (sopts->count == 1) {
		err = take_snapshot(&run, true);
	} else {
		/* Snapshots on the session's timer: Ctrl-C, -d and the target's exit end it. */
		err = take_snapshot(&run, false);
		if (!err)
			err = pyx_session__run(session);
	}
	if (err == -ESRCH && !run.snapshots) {
		pyx_error(ctx, "process %d exited before its threads could be read", run.proc->pid);
		goto out_destroy;
	}
	/* A target that exits between snapshots is not an error: what was read is printed. */
	ret = (!err || err == -ESRCH) ? PYX_EXIT_OK : PYX_EXIT_FAILURE;
out_destroy:
	pyx_session__destroy(session);
out_free:
	free_sampled(&run);
	free(run.sampled);
	pyx_unwinder__free(run.unwinder);
	free(run.boundaries);
	free(run.disp);
	free(run.mixed);
	free(run.native);
	free(run.frames);
	pyx_code_cache__free(run.cache);
	free(run.data);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
	return ret;
}

enum {
	OPT_COUNT = 'n',
	OPT_INTERVAL = 'i',
	OPT_THREAD_LOOKUP = 0x2000,
	OPT_NATIVE,
	OPT_STACK_SIZE
};

static const struct option stack_options[] = {
	{"native", no_argument, NULL, OPT_NATIVE},
	{"stack-size", required_argument, NULL, OPT_STACK_SIZE},
	{"count", required_argument, NULL, OPT_COUNT},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"thread-lookup", required_argument, NULL, OPT_THREAD_LOOKUP},
	{},
};

static int stack_option(void *cookie, int val, const char *arg)
{
	struct stack_opts *opts = cookie;
	char *end;

	switch (val) {
	case OPT_COUNT:
		errno = 0;
		opts->count = strtoul(arg, &end, 10);
		if (errno || *end || !*arg || *arg == '-') {
			fprintf(stderr,
				"pyxtrace stack: invalid count '%s': expected a number (see 'pyxtrace stack --help')\n",
				arg);
			return -EINVAL;
		}
		opts->count_set = true;
		return 0;
	case OPT_INTERVAL:
		if (pyx_parse_duration(arg, &opts->interval_ns) || !opts->interval_ns) {
			fprintf(stderr,
				"pyxtrace stack: invalid interval '%s': use e.g. 100ms, 1s (see 'pyxtrace stack --help')\n",
				arg);
			return -EINVAL;
		}
		opts->interval_set = true;
		return 0;
	case OPT_NATIVE:
		opts->native = true;
		return 0;
	case OPT_STACK_SIZE: {
		unsigned long size;

		errno = 0;
		size = strtoul(arg, &end, 10);
		if (*end == 'k' || *end == 'K') {
			size *= 1024;
			end++;
		}
		if (errno || *end || size < 1024 || size > PYX_NATIVE_STACK_MAX) {
			fprintf(stderr,
				"pyxtrace stack: --stack-size takes 1K to %dK, not '%s' (see 'pyxtrace stack --help')\n",
				PYX_NATIVE_STACK_MAX / 1024, arg);
			return -EINVAL;
		}
		opts->stack_bytes = (__u32)size;
		return 0;
	}
	case OPT_THREAD_LOOKUP:
		if (strcmp(arg, "auto") && strcmp(arg, "list")) {
			fprintf(stderr,
				"pyxtrace stack: --thread-lookup is auto or list, not '%s' (see 'pyxtrace stack --help')\n",
				arg);
			return -EINVAL;
		}
		opts->thread_lists = !strcmp(arg, "list");
		return 0;
	}
	return -EINVAL;
}

static int stack_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct stack_opts sopts = {
		.count = 1, .interval_ns = 1000000000ull, .stack_bytes = STACK_DEFAULT_STACK_BYTES};
	struct pyx_common_opts common;
	int err;

	err = pyx_cmd_parse(ctx, &pyx_cmd_stack, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, stack_options, "n:i:", stack_option, &sopts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	/* -d without --count means "snapshots until the duration ends". */
	if (common.duration_set && !sopts.count_set)
		sopts.count = 0;
	if (!common.pid && !common.launch_argv)
		return pyx_usage_error(ctx, &pyx_cmd_stack,
				       "a target is required: -p PID or -- CMD");
	return pyx_cmd_run_target(ctx, &common, stack_target, &sopts);
}

const struct pyx_cmd pyx_cmd_stack = {
	.name = "stack",
	.summary = "Python stacks of every thread, without stopping the process",
	.usage = stack_usage,
	.run = stack_run,
};
