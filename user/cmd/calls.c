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
#include "cmd/calls_sampled.h"
#include "cmd/cmd.h"
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
	enum calls_sort sort;
	size_t top; /* 0: the default (text) or every function (JSON) */
	const char *match;
	regex_t match_re;
};

/* One Python function (code object) counted. */
struct function_row {
	struct pyx_calls_key key;
	char *function;
	char *qualname;
	char *file;
	int line;
	bool named;
	bool native;		   /* a C entry point of --module */
	struct pyx_calls_stats st; /* summed over CPUs */
};

struct calls_run {
	struct pyx_ctx *ctx;
	const struct calls_opts *opts;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct pyx_eval_hooks hooks;
	struct pyx_module **natives; /* --module, --cfunc: C functions by cookie range */
	size_t nr_natives;
	size_t nr_native_functions;
	struct function_row *rows;
	size_t nr_rows, cap_rows;
	size_t *index; /* open addressing over rows by key: cap_rows * 2 slots, 0 = empty */
	uint64_t drops[PYX_DROP__MAX];
	uint64_t duration_ns;
	const char *stop_reason;
	bool final;
	bool live;
};

static void calls_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s calls (-p PID [--container ID] | -- CMD [ARGS...]) [-i TIME]\n"
		"       [--module NAME] [--cfunc GLOB] [--sort KEY] [--top N] [--match REGEX]\n"
		"       [--thread TID] [--sampled [--hz N] [--folded FILE]]\n"
		"       [--min-latency TIME]\n"
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
		"  --min-latency TIME     only functions with at least one call this slow\n",
		prog, CALLS_DEFAULT_TOP);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s calls -p 1234 -d 10s\n"
		"  %s calls -p 1234 --sort self --match 'myapp/'\n"
		"  %s calls --json -- python3 app.py\n",
		prog, prog, prog);
}

