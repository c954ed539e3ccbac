// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace calls: every Python function that runs in a live process, how
 * often and how long each call takes, exact, aggregated in the kernel
 * (bpf/calls.bpf.c) from hooks inside the eval loop (python/evalhooks.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>
#include <pyxtrace/calls.h>

#include "calls.skel.h"
#include "cmd/calls_exact.h"
#include "cmd/calls_sampled.h"
#include "cmd/cmd.h"
#include "discovery.h"
#include "output/hist.h"
#include "output/json.h"
#include "output/objects.h"
#include "probes/centry.h"
#include "python/code.h"
#include "python/codesnap.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "python/evalhooks.h"
#include "python/layout.h"
#include "session.h"
#include "target/process.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(calls_bpf);

enum calls_sort {
	SORT_TOTAL = 0,
	SORT_SELF,
	SORT_CALLS,
	SORT_AVG,
	SORT_MAX,
};

static const char *const sort_names[] = {
	[SORT_TOTAL] = "total", [SORT_SELF] = "self", [SORT_CALLS] = "calls",
	[SORT_AVG] = "avg",	[SORT_MAX] = "max",
};

#define CALLS_DEFAULT_TOP 30 /* rows of the text table unless --top */

struct calls_opts {
	const char *module; /* --module: its C entry points in the same table */
	const char *cfunc;  /* --cfunc: C functions matching this glob, in the same table */
	bool sampled;	    /* --sampled: sample stacks instead (time shares) */
	unsigned int hz;    /* --hz: samples per second per running thread */
	const char *folded; /* --folded FILE: folded stacks (sampled mode) */
	uint64_t interval_ns;
	pid_t thread;		 /* --thread: host TID; 0: every thread */
	uint64_t min_latency_ns; /* --min-latency: only functions with a call this slow */
	double max_overhead_pct; /* --max-overhead: 0 for no limit */
	enum calls_sort sort;
	size_t top; /* 0: the default (text) or every function (JSON) */
	struct pyx_match match;
};

struct calls_run {
	struct pyx_ctx *ctx;
	const struct calls_opts *opts;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct pyx_calls_exact x; /* hooks, C functions, the functions seen */
	uint64_t drops[PYX_DROP__MAX];
	uint64_t duration_ns;
	const char *stop_reason;
	bool final;
	bool live;
	pid_t pid;		     /* one of several processes (--children, --all, ...) */
	struct pyx_session *session; /* its follower session */
};

static void calls_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s calls (-p PID [--container ID] [--children] | --container ID | --all |\n"
		"       -- CMD [ARGS...]) [-i TIME]\n"
		"       [--module NAME] [--cfunc GLOB] [--sort KEY] [--top N] [--match REGEX]\n"
		"       [--thread TID] [--sampled [--hz N] [--folded FILE]]\n"
		"       [--min-latency TIME] [--max-overhead PCT]\n"
		"       [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"Every Python function the process runs: exact call counts, exceptions,\n"
		"inclusive and self time and latency percentiles, aggregated in the kernel from\n"
		"hooks inside the eval loop (CPython 3.11+: the RESUME and YIELD_VALUE opcode\n"
		"handlers and the frame-pop function). A generator's or coroutine's call lasts\n"
		"from its first start to its end; resuming it is not a call. The final table is\n"
		"printed when the duration ends, on Ctrl-C, or when the target exits; on a\n"
		"terminal it is refreshed every interval.\n"
		"\n"
		"  -i, --interval TIME    print the table every TIME (default 1s on a terminal,\n"
		"                         else only at the end); with --json one document per\n"
		"                         interval, \"final\": false\n"
		"  --module NAME          also every C entry point of this extension module\n"
		"                         (\"_json\", \"PIL._imaging\"): kind native in the table,\n"
		"                         its time taken from its Python callers' self time\n"
		"  --cfunc GLOB           also the C functions whose symbol matches GLOB\n"
		"                         (\"PyDict_*\") in the interpreter and its loaded\n"
		"                         extension modules (symbols: .symtab, .dynsym, -dbg)\n"
		"  --sort KEY             total (default), self, calls, avg, max\n"
		"  --top N                only the first N rows (text default %d; JSON: all)\n"
		"  --match REGEX          only functions whose qualified name or file matches\n"
		"                         (POSIX extended regex; counting is not filtered)\n"
		"  --thread TID           only calls made by this thread (host TID)\n"
		"  --sampled              sample Python stacks instead (time shares, not call\n"
		"                         counts; automatic under PYTHON_JIT or without hooks)\n"
		"  --hz N                 samples a second per running thread (default 199)\n"
		"  --folded FILE          write folded stacks for flame graphs (implies --sampled)\n"
		"  --min-latency TIME     only functions with at least one call this slow\n"
		"  --max-overhead PCT     keep the hooks' cost within PCT %% of the target's CPU\n"
		"                         time (default %g): above it they are paused, and the\n"
		"                         counts cover the time they were on; 0: no limit\n",
		prog, CALLS_DEFAULT_TOP, PYX_CALLS_MAX_OVERHEAD_DEFAULT);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION |
						PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s calls --children -p 1234 -d 30s\n"
		"  %s calls -p 1234 -d 10s\n"
		"  %s calls -p 1234 --sort self --match 'myapp/'\n"
		"  %s calls --json -- python3 app.py\n",
		prog, prog, prog, prog);
}

