// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace watch --module NAME: every C entry point of one extension module,
 * as Python sees it: calls, errors, bad returns, lost returns and latency,
 * aggregated in the kernel (bpf/centry.bpf.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <pyxtrace/centry.h>

#include "centry.skel.h"
#include "cmd/cmd.h"
#include "discovery.h"
#include "output/callers.h"
#include "output/hist.h"
#include "output/json.h"
#include "output/objects.h"
#include "output/stackview.h"
#include "probes/centry.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "python/code.h"
#include "python/layout.h"
#include "elf/x86.h"
#include "session.h"
#include "target/process.h"
#include "unwind/unwind.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(centry_bpf);

enum watch_sort {
	SORT_CALLS = 0,
	SORT_TOTAL,
	SORT_AVG,
	SORT_P99,
	SORT_MAX,
	SORT_ERRORS,
};

static const char *const sort_names[] = {
	[SORT_CALLS] = "calls", [SORT_TOTAL] = "total", [SORT_AVG] = "avg",
	[SORT_P99] = "p99",	[SORT_MAX] = "max",	[SORT_ERRORS] = "errors",
};

#define WATCH_DEFAULT_STACK_BYTES (16 * 1024)
#define WATCH_MAX_CALLERS_SHOWN	  3 /* per entry point in the text table */
/* After new code is mapped in a process, look for the module this long (each interval). */
#define WATCH_IMPORT_RETRY_NS 3000000000ull

struct watch_opts {
	const char *module;
	bool all_symbols;
	bool no_exception_checks;
	uint64_t interval_ns; /* 0: only the final table */
	unsigned int callers; /* Python frames per caller; 0: callers not counted */
	uint64_t slow_ns;     /* --slow; 0: off */
	bool errors;	      /* --errors */
	bool args;	      /* --args */
	enum watch_sort sort;
	size_t top; /* rows in the text table; 0: every entry point called */
};

struct watch_run {
	struct pyx_ctx *ctx;
	const struct watch_opts *opts;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct pyx_module *mod;
	struct pyx_centry_stats *stats; /* per entry point, summed over CPUs */
	struct pyx_centry_hist *hists;	/* per entry point, summed over CPUs */
	uint64_t drops[PYX_DROP__MAX];
	uint64_t duration_ns;
	const char *stop_reason; /* NULL while still running (an interval's table) */
	bool final;
	size_t without_return;
	size_t single_stepped; /* entry points whose probe the kernel single-steps (~12 µs a hit) */
	bool exception_checks;
	bool live;		      /* a TTY: each interval's table replaces the last one */
	struct pyx_code_cache *cache; /* code objects of callers and reported stacks */
	struct pyx_callers *callers;  /* NULL with --callers 0 */
	struct pyx_unwinder *unwinder;
	struct pyx_stackview *view; /* reported calls' stacks */
	struct pyx_session *session;
	int64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, for event times */
	uint64_t reported;	    /* calls printed one by one */
	pid_t pid;		    /* one of several processes: its PID (proc is NULL until the
				       module is loaded there) */
	uint64_t retry_until_ns;    /* new code mapped: look for the module until then */
};

static void watch_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s watch --module NAME (-p PID [--container ID] [--children] |\n"
		"       --container ID | --all | -- CMD [ARGS...])\n"
		"       [--callers N] [--slow TIME] [--errors] [--args] [-i TIME] [--sort KEY]\n"
		"       [--top N] [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"Every Python-visible C entry point of one extension module (found without\n"
		"symbols), probed with two uprobe_multi links: calls, errors (NULL with an\n"
		"exception set, -1), bad returns (NULL without an exception, a value with one),\n"
		"lost returns, latency and the Python code calling each, aggregated in the\n"
		"kernel. The final table is printed when the duration ends, on Ctrl-C, or\n"
		"when the target exits; on a terminal it is refreshed every interval.\n"
		"\n"
		"  --module NAME          import name (\"_imaging\", \"PIL._imaging\") or path\n"
		"  --callers N            count callers by their innermost N Python frames\n"
		"                         (default 1, at most %d; 0: do not count callers)\n"
		"  --slow TIME            print each call that takes TIME or longer, with the\n"
		"                         thread's Python and native stack (e.g. 5ms)\n"
		"  --errors               print each error and bad return, with the stack\n"
		"  --args                 print every call: its first %d integer/pointer\n"
		"                         arguments, return value and duration\n"
		"  --all-symbols          every function symbol of the module too (C->C calls)\n"
		"  -i, --interval TIME    print the table every TIME (default 1s on a terminal,\n"
		"                         else only at the end); with --json one document per\n"
		"                         interval, \"final\": false\n"
		"  --sort KEY             calls (default), total, avg, p99, max, errors\n"
		"  --top N                only the first N rows of the table\n"
		"  --no-exception-checks  do not read the thread's exception at returns: cheaper;\n"
		"                         a NULL return counts as an error, bad returns go unseen\n",
		prog, PYX_CENTRY_CALLERS_MAX, PYX_CENTRY_ARGS);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION |
						PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s watch --module _imaging -p 1234 -d 10s\n"
		"  %s watch --module _imaging -p 1234 --slow 2ms --errors\n"
		"  %s watch --module _json --json -- python3 app.py\n"
		"  %s watch --module _json --all -d 1m\n",
		prog, prog, prog, prog);
}