static size_t key_hash(const struct pyx_calls_key *key, size_t slots)
{
	uint64_t h = (key->code ^ (key->guard * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (size_t)(h >> 17) & (slots - 1);
}

static bool same_key(const struct pyx_calls_key *a, const struct pyx_calls_key *b)
{
	return a->code == b->code && a->guard == b->guard;
}

/* Slot of @key in the index: where it is, or the empty one where it would go. */
static size_t index_slot(const struct calls_run *run, const struct pyx_calls_key *key)
{
	size_t slots = run->cap_rows * 2, i = key_hash(key, slots);

	while (run->index[i] && !same_key(&run->rows[run->index[i] - 1].key, key))
		i = (i + 1) & (slots - 1);
	return i;
}

static int grow_rows(struct calls_run *run)
{
	size_t cap = run->cap_rows ? run->cap_rows * 2 : 256, i;
	struct function_row *rows = realloc(run->rows, cap * sizeof(*rows));
	size_t *index;

	if (!rows)
		return -ENOMEM;
	run->rows = rows;
	index = calloc(cap * 2, sizeof(*index));
	if (!index)
		return -ENOMEM;
	free(run->index);
	run->index = index;
	run->cap_rows = cap;
	for (i = 0; i < run->nr_rows; i++)
		run->index[index_slot(run, &run->rows[i].key)] = i + 1;
	return 0;
}

static struct function_row *row_of(struct calls_run *run, const struct pyx_calls_key *key,
				   bool create)
{
	struct function_row *row;
	size_t slot;

	if (run->cap_rows) {
		slot = index_slot(run, key);
		if (run->index[slot])
			return &run->rows[run->index[slot] - 1];
	}
	if (!create)
		return NULL;
	if (run->nr_rows == run->cap_rows && grow_rows(run))
		return NULL;
	row = &run->rows[run->nr_rows++];
	memset(row, 0, sizeof(*row));
	row->key = *key;
	run->index[index_slot(run, key)] = run->nr_rows;
	return row;
}

struct snap_mem {
	const struct pyx_code_snap *snap;
	struct pyx_process *proc;
};

static int snap_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct snap_mem *m = ctx;

	if (m->snap && !pyx_codesnap_read(m->snap, 1, addr, buf, len))
		return 0;
	return pyx_process__read(m->proc, addr, buf, len);
}

/*
 * Name a row from the copy of its code object taken when it was first
 * counted (@snap), else from the live process.
 */
static void name_row(struct calls_run *run, struct function_row *row,
		     const struct pyx_code_snap *snap)
{
	struct snap_mem mem = {.snap = snap, .proc = run->proc};
	struct pyx_code_cache *cache;
	struct pyx_frame_info info;

	if (row->named)
		return;
	if (row->key.guard == PYX_CALLS_NATIVE_GUARD) {
		const struct pyx_entry_point *e = NULL;
		const struct pyx_module *mod = NULL;
		size_t i;

		for (i = 0; i < run->nr_natives && !e; i++) {
			mod = run->natives[i];
			if (row->key.code >= mod->cookie_base &&
			    row->key.code - mod->cookie_base < mod->nr_entries)
				e = &mod->entries[row->key.code - mod->cookie_base];
		}
		if (!e)
			return;
		row->native = true;
		row->function = strdup(e->name);
		row->qualname = strdup(e->name);
		row->file = strdup(mod->object->path);
		row->named = row->function && row->qualname && row->file;
		return;
	}
	cache = pyx_code_cache__new(&run->layout.code,
				    (struct pyx_mem){.read = snap_read, .ctx = &mem});
	if (!cache)
		return;
	if (!pyx_code_cache__resolve(cache, row->key.code, PYX_CODE_NO_GUARD, 0, false, &info)) {
		row->function = strdup(info.function ? info.function : "?");
		row->qualname = strdup(info.qualname ? info.qualname : row->function);
		row->file = strdup(info.file ? info.file : "?");
		row->line = info.firstlineno;
		row->named = row->function && row->qualname && row->file;
	}
	pyx_code_cache__free(cache);
}

static int calls_prepare(void *cookie, void *skel_ptr)
{
	(void)cookie;
	(void)skel_ptr;
	return 0;
}

static int attach_kind(struct calls_run *run, struct bpf_program *prog,
		       enum pyx_eval_hook_kind kind, struct pyx_session *session)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .retprobe = kind == PYX_HOOK_EVAL_RETURN);
	const struct pyx_object *obj = run->hooks.object;
	unsigned long offsets[PYX_EVAL_HOOKS_MAX];
	__u64 cookies[PYX_EVAL_HOOKS_MAX];
	struct bpf_link *link;
	char path[96];
	size_t i, n = 0;
	int err;

	for (i = 0; i < run->hooks.nr_hooks; i++) {
		const struct pyx_eval_hook *h = &run->hooks.hooks[i];
		uint64_t off;

		if (h->kind != kind)
			continue;
		if (pyx_elf__vaddr_to_offset(obj->elf, h->vaddr + h->delta, &off))
			continue;
		offsets[n] = (unsigned long)off;
		cookies[n] = h->pop_arg;
		n++;
	}
	if (!n)
		return 0;
	opts.offsets = offsets;
	opts.cookies = cookies;
	opts.cnt = n;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, run->proc->pid,
		 obj->map_start, obj->map_end);
	link = bpf_program__attach_uprobe_multi(prog, run->proc->pid, path, NULL, &opts);
	if (!link && !pyx_process__alive(run->proc)) {
		/* Its map_files entry went with it (ENOENT): not an error, the session flushes. */
		pyx_debug(run->ctx, "the target exited while the %s hooks were attached",
			  pyx_eval_hook_kind_name(kind));
		return 0;
	}
	if (!link) {
		err = -errno;
		pyx_error(run->ctx, "cannot attach the %s hooks of %s (file offset 0x%lx%s): %s",
			  pyx_eval_hook_kind_name(kind), obj->path, offsets[0],
			  n > 1 ? " and more" : "", strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, link);
}

static int attach_natives(struct calls_run *run, struct bpf_program *prog, bool retprobe,
			  struct pyx_session *session)
{
	size_t i;
	int err;

	for (i = 0; i < run->nr_natives; i++) {
		struct pyx_module *mod = run->natives[i];
		struct bpf_link *link = pyx_centry_attach(prog, run->proc, mod, retprobe);

		if (!link) {
			err = -errno;
			if (!pyx_process__alive(run->proc))
				return 0;
			pyx_error(run->ctx, "cannot attach to the %s of %s's C functions: %s",
				  retprobe ? "returns" : "entries", mod->name, strerror(-err));
			return err;
		}
		err = pyx_session__add_link(session, link);
		if (err)
			return err;
	}
	return 0;
}

