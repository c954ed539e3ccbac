// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace flow: the call trace itself, every event in the order each
 * thread made it, from the same exact hooks as `calls` (bpf/calls.bpf.c
 * with its flow switch on): a live indented trace, JSON lines, a Chrome /
 * Perfetto timeline or folded stacks weighted by time.
 */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <pyxtrace/calls.h>

#include "calls.skel.h"
#include "cmd/calls_exact.h"
#include "cmd/cmd.h"
#include "output/json.h"
#include "output/objects.h"
#include "python/detect.h"
#include "python/layout.h"
#include "session.h"
#include "target/process.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(calls_bpf);

enum flow_format {
	FORMAT_TEXT = 0,
	FORMAT_JSON,
	FORMAT_CHROME,
	FORMAT_FOLDED,
};

static const char *const format_names[] = {
	[FORMAT_TEXT] = "text",
	[FORMAT_JSON] = "json",
	[FORMAT_CHROME] = "chrome",
	[FORMAT_FOLDED] = "folded",
};

#define FLOW_RING_DEFAULT (16u << 20) /* bytes: ~200 k events waiting */

struct flow_opts {
	const char *module;
	const char *cfunc;
	pid_t thread;
	uint64_t min_latency_ns;
	unsigned int depth; /* 0: every depth */
	enum flow_format format;
	bool format_set;
	struct pyx_match match;
	unsigned long ring_bytes;
	double max_overhead_pct; /* 0: no limit */
};

/* A frame of a thread as the trace has seen it, at its shadow-stack depth. */
struct flow_frame {
	struct pyx_calls_fn *fn; /* NULL: not seen (filtered by depth, or lost) */
	uint64_t run_start_ns;	 /* the start of its current running stretch */
	uint64_t child_ns;	 /* its callees' running time in this stretch (folded) */
	bool resumed;		 /* this stretch is a resumption (chrome) */
};

struct flow_thread {
	pid_t tid;
	unsigned int depth;
	struct flow_frame stack[PYX_CALLS_DEPTH];
};

/* Folded stacks: "outer;inner" -> self nanoseconds. */
struct folded_row {
	char *stack;
	uint64_t ns;
};

struct flow_run {
	struct pyx_ctx *ctx;
	const struct flow_opts *opts;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct pyx_calls_exact x;
	struct pyx_session *session;
	uint64_t t0_ns; /* CLOCK_MONOTONIC when the probes went live: times are relative */
	struct flow_thread **threads;
	size_t nr_threads;
	struct folded_row *folded;
	size_t nr_folded, cap_folded; /* open addressing, cap_folded slots */
	uint64_t events;	      /* records received */
	uint64_t written;	      /* events (or slices) written */
	bool chrome_comma;
	bool header_written;
	uint64_t drops[PYX_DROP__MAX];
	uint64_t duration_ns;
	const char *stop_reason;
	int error; /* a write error or out of memory: the result is lost */
};

static void flow_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s flow (-p PID [--container ID] | -- CMD [ARGS...])\n"
		"       [--module NAME] [--cfunc GLOB] [--match REGEX] [--thread TID]\n"
		"       [--min-latency TIME] [--depth N] [--format text|json|chrome|folded]\n"
		"       [--ringbuf-size MIB] [--max-overhead PCT]\n"
		"       [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"The call trace itself: every start, return, suspension and resumption of a\n"
		"Python frame (and of the C functions of --module/--cfunc) in the order each\n"
		"thread made them, from the exact hooks `calls` counts with. Text: one line\n"
		"per event, indented by depth, times in seconds since the trace began.\n"
		"\n"
		"  --format FORMAT        text (default), json (one event per line, as --json),\n"
		"                         chrome (Chrome trace events: Perfetto, chrome://tracing),\n"
		"                         folded (stacks weighted by self time: flame graphs)\n"
		"  --module NAME          also every C entry point of this extension module\n"
		"  --cfunc GLOB           also the C functions whose symbol matches GLOB\n"
		"  --match REGEX          only events of functions whose qualified name or file\n"
		"                         matches (POSIX extended regex)\n"
		"  --thread TID           only this thread (host TID)\n"
		"  --min-latency TIME     only calls this slow, each written when it returns\n"
		"  --depth N              only frames at most N deep (1: the outermost frame\n"
		"                         seen since the trace began); filtered in the kernel\n"
		"  --ringbuf-size SIZE    events waiting for pyxtrace, in MiB (default 16);\n"
		"                         beyond, events are dropped and counted\n"
		"  --max-overhead PCT     keep the hooks' cost within PCT %% of the target's CPU\n"
		"                         time (default %g): above it they are paused (said in the\n"
		"                         trace); 0: no limit\n",
		prog, PYX_CALLS_MAX_OVERHEAD_DEFAULT);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s flow -p 1234 --depth 3 -d 2s\n"
		"  %s flow -p 1234 --module _imaging --min-latency 1ms\n"
		"  %s flow -p 1234 -d 5s --format chrome -o trace.json\n",
		prog, prog, prog);
}