static int watch_prepare(void *cookie, void *skel_ptr)
{
	struct watch_run *run = cookie;
	struct centry_bpf *skel = skel_ptr;
	const struct watch_opts *opts = run->opts;
	int err;

	/* One histogram per entry point, not PYX_CENTRY_MAX: they are ~1 KiB each per CPU. */
	err = bpf_map__set_max_entries(skel->maps.hists, (__u32)run->mod->nr_entries);
	/* The kernel hashes only the frames asked for. */
	if (!err)
		err = bpf_map__set_key_size(
			skel->maps.callers,
			(__u32)pyx_callers_key_size(opts->callers ? opts->callers : 1));
	if (!err && !opts->callers)
		err = bpf_map__set_max_entries(skel->maps.callers, 1);
	/* Reported calls carry ~30 KiB of stack each. */
	if (!err && !opts->slow_ns && !opts->errors && !opts->args)
		err = bpf_map__set_max_entries(skel->maps.events, 4096);
	return err;
}

static int watch_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct watch_run *run = cookie;
	struct centry_bpf *skel = skel_ptr;
	struct bpf_link *link;
	__u32 i;
	int err;

	run->session = session;
	for (i = 0; i < run->mod->nr_entries; i++) {
		__u32 sig = pyx_centry_bpf_signature(run->mod->entries[i].signature);

		if (!run->mod->entries[i].probe_class) {
			sig |= PYX_CENTRY_NO_RETURN;
			run->without_return++;
		}
		err = bpf_map__update_elem(skel->maps.signatures, &i, sizeof(i), &sig, sizeof(sig),
					   BPF_ANY);
		if (err)
			return err;
	}
	link = pyx_centry_attach(skel->progs.centry_enter, run->proc, run->mod, false);
	if (!link) {
		err = -errno;
		pyx_error(run->ctx, "cannot attach to the entry points of %s: %s", run->mod->name,
			  strerror(-err));
		return err;
	}
	err = pyx_session__add_link(session, link);
	if (err)
		return err;
	link = pyx_centry_attach(skel->progs.centry_return, run->proc, run->mod, true);
	if (!link) {
		err = -errno;
		pyx_error(run->ctx, "cannot attach to the returns of %s: %s", run->mod->name,
			  strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, link);
}

static void read_hists(struct watch_run *run, struct centry_bpf *skel, int cpus)
{
	struct pyx_centry_hist *values = calloc((size_t)cpus, sizeof(*values));
	__u32 i;
	int c, k;

	if (!values)
		return;
	for (i = 0; i < run->mod->nr_entries; i++) {
		if (bpf_map__lookup_elem(skel->maps.hists, &i, sizeof(i), values,
					 (size_t)cpus * sizeof(*values), 0))
			continue;
		memset(&run->hists[i], 0, sizeof(run->hists[i]));
		for (c = 0; c < cpus; c++)
			for (k = 0; k < PYX_HIST_SLOTS; k++)
				run->hists[i].slots[k] += values[c].slots[k];
	}
	free(values);
}

/* Add @v (one CPU's, or one process's) to @sum. */
static void stats_add(struct pyx_centry_stats *sum, const struct pyx_centry_stats *v)
{
	sum->calls += v->calls;
	sum->returns += v->returns;
	sum->errors += v->errors;
	sum->null_no_exception += v->null_no_exception;
	sum->value_with_exception += v->value_with_exception;
	sum->lost_returns += v->lost_returns;
	sum->unpaired += v->unpaired;
	sum->total_ns += v->total_ns;
	if (v->min_ns && (!sum->min_ns || v->min_ns < sum->min_ns))
		sum->min_ns = v->min_ns;
	if (v->max_ns > sum->max_ns)
		sum->max_ns = v->max_ns;
}

static void read_stats(struct watch_run *run, struct centry_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus(), c;
	struct pyx_centry_stats *values;
	__u32 i;

	if (cpus < 1)
		return;
	values = calloc((size_t)cpus, sizeof(*values));
	if (!values)
		return;
	for (i = 0; i < run->mod->nr_entries; i++) {
		struct pyx_centry_stats *sum = &run->stats[i];

		if (bpf_map__lookup_elem(skel->maps.stats, &i, sizeof(i), values,
					 (size_t)cpus * sizeof(*values), 0))
			continue;
		memset(sum, 0, sizeof(*sum));
		for (c = 0; c < cpus; c++)
			stats_add(sum, &values[c]);
	}
	free(values);
	read_hists(run, skel, cpus);
}

static void print_json(void *cookie);
static void print_text(void *cookie);

/* Every interval: the totals so far; at the end: the final ones, printed by watch_target. */
static int watch_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct watch_run *run = cookie;
	struct centry_bpf *skel = pyx_session__skel(session);

	if (final)
		pyx_session__quiesce(session); /* calls and callers counted up to the same moment */
	read_stats(run, skel);
	if (run->callers && pyx_callers__read(run->callers, bpf_map__fd(skel->maps.callers)))
		pyx_warn(run->ctx, "cannot read the callers map: %s", strerror(errno));
	pyx_session__drops(session, run->drops);
	run->duration_ns = pyx_session__elapsed_ns(session);
	run->final = final;
	run->stop_reason = final ? pyx_stop_reason_name(pyx_session__stop_reason(session)) : NULL;
	if (final)
		return 0;
	pyx_cmd_print_table(run->ctx, run->live, false, false, print_json, print_text, run);
	return 0;
}

static const char *const why_names[] = {
	"slow", "error", "null_without_exception", "value_with_exception", "call",
};

/* The return value as its signature class reads it. */
static void print_return_text(FILE *out, enum pyx_signature sig, __u64 ret)
{
	if (sig == PYX_SIG_VOID)
		return;
	if (sig == PYX_SIG_INT)
		fprintf(out, " = %d", (int)(__s32)ret);
	else if (sig == PYX_SIG_SSIZE)
		fprintf(out, " = %lld", (long long)(__s64)ret);
	else if (sig == PYX_SIG_OBJECT && !ret)
		fputs(" = NULL", out);
	else
		fprintf(out, " = 0x%llx", (unsigned long long)ret);
}

