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

#include <linux/types.h>
#include <pyxtrace/centry.h>

#include "centry.skel.h"
#include "cmd/cmd.h"
#include "output/hist.h"
#include "output/json.h"
#include "output/objects.h"
#include "probes/centry.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "python/layout.h"
#include "elf/x86.h"
#include "session.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(centry_bpf);

struct watch_opts {
	const char *module;
	bool all_symbols;
	bool no_exception_checks;
	uint64_t interval_ns; /* 0: only the final table */
};

struct watch_run {
	struct pyx_ctx *ctx;
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
};

static void watch_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s watch --module NAME (-p PID [--container ID] | -- CMD [ARGS...]) [-d TIME]\n"
		"       [--json] [-o FILE]\n"
		"\n"
		"Every Python-visible C entry point of one extension module (found without\n"
		"symbols), probed with two uprobe_multi links: calls, errors (NULL with an\n"
		"exception set, -1), bad returns (NULL without an exception, a value with one),\n"
		"lost returns and latency, per entry point, aggregated in the kernel. The\n"
		"final table is printed when the duration ends, on Ctrl-C, or when the\n"
		"target exits; with -i, the totals so far every interval too.\n"
		"\n"
		"  --module NAME          import name (\"_imaging\", \"PIL._imaging\") or path\n"
		"  --all-symbols          every function symbol of the module too (C->C calls)\n"
		"  -i, --interval TIME    also print the totals so far every TIME (e.g. 1s);\n"
		"                         with --json one document per interval, \"final\": false\n"
		"  --no-exception-checks  do not read the thread's exception at returns: cheaper;\n"
		"                         a NULL return counts as an error, bad returns go unseen\n",
		prog);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s watch --module _imaging -p 1234 -d 10s\n"
		"  %s watch --module _json --json -- python3 app.py\n",
		prog, prog);
}

static __u32 bpf_signature(enum pyx_signature sig)
{
	switch (sig) {
	case PYX_SIG_OBJECT:
		return PYX_CENTRY_SIG_OBJECT;
	case PYX_SIG_INT:
		return PYX_CENTRY_SIG_INT;
	case PYX_SIG_SSIZE:
		return PYX_CENTRY_SIG_SSIZE;
	default:
		return PYX_CENTRY_SIG_VOID;
	}
}

/* One histogram per entry point, not PYX_CENTRY_MAX: they are ~1 KiB each per CPU. */
static int watch_prepare(void *cookie, void *skel_ptr)
{
	struct watch_run *run = cookie;
	struct centry_bpf *skel = skel_ptr;

	return bpf_map__set_max_entries(skel->maps.hists, (__u32)run->mod->nr_entries);
}

static int watch_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct watch_run *run = cookie;
	struct centry_bpf *skel = skel_ptr;
	struct bpf_link *link;
	__u32 i;
	int err;

	for (i = 0; i < run->mod->nr_entries; i++) {
		__u32 sig = bpf_signature(run->mod->entries[i].signature);

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
		for (c = 0; c < cpus; c++) {
			const struct pyx_centry_stats *v = &values[c];

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
	}
	free(values);
	read_hists(run, skel, cpus);
}

static void print_json(struct watch_run *run);
static void print_text(struct watch_run *run);

/* Every interval: the totals so far; at the end: the final ones, printed by watch_target. */
static int watch_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct watch_run *run = cookie;

	read_stats(run, pyx_session__skel(session));
	pyx_session__drops(session, run->drops);
	run->duration_ns = pyx_session__elapsed_ns(session);
	run->final = final;
	run->stop_reason = final ? pyx_stop_reason_name(pyx_session__stop_reason(session)) : NULL;
	if (final)
		return 0;
	if (run->ctx->json) {
		print_json(run);
	} else {
		print_text(run);
		fputc('\n', run->ctx->out);
	}
	fflush(run->ctx->out);
	return 0;
}

/* Timed calls: those whose return was paired with their entry. */
static uint64_t timed_calls(const struct pyx_centry_stats *st)
{
	uint64_t untimed = st->lost_returns + st->unpaired;

	return st->calls > untimed ? st->calls - untimed : 0;
}