static uint64_t rel_ns(const struct flow_run *run, uint64_t t)
{
	return t > run->t0_ns ? t - run->t0_ns : 0;
}

static struct flow_thread *thread_of(struct flow_run *run, pid_t tid)
{
	struct flow_thread **threads, *t;
	size_t i;

	for (i = 0; i < run->nr_threads; i++)
		if (run->threads[i]->tid == tid)
			return run->threads[i];
	threads = realloc(run->threads, (run->nr_threads + 1) * sizeof(*threads));
	if (!threads)
		return NULL;
	run->threads = threads;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	threads[run->nr_threads++] = t;
	return t;
}

/*
 * The function of @key: an event can arrive before the record naming it
 * (two rings), so the urgent ring is read first; else named live.
 */
static struct pyx_calls_fn *fn_of(struct flow_run *run, const struct pyx_calls_key *key)
{
	struct pyx_calls_fn *fn;

	if (!key->code)
		return NULL;
	fn = pyx_calls_exact__fn(&run->x, key, false, NULL);
	if (fn)
		return fn;
	if (run->session)
		pyx_session__drain_urgent(run->session);
	return pyx_calls_exact__fn(&run->x, key, true, NULL);
}

/* @fn's fields as JSON ("kind":...,"line":N), rendered once. */
static const char *rendered(struct pyx_calls_fn *fn)
{
	struct pyx_json json;
	size_t len = 0;
	char *buf = NULL;
	FILE *mem;

	if (fn->rendered)
		return fn->rendered;
	mem = open_memstream(&buf, &len);
	if (!mem)
		return "\"function\":\"?\"";
	pyx_json_init(&json, mem);
	pyx_json_object_begin(&json);
	pyx_json_kv_string(&json, "kind", fn->native ? "native" : "python");
	pyx_json_kv_string(&json, "function", fn->function ? fn->function : "?");
	pyx_json_kv_string(&json, "qualname", fn->qualname ? fn->qualname : "?");
	pyx_json_kv_string(&json, "file", fn->file ? fn->file : "?");
	if (!fn->native)
		pyx_json_kv_i64(&json, "line", fn->line);
	pyx_json_object_end(&json);
	if (fclose(mem) || len < 2) {
		free(buf);
		return "\"function\":\"?\"";
	}
	/* Without its braces: spliced into each event. */
	buf[len - 1] = '\0';
	memmove(buf, buf + 1, len - 1);
	fn->rendered = buf;
	return buf;
}

static bool fn_matches(const struct flow_run *run, const struct pyx_calls_fn *fn)
{
	if (!run->opts->match.pattern)
		return true;
	return fn && pyx_match_fn(&run->opts->match, fn->qualname, fn->file);
}

static const char *event_name(__u32 event)
{
	switch (event) {
	case PYX_FLOW_CALL:
		return "call";
	case PYX_FLOW_RETURN:
		return "return";
	case PYX_FLOW_RESUME:
		return "resume";
	case PYX_FLOW_SUSPEND:
		return "suspend";
	case PYX_FLOW_LOST:
		return "lost";
	default:
		return "?";
	}
}