static void print_return_json(struct pyx_json *json, enum pyx_signature sig, __u64 ret)
{
	if (sig == PYX_SIG_VOID)
		pyx_json_kv_null(json, "return");
	else if (sig == PYX_SIG_INT)
		pyx_json_kv_i64(json, "return", (__s32)ret);
	else if (sig == PYX_SIG_SSIZE)
		pyx_json_kv_i64(json, "return", (__s64)ret);
	else
		pyx_json_kv_hex(json, "return", ret);
}

/* One reported call (--slow, --errors, --args), with its stack when it has one. */
static void print_call(struct watch_run *run, const struct pyx_centry_call *call,
		       const struct pyx_rec_centry_stack *with_stack)
{
	const struct pyx_entry_point *e = &run->mod->entries[call->index];
	int64_t when = (int64_t)call->time_ns + run->realtime_offset_ns;
	pid_t ns_tid = pyx_ns_pid_of(run->proc->pid, (pid_t)call->tid);
	FILE *out = run->ctx->out;
	char time[32], dur[32];
	size_t i, frames = 0;

	if (with_stack) {
		/* Unwinding takes a while (the first one loads DWARF): name new callers first. */
		pyx_session__drain_urgent(run->session);
		frames = pyx_stackview__build(run->view, &with_stack->py, &with_stack->native,
					      false);
	}
	if (run->ctx->json) {
		struct pyx_json json;

		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "event", "call");
		pyx_json_key(&json, "reasons");
		pyx_json_array_begin(&json);
		for (i = 0; i < PYX_ARRAY_SIZE(why_names); i++)
			if (call->why & (1u << i))
				pyx_json_string(&json, why_names[i]);
		pyx_json_array_end(&json);
		pyx_json_kv_i64(&json, "time_ns", when);
		pyx_json_kv_i64(&json, "pid", run->proc->pid);
		pyx_json_kv_u64(&json, "tid", call->tid);
		pyx_json_kv_i64(&json, "ns_tid", ns_tid ? ns_tid : (pid_t)call->tid);
		if (with_stack) {
			pyx_json_key(&json, "thread");
			pyx_json_string_len(
				&json, with_stack->py.comm,
				strnlen(with_stack->py.comm, sizeof(with_stack->py.comm)));
		}
		pyx_json_kv_string(&json, "function", e->name);
		pyx_json_kv_string(&json, "symbol", e->symbol[0] ? e->symbol : NULL);
		if (call->timed)
			pyx_json_kv_u64(&json, "duration_ns", call->duration_ns);
		else
			pyx_json_kv_null(&json, "duration_ns");
		if (call->why & PYX_CENTRY_WHY_ARGS) {
			pyx_json_key(&json, "args");
			if (call->timed) {
				pyx_json_array_begin(&json);
				for (i = 0; i < PYX_CENTRY_ARGS; i++)
					pyx_json_hex(&json, call->args[i]);
				pyx_json_array_end(&json);
			} else {
				pyx_json_null(&json);
			}
		}
		print_return_json(&json, e->signature, call->ret);
		if (with_stack) {
			pyx_json_key(&json, "stack");
			pyx_stackview__print_json(run->view, &json);
		}
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		run->reported++;
		return;
	}
	fprintf(out, "%s ", pyx_format_clock(when, time, sizeof(time)));
	for (i = 0; i < PYX_ARRAY_SIZE(why_names); i++)
		if (call->why & (1u << i))
			fprintf(out, "%s ", why_names[i]);
	fprintf(out, "%s", e->name);
	if (call->why & PYX_CENTRY_WHY_ARGS) {
		fputc('(', out);
		for (i = 0; i < PYX_CENTRY_ARGS; i++)
			if (call->timed)
				fprintf(out, "%s0x%llx", i ? ", " : "",
					(unsigned long long)call->args[i]);
		fputs(call->timed ? ")" : "?)", out);
	}
	print_return_text(out, e->signature, call->ret);
	fprintf(out, "  %s  thread %u",
		call->timed ? pyx_format_duration(call->duration_ns, dur, sizeof(dur)) : "?",
		call->tid);
	if (ns_tid && ns_tid != (pid_t)call->tid)
		fprintf(out, " (tid %d in container)", ns_tid);
	fputc('\n', out);
	if (with_stack) {
		pyx_stackview__print_text(run->view, out, "    ");
		if (frames || with_stack->native.stack_len)
			fprintf(out, "    -> %s returned here\n", e->name);
	}
	run->reported++;
}

static int watch_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct watch_run *run = cookie;

	switch (hdr->type) {
	case PYX_REC_CENTRY_CALLER:
		if (size >= sizeof(struct pyx_rec_centry_caller) && run->callers)
			pyx_callers__learn(run->callers,
					   &((const struct pyx_rec_centry_caller *)hdr)->key);
		break;
	case PYX_REC_CENTRY_CALL: {
		const struct pyx_rec_centry_call *rec = (const void *)hdr;

		if (size >= sizeof(*rec) && rec->call.index < run->mod->nr_entries)
			print_call(run, &rec->call, NULL);
		break;
	}
	case PYX_REC_CENTRY_STACK: {
		const struct pyx_rec_centry_stack *rec = (const void *)hdr;

		if (size >= sizeof(*rec) && rec->call.index < run->mod->nr_entries)
			print_call(run, &rec->call, rec);
		break;
	}
	default:
		break;
	}
	return 0;
}

/* Timed calls: those whose return was paired with their entry. */
static uint64_t timed_calls(const struct pyx_centry_stats *st)
{
	uint64_t untimed = st->lost_returns + st->unpaired;

	return st->calls > untimed ? st->calls - untimed : 0;
}