static int calls_prepare(void *cookie, void *skel_ptr)
{
	struct calls_run *run = cookie;
	struct calls_bpf *skel = skel_ptr;
	int err = pyx_calls_exact__autoload(&run->x, skel);

	/* The flow's event ring: unused here. */
	return err ? err : bpf_map__set_max_entries(skel->maps.events, (__u32)getpagesize());
}

static int calls_attach(void *cookie, struct pyx_session *session, void *skel)
{
	struct calls_run *run = cookie;
	int err;

	if (run->opts->max_overhead_pct > 0) {
		err = pyx_calls_exact__budget(&run->x, skel, run->opts->max_overhead_pct);
		if (err)
			return err;
	}
	return pyx_calls_exact__attach(&run->x, session, skel);
}

static int calls_on_tick(void *cookie, struct pyx_session *session)
{
	struct calls_run *run = cookie;

	pyx_calls_exact__tick(&run->x, session, pyx_session__skel(session));
	return 0;
}

/* Add @v to @sum: a CPU's share to the process's, or a process's to the scope's. */
static void stats_add(struct pyx_calls_stats *sum, const struct pyx_calls_stats *v)
{
	int k;

	sum->calls += v->calls;
	sum->exceptions += v->exceptions;
	sum->timed += v->timed;
	sum->total_ns += v->total_ns;
	sum->self_ns += v->self_ns;
	if (v->min_ns && (!sum->min_ns || v->min_ns < sum->min_ns))
		sum->min_ns = v->min_ns;
	if (v->max_ns > sum->max_ns)
		sum->max_ns = v->max_ns;
	for (k = 0; k < PYX_HIST_SLOTS; k++)
		sum->slots[k] += v->slots[k];
}

static void read_stats(struct calls_run *run, struct calls_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus(), c;
	struct pyx_calls_stats *values;
	struct pyx_calls_key key, next, *prev = NULL;
	size_t i;

	if (cpus < 1)
		return;
	values = calloc((size_t)cpus, sizeof(*values));
	if (!values)
		return;
	for (i = 0; i < run->x.nr_fns; i++)
		memset(&run->x.fns[i].st, 0, sizeof(run->x.fns[i].st));
	while (!bpf_map__get_next_key(skel->maps.stats, prev, &next, sizeof(next))) {
		struct pyx_calls_fn *row;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(skel->maps.stats, &key, sizeof(key), values,
					 (size_t)cpus * sizeof(*values), 0))
			continue;
		row = pyx_calls_exact__fn(&run->x, &key, true, NULL);
		if (!row)
			break;
		for (c = 0; c < cpus; c++)
			stats_add(&row->st, &values[c]);
	}
	free(values);
}

static void print_json(void *cookie);
static void print_text(void *cookie);

static int calls_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct calls_run *run = cookie;

	if (final) {
		pyx_session__quiesce(session);
		pyx_calls_exact__budget_end(&run->x);
	}
	read_stats(run, pyx_session__skel(session));
	pyx_calls_exact__read_frame_regs(&run->x, pyx_session__skel(session));
	pyx_session__drops(session, run->drops);
	run->duration_ns = pyx_session__elapsed_ns(session);
	run->final = final;
	run->stop_reason = final ? pyx_stop_reason_name(pyx_session__stop_reason(session)) : NULL;
	if (final)
		return 0;
	pyx_cmd_print_table(run->ctx, run->live, false, false, print_json, print_text, run);
	return 0;
}

static int calls_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct calls_run *run = cookie;

	pyx_calls_exact__on_record(&run->x, hdr, size);
	return 0;
}

static uint64_t sort_key(const struct calls_run *run, const struct pyx_calls_fn *row)
{
	const struct pyx_calls_stats *st = &row->st;

	switch (run->opts->sort) {
	case SORT_SELF:
		return st->self_ns;
	case SORT_CALLS:
		return st->calls;
	case SORT_AVG:
		return st->timed ? st->total_ns / st->timed : 0;
	case SORT_MAX:
		return st->max_ns;
	case SORT_TOTAL:
	default:
		return st->total_ns;
	}
}