/* "fib (calls_workload.py:3)", "pyxfixture.burn [C]". */
static void fn_label(const struct pyx_calls_fn *fn, char *buf, size_t size)
{
	if (!fn)
		snprintf(buf, size, "?");
	else if (fn->native) /* its module's file is in the JSON */
		snprintf(buf, size, "%s [C]", fn->qualname ? fn->qualname : "?");
	else
		snprintf(buf, size, "%s (%s:%d)", fn->qualname ? fn->qualname : "?",
			 pyx_basename(fn->file ? fn->file : "?"), fn->line);
}

static void write_text(struct flow_run *run, const struct pyx_rec_flow *rec,
		       struct pyx_calls_fn *fn, struct pyx_calls_fn *caller)
{
	FILE *out = run->ctx->out;
	uint64_t t = rel_ns(run, rec->time_ns);
	char label[512], from[512], dur[32];
	unsigned int indent = rec->depth ? rec->depth - 1 : 0;

	fn_label(fn, label, sizeof(label));
	fprintf(out, "%4llu.%06llu %7u %*s", (unsigned long long)(t / 1000000000),
		(unsigned long long)(t % 1000000000 / 1000), rec->tid,
		(int)(2 * (indent > 64 ? 64 : indent)), "");
	switch (rec->event) {
	case PYX_FLOW_CALL:
		from[0] = '\0';
		/* A Python <-> C boundary: say who called across it. */
		if (fn && caller && caller->native != fn->native) {
			char who[480];

			fn_label(caller, who, sizeof(who));
			snprintf(from, sizeof(from), "  <- from %s %s",
				 caller->native ? "C" : "Python", who);
		}
		fprintf(out, "-> %s%s\n", label, from);
		break;
	case PYX_FLOW_RETURN:
		if (rec->flags & PYX_FLOW_F_UNTIMED)
			snprintf(dur, sizeof(dur), "?");
		else
			pyx_format_duration(rec->duration_ns, dur, sizeof(dur));
		fprintf(out, "<- %s %s%s\n", fn && fn->qualname ? fn->qualname : "?", dur,
			(rec->flags & PYX_FLOW_F_EXCEPTION) ? " (exception)" : "");
		break;
	case PYX_FLOW_RESUME:
		fprintf(out, ">> %s (resumed)\n", label);
		break;
	case PYX_FLOW_SUSPEND:
		fprintf(out, "|| %s (suspended after %s)\n",
			fn && fn->qualname ? fn->qualname : "?",
			pyx_format_duration(rec->duration_ns, dur, sizeof(dur)));
		break;
	default:
		fprintf(out, "xx %s (ended unseen)\n", fn && fn->qualname ? fn->qualname : "?");
	}
}

static void write_json(struct flow_run *run, const struct pyx_rec_flow *rec,
		       struct pyx_calls_fn *fn, struct pyx_calls_fn *caller)
{
	FILE *out = run->ctx->out;

	fprintf(out, "{\"event\":\"%s\",\"time_ns\":%" PRIu64 ",\"tid\":%u,\"depth\":%u,%s",
		event_name(rec->event), rel_ns(run, rec->time_ns), rec->tid, rec->depth,
		fn ? rendered(fn) : "\"function\":\"?\"");
	if (rec->event == PYX_FLOW_RETURN) {
		if (!(rec->flags & PYX_FLOW_F_UNTIMED))
			fprintf(out, ",\"duration_ns\":%llu", (unsigned long long)rec->duration_ns);
		fprintf(out, ",\"exception\":%s",
			(rec->flags & PYX_FLOW_F_EXCEPTION) ? "true" : "false");
	} else if (rec->event == PYX_FLOW_SUSPEND) {
		fprintf(out, ",\"ran_ns\":%llu", (unsigned long long)rec->duration_ns);
	}
	if (caller)
		fprintf(out, ",\"caller\":{%s}", rendered(caller));
	fputs("}\n", out);
}