static void print_json(void *cookie)
{
	struct watch_run *run = cookie;
	struct pyx_json json;
	size_t i;

	pyx_json_init(&json, run->ctx->out);
	pyx_json_object_begin(&json);
	pyx_out_process(&json, "process", run->proc);
	pyx_out_python(&json, "python", run->py);
	pyx_json_key(&json, "module");
	pyx_json_object_begin(&json);
	pyx_json_kv_string(&json, "name", run->mod->name);
	pyx_json_kv_string(&json, "path", run->mod->object->path);
	pyx_json_kv_string(&json, "build_id", run->mod->build_id[0] ? run->mod->build_id : NULL);
	pyx_json_object_end(&json);
	pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
	pyx_json_kv_u64(&json, "single_stepped", run->single_stepped);
	pyx_json_kv_bool(&json, "exception_checks", run->exception_checks);
	if (run->callers)
		pyx_json_kv_u64(&json, "callers_depth", run->opts->callers);
	else
		pyx_json_kv_null(&json, "callers_depth");
	if (run->opts->slow_ns || run->opts->errors || run->opts->args)
		pyx_json_kv_u64(&json, "reported", run->reported);
	pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
	pyx_json_key(&json, "functions");
	pyx_json_array_begin(&json);
	for (i = 0; i < run->mod->nr_entries; i++) {
		const struct pyx_entry_point *e = &run->mod->entries[i];
		const struct pyx_centry_stats *st = &run->stats[i];
		uint64_t timed = timed_calls(st);

		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "name", e->name);
		pyx_json_kv_string(&json, "symbol", e->symbol[0] ? e->symbol : NULL);
		pyx_json_kv_hex(&json, "address", e->address);
		pyx_json_kv_string(&json, "signature", pyx_signature_name(e->signature));
		pyx_json_kv_bool(&json, "return_probe", e->probe_class != 0);
		pyx_json_kv_string(&json, "probe", pyx_probe_class_name(e->probe_class));
		pyx_json_kv_u64(&json, "probe_offset", e->probe_delta);
		pyx_json_kv_u64(&json, "calls", st->calls);
		pyx_json_kv_u64(&json, "errors", st->errors);
		pyx_json_key(&json, "bad_returns");
		pyx_json_object_begin(&json);
		pyx_json_kv_u64(&json, "null_without_exception", st->null_no_exception);
		pyx_json_kv_u64(&json, "value_with_exception", st->value_with_exception);
		pyx_json_object_end(&json);
		/* Returns never seen: dropped by the kernel past 64 pending, or skipped (longjmp). */
		pyx_json_kv_u64(&json, "lost_returns", st->lost_returns + st->unpaired);
		pyx_json_latency(&json, st->total_ns, timed, st->min_ns, st->max_ns,
				 run->hists[i].slots, PYX_HIST_SLOTS);
		if (run->callers) {
			const struct pyx_caller_row *rows;
			size_t n = pyx_callers__of(run->callers, (uint32_t)i, &rows);

			pyx_json_key(&json, "callers");
			pyx_callers_print_json(&json, rows, n);
		}
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	pyx_out_drops(&json, run->drops);
	pyx_json_kv_bool(&json, "final", run->final);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

/* The value a row is sorted by (descending). */
static uint64_t sort_key(const struct watch_run *run, size_t i)
{
	const struct pyx_centry_stats *st = &run->stats[i];
	uint64_t timed = timed_calls(st);

	switch (run->opts->sort) {
	case SORT_TOTAL:
		return st->total_ns;
	case SORT_AVG:
		return timed ? st->total_ns / timed : 0;
	case SORT_P99:
		return pyx_hist_percentile(run->hists[i].slots, PYX_HIST_SLOTS, 0.99);
	case SORT_MAX:
		return st->max_ns;
	case SORT_ERRORS:
		return st->errors + st->null_no_exception + st->value_with_exception;
	case SORT_CALLS:
	default:
		return st->calls;
	}
}

static int by_sort_key(const void *a, const void *b, void *cookie)
{
	const struct watch_run *run = cookie;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	uint64_t ka = sort_key(run, ia), kb = sort_key(run, ib);

	if (ka != kb)
		return ka < kb ? 1 : -1;
	/* Ties: the busier one first, then table order, so the output is stable. */
	if (run->stats[ia].calls != run->stats[ib].calls)
		return run->stats[ia].calls < run->stats[ib].calls ? 1 : -1;
	return ia < ib ? -1 : ia > ib;
}

static void print_callers_text(struct watch_run *run, size_t index)
{
	const struct pyx_caller_row *rows;
	size_t n, i;

	if (!run->callers)
		return;
	n = pyx_callers__of(run->callers, (uint32_t)index, &rows);
	for (i = 0; i < n && i < WATCH_MAX_CALLERS_SHOWN; i++) {
		fprintf(run->ctx->out, "  %10llu  from ", (unsigned long long)rows[i].count);
		pyx_callers_print_text(run->ctx->out, &rows[i]);
		fputc('\n', run->ctx->out);
	}
	if (n > WATCH_MAX_CALLERS_SHOWN)
		fprintf(run->ctx->out, "  %10s  (%zu more callers)\n", "",
			n - WATCH_MAX_CALLERS_SHOWN);
}

static void print_text(void *cookie)
{
	struct watch_run *run = cookie;
	FILE *out = run->ctx->out;
	char label[160], avg[32], p99[32], max[32], dur[32];
	uint64_t p99_ns;
	size_t *order, i, called = 0, shown = 0;

	fprintf(out, "%s: module %s, %zu entry points, %s (%s)\n",
		pyx_process_label(run->proc, label, sizeof(label)), run->mod->name,
		run->mod->nr_entries, pyx_format_duration(run->duration_ns, dur, sizeof(dur)),
		run->stop_reason ? run->stop_reason : "so far");
	order = calloc(run->mod->nr_entries, sizeof(*order));
	if (!order)
		return;
	for (i = 0; i < run->mod->nr_entries; i++)
		order[i] = i;
	qsort_r(order, run->mod->nr_entries, sizeof(*order), by_sort_key, run);
	fprintf(out, "%-40s %10s %8s %8s %8s %10s %10s %10s\n", "FUNCTION", "CALLS", "ERRORS",
		"BAD", "LOST", "AVG", "P99", "MAX");
	for (i = 0; i < run->mod->nr_entries; i++) {
		const struct pyx_centry_stats *st = &run->stats[order[i]];
		uint64_t timed = timed_calls(st);

		if (!st->calls)
			continue;
		called++;
		if (run->opts->top && shown >= run->opts->top)
			continue;
		shown++;
		p99_ns = pyx_hist_percentile(run->hists[order[i]].slots, PYX_HIST_SLOTS, 0.99);

		fprintf(out, "%-40s %10llu %8llu %8llu %8llu %10s %10s %10s\n",
			run->mod->entries[order[i]].name, (unsigned long long)st->calls,
			(unsigned long long)st->errors,
			(unsigned long long)(st->null_no_exception + st->value_with_exception),
			(unsigned long long)(st->lost_returns + st->unpaired),
			timed ? pyx_format_duration(st->total_ns / timed, avg, sizeof(avg)) : "-",
			p99_ns ? pyx_format_duration(p99_ns, p99, sizeof(p99)) : "-",
			st->max_ns ? pyx_format_duration(st->max_ns, max, sizeof(max)) : "-");
		print_callers_text(run, order[i]);
	}
	if (!called)
		fputs("(no calls)\n", out);
	else if (shown < called)
		fprintf(out, "(%zu more entry points called; --top)\n", called - shown);
	fprintf(out,
		"%zu of %zu entry points probed on a single-stepped instruction (~12 µs a hit)\n",
		run->single_stepped, run->mod->nr_entries);
	pyx_print_drops(out, run->drops, 1u << PYX_DROP_RETURN_DEPTH);
	free(order);
}

/*
 * Everything but the session for watching the module in run->proc (opened,
 * Python detected): 0, -ENOENT when the module is not loaded there (@why
 * says so), or another -errno (reason logged).
 */
static int watch_run_prepare(struct watch_run *run, struct pyx_centry_cfg *cfg, char *why,
			     size_t why_size)
{
	const struct watch_opts *opts = run->opts;
	struct pyx_ctx *ctx = run->ctx;
	bool reporting = opts->slow_ns || opts->errors || opts->args;
	int err;

	err = pyx_module__discover(run->proc, run->py, opts->module, &run->mod, why, why_size);
	if (err)
		return err;
	if (!run->mod->nr_entries || run->mod->nr_entries > PYX_CENTRY_MAX) {
		snprintf(
			why, why_size,
			"%s: %zu entry points found (searched PyMethodDef tables, static types and type specs)",
			run->mod->name, run->mod->nr_entries);
		return -ENODATA;
	}
	if (opts->all_symbols)
		pyx_module__add_all_symbols(run->proc, run->mod);
	run->single_stepped = pyx_centry_plan(run->mod);
	run->stats = calloc(run->mod->nr_entries, sizeof(*run->stats));
	run->hists = calloc(run->mod->nr_entries, sizeof(*run->hists));
	run->cache = pyx_code_cache__new(
		&run->layout.code,
		(struct pyx_mem){.read = pyx_process__read_cb, .ctx = run->proc});
	if (!run->stats || !run->hists || !run->cache)
		goto out_nomem;
	if (opts->callers) {
		run->callers = pyx_callers__new(run->cache, opts->callers);
		if (!run->callers)
			goto out_nomem;
	}
	if (opts->slow_ns || opts->errors) {
		/* Symbolization data is read now, while every object is mapped. */
		run->unwinder = pyx_unwinder__new(run->proc);
		if (!run->unwinder)
			pyx_warn(ctx, "native unwinding unavailable: %s (Python frames only)",
				 strerror(errno));
		/* Not when the first slow call happens: new callers would wait behind it. */
		pyx_unwinder__preload(run->unwinder);
		run->view = pyx_stackview__new(ctx, run->proc, run->py, &run->layout, run->cache,
					       run->unwinder);
		if (!run->view)
			goto out_nomem;
	}
	/* Live on a terminal, unless calls are printed one by one (they would be wiped). */
	run->live = !ctx->json && isatty(fileno(ctx->out)) && !reporting && !run->pid;
	run->realtime_offset_ns = pyx_realtime_offset_ns();
	cfg->tgid = (__u32)run->proc->pid;
	cfg->check_exceptions = !opts->no_exception_checks && run->layout.walk.tstate_fast;
	run->exception_checks = cfg->check_exceptions;
	cfg->callers = opts->callers;
	cfg->report = (opts->slow_ns ? PYX_CENTRY_REPORT_SLOW : 0) |
		      (opts->errors ? PYX_CENTRY_REPORT_ERRORS : 0) |
		      (opts->args ? PYX_CENTRY_REPORT_ARGS : 0);
	cfg->slow_ns = opts->slow_ns;
	cfg->stack_bytes = WATCH_DEFAULT_STACK_BYTES;
	cfg->layout = run->layout.walk;
	if (opts->errors && !cfg->check_exceptions)
		pyx_warn(ctx, "--errors: %s; bad returns cannot be told from errors",
			 opts->no_exception_checks
				 ? "--no-exception-checks given"
				 : "this interpreter has no per-thread fast path");
	return 0;
out_nomem:
	snprintf(why, why_size, "out of memory");
	return -ENOMEM;
}

static void watch_run_release(struct watch_run *run)
{
	pyx_session__destroy(run->session);
	run->session = NULL;
	pyx_stackview__free(run->view);
	run->view = NULL;
	pyx_unwinder__free(run->unwinder);
	run->unwinder = NULL;
	pyx_callers__free(run->callers);
	run->callers = NULL;
	pyx_code_cache__free(run->cache);
	run->cache = NULL;
	free(run->hists);
	run->hists = NULL;
	free(run->stats);
	run->stats = NULL;
	pyx_module__free(run->mod);
	run->mod = NULL;
	pyx_python__free(run->py);
	run->py = NULL;
	pyx_process__close(run->proc);
	run->proc = NULL;
}

static int watch_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct watch_opts *opts = cookie;
	struct watch_run run = {.ctx = ctx, .opts = opts};
	struct pyx_centry_cfg cfg = {};
	uint64_t interval_ns = opts->interval_ns;
	int err, ret = PYX_EXIT_FAILURE;
	char why[1024];

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	err = watch_run_prepare(&run, &cfg, why, sizeof(why));
	if (err) {
		pyx_error(ctx, "%s", why);
		goto out_release;
	}
	if (run.live && !interval_ns)
		interval_ns = 1000000000ull;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run.proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_ns,
		.interval_ns = interval_ns,
		.cookie = &run,
		.prepare = watch_prepare,
		.attach = watch_attach,
		.on_record = watch_on_record,
		.on_interval = watch_on_interval,
	};
	err = pyx_session__trace(&centry_bpf_ops, &sopts);
	run.session = NULL; /* destroyed by pyx_session__trace */
	if (err)
		goto out_release;
	pyx_cmd_print_table(ctx, run.live, true, run.reported != 0, print_json, print_text, &run);
	ret = PYX_EXIT_OK;