static int by_sort_key(const void *a, const void *b, void *cookie)
{
	const struct calls_run *run = cookie;
	const struct pyx_calls_fn *ra = *(const struct pyx_calls_fn *const *)a;
	const struct pyx_calls_fn *rb = *(const struct pyx_calls_fn *const *)b;
	uint64_t ka = sort_key(run, ra), kb = sort_key(run, rb);

	if (ka != kb)
		return ka < kb ? 1 : -1;
	if (ra->st.calls != rb->st.calls)
		return ra->st.calls < rb->st.calls ? 1 : -1;
	return ra->key.code < rb->key.code ? -1 : ra->key.code > rb->key.code;
}

static bool row_shown(const struct calls_run *run, const struct pyx_calls_fn *row)
{
	if (!row->st.calls && !row->st.timed)
		return false;
	if (run->opts->min_latency_ns && row->st.max_ns < run->opts->min_latency_ns)
		return false;
	return pyx_match_fn(&run->opts->match, row->qualname, row->file);
}

/* The rows to print, sorted; *shown_of is how many matched before --top. */
static struct pyx_calls_fn **sorted_rows(struct calls_run *run, size_t *n, size_t *matched)
{
	struct pyx_calls_fn **order = calloc(run->x.nr_fns ? run->x.nr_fns : 1, sizeof(*order));
	size_t i, limit = run->opts->top;

	*n = *matched = 0;
	if (!order)
		return NULL;
	for (i = 0; i < run->x.nr_fns; i++)
		if (row_shown(run, &run->x.fns[i]))
			order[(*matched)++] = &run->x.fns[i];
	qsort_r(order, *matched, sizeof(*order), by_sort_key, run);
	if (!limit && !run->ctx->json)
		limit = CALLS_DEFAULT_TOP;
	*n = limit && *matched > limit ? limit : *matched;
	return order;
}