static int calls_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct calls_run *run = cookie;
	struct calls_bpf *skel = skel_ptr;
	int err;

	/* Pops and yields first: a frame started once resume is live must find them live. */
	err = attach_kind(run, skel->progs.calls_pop, PYX_HOOK_POP, session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_eval_return, PYX_HOOK_EVAL_RETURN,
				  session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_eval_enter, PYX_HOOK_EVAL_ENTER, session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_yield, PYX_HOOK_YIELD, session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_return, PYX_HOOK_RETURN, session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_unwind, PYX_HOOK_UNWIND, session);
	/* --module, --cfunc: returns first, so no entry is pushed that nothing would pop. */
	if (!err)
		err = attach_natives(run, skel->progs.calls_cexit, true, session);
	if (!err)
		err = attach_natives(run, skel->progs.calls_centry, false, session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_frame_enter, PYX_HOOK_FRAME_ENTER,
				  session);
	if (!err)
		err = attach_kind(run, skel->progs.calls_resume, PYX_HOOK_RESUME, session);
	return err;
}

static void read_stats(struct calls_run *run, struct calls_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus(), c, k;
	struct pyx_calls_stats *values;
	struct pyx_calls_key key, next, *prev = NULL;
	size_t i;

	if (cpus < 1)
		return;
	values = calloc((size_t)cpus, sizeof(*values));
	if (!values)
		return;
	for (i = 0; i < run->nr_rows; i++)
		memset(&run->rows[i].st, 0, sizeof(run->rows[i].st));
	while (!bpf_map__get_next_key(skel->maps.stats, prev, &next, sizeof(next))) {
		struct function_row *row;
		struct pyx_calls_stats *sum;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(skel->maps.stats, &key, sizeof(key), values,
					 (size_t)cpus * sizeof(*values), 0))
			continue;
		row = row_of(run, &key, true);
		if (!row)
			break;
		name_row(run, row, NULL);
		sum = &row->st;
		for (c = 0; c < cpus; c++) {
			const struct pyx_calls_stats *v = &values[c];

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
	}
	free(values);
}

static void print_json(void *cookie);
static void print_text(void *cookie);

static int calls_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct calls_run *run = cookie;

	if (final)
		pyx_session__quiesce(session);
	read_stats(run, pyx_session__skel(session));
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

	if (hdr->type == PYX_REC_CALLS_CODE && size >= sizeof(struct pyx_rec_calls_code)) {
		const struct pyx_rec_calls_code *rec = (const void *)hdr;
		struct function_row *row = row_of(run, &rec->key, true);

		if (row)
			name_row(run, row, &rec->snap);
	}
	return 0;
}

static uint64_t sort_key(const struct calls_run *run, const struct function_row *row)
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
	const struct function_row *ra = *(const struct function_row *const *)a;
	const struct function_row *rb = *(const struct function_row *const *)b;
	uint64_t ka = sort_key(run, ra), kb = sort_key(run, rb);

	if (ka != kb)
		return ka < kb ? 1 : -1;
	if (ra->st.calls != rb->st.calls)
		return ra->st.calls < rb->st.calls ? 1 : -1;
	return ra->key.code < rb->key.code ? -1 : ra->key.code > rb->key.code;
}

static bool row_shown(const struct calls_run *run, const struct function_row *row)
{
	if (!row->st.calls && !row->st.timed)
		return false;
	if (run->opts->min_latency_ns && row->st.max_ns < run->opts->min_latency_ns)
		return false;
	if (!run->opts->match)
		return true;
	return (row->qualname && !regexec(&run->opts->match_re, row->qualname, 0, NULL, 0)) ||
	       (row->file && !regexec(&run->opts->match_re, row->file, 0, NULL, 0));
}

/* The rows to print, sorted; *shown_of is how many matched before --top. */
static struct function_row **sorted_rows(struct calls_run *run, size_t *n, size_t *matched)
{
	struct function_row **order = calloc(run->nr_rows ? run->nr_rows : 1, sizeof(*order));
	size_t i, limit = run->opts->top;