out_release:
	watch_run_release(&run);
	return ret;
}

/*
 * Several processes (--all, --container ID, --children): a watch_run per
 * Python process, attached once the module is loaded there (now or when it
 * maps new code: an import), each with its own table; at the end the
 * scope's totals per entry point, summed over every process watched.
 */
struct watch_total {
	const char *name; /* an entry point's name (owned by the first run that had it) */
	char *owned;
	struct pyx_centry_stats stats;
	struct pyx_centry_hist hist;
};

struct watch_fleet {
	struct pyx_ctx *ctx;
	const struct watch_opts *opts;
	unsigned int watched, exited, without_module;
	struct watch_total *totals;
	size_t nr_totals;
	uint64_t drops[PYX_DROP__MAX];
};

static void add_totals(struct watch_fleet *fleet, const struct watch_run *run)
{
	size_t i, j;
	int k;

	for (i = 0; i < run->mod->nr_entries; i++) {
		const struct pyx_centry_stats *st = &run->stats[i];
		struct watch_total *t = NULL;

		for (j = 0; j < fleet->nr_totals && !t; j++)
			if (!strcmp(fleet->totals[j].name, run->mod->entries[i].name))
				t = &fleet->totals[j];
		if (!t) {
			struct watch_total *totals =
				realloc(fleet->totals, (fleet->nr_totals + 1) * sizeof(*totals));

			if (!totals)
				return;
			fleet->totals = totals;
			t = &totals[fleet->nr_totals++];
			memset(t, 0, sizeof(*t));
			t->owned = strdup(run->mod->entries[i].name);
			t->name = t->owned ? t->owned : "?";
		}
		stats_add(&t->stats, st);
		for (k = 0; k < PYX_HIST_SLOTS; k++)
			t->hist.slots[k] += run->hists[i].slots[k];
	}
	for (k = 0; k < PYX_DROP__MAX; k++)
		fleet->drops[k] += run->drops[k];
}