static void print_json(void *cookie)
{
	struct calls_run *run = cookie;
	struct pyx_calls_fn **order;
	struct pyx_json json;
	size_t i, n, matched;

	pyx_json_init(&json, run->ctx->out);
	pyx_json_object_begin(&json);
	pyx_out_process(&json, "process", run->proc);
	pyx_out_python(&json, "python", run->py);
	pyx_json_kv_string(&json, "mode", "eval-hooks");
	pyx_json_kv_bool(&json, "exact", true);
	pyx_json_key(&json, "opcode_table");
	pyx_json_object_begin(&json);
	pyx_json_kv_hex(&json, "address", run->x.hooks.table);
	pyx_json_kv_string(&json, "from", run->x.hooks.table_symbol_origin);
	pyx_json_object_end(&json);
	pyx_json_key(&json, "hooks");
	pyx_json_array_begin(&json);
	for (i = 0; i < run->x.hooks.nr_hooks; i++) {
		const struct pyx_eval_hook *h = &run->x.hooks.hooks[i];

		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "kind", pyx_eval_hook_kind_name(h->kind));
		pyx_json_kv_string(&json, "at", h->what);
		pyx_json_kv_hex(&json, "address", h->vaddr);
		pyx_json_kv_u64(&json, "probe_offset", h->delta);
		pyx_json_kv_string(&json, "probe", pyx_probe_class_name(h->cls));
		if (h->kind == PYX_HOOK_RESUME || h->kind == PYX_HOOK_RETURN)
			pyx_json_kv_string(&json, "frame_register",
					   pyx_calls_exact__frame_register(&run->x, i));
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
	pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
	pyx_calls_exact__json_overhead(&run->x, &json);
	pyx_json_key(&json, "functions");
	pyx_json_array_begin(&json);
	order = sorted_rows(run, &n, &matched);
	for (i = 0; order && i < n; i++) {
		const struct pyx_calls_fn *row = order[i];
		const struct pyx_calls_stats *st = &row->st;

		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "kind", row->native ? "native" : "python");
		pyx_json_kv_string(&json, "function", row->function);
		pyx_json_kv_string(&json, "qualname", row->qualname);
		pyx_json_kv_string(&json, "file", row->file);
		pyx_json_kv_i64(&json, "line", row->line);
		pyx_json_kv_hex(&json, "code", row->key.code);
		pyx_json_kv_u64(&json, "calls", st->calls);
		pyx_json_kv_u64(&json, "exceptions", st->exceptions);
		pyx_json_kv_u64(&json, "timed", st->timed);
		pyx_json_kv_u64(&json, "self_ns", st->self_ns);
		pyx_json_latency(&json, st->total_ns, st->timed, st->min_ns, st->max_ns, st->slots,
				 PYX_HIST_SLOTS);
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	free(order);
	pyx_out_drops(&json, run->drops);
	pyx_json_kv_bool(&json, "final", run->final);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

static void print_text(void *cookie)
{
	struct calls_run *run = cookie;
	FILE *out = run->ctx->out;
	char label[160], dur[32], total[32], self[32], avg[32], p50[32], p99[32], max[32];
	char where[320];
	struct pyx_calls_fn **order;
	size_t i, n, matched;

	fprintf(out, "%s: Python %s, exact calls (eval-loop hooks), %s (%s)\n",
		pyx_process_label(run->proc, label, sizeof(label)), run->py->version,
		pyx_format_duration(run->duration_ns, dur, sizeof(dur)),
		run->stop_reason ? run->stop_reason : "so far");
	pyx_calls_exact__print_overhead(&run->x, out);
	order = sorted_rows(run, &n, &matched);
	if (!order)
		return;
	fprintf(out, "%-36s %-30s %9s %5s %10s %10s %10s %10s %10s %10s\n", "FUNCTION", "FILE:LINE",
		"CALLS", "EXC", "TOTAL", "SELF", "AVG", "P50", "P99", "MAX");
	for (i = 0; i < n; i++) {
		const struct pyx_calls_fn *row = order[i];
		const struct pyx_calls_stats *st = &row->st;
		const char *file = row->file ? row->file : "?";
		size_t flen = strlen(file);

		/* The end of a long path says more than its start; a C function has no line. */
		if (row->native)
			snprintf(where, sizeof(where), "[C] %.26s", pyx_basename(file));
		else if (flen > 24)
			snprintf(where, sizeof(where), "...%s:%d", file + flen - 21, row->line);
		else
			snprintf(where, sizeof(where), "%s:%d", file, row->line);
		fprintf(out, "%-36s %-30s %9llu %5llu %10s %10s %10s %10s %10s %10s\n",
			row->qualname ? row->qualname : "?", where, (unsigned long long)st->calls,
			(unsigned long long)st->exceptions,
			pyx_format_duration(st->total_ns, total, sizeof(total)),
			pyx_format_duration(st->self_ns, self, sizeof(self)),
			st->timed ? pyx_format_duration(st->total_ns / st->timed, avg, sizeof(avg))
				  : "-",
			st->timed ? pyx_format_duration(
					    pyx_hist_percentile(st->slots, PYX_HIST_SLOTS, 0.50),
					    p50, sizeof(p50))
				  : "-",
			st->timed ? pyx_format_duration(
					    pyx_hist_percentile(st->slots, PYX_HIST_SLOTS, 0.99),
					    p99, sizeof(p99))
				  : "-",
			st->timed ? pyx_format_duration(st->max_ns, max, sizeof(max)) : "-");
	}
	if (!matched)
		fputs(run->opts->match.pattern ? "(no calls matching --match)\n" : "(no calls)\n",
		      out);
	else if (n < matched)
		fprintf(out, "(%zu more function%s; --top)\n", matched - n,
			matched - n == 1 ? "" : "s");
	pyx_print_drops(out, run->drops, 0);
	free(order);
}

static int calls_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct calls_opts *opts = cookie;
	struct calls_run run = {.ctx = ctx, .opts = opts};
	struct pyx_calls_cfg cfg = {};
	uint64_t interval_ns = opts->interval_ns;
	int err, ret = PYX_EXIT_FAILURE;
	const char *sampled_why;
	char why[1024], jit[16];

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	run.x = (struct pyx_calls_exact){
		.ctx = ctx, .proc = run.proc, .py = run.py, .layout = &run.layout};
	if (pyx_cmd_check_thread(ctx, run.proc, opts->thread))
		goto out_free;
	sampled_why = opts->sampled ? "asked" : NULL;
	if (!sampled_why) {
		err = pyx_calls_exact__find(&run.x, jit, sizeof(jit), why, sizeof(why));
		if (err == -EOPNOTSUPP) {
			/* JIT-compiled code passes none of the hooks: sample instead, and say so. */
			sampled_why = "PYTHON_JIT: JIT code bypasses the exact hooks";
			pyx_warn(
				ctx,
				"the target runs with PYTHON_JIT=%s: JIT-compiled code passes none "
				"of the exact hooks, sampling instead (restart it without "
				"PYTHON_JIT for exact call counts)",
				jit);
		} else if (err == -ENOENT) {
			/* What the user can do for exact results is in why. */
			pyx_warn(ctx, "no exact call hooks: %s; sampling instead", why);
			sampled_why = "no exact hooks";
		} else if (err) {
			pyx_error(ctx, "%s", why);
			goto out_free;
		}
	}
	if (sampled_why) {
		struct pyx_calls_sampled s = {
			.ctx = ctx,
			.common = common,
			.proc = run.proc,
			.py = run.py,
			.layout = &run.layout,
			.why = sampled_why,
			.hz = opts->hz,
			.thread = opts->thread,
			.top = opts->top,
			.sort_total = opts->sort != SORT_SELF,
			.match = opts->match.pattern ? &opts->match.re : NULL,
			.folded = opts->folded,
		};

		if (opts->module || opts->cfunc)
			pyx_warn(ctx, "--module and --cfunc need the exact mode: ignored");
		ret = pyx_calls_sampled_run(&s);
		goto out_free;
	}
	if (pyx_calls_exact__prepare(&run.x, opts->module, opts->cfunc, &cfg))
		goto out_free;
	run.live = !ctx->json && isatty(fileno(ctx->out));
	if (run.live && !interval_ns)
		interval_ns = 1000000000ull;
	cfg.tgid = (__u32)run.proc->pid;
	cfg.tid = (__u32)opts->thread;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run.proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_ns,
		.interval_ns = interval_ns,
		.cookie = &run,
		.prepare = calls_prepare,
		.attach = calls_attach,
		.on_record = calls_on_record,
		.on_interval = calls_on_interval,
		.tick_ns = opts->max_overhead_pct > 0 ? PYX_BUDGET_TICK_NS : 0,
		.on_tick = calls_on_tick,
	};
	err = pyx_session__trace(&calls_bpf_ops, &sopts);
	if (err)
		goto out_free;
	pyx_cmd_print_table(ctx, run.live, true, false, print_json, print_text, &run);
	ret = PYX_EXIT_OK;