/* One Chrome "complete" event: a running stretch of @f, from its start to @end_ns. */
static void write_chrome_slice(struct flow_run *run, pid_t tid, const struct flow_frame *f,
			       uint64_t end_ns, bool exception, bool unfinished)
{
	FILE *out = run->ctx->out;
	uint64_t start = rel_ns(run, f->run_start_ns), dur = end_ns - f->run_start_ns;
	const struct pyx_calls_fn *fn = f->fn;
	struct pyx_json json;

	if (run->opts->min_latency_ns && dur < run->opts->min_latency_ns)
		return;
	fprintf(out,
		"%s\n{\"ph\":\"X\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%" PRIu64
		".%03" PRIu64 ",\"dur\":%" PRIu64 ".%03" PRIu64 ",\"name\":",
		run->chrome_comma ? "," : "", fn->native ? "native" : "python", run->proc->pid, tid,
		start / 1000, start % 1000, dur / 1000, dur % 1000);
	run->chrome_comma = true;
	pyx_json_init(&json, out);
	pyx_json_string(&json, fn->qualname ? fn->qualname : "?");
	fprintf(out, ",\"args\":{%s", rendered(f->fn));
	if (exception)
		fputs(",\"exception\":true", out);
	if (f->resumed)
		fputs(",\"resumed\":true", out);
	if (unfinished)
		fputs(",\"unfinished\":true", out);
	fputs("}}", out);
	run->written++;
}

static size_t str_hash(const char *s, size_t slots)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)h & (slots - 1);
}

static int folded_add(struct flow_run *run, const char *stack, uint64_t ns)
{
	size_t i;

	if (run->nr_folded * 2 >= run->cap_folded) {
		size_t cap = run->cap_folded ? run->cap_folded * 2 : 1024, j;
		struct folded_row *rows = calloc(cap, sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		for (j = 0; j < run->cap_folded; j++) {
			if (!run->folded[j].stack)
				continue;
			i = str_hash(run->folded[j].stack, cap);
			while (rows[i].stack)
				i = (i + 1) & (cap - 1);
			rows[i] = run->folded[j];
		}
		free(run->folded);
		run->folded = rows;
		run->cap_folded = cap;
	}
	i = str_hash(stack, run->cap_folded);
	while (run->folded[i].stack && strcmp(run->folded[i].stack, stack))
		i = (i + 1) & (run->cap_folded - 1);
	if (!run->folded[i].stack) {
		run->folded[i].stack = strdup(stack);
		if (!run->folded[i].stack)
			return -ENOMEM;
		run->nr_folded++;
	}
	run->folded[i].ns += ns;
	return 0;
}

/* The running stretch of the frame at @depth of @t ended at @now: its self time, folded. */
static void fold_stretch(struct flow_run *run, struct flow_thread *t, unsigned int depth,
			 uint64_t now)
{
	const struct flow_frame *f = &t->stack[depth - 1];
	uint64_t ran = now - f->run_start_ns;
	char stack[4096];
	size_t used = 0;
	unsigned int i;

	if (!fn_matches(run, f->fn))
		return;
	for (i = 0; i < depth && used < sizeof(stack) - 1; i++) {
		const struct pyx_calls_fn *fn = t->stack[i].fn;
		const char *name = fn && fn->qualname ? fn->qualname : "?";

		used += (size_t)snprintf(stack + used, sizeof(stack) - used, "%s%s", i ? ";" : "",
					 name);
	}
	if (used >= sizeof(stack))
		used = sizeof(stack) - 1;
	stack[used] = '\0';
	if (folded_add(run, stack, ran > f->child_ns ? ran - f->child_ns : 0))
		run->error = -ENOMEM;
}

/*
 * The thread's view of its frames, kept for the timeline and folded
 * stacks: a stretch ends at a return, a suspension or a loss.
 */
static void track(struct flow_run *run, struct flow_thread *t, const struct pyx_rec_flow *rec,
		  struct pyx_calls_fn *fn)
{
	unsigned int d = rec->depth;
	struct flow_frame *f;
	bool chrome = run->opts->format == FORMAT_CHROME;
	bool folded = run->opts->format == FORMAT_FOLDED;

	if (!d || d > PYX_CALLS_DEPTH)
		return;
	f = &t->stack[d - 1];
	switch (rec->event) {
	case PYX_FLOW_CALL:
	case PYX_FLOW_RESUME:
		/* Frames above it that the trace did not see end have ended. */
		t->depth = d;
		f->fn = fn;
		f->run_start_ns = rec->time_ns;
		f->child_ns = 0;
		f->resumed = rec->event == PYX_FLOW_RESUME;
		return;
	default:
		break;
	}
	if (d > t->depth || !f->fn || f->fn != fn) {
		t->depth = d - 1;
		return;
	}
	if (rec->event != PYX_FLOW_LOST) {
		if (chrome && fn_matches(run, fn))
			write_chrome_slice(run, t->tid, f, rec->time_ns,
					   rec->flags & PYX_FLOW_F_EXCEPTION, false);
		if (folded)
			fold_stretch(run, t, d, rec->time_ns);
		if (d > 1)
			t->stack[d - 2].child_ns += rec->time_ns - f->run_start_ns;
	}
	t->depth = d - 1;
}

static void write_header(struct flow_run *run);

static int flow_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct flow_run *run = cookie;
	const struct pyx_rec_flow *rec = (const void *)hdr;
	struct pyx_calls_fn *fn, *caller = NULL;
	struct flow_thread *t;
	enum flow_format format = run->opts->format;

	write_header(run);
	if (hdr->type != PYX_REC_FLOW) {
		pyx_calls_exact__on_record(&run->x, hdr, size);
		return 0;
	}
	if (size < sizeof(*rec))
		return 0;
	run->events++;
	fn = fn_of(run, &rec->fn);
	if (format == FORMAT_CHROME || format == FORMAT_FOLDED) {
		t = thread_of(run, (pid_t)rec->tid);
		if (!t) {
			run->error = -ENOMEM;
			return -ENOMEM;
		}
		track(run, t, rec, fn);
		return 0;
	}
	if (!fn_matches(run, fn))
		return 0;
	if (run->opts->min_latency_ns &&
	    (rec->event != PYX_FLOW_RETURN || (rec->flags & PYX_FLOW_F_UNTIMED) ||
	     rec->duration_ns < run->opts->min_latency_ns))
		return 0;
	if (rec->event == PYX_FLOW_CALL)
		caller = fn_of(run, &rec->caller);
	if (format == FORMAT_JSON)
		write_json(run, rec, fn, caller);
	else
		write_text(run, rec, fn, caller);
	run->written++;
	return 0;
}