/* Attach to run->pid if the module is loaded there now; 0 attached, -ENOENT not yet. */
static int watch_fleet_try(struct watch_fleet *fleet, struct watch_run *run,
			   struct pyx_discovery *disc)
{
	struct pyx_ctx *ctx = fleet->ctx;
	struct pyx_centry_cfg cfg = {};
	char why[1024];
	int err;

	err = pyx_cmd_found_python(ctx, run->pid, &run->proc, &run->py, &run->layout);
	if (err)
		goto out_release;
	err = watch_run_prepare(run, &cfg, why, sizeof(why));
	if (err) {
		/*
		 * Not loaded (yet): the next import, or the next interval, looks
		 * again. No entry points while new code was mapped lately: seen
		 * before the loader relocated it, most likely (said if it stays so).
		 */
		if (err == -ENOENT || err == -ENOEXEC ||
		    (err == -ENODATA && pyx_monotonic_ns() < run->retry_until_ns))
			pyx_debug(ctx, "process %d: %s", run->pid, why);
		else
			pyx_warn(ctx, "process %d: %s", run->pid, why);
		goto out_release;
	}
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = run,
		.prepare = watch_prepare,
		.attach = watch_attach,
		.on_record = watch_on_record,
	};
	err = pyx_discovery__start_follower(disc, &centry_bpf_ops, &sopts, &run->session);
	if (err) {
		run->session = NULL; /* watch_attach saw it; it is gone */
		goto out_release;
	}
	pyx_info(ctx, "watching %s in process %d (%s, Python %s): %zu entry points", run->mod->name,
		 run->pid, run->proc->comm, run->py->version, run->mod->nr_entries);
	fleet->watched++;
	return 0;

out_release:
	watch_run_release(run);
	return err;
}

static int watch_fleet_found(void *cookie, struct pyx_discovery *disc, pid_t pid, void **state)
{
	struct watch_fleet *fleet = cookie;
	struct watch_run *run = calloc(1, sizeof(*run));

	if (!run)
		return -ENOMEM;
	run->ctx = fleet->ctx;
	run->opts = fleet->opts;
	run->pid = pid;
	watch_fleet_try(fleet, run, disc);
	*state = run;
	return 0;
}