out_free:
	pyx_calls_exact__free(&run.x);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
	return ret;
}

/*
 * Several processes (--children, --container ID, --all): a calls_run per
 * Python process in exact mode, its own table when it ends (or at the end),
 * then the scope's totals per function (kind, qualified name, file, line)
 * over every process.
 */
struct calls_total {
	bool native;
	char *function;
	char *qualname;
	char *file;
	int line;
	struct pyx_calls_stats st;
};

struct calls_fleet {
	struct pyx_ctx *ctx;
	const struct calls_opts *opts;
	unsigned int traced, exited, not_traced;
	struct calls_total *totals;
	size_t nr_totals;
	uint64_t drops[PYX_DROP__MAX];
};

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void add_totals(struct calls_fleet *fleet, const struct calls_run *run)
{
	size_t i, j;
	int k;

	for (i = 0; i < run->x.nr_fns; i++) {
		const struct pyx_calls_fn *row = &run->x.fns[i];
		struct calls_total *t = NULL;

		if (!row->st.calls && !row->st.timed)
			continue;
		for (j = 0; j < fleet->nr_totals && !t; j++)
			if (fleet->totals[j].native == row->native &&
			    fleet->totals[j].line == row->line &&
			    same_str(fleet->totals[j].qualname, row->qualname) &&
			    same_str(fleet->totals[j].file, row->file))
				t = &fleet->totals[j];
		if (!t) {
			struct calls_total *totals =
				realloc(fleet->totals, (fleet->nr_totals + 1) * sizeof(*totals));

			if (!totals)
				return;
			fleet->totals = totals;
			t = &totals[fleet->nr_totals++];
			memset(t, 0, sizeof(*t));
			t->native = row->native;
			t->function = dup_or_null(row->function);
			t->qualname = dup_or_null(row->qualname);
			t->file = dup_or_null(row->file);
			t->line = row->line;
		}
		stats_add(&t->st, &row->st);
	}
	for (k = 0; k < PYX_DROP__MAX; k++)
		fleet->drops[k] += run->drops[k];
}

static void calls_run_release(struct calls_run *run)
{
	pyx_session__destroy(run->session);
	run->session = NULL;
	pyx_calls_exact__free(&run->x);
	pyx_python__free(run->py);
	run->py = NULL;
	pyx_process__close(run->proc);
	run->proc = NULL;
}