static void print_json(struct watch_run *run)
{
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
		pyx_json_kv_u64(&json, "total_ns", st->total_ns);
		pyx_json_kv_u64(&json, "min_ns", st->min_ns);
		pyx_json_kv_u64(&json, "max_ns", st->max_ns);
		pyx_json_kv_u64(&json, "avg_ns", timed ? st->total_ns / timed : 0);
		pyx_json_kv_u64(&json, "p50_ns",
				pyx_hist_percentile(run->hists[i].slots, PYX_HIST_SLOTS, 0.50));
		pyx_json_kv_u64(&json, "p90_ns",
				pyx_hist_percentile(run->hists[i].slots, PYX_HIST_SLOTS, 0.90));
		pyx_json_kv_u64(&json, "p99_ns",
				pyx_hist_percentile(run->hists[i].slots, PYX_HIST_SLOTS, 0.99));
		pyx_json_hist(&json, "hist", run->hists[i].slots, PYX_HIST_SLOTS);
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	pyx_json_key(&json, "drops");
	pyx_json_object_begin(&json);
	for (i = 0; i < PYX_DROP__MAX; i++)
		if (pyx_drop_reason_name(i))
			pyx_json_kv_u64(&json, pyx_drop_reason_name(i), run->drops[i]);
	pyx_json_object_end(&json);
	pyx_json_kv_bool(&json, "final", run->final);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

static int by_calls(const void *a, const void *b, void *stats)
{
	const struct pyx_centry_stats *st = stats;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;

	return st[ia].calls < st[ib].calls ? 1 : st[ia].calls > st[ib].calls ? -1 : 0;
}

static void print_text(struct watch_run *run)
{
	FILE *out = run->ctx->out;
	char label[160], avg[32], p99[32], max[32], dur[32];
	uint64_t p99_ns;
	size_t *order, i, shown = 0;

	fprintf(out, "%s: module %s, %zu entry points, %s (%s)\n",
		pyx_process_label(run->proc, label, sizeof(label)), run->mod->name,
		run->mod->nr_entries, pyx_format_duration(run->duration_ns, dur, sizeof(dur)),
		run->stop_reason ? run->stop_reason : "so far");
	order = calloc(run->mod->nr_entries, sizeof(*order));
	if (!order)
		return;
	for (i = 0; i < run->mod->nr_entries; i++)
		order[i] = i;
	qsort_r(order, run->mod->nr_entries, sizeof(*order), by_calls, run->stats);
	fprintf(out, "%-40s %10s %8s %8s %8s %10s %10s %10s\n", "FUNCTION", "CALLS", "ERRORS",
		"BAD", "LOST", "AVG", "P99", "MAX");
	for (i = 0; i < run->mod->nr_entries; i++) {
		const struct pyx_centry_stats *st = &run->stats[order[i]];
		uint64_t timed = timed_calls(st);

		if (!st->calls)
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
	}
	if (!shown)
		fputs("(no calls)\n", out);
	fprintf(out,
		"%zu of %zu entry points probed on a single-stepped instruction (~12 µs a hit)\n",
		run->single_stepped, run->mod->nr_entries);
	free(order);
}

static int watch_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct watch_opts *opts = cookie;
	struct watch_run run = {.ctx = ctx};
	struct pyx_centry_cfg cfg = {};
	struct pyx_session *session = NULL;
	int err, ret = PYX_EXIT_FAILURE;
	char why[1024];

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	err = pyx_module__discover(run.proc, run.py, opts->module, &run.mod, why, sizeof(why));
	if (err) {
		pyx_error(ctx, "%s", why);
		goto out_free;
	}
	if (!run.mod->nr_entries || run.mod->nr_entries > PYX_CENTRY_MAX) {
		pyx_error(
			ctx,
			"%s: %zu entry points found (searched PyMethodDef tables, static types and type specs)",
			run.mod->name, run.mod->nr_entries);
		goto out_free;
	}
	if (opts->all_symbols)
		pyx_module__add_all_symbols(run.proc, run.mod);
	run.single_stepped = pyx_centry_plan(run.mod);
	run.stats = calloc(run.mod->nr_entries, sizeof(*run.stats));
	run.hists = calloc(run.mod->nr_entries, sizeof(*run.hists));
	if (!run.stats || !run.hists)
		goto out_free;
	cfg.tgid = (__u32)run.proc->pid;
	cfg.check_exceptions = !opts->no_exception_checks && run.layout.walk.tstate_fast;
	run.exception_checks = cfg.check_exceptions;
	cfg.layout = run.layout.walk;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run.proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_ns,
		.interval_ns = opts->interval_ns,
		.cookie = &run,
		.prepare = watch_prepare,
		.attach = watch_attach,
		.on_interval = watch_on_interval,
	};
	err = pyx_session__start(&session, &centry_bpf_ops, &sopts);
	if (err)
		goto out_free;
	err = pyx_session__run(session);
	pyx_session__destroy(session);
	if (err)
		goto out_free;
	if (ctx->json)
		print_json(&run);
	else
		print_text(&run);
	ret = PYX_EXIT_OK;
out_free:
	free(run.hists);
	free(run.stats);
	pyx_module__free(run.mod);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
	return ret;
}

enum { OPT_MODULE = 0x4000, OPT_ALL_SYMBOLS, OPT_NO_EXCEPTION_CHECKS, OPT_INTERVAL = 'i' };

static const struct option watch_options[] = {
	{"module", required_argument, NULL, OPT_MODULE},
	{"all-symbols", no_argument, NULL, OPT_ALL_SYMBOLS},
	{"no-exception-checks", no_argument, NULL, OPT_NO_EXCEPTION_CHECKS},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{},
};

static int watch_option(void *cookie, int val, const char *arg)
{
	struct watch_opts *opts = cookie;

	if (val == OPT_MODULE)
		opts->module = arg;
	else if (val == OPT_ALL_SYMBOLS)
		opts->all_symbols = true;
	else if (val == OPT_NO_EXCEPTION_CHECKS)
		opts->no_exception_checks = true;
	else if (val == OPT_INTERVAL) {
		if (pyx_parse_duration(arg, &opts->interval_ns) || !opts->interval_ns) {
			fprintf(stderr,
				"pyxtrace watch: invalid interval '%s': use e.g. 500ms, 1s (see 'pyxtrace watch --help')\n",
				arg);
			return -EINVAL;
		}
	} else
		return -EINVAL;
	return 0;
}

static int watch_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct watch_opts opts = {};
	struct pyx_common_opts common;
	int err;

	err = pyx_cmd_parse(ctx, &pyx_cmd_watch, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, watch_options, "i:", watch_option, &opts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	if (!opts.module)
		return pyx_usage_error(ctx, &pyx_cmd_watch, "--module NAME is required");
	if (!common.pid && !common.launch_argv)
		return pyx_usage_error(
			ctx, &pyx_cmd_watch,
			"a target is required: -p PID, --container ID -p PID or -- CMD");
	return pyx_cmd_run_target(ctx, &common, watch_target, &opts);
}

const struct pyx_cmd pyx_cmd_watch = {
	.name = "watch",
	.summary = "one extension module's C entry points: calls, errors, latency",
	.usage = watch_usage,
	.run = watch_run,
};