static void watch_fleet_mapped(void *cookie, struct pyx_discovery *disc, void *state)
{
	struct watch_run *run = state;

	if (run->session)
		return;
	/* Seen mid-load (mapped, not yet relocated)? The next intervals look again. */
	run->retry_until_ns = pyx_monotonic_ns() + WATCH_IMPORT_RETRY_NS;
	watch_fleet_try(cookie, run, disc);
}

/* A process's final table and its share of the totals; the run is freed. */
static void watch_fleet_gone(void *cookie, struct pyx_discovery *disc, void *state,
			     enum pyx_gone_reason why, __u32 status)
{
	struct watch_fleet *fleet = cookie;
	struct watch_run *run = state;

	(void)status;
	if (run->session) {
		pyx_discovery__end_follower(disc, run->session);
		watch_on_interval(run, run->session, true);
		run->stop_reason = pyx_discovery__gone_name(disc, why);
		pyx_cmd_print_table(fleet->ctx, false, true, false, print_json, print_text, run);
		add_totals(fleet, run);
		if (why == PYX_GONE_EXIT)
			fleet->exited++;
		else if (why == PYX_GONE_EXEC)
			fleet->watched--; /* the same process: counted again if its new image has it */
	} else if (why != PYX_GONE_EXEC) {
		fleet->without_module++; /* a Python process that never loaded the module */
	}
	watch_run_release(run);
	free(run);
}

static void watch_fleet_refresh(void *cookie, struct pyx_discovery *disc, void *state)
{
	struct watch_run *run = state;

	if (!run->session) {
		/* A module loaded since, whose mapping came too early to be read. */
		if (!run->retry_until_ns)
			return;
		if (pyx_monotonic_ns() >= run->retry_until_ns)
			run->retry_until_ns = 0; /* the last look: what it finds is said */
		watch_fleet_try(cookie, run, disc);
		return;
	}
	if (run->opts->interval_ns)
		watch_on_interval(run, run->session, false);
}

static void print_fleet_totals(struct watch_fleet *fleet, const struct pyx_discovery_end *end)
{
	FILE *out = fleet->ctx->out;
	char avg[32], p99[32], max[32], dur[32];
	size_t i;

	if (fleet->ctx->json) {
		struct pyx_json json;

		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "process", "all");
		pyx_json_kv_string(&json, "scope", end->scope);
		pyx_json_kv_u64(&json, "processes", fleet->watched);
		pyx_json_kv_u64(&json, "exited", fleet->exited);
		pyx_json_kv_u64(&json, "without_module", fleet->without_module);
		pyx_json_key(&json, "module");
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "name", fleet->opts->module);
		pyx_json_object_end(&json);
		pyx_json_kv_u64(&json, "duration_ns", end->duration_ns);
		pyx_json_kv_string(&json, "stopped_by", end->stopped_by);
		pyx_json_key(&json, "functions");
		pyx_json_array_begin(&json);
		for (i = 0; i < fleet->nr_totals; i++) {
			const struct watch_total *t = &fleet->totals[i];

			pyx_json_object_begin(&json);
			pyx_json_kv_string(&json, "name", t->name);
			pyx_json_kv_u64(&json, "calls", t->stats.calls);
			pyx_json_kv_u64(&json, "errors", t->stats.errors);
			pyx_json_key(&json, "bad_returns");
			pyx_json_object_begin(&json);
			pyx_json_kv_u64(&json, "null_without_exception",
					t->stats.null_no_exception);
			pyx_json_kv_u64(&json, "value_with_exception",
					t->stats.value_with_exception);
			pyx_json_object_end(&json);
			pyx_json_kv_u64(&json, "lost_returns",
					t->stats.lost_returns + t->stats.unpaired);
			pyx_json_latency(&json, t->stats.total_ns, timed_calls(&t->stats),
					 t->stats.min_ns, t->stats.max_ns, t->hist.slots,
					 PYX_HIST_SLOTS);
			pyx_json_object_end(&json);
		}
		pyx_json_array_end(&json);
		pyx_out_drops(&json, fleet->drops);
		pyx_json_kv_bool(&json, "final", true);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		return;
	}
	fprintf(out, "%s: module %s in %u process%s (%u exited), %s (%s)\n", end->scope,
		fleet->opts->module, fleet->watched, fleet->watched == 1 ? "" : "es", fleet->exited,
		pyx_format_duration(end->duration_ns, dur, sizeof(dur)), end->stopped_by);
	fprintf(out, "%-40s %10s %8s %8s %8s %10s %10s %10s\n", "FUNCTION", "CALLS", "ERRORS",
		"BAD", "LOST", "AVG", "P99", "MAX");
	for (i = 0; i < fleet->nr_totals; i++) {
		const struct watch_total *t = &fleet->totals[i];
		uint64_t timed = timed_calls(&t->stats);
		uint64_t p99_ns = pyx_hist_percentile(t->hist.slots, PYX_HIST_SLOTS, 0.99);

		if (!t->stats.calls)
			continue;
		fprintf(out, "%-40s %10llu %8llu %8llu %8llu %10s %10s %10s\n", t->name,
			(unsigned long long)t->stats.calls, (unsigned long long)t->stats.errors,
			(unsigned long long)(t->stats.null_no_exception +
					     t->stats.value_with_exception),
			(unsigned long long)(t->stats.lost_returns + t->stats.unpaired),
			timed ? pyx_format_duration(t->stats.total_ns / timed, avg, sizeof(avg))
			      : "-",
			p99_ns ? pyx_format_duration(p99_ns, p99, sizeof(p99)) : "-",
			t->stats.max_ns ? pyx_format_duration(t->stats.max_ns, max, sizeof(max))
					: "-");
	}
	pyx_print_drops(out, fleet->drops, 1u << PYX_DROP_RETURN_DEPTH);
}

