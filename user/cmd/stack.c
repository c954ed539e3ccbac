// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace stack: the Python stack of every thread of a live process,
 * without stopping it (a BPF task iterator reads each thread's frames;
 * names and lines are decoded here from the target's code objects).
 */
#include <errno.h>
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
#include "output/stackview.h"
#include "python/code.h"
#include "python/detect.h"
#include "python/layout.h"
#include "python/threadnames.h"
#include "session.h"
#include "target/process.h"
#include "unwind/unwind.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(stack_bpf);
PYX_SKEL_OPS(sample_bpf);

/* How long to wait for running threads to be sampled in themselves (--native). */
#define SAMPLE_WAIT_NS (200ull * 1000 * 1000)
/* cpu-clock period of the per-thread sampling event: a running thread is caught within it. */
#define SAMPLE_PERIOD_NS 100000

#define STACK_DEFAULT_STACK_BYTES (16 * 1024)

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
	struct pyx_unwinder *unwinder;
	struct pyx_stackview *view; /* one thread at a time */
	struct sampled *sampled;    /* exact snapshots of running threads (--native), by tid */
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
	struct pyx_thread_names names; /* threading names (3.8-3.13), read with each snapshot */
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

static struct sampled *find_sampled(struct stack_run *run, __u32 tid)
{
	size_t i;

	for (i = 0; i < run->nr_sampled; i++)
		if (run->sampled[i].tid == tid)
			return &run->sampled[i];
	return NULL;
}

/* The thread's header line, then its frames as a traceback. */
static void print_thread_text(FILE *out, const struct pyx_rec_pystack *rec, const char *name,
			      size_t len, pid_t ns_tid, const struct pyx_stackview *view, size_t n)
{
	static const char *const gil[] = {"", ", holds the GIL", ""};

	fprintf(out, "\nThread %u", rec->tid);
	if ((__u32)ns_tid != rec->tid)
		fprintf(out, " (tid %d in container)", ns_tid);
	fprintf(out, " \"%.*s\"", (int)len, name);
	fputs(gil[rec->holds_gil > 2 ? 2 : rec->holds_gil], out);
	if (rec->status == PYX_WALK_NO_THREAD_STATE && !n) {
		fputs(": not a Python thread\n", out);
		return;
	}
	fputs(":\n  Traceback (most recent call last):\n", out);
	pyx_stackview__print_text(view, out, "    ");
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
	/* The process lives (it was just walked): its Thread objects name the threads. */
	if (!run->target_exited && pyx_thread_names__supported(run->py))
		pyx_thread_names__read(
			&run->names, run->py, &run->layout, run->cache,
			(struct pyx_mem){.read = pyx_process__read_cb, .ctx = run->proc});
	for (off = 0; off + sizeof(struct pyx_rec_hdr) <= run->size;) {
		const struct pyx_rec_pystack *rec = (const void *)(run->data + off);
		const struct pyx_rec_native *nrec;
		const char *name, *source;
		size_t len;
		pid_t ns_tid;
		size_t n;

		if (rec->hdr.size < sizeof(rec->hdr) || off + rec->hdr.size > run->size)
			break;
		off += rec->hdr.size;
		if (rec->hdr.type != PYX_REC_PYSTACK)
			continue;
		/* With --native, the thread's registers and stack follow its Python frames. */
		nrec = pyx_stackview__native_after(rec, run->data + off, run->size - off);
		if (nrec)
			off += nrec->hdr.size;
		if (nrec && (nrec->flags & PYX_NATIVE_APPROXIMATE)) {
			struct sampled *sm = find_sampled(run, rec->tid);

			/* The exact sample of a running thread replaces both halves. */
			if (sm && sm->py && sm->native) {
				rec = sm->py;
				nrec = sm->native;
			}
		}
		n = pyx_stackview__build(run->view, rec, nrec, false);
		if (pyx_stackview__partial(run->view))
			run->partial = true;
		ns_tid = pyx_ns_pid_of(run->proc->pid, (pid_t)rec->tid);
		if (!ns_tid)
			ns_tid = (pid_t)rec->tid;
		name = pyx_thread_names__of(&run->names, rec, &len, &source);
		if (!ctx->json) {
			print_thread_text(ctx->out, rec, name, len, ns_tid, run->view, n);
			continue;
		}
		pyx_json_object_begin(&json);
		pyx_json_kv_u64(&json, "tid", rec->tid);
		pyx_json_kv_i64(&json, "ns_tid", ns_tid);
		pyx_json_key(&json, "name");
		pyx_json_string_len(&json, name, len);
		pyx_json_kv_string(&json, "name_source", source);
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
		pyx_stackview__print_json(run->view, &json);
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
		/* Per thread, any CPU: it fires only while that thread runs. */
		err = pyx_session__attach_perf(session, skel->progs.sample_thread, &attr,
					       (pid_t)sc->tids[i], -1);
		if (err == -ESRCH)
			continue; /* gone already */
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
		fresh = pyx_code_cache__new(
			&run->layout.code,
			(struct pyx_mem){.read = pyx_process__read_cb, .ctx = run->proc});
		if (!fresh)
			return -ENOMEM;
		pyx_code_cache__free(run->cache);
		run->cache = fresh;
		pyx_stackview__set_cache(run->view, fresh);
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
	run.cache = pyx_code_cache__new(
		&run.layout.code, (struct pyx_mem){.read = pyx_process__read_cb, .ctx = run.proc});
	if (run.cache)
		run.view = pyx_stackview__new(ctx, run.proc, run.py, &run.layout, run.cache,
					      run.unwinder);
	if (!run.cache || !run.view) {
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
	pyx_stackview__free(run.view);
	pyx_thread_names__free(&run.names);
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

	err = pyx_cmd_parse(ctx, &pyx_cmd_stack,
			    PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, stack_options, "n:i:", stack_option, &sopts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	/* -d without --count means "snapshots until the duration ends". */
	if (common.duration_set && !sopts.count_set)
		sopts.count = 0;
	if (pyx_cmd_is_scope(&common)) {
		/* One snapshot of each process, in turn: not a series of each. */
		if (sopts.count != 1)
			return pyx_usage_error(ctx, &pyx_cmd_stack,
					       "--count, -d: one process at a time (-p PID)");
		return pyx_cmd_run_each(ctx, &common, stack_target, &sopts);
	}
	if (!common.pid && !common.launch_argv)
		return pyx_usage_error(
			ctx, &pyx_cmd_stack,
			"a target is required: -p PID, --all, --container ID or -- CMD");
	return pyx_cmd_run_target(ctx, &common, stack_target, &sopts);
}

const struct pyx_cmd pyx_cmd_stack = {
	.name = "stack",
	.summary = "Python stacks of every thread, without stopping the process",
	.usage = stack_usage,
	.run = stack_run,
};