static int calls_fleet_found(void *cookie, struct pyx_discovery *disc, pid_t pid, void **state)
{
	struct calls_fleet *fleet = cookie;
	const struct calls_opts *opts = fleet->opts;
	struct pyx_ctx *ctx = fleet->ctx;
	struct pyx_calls_cfg cfg = {};
	struct calls_run *run;
	char why[1024], jit[16];
	int err;

	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->ctx = ctx;
	run->opts = opts;
	run->pid = pid;
	err = pyx_cmd_found_python(ctx, pid, &run->proc, &run->py, &run->layout);
	if (err) {
		fleet->not_traced += err != -ESRCH;
		goto out_release;
	}
	run->x = (struct pyx_calls_exact){
		.ctx = ctx, .proc = run->proc, .py = run->py, .layout = &run->layout};
	err = pyx_calls_exact__find(&run->x, jit, sizeof(jit), why, sizeof(why));
	if (err == -EOPNOTSUPP)
		snprintf(why, sizeof(why),
			 "process %d runs with PYTHON_JIT=%s: JIT code bypasses the exact hooks "
			 "(trace it alone with -p PID to sample it)",
			 pid, jit);
	if (err) {
		if (pyx_process__alive(run->proc)) {
			pyx_warn(ctx, "not traced: %s", why);
			fleet->not_traced++;
		}
		goto out_release;
	}
	err = pyx_calls_exact__prepare(&run->x, opts->module, opts->cfunc, &cfg);
	if (err)
		goto out_release;
	cfg.tgid = (__u32)pid;
	cfg.tid = (__u32)opts->thread;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = run,
		.prepare = calls_prepare,
		.attach = calls_attach,
		.on_record = calls_on_record,
	};
	err = pyx_discovery__start_follower(disc, &calls_bpf_ops, &sopts, &run->session);
	if (err)
		goto out_release;
	fleet->traced++;
	*state = run;
	return 0;

out_release:
	calls_run_release(run);
	free(run);
	return err;
}

/* A process's final table and its share of the totals; the run is freed. */
static void calls_fleet_gone(void *cookie, struct pyx_discovery *disc, void *state,
			     enum pyx_gone_reason why, __u32 status)
{
	struct calls_fleet *fleet = cookie;
	struct calls_run *run = state;

	(void)status;
	pyx_discovery__end_follower(disc, run->session);
	calls_on_interval(run, run->session, true);
	run->stop_reason = pyx_discovery__gone_name(disc, why);
	pyx_cmd_print_table(fleet->ctx, false, true, false, print_json, print_text, run);
	add_totals(fleet, run);
	if (why == PYX_GONE_EXIT)
		fleet->exited++;
	else if (why == PYX_GONE_EXEC)
		fleet->traced--; /* the same process: counted again if its new image is Python */
	calls_run_release(run);
	free(run);
}

static void calls_fleet_tick_one(void *cookie, struct pyx_discovery *disc, void *state)
{
	struct calls_run *run = state;

	(void)cookie;
	(void)disc;
	pyx_calls_exact__tick(&run->x, run->session, pyx_session__skel(run->session));
}

static int calls_fleet_tick(void *cookie, struct pyx_discovery *disc)
{
	pyx_discovery__for_each(disc, calls_fleet_tick_one);
	return 0;
}

static void calls_fleet_table(void *cookie, struct pyx_discovery *disc, void *state)
{
	struct calls_run *run = state;

	(void)cookie;
	(void)disc;
	calls_on_interval(run, run->session, false);
}

static int by_total(const void *a, const void *b)
{
	const struct calls_total *ta = a, *tb = b;

	if (ta->st.total_ns != tb->st.total_ns)
		return ta->st.total_ns < tb->st.total_ns ? 1 : -1;
	return ta->st.calls < tb->st.calls ? 1 : ta->st.calls > tb->st.calls ? -1 : 0;
}