/*
 * Frames still running at @end_ns (the end, or a pause: the stacks restart
 * after it): cut there on the timeline (marked), folded as they are.
 */
static void close_frames(struct flow_run *run, uint64_t end_ns)
{
	size_t i;

	for (i = 0; i < run->nr_threads; i++) {
		struct flow_thread *t = run->threads[i];

		while (t->depth) {
			struct flow_frame *f = &t->stack[t->depth - 1];

			if (f->fn && run->opts->format == FORMAT_CHROME && fn_matches(run, f->fn))
				write_chrome_slice(run, t->tid, f, end_ns, false, true);
			else if (f->fn && run->opts->format == FORMAT_FOLDED)
				fold_stretch(run, t, t->depth, end_ns);
			if (t->depth > 1)
				t->stack[t->depth - 2].child_ns += end_ns - f->run_start_ns;
			t->depth--;
		}
	}
}

static int flow_prepare(void *cookie, void *skel_ptr)
{
	struct flow_run *run = cookie;
	struct calls_bpf *skel = skel_ptr;
	int err = pyx_calls_exact__autoload(&run->x, skel);

	return err ? err
		   : bpf_map__set_max_entries(skel->maps.events, (__u32)run->opts->ring_bytes);
}

static int flow_attach(void *cookie, struct pyx_session *session, void *skel)
{
	struct flow_run *run = cookie;
	int err;

	run->session = session;
	if (run->opts->max_overhead_pct > 0) {
		err = pyx_calls_exact__budget(&run->x, skel, run->opts->max_overhead_pct);
		if (err)
			return err;
	}
	run->t0_ns = pyx_monotonic_ns();
	return pyx_calls_exact__attach(&run->x, session, skel);
}