	*n = *matched = 0;
	if (!order)
		return NULL;
	for (i = 0; i < run->nr_rows; i++)
		if (row_shown(run, &run->rows[i]))
			order[(*matched)++] = &run->rows[i];
	qsort_r(order, *matched, sizeof(*order), by_sort_key, run);
	if (!limit && !run->ctx->json)
		limit = CALLS_DEFAULT_TOP;
	*n = limit && *matched > limit ? limit : *matched;
	return order;
}

static void print_json(void *cookie)
{
	struct calls_run *run = cookie;
	struct function_row **order;
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
	pyx_json_kv_hex(&json, "address", run->hooks.table);
	pyx_json_kv_string(&json, "from", run->hooks.table_symbol_origin);
	pyx_json_object_end(&json);
	pyx_json_key(&json, "hooks");
	pyx_json_array_begin(&json);
	for (i = 0; i < run->hooks.nr_hooks; i++) {
		const struct pyx_eval_hook *h = &run->hooks.hooks[i];

		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "kind", pyx_eval_hook_kind_name(h->kind));
		pyx_json_kv_string(&json, "at", h->what);
		pyx_json_kv_hex(&json, "address", h->vaddr);
		pyx_json_kv_u64(&json, "probe_offset", h->delta);
		pyx_json_kv_string(&json, "probe", pyx_probe_class_name(h->cls));
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
	pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
	pyx_json_key(&json, "functions");
	pyx_json_array_begin(&json);
	order = sorted_rows(run, &n, &matched);
	for (i = 0; order && i < n; i++) {
		const struct function_row *row = order[i];
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
	struct function_row **order;
	size_t i, n, matched;

	fprintf(out, "%s: Python %s, exact calls (eval-loop hooks), %s (%s)\n",
		pyx_process_label(run->proc, label, sizeof(label)), run->py->version,
		pyx_format_duration(run->duration_ns, dur, sizeof(dur)),
		run->stop_reason ? run->stop_reason : "so far");
	order = sorted_rows(run, &n, &matched);
	if (!order)
		return;
	fprintf(out, "%-36s %-30s %9s %5s %10s %10s %10s %10s %10s %10s\n", "FUNCTION", "FILE:LINE",
		"CALLS", "EXC", "TOTAL", "SELF", "AVG", "P50", "P99", "MAX");
	for (i = 0; i < n; i++) {
		const struct function_row *row = order[i];
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
		fputs(run->opts->match ? "(no calls matching --match)\n" : "(no calls)\n", out);
	else if (n < matched)
		fprintf(out, "(%zu more function%s; --top)\n", matched - n,
			matched - n == 1 ? "" : "s");
	pyx_print_drops(out, run->drops, 0);
	free(order);
}

/*
 * The span of a code object read at each start (struct pyx_calls_cfg): its
 * file name, name and first line (the guard), its line table's address
 * (more guard, when it fits in the span) and, ≤3.10, co_flags (frames have
 * no owner field: evalhooks gives its offset).
 * Seen on Debian's 3.11: the main script's module code took the address,
 * the file name's address and the first line of a freed `<string>` one.
 */
static int code_span(struct pyx_calls_cfg *cfg, const struct pyx_code_layout *code,
		     uint32_t co_flags)
{
	uint32_t offs[5] = {code->co_filename, code->co_name, code->co_firstlineno, co_flags,
			    code->co_linetable};
	uint32_t lens[5] = {8, 8, 4, 4, 8}, lo = UINT32_MAX, hi = 0;
	uint32_t *rel[5] = {&cfg->span_filename, &cfg->span_name, &cfg->span_firstlineno,
			    &cfg->span_flags, &cfg->span_linetable};
	size_t i, n = 5;

	for (;;) {
		lo = UINT32_MAX;
		hi = 0;
		for (i = 0; i < n; i++) {
			if (offs[i] == PYX_OFF_NONE)
				continue;
			lo = offs[i] < lo ? offs[i] : lo;
			hi = offs[i] + lens[i] > hi ? offs[i] + lens[i] : hi;
		}
		if (hi - lo <= PYX_CALLS_SPAN_MAX)
			break;
		if (n == 4)
			return -E2BIG;
		n = 4; /* without the line table */
	}
	cfg->span_off = lo;
	cfg->span_len = hi - lo;
	for (i = 0; i < 5; i++)
		*rel[i] = i < n && offs[i] != PYX_OFF_NONE ? offs[i] - lo : PYX_OFF_NONE;
	return 0;
}

static void free_rows(struct calls_run *run)
{
	size_t i;

	for (i = 0; i < run->nr_rows; i++) {
		free(run->rows[i].function);
		free(run->rows[i].qualname);
		free(run->rows[i].file);
	}
	free(run->rows);
	free(run->index);
}

/* C functions across modules: one cookie space, at most this many probed. */
#define CALLS_MAX_NATIVE 4096

static int add_native(struct calls_run *run, struct pyx_module *mod)
{
	struct pyx_module **natives;

	if (run->nr_native_functions + mod->nr_entries > CALLS_MAX_NATIVE) {
		pyx_error(run->ctx, "more than %d C functions to probe: narrow --cfunc",
			  CALLS_MAX_NATIVE);
		pyx_module__free(mod);
		return -E2BIG;
	}
	natives = realloc(run->natives, (run->nr_natives + 1) * sizeof(*natives));
	if (!natives) {
		pyx_module__free(mod);
		return -ENOMEM;
	}
	run->natives = natives;
	mod->cookie_base = (uint32_t)run->nr_native_functions;
	pyx_centry_plan(mod);
	natives[run->nr_natives++] = mod;
	run->nr_native_functions += mod->nr_entries;
	return 0;
}

/*
 * --module: a module's C entry points; --cfunc: the function symbols
 * matching a glob in the interpreter and every extension module loaded.
 */
static int add_natives(struct calls_run *run, const struct calls_opts *opts)
{
	struct pyx_module *mod;
	char why[1024], name[128];
	size_t i, matched = 0;
	int err;

	if (opts->module) {
		err = pyx_module__discover(run->proc, run->py, opts->module, &mod, why,
					   sizeof(why));
		if (err) {
			pyx_error(run->ctx, "%s", why);
			return err;
		}
		if (!mod->nr_entries) {
			pyx_error(run->ctx, "%s: no entry points found", mod->name);
			pyx_module__free(mod);
			return -ENOENT;
		}
		err = add_native(run, mod);
		if (err)
			return err;
	}
	if (!opts->cfunc)
		return 0;
	for (i = 0; i < run->proc->nr_objects; i++) {
		struct pyx_object *obj = &run->proc->objects[i];

		if (!obj->executable ||
		    (obj != run->py->interp &&
		     !pyx_python__extension_name(obj->path, name, sizeof(name))))
			continue;
		mod = pyx_module__of_symbols(run->proc, obj, opts->cfunc);
		if (!mod)
			continue;
		matched += mod->nr_entries;
		err = add_native(run, mod);
		if (err)
			return err;
	}
	if (!matched) {
		pyx_error(run->ctx,
			  "--cfunc '%s' matches no function symbol of the interpreter or its "
			  "extension modules",
			  opts->cfunc);
		return -ENOENT;
	}
	return 0;
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
	if (opts->thread) {
		char task[64];

		snprintf(task, sizeof(task), "/proc/%d/task/%d", run.proc->pid, opts->thread);
		if (access(task, F_OK)) {
			pyx_error(ctx, "thread %d is not a thread of process %d (see ps -T -p %d)",
				  opts->thread, run.proc->pid, run.proc->pid);
			goto out_free;
		}
	}
	sampled_why = opts->sampled ? "asked" : NULL;
	/* JIT-compiled code passes none of the hooks: sample instead, and say so. */
	if (!sampled_why && pyx_eval_hooks__jit_requested(run.proc, run.py, jit, sizeof(jit))) {
		sampled_why = "PYTHON_JIT: JIT code bypasses the exact hooks";
		pyx_warn(ctx,
			 "the target runs with PYTHON_JIT=%s: JIT-compiled code passes none of the "
			 "exact hooks, sampling instead (restart it without PYTHON_JIT for exact "
			 "call counts)",
			 jit);
	}
	if (!sampled_why) {
		err = pyx_eval_hooks__find(run.proc, run.py, &run.hooks, why, sizeof(why));
		if (err == -ENOENT) {
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
			.match = opts->match ? &opts->match_re : NULL,
			.folded = opts->folded,
		};

		if (opts->module || opts->cfunc)
			pyx_warn(ctx, "--module and --cfunc need the exact mode: ignored");
		ret = pyx_calls_sampled_run(&s);
		goto out_free;
	}
	if (add_natives(&run, opts))
		goto out_free;
	if (run.hooks.single_stepped)
		pyx_warn(ctx,
			 "%zu of %zu hooks sit on an instruction the kernel single-steps (~12 µs a "
			 "hit): expect a high overhead",
			 run.hooks.single_stepped, run.hooks.nr_hooks);
	if (!pyx_codesnap_cfg(&cfg.snap, &run.layout.code))
		pyx_warn(ctx,
			 "code objects too large to copy: short-lived functions may be unnamed");
	err = code_span(&cfg, &run.layout.code, run.hooks.co_flags);
	if (err) {
		pyx_error(ctx, "code objects of this build are laid out too sparsely to read");
		goto out_free;
	}
	run.live = !ctx->json && isatty(fileno(ctx->out));
	if (run.live && !interval_ns)
		interval_ns = 1000000000ull;
	cfg.tgid = (__u32)run.proc->pid;
	cfg.tid = (__u32)opts->thread;
	memcpy(cfg.resume_ops, run.hooks.resume_ops, sizeof(cfg.resume_ops));
	memcpy(cfg.yield_ops, run.hooks.yield_ops, sizeof(cfg.yield_ops));
	cfg.stale_are_exceptions = run.hooks.legacy;
	cfg.layout = run.layout.walk;
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
	};
	err = pyx_session__trace(&calls_bpf_ops, &sopts);
	if (err)
		goto out_free;
	pyx_cmd_print_table(ctx, run.live, true, false, print_json, print_text, &run);
	ret = PYX_EXIT_OK;
out_free:
	free_rows(&run);
	for (size_t i = 0; i < run.nr_natives; i++)
		pyx_module__free(run.natives[i]);
	free(run.natives);
	pyx_python__free(run.py);
	pyx_process__close(run.proc);
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
		if (pyx_parse_pid(arg, &opts->thread))
			return pyx_option_error(&pyx_cmd_calls, "--thread", arg,
						"use a host thread id (ps -T)");
		return 0;
	case OPT_MIN_LATENCY:
		if (pyx_parse_duration(arg, &opts->min_latency_ns) || !opts->min_latency_ns)
			return pyx_option_error(&pyx_cmd_calls, "--min-latency", arg,
						"use e.g. 100us, 5ms");
		return 0;
	case OPT_MATCH:
		if (opts->match)
			regfree(&opts->match_re);
		if (regcomp(&opts->match_re, arg, REG_EXTENDED | REG_NOSUB)) {
			opts->match = NULL;
			return pyx_option_error(&pyx_cmd_calls, "--match", arg,
						"not a POSIX extended regular expression");
		}
		opts->match = arg;
		return 0;
	default:
		return -EINVAL;
	}
}

static int calls_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct calls_opts opts = {.hz = 199};
	struct pyx_common_opts common;
	int err, ret;

	err = pyx_cmd_parse(ctx, &pyx_cmd_calls, PYX_OPT_TARGET | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, calls_options, "i:", calls_option, &opts, &common);
	if (err) {
		ret = err < 0 ? PYX_EXIT_OK : err;
		goto out;
	}
	if (!common.pid && !common.launch_argv) {
		ret = pyx_usage_error(
			ctx, &pyx_cmd_calls,
			"a target is required: -p PID, --container ID -p PID or -- CMD");
		goto out;
	}
	ret = pyx_cmd_run_target(ctx, &common, calls_target, &opts);
out:
	if (opts.match)
		regfree(&opts.match_re);
	return ret;
}

const struct pyx_cmd pyx_cmd_calls = {
	.name = "calls",
	.summary = "every Python function: exact calls, exceptions, latency",
	.usage = calls_usage,
	.run = calls_run,
};