static void print_fleet_totals(struct calls_fleet *fleet, const struct pyx_discovery_end *end)
{
	FILE *out = fleet->ctx->out;
	char dur[32], total[32], self[32], avg[32], max[32];
	size_t i, shown = 0, limit = fleet->opts->top;

	qsort(fleet->totals, fleet->nr_totals, sizeof(*fleet->totals), by_total);
	if (fleet->ctx->json) {
		struct pyx_json json;

		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "process", "all");
		pyx_json_kv_string(&json, "scope", end->scope);
		pyx_json_kv_u64(&json, "processes", fleet->traced);
		pyx_json_kv_u64(&json, "exited", fleet->exited);
		pyx_json_kv_u64(&json, "not_traced", fleet->not_traced);
		pyx_json_kv_string(&json, "mode", "eval-hooks");
		pyx_json_kv_bool(&json, "exact", true);
		pyx_json_kv_u64(&json, "duration_ns", end->duration_ns);
		pyx_json_kv_string(&json, "stopped_by", end->stopped_by);
		pyx_json_key(&json, "functions");
		pyx_json_array_begin(&json);
		for (i = 0; i < fleet->nr_totals; i++) {
			const struct calls_total *t = &fleet->totals[i];

			if (!pyx_match_fn(&fleet->opts->match, t->qualname, t->file))
				continue;
			pyx_json_object_begin(&json);
			pyx_json_kv_string(&json, "kind", t->native ? "native" : "python");
			pyx_json_kv_string(&json, "function", t->function);
			pyx_json_kv_string(&json, "qualname", t->qualname);
			pyx_json_kv_string(&json, "file", t->file);
			pyx_json_kv_i64(&json, "line", t->line);
			pyx_json_kv_u64(&json, "calls", t->st.calls);
			pyx_json_kv_u64(&json, "exceptions", t->st.exceptions);
			pyx_json_kv_u64(&json, "timed", t->st.timed);
			pyx_json_kv_u64(&json, "self_ns", t->st.self_ns);
			pyx_json_latency(&json, t->st.total_ns, t->st.timed, t->st.min_ns,
					 t->st.max_ns, t->st.slots, PYX_HIST_SLOTS);
			pyx_json_object_end(&json);
		}
		pyx_json_array_end(&json);
		pyx_out_drops(&json, fleet->drops);
		pyx_json_kv_bool(&json, "final", true);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		return;
	}
	fprintf(out, "%s: %u Python process%s (%u exited), exact calls, %s (%s)\n", end->scope,
		fleet->traced, fleet->traced == 1 ? "" : "es", fleet->exited,
		pyx_format_duration(end->duration_ns, dur, sizeof(dur)), end->stopped_by);
	fprintf(out, "%-36s %-30s %9s %5s %10s %10s %10s %10s\n", "FUNCTION", "FILE:LINE", "CALLS",
		"EXC", "TOTAL", "SELF", "AVG", "MAX");
	if (!limit)
		limit = CALLS_DEFAULT_TOP;
	for (i = 0; i < fleet->nr_totals && shown < limit; i++) {
		const struct calls_total *t = &fleet->totals[i];
		char where[320];

		if (!pyx_match_fn(&fleet->opts->match, t->qualname, t->file))
			continue;
		shown++;
		if (t->native)
			snprintf(where, sizeof(where), "[C] %.26s",
				 pyx_basename(t->file ? t->file : "?"));
		else
			snprintf(where, sizeof(where), "%.24s:%d",
				 t->file ? pyx_basename(t->file) : "?", t->line);
		fprintf(out, "%-36s %-30s %9llu %5llu %10s %10s %10s %10s\n",
			t->qualname ? t->qualname : "?", where, (unsigned long long)t->st.calls,
			(unsigned long long)t->st.exceptions,
			pyx_format_duration(t->st.total_ns, total, sizeof(total)),
			pyx_format_duration(t->st.self_ns, self, sizeof(self)),
			t->st.timed ? pyx_format_duration(t->st.total_ns / t->st.timed, avg,
							  sizeof(avg))
				    : "-",
			t->st.timed ? pyx_format_duration(t->st.max_ns, max, sizeof(max)) : "-");
	}
	if (!shown)
		fputs("(no calls)\n", out);
	pyx_print_drops(out, fleet->drops, 0);
}

static int calls_fleet_interval(void *cookie, struct pyx_discovery *disc, bool final)
{
	struct calls_fleet *fleet = cookie;
	struct pyx_discovery_end end;

	if (!final) {
		if (fleet->opts->interval_ns)
			pyx_discovery__for_each(disc, calls_fleet_table);
		return 0;
	}
	pyx_discovery__end(disc, fleet->drops, &end);
	print_fleet_totals(fleet, &end);
	return 0;
}

static int calls_scope(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		       const struct calls_opts *opts)
{
	struct calls_fleet fleet = {.ctx = ctx, .opts = opts};
	struct pyx_discovery_opts dopts = {
		.ctx = ctx,
		.duration_ns = common->duration_ns,
		.interval_ns = opts->interval_ns ? opts->interval_ns : 1000000000ull,
		.tick_ns = opts->max_overhead_pct > 0 ? PYX_BUDGET_TICK_NS : 0,
		.cookie = &fleet,
		.found = calls_fleet_found,
		.gone = calls_fleet_gone,
		.on_interval = calls_fleet_interval,
		.on_tick = calls_fleet_tick,
	};
	size_t i;
	int ret;

	if (opts->sampled)
		return pyx_usage_error(ctx, &pyx_cmd_calls,
				       "--sampled, --folded: one process at a time (-p PID)");
	if (pyx_cmd_scope(ctx, common, &dopts))
		return PYX_EXIT_FAILURE;
	ret = pyx_discovery__run(&dopts) ? PYX_EXIT_FAILURE : PYX_EXIT_OK;
	for (i = 0; i < fleet.nr_totals; i++) {
		free(fleet.totals[i].function);
		free(fleet.totals[i].qualname);
		free(fleet.totals[i].file);
	}
	free(fleet.totals);
	return ret;
}