/* A pause (--max-overhead) begins or ends: said in the trace itself. */
static void write_pause(struct flow_run *run, bool paused, uint64_t now)
{
	FILE *out = run->ctx->out;
	uint64_t t = rel_ns(run, now);
	const struct pyx_budget *b = &run->x.budget;

	switch (run->opts->format) {
	case FORMAT_TEXT:
		if (paused)
			fprintf(out,
				"%4llu.%06llu # paused: the hooks cost %.0f%% of the target's CPU time "
				"(--max-overhead %g%%)\n",
				(unsigned long long)(t / 1000000000),
				(unsigned long long)(t % 1000000000 / 1000), b->last_pct,
				b->max_pct);
		else
			fprintf(out, "%4llu.%06llu # resumed\n",
				(unsigned long long)(t / 1000000000),
				(unsigned long long)(t % 1000000000 / 1000));
		break;
	case FORMAT_JSON:
		fprintf(out, "{\"event\":\"%s\",\"time_ns\":%llu", paused ? "paused" : "resumed",
			(unsigned long long)t);
		if (paused)
			fprintf(out, ",\"overhead_pct\":%.1f", b->last_pct);
		fputs("}\n", out);
		break;
	default:
		break;
	}
}

static int flow_on_tick(void *cookie, struct pyx_session *session)
{
	struct flow_run *run = cookie;
	enum pyx_budget_action action;
	uint64_t now = pyx_monotonic_ns();

	/* What came before a pause is read first: the stacks restart after it. */
	if (run->x.budget.on)
		pyx_session__consume(session);
	action = pyx_calls_exact__tick(&run->x, session, pyx_session__skel(session));
	if (action == PYX_BUDGET_NONE)
		return 0;
	if (action == PYX_BUDGET_DETACH) {
		pyx_session__consume(session);
		close_frames(run, now);
	}
	write_pause(run, action == PYX_BUDGET_DETACH, now);
	return 0;
}

static void write_header(struct flow_run *run)
{
	FILE *out = run->ctx->out;
	struct pyx_json json;
	char label[160];

	/* Written once tracing runs (the first poll): a target gone before gets its error alone. */
	if (run->header_written)
		return;
	run->header_written = true;
	switch (run->opts->format) {
	case FORMAT_TEXT:
		fprintf(out,
			"# %s: Python %s, exact call flow (eval-loop hooks); seconds since start, "
			"TID\n",
			pyx_process_label(run->proc, label, sizeof(label)), run->py->version);
		break;
	case FORMAT_JSON:
		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "event", "start");
		pyx_out_process(&json, "process", run->proc);
		pyx_out_python(&json, "python", run->py);
		pyx_json_kv_string(&json, "mode", "eval-hooks");
		pyx_json_kv_bool(&json, "exact", true);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		break;
	case FORMAT_CHROME:
		fprintf(out,
			"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"
			"{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":",
			run->proc->pid);
		pyx_json_init(&json, out);
		pyx_json_string(&json, pyx_process_label(run->proc, label, sizeof(label)));
		fputs("}}", out);
		run->chrome_comma = true;
		break;
	case FORMAT_FOLDED:
		break;
	}
}

static int by_stack(const void *a, const void *b)
{
	const struct folded_row *ra = a, *rb = b;

	if (!ra->stack || !rb->stack)
		return !ra->stack - !rb->stack;
	return strcmp(ra->stack, rb->stack);
}

static void write_footer(struct flow_run *run)
{
	FILE *out = run->ctx->out;
	struct pyx_json json;
	char dur[32];
	size_t i;

	switch (run->opts->format) {
	case FORMAT_TEXT:
		fprintf(out, "# %" PRIu64 " events in %s (%s)", run->events,
			pyx_format_duration(run->duration_ns, dur, sizeof(dur)), run->stop_reason);
		if (run->written != run->events)
			fprintf(out, ", %" PRIu64 " shown", run->written);
		fputc('\n', out);
		pyx_calls_exact__print_overhead(&run->x, out);
		pyx_print_drops(out, run->drops, 0);
		break;
	case FORMAT_JSON:
		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "event", "end");
		pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
		pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
		pyx_json_kv_u64(&json, "events", run->events);
		pyx_json_kv_u64(&json, "written", run->written);
		pyx_calls_exact__json_overhead(&run->x, &json);
		pyx_out_drops(&json, run->drops);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		break;
	case FORMAT_CHROME:
		fputs("\n],\"otherData\":", out);
		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "tool", "pyxtrace flow");
		pyx_out_python(&json, "python", run->py);
		pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
		pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
		pyx_json_kv_u64(&json, "events", run->events);
		pyx_json_kv_u64(&json, "slices", run->written);
		pyx_calls_exact__json_overhead(&run->x, &json);
		pyx_out_drops(&json, run->drops);
		pyx_json_object_end(&json);
		fputs("}\n", out);
		break;
	case FORMAT_FOLDED:
		qsort(run->folded, run->cap_folded, sizeof(*run->folded), by_stack);
		for (i = 0; i < run->nr_folded; i++)
			if (run->folded[i].ns)
				fprintf(out, "%s %" PRIu64 "\n", run->folded[i].stack,
					run->folded[i].ns);
		break;
	}
}