static int watch_fleet_interval(void *cookie, struct pyx_discovery *disc, bool final)
{
	struct watch_fleet *fleet = cookie;
	struct pyx_discovery_end end;

	if (!final) {
		pyx_discovery__for_each(disc, watch_fleet_refresh);
		return 0;
	}
	pyx_discovery__end(disc, fleet->drops, &end);
	print_fleet_totals(fleet, &end);
	return 0;
}

static int watch_scope(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		       const struct watch_opts *opts)
{
	struct watch_fleet fleet = {.ctx = ctx, .opts = opts};
	struct pyx_discovery_opts dopts = {
		.ctx = ctx,
		.duration_ns = common->duration_ns,
		.interval_ns = opts->interval_ns ? opts->interval_ns : 1000000000ull,
		.cookie = &fleet,
		.found = watch_fleet_found,
		.mapped = watch_fleet_mapped,
		.gone = watch_fleet_gone,
		.on_interval = watch_fleet_interval,
	};
	size_t i;
	int ret;

	if (pyx_cmd_scope(ctx, common, &dopts))
		return PYX_EXIT_FAILURE;
	ret = pyx_discovery__run(&dopts) ? PYX_EXIT_FAILURE : PYX_EXIT_OK;
	for (i = 0; i < fleet.nr_totals; i++)
		free(fleet.totals[i].owned);
	free(fleet.totals);
	return ret;
}

enum {
	OPT_MODULE = 0x4000,
	OPT_ALL_SYMBOLS,
	OPT_NO_EXCEPTION_CHECKS,
	OPT_CALLERS,
	OPT_SLOW,
	OPT_ERRORS,
	OPT_ARGS,
	OPT_SORT,
	OPT_TOP,
	OPT_INTERVAL = 'i',
};

static const struct option watch_options[] = {
	{"module", required_argument, NULL, OPT_MODULE},
	{"all-symbols", no_argument, NULL, OPT_ALL_SYMBOLS},
	{"no-exception-checks", no_argument, NULL, OPT_NO_EXCEPTION_CHECKS},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"callers", required_argument, NULL, OPT_CALLERS},
	{"slow", required_argument, NULL, OPT_SLOW},
	{"errors", no_argument, NULL, OPT_ERRORS},
	{"args", no_argument, NULL, OPT_ARGS},
	{"sort", required_argument, NULL, OPT_SORT},
	{"top", required_argument, NULL, OPT_TOP},
	{},
};

static int option_error(const char *what, const char *arg, const char *hint)
{
	return pyx_option_error(&pyx_cmd_watch, what, arg, hint);
}

static int watch_option(void *cookie, int val, const char *arg)
{
	struct watch_opts *opts = cookie;
	unsigned long n;
	size_t i;

	switch (val) {
	case OPT_MODULE:
		opts->module = arg;
		return 0;
	case OPT_ALL_SYMBOLS:
		opts->all_symbols = true;
		return 0;
	case OPT_NO_EXCEPTION_CHECKS:
		opts->no_exception_checks = true;
		return 0;
	case OPT_INTERVAL:
		if (pyx_parse_duration(arg, &opts->interval_ns) || !opts->interval_ns)
			return option_error("interval", arg, "use e.g. 500ms, 1s");
		return 0;
	case OPT_CALLERS:
		if (pyx_parse_count(arg, 0, PYX_CENTRY_CALLERS_MAX, &n))
			return option_error("--callers", arg, "use 0 to 8 frames");
		opts->callers = (unsigned int)n;
		return 0;
	case OPT_SLOW:
		if (pyx_parse_duration(arg, &opts->slow_ns) || !opts->slow_ns)
			return option_error("--slow", arg, "use e.g. 100us, 5ms");
		return 0;
	case OPT_ERRORS:
		opts->errors = true;
		return 0;
	case OPT_ARGS:
		opts->args = true;
		return 0;
	case OPT_SORT:
		for (i = 0; i < PYX_ARRAY_SIZE(sort_names); i++)
			if (!strcmp(arg, sort_names[i])) {
				opts->sort = (enum watch_sort)i;
				return 0;
			}
		return option_error("--sort", arg, "use calls, total, avg, p99, max or errors");
	case OPT_TOP:
		if (pyx_parse_count(arg, 1, 1000000, &n))
			return option_error("--top", arg, "use a number of rows >= 1");
		opts->top = n;
		return 0;
	default:
		return -EINVAL;
	}
}

static int watch_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct watch_opts opts = {.callers = 1};
	struct pyx_common_opts common;
	int err;

	err = pyx_cmd_parse(ctx, &pyx_cmd_watch,
			    PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, watch_options, "i:", watch_option, &opts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	if (!opts.module)
		return pyx_usage_error(ctx, &pyx_cmd_watch, "--module NAME is required");
	if (pyx_cmd_is_scope(&common)) {
		if (pyx_cmd_open_output(ctx))
			return PYX_EXIT_FAILURE;
		err = watch_scope(ctx, &common, &opts);
		return pyx_cmd_close_output(ctx) && err == PYX_EXIT_OK ? PYX_EXIT_FAILURE : err;
	}
	if (!common.pid && !common.launch_argv)
		return pyx_usage_error(
			ctx, &pyx_cmd_watch,
			"a target is required: -p PID, --container ID, --all or -- CMD");
	return pyx_cmd_run_target(ctx, &common, watch_target, &opts);
}

const struct pyx_cmd pyx_cmd_watch = {
	.name = "watch",
	.summary = "one extension module's C entry points: calls, errors, latency",
	.usage = watch_usage,
	.run = watch_run,
};