enum {
	OPT_SAMPLED = 0x3ffb,
	OPT_HZ,
	OPT_FOLDED,
	OPT_CFUNC,
	OPT_MODULE = 0x3fff,
	OPT_SORT = 0x4000,
	OPT_TOP,
	OPT_MATCH,
	OPT_THREAD,
	OPT_MIN_LATENCY,
	OPT_MAX_OVERHEAD,
	OPT_INTERVAL = 'i',
};

static const struct option calls_options[] = {
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"module", required_argument, NULL, OPT_MODULE},
	{"cfunc", required_argument, NULL, OPT_CFUNC},
	{"sampled", no_argument, NULL, OPT_SAMPLED},
	{"hz", required_argument, NULL, OPT_HZ},
	{"folded", required_argument, NULL, OPT_FOLDED},
	{"sort", required_argument, NULL, OPT_SORT},
	{"top", required_argument, NULL, OPT_TOP},
	{"match", required_argument, NULL, OPT_MATCH},
	{"thread", required_argument, NULL, OPT_THREAD},
	{"min-latency", required_argument, NULL, OPT_MIN_LATENCY},
	{"max-overhead", required_argument, NULL, OPT_MAX_OVERHEAD},
	{},
};

static int calls_option(void *cookie, int val, const char *arg)
{
	struct calls_opts *opts = cookie;
	unsigned long n;
	size_t i;

	switch (val) {
	case OPT_INTERVAL:
		if (pyx_parse_duration(arg, &opts->interval_ns) || !opts->interval_ns)
			return pyx_option_error(&pyx_cmd_calls, "interval", arg,
						"use e.g. 500ms, 1s");
		return 0;
	case OPT_SORT:
		for (i = 0; i < PYX_ARRAY_SIZE(sort_names); i++)
			if (!strcmp(arg, sort_names[i])) {
				opts->sort = (enum calls_sort)i;
				return 0;
			}
		return pyx_option_error(&pyx_cmd_calls, "--sort", arg,
					"use total, self, calls, avg or max");
	case OPT_TOP:
		if (pyx_parse_count(arg, 1, 1000000, &n))
			return pyx_option_error(&pyx_cmd_calls, "--top", arg,
						"use a number of rows >= 1");
		opts->top = n;
		return 0;
	case OPT_MODULE:
		opts->module = arg;
		return 0;
	case OPT_CFUNC:
		opts->cfunc = arg;
		return 0;
	case OPT_SAMPLED:
		opts->sampled = true;
		return 0;
	case OPT_HZ:
		if (pyx_parse_count(arg, 1, 10000, &n))
			return pyx_option_error(&pyx_cmd_calls, "--hz", arg,
						"use 1 to 10000 samples a second");
		opts->hz = (unsigned int)n;
		return 0;
	case OPT_FOLDED:
		opts->folded = arg; /* folded stacks come from samples */
		opts->sampled = true;
		return 0;
	case OPT_THREAD:
		return pyx_opt_thread(&pyx_cmd_calls, arg, &opts->thread);
	case OPT_MIN_LATENCY:
		return pyx_opt_min_latency(&pyx_cmd_calls, arg, &opts->min_latency_ns);
	case OPT_MAX_OVERHEAD:
		return pyx_opt_max_overhead(&pyx_cmd_calls, arg, &opts->max_overhead_pct);
	case OPT_MATCH:
		return pyx_opt_match(&pyx_cmd_calls, arg, &opts->match);
	default:
		return -EINVAL;
	}
}

static int calls_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct calls_opts opts = {.hz = 199, .max_overhead_pct = PYX_CALLS_MAX_OVERHEAD_DEFAULT};
	struct pyx_common_opts common;
	int err, ret;

	err = pyx_cmd_parse(ctx, &pyx_cmd_calls,
			    PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, calls_options, "i:", calls_option, &opts, &common);
	if (err) {
		ret = err < 0 ? PYX_EXIT_OK : err;
		goto out;
	}
	if (pyx_cmd_is_scope(&common)) {
		if (pyx_cmd_open_output(ctx)) {
			ret = PYX_EXIT_FAILURE;
			goto out;
		}
		ret = calls_scope(ctx, &common, &opts);
		if (pyx_cmd_close_output(ctx) && ret == PYX_EXIT_OK)
			ret = PYX_EXIT_FAILURE;
		goto out;
	}
	ret = pyx_cmd_require_target(ctx, &pyx_cmd_calls, &common);
	if (ret)
		goto out;
	ret = pyx_cmd_run_target(ctx, &common, calls_target, &opts);
out:
	pyx_match_free(&opts.match);
	return ret;
}

const struct pyx_cmd pyx_cmd_calls = {
	.name = "calls",
	.summary = "every Python function: exact calls, exceptions, latency",
	.usage = calls_usage,
	.run = calls_run,
};