static int flow_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct flow_run *run = cookie;
	uint64_t end_ns = pyx_monotonic_ns();

	write_header(run);
	if (!final) {
		/* Nobody reads any more (`| head` is done): stop tracing. */
		if (fflush(run->ctx->out) || ferror(run->ctx->out))
			pyx_session__request_stop(session);
		return 0;
	}
	pyx_calls_exact__budget_end(&run->x);
	pyx_session__drops(session, run->drops);
	run->duration_ns = pyx_session__elapsed_ns(session);
	run->stop_reason = pyx_stop_reason_name(pyx_session__stop_reason(session));
	close_frames(run, end_ns);
	return 0;
}

static int flow_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct flow_opts *opts = cookie;
	struct flow_run run = {.ctx = ctx, .opts = opts};
	struct pyx_calls_cfg cfg = {};
	int err, ret = PYX_EXIT_FAILURE;
	char why[1024], jit[16];
	size_t i;

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	run.x = (struct pyx_calls_exact){
		.ctx = ctx, .proc = run.proc, .py = run.py, .layout = &run.layout};
	if (pyx_cmd_check_thread(ctx, run.proc, opts->thread))
		goto out_free;
	err = pyx_calls_exact__find(&run.x, jit, sizeof(jit), why, sizeof(why));
	if (err == -EOPNOTSUPP) {
		pyx_error(
			ctx,
			"the target runs with PYTHON_JIT=%s: JIT-compiled code passes none of the "
			"exact hooks a flow needs; restart it without PYTHON_JIT (or use "
			"'calls --sampled')",
			jit);
		goto out_free;
	}
	if (err) {
		pyx_error(ctx, "%s", why);
		goto out_free;
	}
	if (pyx_calls_exact__prepare(&run.x, opts->module, opts->cfunc, &cfg))
		goto out_free;
	cfg.tgid = (__u32)run.proc->pid;
	cfg.tid = (__u32)opts->thread;
	cfg.flow = 1;
	cfg.flow_depth = opts->depth;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run.proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_ns,
		/*
		 * The kernel wakes pyxtrace only as the ring fills (a wakeup per
		 * event would cost the target more than the event): a trickle is
		 * read on this timer.
		 */
		.interval_ns = 50000000ull,
		.cookie = &run,
		.prepare = flow_prepare,
		.attach = flow_attach,
		.on_record = flow_on_record,
		.on_interval = flow_on_interval,
		.tick_ns = opts->max_overhead_pct > 0 ? PYX_BUDGET_TICK_NS : 0,
		.on_tick = flow_on_tick,
	};
	err = pyx_session__trace(&calls_bpf_ops, &sopts);
	if (err || run.error)
		goto out_free;
	write_footer(&run);
	if (run.drops[PYX_DROP_RINGBUF])
		pyx_warn(ctx,
			 "%" PRIu64
			 " events lost: pyxtrace fell behind the target (write to a file "
			 "with -o, or narrow with --depth, --thread)",
			 run.drops[PYX_DROP_RINGBUF]);
	ret = PYX_EXIT_OK;
out_free:
	for (i = 0; i < run.nr_threads; i++)
		free(run.threads[i]);
	free(run.threads);
	for (i = 0; i < run.cap_folded; i++)
		free(run.folded[i].stack);
	free(run.folded);
	pyx_calls_exact__free(&run.x);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
	return ret;
}

enum {
	OPT_MODULE = 0x3fff,
	OPT_CFUNC = 0x4100,
	OPT_MATCH,
	OPT_THREAD,
	OPT_MIN_LATENCY,
	OPT_DEPTH,
	OPT_FORMAT,
	OPT_RINGBUF_SIZE,
	OPT_MAX_OVERHEAD,
};

static const struct option flow_options[] = {
	{"module", required_argument, NULL, OPT_MODULE},
	{"cfunc", required_argument, NULL, OPT_CFUNC},
	{"match", required_argument, NULL, OPT_MATCH},
	{"thread", required_argument, NULL, OPT_THREAD},
	{"min-latency", required_argument, NULL, OPT_MIN_LATENCY},
	{"depth", required_argument, NULL, OPT_DEPTH},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"ringbuf-size", required_argument, NULL, OPT_RINGBUF_SIZE},
	{"max-overhead", required_argument, NULL, OPT_MAX_OVERHEAD},
	{},
};

static int flow_option(void *cookie, int val, const char *arg)
{
	struct flow_opts *opts = cookie;
	unsigned long n;
	size_t i;

	switch (val) {
	case OPT_MAX_OVERHEAD:
		return pyx_opt_max_overhead(&pyx_cmd_flow, arg, &opts->max_overhead_pct);
	case OPT_MODULE:
		opts->module = arg;
		return 0;
	case OPT_CFUNC:
		opts->cfunc = arg;
		return 0;
	case OPT_THREAD:
		return pyx_opt_thread(&pyx_cmd_flow, arg, &opts->thread);
	case OPT_MIN_LATENCY:
		return pyx_opt_min_latency(&pyx_cmd_flow, arg, &opts->min_latency_ns);
	case OPT_DEPTH:
		if (pyx_parse_count(arg, 1, PYX_CALLS_DEPTH, &n))
			return pyx_option_error(&pyx_cmd_flow, "--depth", arg, "use 1 to 256");
		opts->depth = (unsigned int)n;
		return 0;
	case OPT_FORMAT:
		for (i = 0; i < PYX_ARRAY_SIZE(format_names); i++)
			if (!strcmp(arg, format_names[i])) {
				opts->format = (enum flow_format)i;
				opts->format_set = true;
				return 0;
			}
		return pyx_option_error(&pyx_cmd_flow, "--format", arg,
					"use text, json, chrome or folded");
	case OPT_RINGBUF_SIZE:
		/* A power of two of pages, as the kernel wants a ring buffer. */
		if (pyx_parse_count(arg, 1, 1024, &n) || (n & (n - 1)))
			return pyx_option_error(&pyx_cmd_flow, "--ringbuf-size", arg,
						"use a power of two of MiB, 1 to 1024");
		opts->ring_bytes = n << 20;
		return 0;
	case OPT_MATCH:
		return pyx_opt_match(&pyx_cmd_flow, arg, &opts->match);
	default:
		return -EINVAL;
	}
}

static int flow_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct flow_opts opts = {.ring_bytes = FLOW_RING_DEFAULT,
				 .max_overhead_pct = PYX_CALLS_MAX_OVERHEAD_DEFAULT};
	struct pyx_common_opts common;
	int err, ret;

	err = pyx_cmd_parse(ctx, &pyx_cmd_flow, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, flow_options, "", flow_option, &opts, &common);
	if (err) {
		ret = err < 0 ? PYX_EXIT_OK : err;
		goto out;
	}
	if (ctx->json) {
		if (opts.format_set && opts.format != FORMAT_JSON) {
			ret = pyx_usage_error(ctx, &pyx_cmd_flow,
					      "--json and --format %s: choose one",
					      format_names[opts.format]);
			goto out;
		}
		opts.format = FORMAT_JSON;
	}
	ret = pyx_cmd_require_target(ctx, &pyx_cmd_flow, &common);
	if (ret)
		goto out;
	ret = pyx_cmd_run_target(ctx, &common, flow_target, &opts);
out:
	pyx_match_free(&opts.match);
	return ret;
}

const struct pyx_cmd pyx_cmd_flow = {
	.name = "flow",
	.summary = "the call trace: every Python (and C) call in order, as text or a timeline",
	.usage = flow_usage,
	.run = flow_run,
};
