// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/perf_event.h>
#include <linux/types.h>
#include <pyxtrace/profile.h>

#include "cmd/calls_sampled.h"
#include "output/json.h"
#include "output/objects.h"
#include "profile.skel.h"
#include "python/code.h"
#include "python/detect.h"
#include "session.h"
#include "target/process.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(profile_bpf);

#define SAMPLED_DEFAULT_TOP 30
#define FOLDED_MAX	    8192 /* bytes of one folded stack line */

/*
 * Counters by string: functions ("qualname\tfile\tline") and folded stacks.
 * Open addressing, grown at half full.
 */
struct tally {
	char *key;
	uint64_t self, total;
};

struct tallies {
	struct tally *slots;
	size_t cap, used;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

static struct tally *tally_of(struct tallies *t, const char *key)
{
	size_t i;

	if (2 * (t->used + 1) > t->cap) {
		struct tallies bigger = {.cap = t->cap ? 2 * t->cap : 1024};

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return NULL;
		for (i = 0; i < t->cap; i++) {
			struct tally *old = &t->slots[i];
			size_t j;

			if (!old->key)
				continue;
			j = fnv1a(old->key) & (bigger.cap - 1);
			while (bigger.slots[j].key)
				j = (j + 1) & (bigger.cap - 1);
			bigger.slots[j] = *old;
			bigger.used++;
		}
		free(t->slots);
		*t = bigger;
	}
	i = fnv1a(key) & (t->cap - 1);
	while (t->slots[i].key && strcmp(t->slots[i].key, key))
		i = (i + 1) & (t->cap - 1);
	if (!t->slots[i].key) {
		t->slots[i].key = strdup(key);
		if (!t->slots[i].key)
			return NULL;
		t->used++;
	}
	return &t->slots[i];
}

static void tallies_free(struct tallies *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
}

struct sampled_run {
	struct pyx_calls_sampled *s;
	struct pyx_code_cache *cache;
	struct tallies functions;
	struct tallies stacks;
	uint64_t samples;   /* with at least one Python frame */
	uint64_t no_python; /* in threads running no Python code */
	uint64_t drops[PYX_DROP__MAX];
	uint64_t duration_ns;
	const char *stop_reason;
};

static int sampled_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct sampled_run *run = cookie;
	struct profile_bpf *skel = skel_ptr;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = run->s->hz,
	};
	int cpus = libbpf_num_possible_cpus(), cpu, attached = 0, err;

	/* Per CPU, every task: threads started later are sampled too; BPF keeps the target's. */
	for (cpu = 0; cpu < cpus; cpu++) {
		err = pyx_session__attach_perf(session, skel->progs.profile_sample, &attr, -1, cpu);
		if (err == -ENODEV || err == -EINVAL)
			continue; /* an offline CPU */
		if (err)
			return err;
		attached++;
	}
	if (!attached) {
		pyx_error(run->s->ctx, "cannot open a cpu-clock perf event on any CPU");
		return -ENODEV;
	}
	return 0;
}

/* "qualname\tfile\tline" of a frame, or a placeholder for an unreadable code object. */
static void frame_key(struct sampled_run *run, const struct pyx_pyframe *f, char *buf, size_t size)
{
	struct pyx_frame_info info;
	uint32_t guard = (f->flags & PYX_FRAME_GUARDED) ? f->guard : PYX_CODE_NO_GUARD;

	if (pyx_code_cache__resolve(run->cache, f->code, guard, 0, f->flags & PYX_FRAME_GENERATOR,
				    &info)) {
		snprintf(buf, size, "?\t?\t0");
		return;
	}
	snprintf(buf, size, "%s\t%s\t%d", info.qualname ? info.qualname : "?",
		 info.file ? info.file : "?", info.firstlineno);
}

static int sampled_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct sampled_run *run = cookie;
	const struct pyx_rec_pystack *rec = (const void *)hdr;
	char keys[PYX_MAX_FRAMES][320], folded[FOLDED_MAX];
	size_t nr = 0, i, j, len = 0;
	struct tally *t;

	if (hdr->type != PYX_REC_PYSTACK || size < sizeof(*rec))
		return 0;
	for (i = 0; i < rec->nr_frames && i < PYX_MAX_FRAMES; i++)
		if (rec->frames[i].code && !(rec->frames[i].flags & PYX_FRAME_C_SHIM))
			frame_key(run, &rec->frames[i], keys[nr++], sizeof(keys[0]));
	if (!nr) {
		run->no_python++;
		return 0;
	}
	run->samples++;
	/* Self: the innermost frame; total: every function on the stack, once. */
	for (i = 0; i < nr; i++) {
		for (j = 0; j < i && strcmp(keys[j], keys[i]); j++)
			;
		if (j < i)
			continue;
		t = tally_of(&run->functions, keys[i]);
		if (!t)
			return -ENOMEM;
		t->total++;
		t->self += i == 0;
	}
	/* Folded: outermost first, "qualname (file:line)" joined by ';'. */
	folded[0] = 0;
	for (i = nr; i-- > 0 && len < sizeof(folded) - 1;) {
		char *name = keys[i], *file = strchr(name, '\t'), *line;

		if (!file)
			continue;
		line = strchr(file + 1, '\t');
		len += (size_t)snprintf(folded + len, sizeof(folded) - len, "%s%.*s (%.*s:%s)",
					len ? ";" : "", (int)(file - name), name,
					line ? (int)(line - file - 1) : 0, file + 1,
					line ? line + 1 : "?");
	}
	t = tally_of(&run->stacks, folded);
	if (!t)
		return -ENOMEM;
	t->self++;
	return 0;
}

static int sampled_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct sampled_run *run = cookie;

	if (!final)
		return 0;
	pyx_session__drops(session, run->drops);
	run->duration_ns = pyx_session__elapsed_ns(session);
	run->stop_reason = pyx_stop_reason_name(pyx_session__stop_reason(session));
	return 0;
}

struct row {
	const struct tally *t;
	char qualname[160], file[4096];
	int line;
};

static int by_share(const void *a, const void *b, void *cookie)
{
	const struct row *ra = a, *rb = b;
	bool total = *(const bool *)cookie;
	uint64_t ka = total ? ra->t->total : ra->t->self, kb = total ? rb->t->total : rb->t->self;

	if (ka != kb)
		return ka < kb ? 1 : -1;
	return strcmp(ra->qualname, rb->qualname);
}

static struct row *sorted_rows(struct sampled_run *run, size_t *n)
{
	struct row *rows = calloc(run->functions.used ? run->functions.used : 1, sizeof(*rows));
	size_t i;

	*n = 0;
	if (!rows)
		return NULL;
	for (i = 0; i < run->functions.cap; i++) {
		const struct tally *t = &run->functions.slots[i];
		struct row *r = &rows[*n];
		char *tab1, *tab2;

		if (!t->key)
			continue;
		tab1 = strchr(t->key, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (!tab1 || !tab2)
			continue;
		snprintf(r->qualname, sizeof(r->qualname), "%.*s", (int)(tab1 - t->key), t->key);
		snprintf(r->file, sizeof(r->file), "%.*s", (int)(tab2 - tab1 - 1), tab1 + 1);
		r->line = atoi(tab2 + 1);
		if (run->s->match && regexec(run->s->match, r->qualname, 0, NULL, 0) &&
		    regexec(run->s->match, r->file, 0, NULL, 0))
			continue;
		r->t = t;
		(*n)++;
	}
	qsort_r(rows, *n, sizeof(*rows), by_share, &run->s->sort_total);
	return rows;
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void print_json(struct sampled_run *run, const struct row *rows, size_t n)
{
	struct pyx_json json;
	size_t i;

	pyx_json_init(&json, run->s->ctx->out);
	pyx_json_object_begin(&json);
	pyx_out_process(&json, "process", run->s->proc);
	pyx_out_python(&json, "python", run->s->py);
	pyx_json_kv_string(&json, "mode", "sampled");
	pyx_json_kv_bool(&json, "exact", false);
	pyx_json_kv_string(&json, "sampled_because", run->s->why);
	pyx_json_kv_u64(&json, "sample_hz", run->s->hz);
	pyx_json_kv_u64(&json, "samples", run->samples);
	pyx_json_kv_u64(&json, "samples_without_python", run->no_python);
	pyx_json_kv_u64(&json, "duration_ns", run->duration_ns);
	pyx_json_kv_string(&json, "stopped_by", run->stop_reason);
	pyx_json_key(&json, "functions");
	pyx_json_array_begin(&json);
	for (i = 0; i < n && (!run->s->top || i < run->s->top); i++) {
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "kind", "python");
		pyx_json_kv_string(&json, "qualname", rows[i].qualname);
		pyx_json_kv_string(&json, "file", rows[i].file);
		pyx_json_kv_i64(&json, "line", rows[i].line);
		pyx_json_kv_u64(&json, "self_samples", rows[i].t->self);
		pyx_json_kv_u64(&json, "total_samples", rows[i].t->total);
		pyx_json_kv_double(&json, "self_share", share(rows[i].t->self, run->samples));
		pyx_json_kv_double(&json, "total_share", share(rows[i].t->total, run->samples));
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);
	pyx_out_drops(&json, run->drops);
	pyx_json_kv_bool(&json, "final", true);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

static void print_text(struct sampled_run *run, const struct row *rows, size_t n)
{
	FILE *out = run->s->ctx->out;
	size_t i, top = run->s->top ? run->s->top : SAMPLED_DEFAULT_TOP;
	char label[160], dur[32], where[320];

	fprintf(out,
		"%s: Python %s, SAMPLED (%s): time shares at %u Hz, not call counts; %llu samples "
		"in %s (%s)\n",
		pyx_process_label(run->s->proc, label, sizeof(label)), run->s->py->version,
		run->s->why, run->s->hz, (unsigned long long)run->samples,
		pyx_format_duration(run->duration_ns, dur, sizeof(dur)), run->stop_reason);
	fprintf(out, "%-40s %-34s %7s %7s %9s\n", "FUNCTION", "FILE:LINE", "SELF%", "TOTAL%",
		"SAMPLES");
	for (i = 0; i < n && i < top; i++) {
		size_t flen = strlen(rows[i].file);

		if (flen > 28)
			snprintf(where, sizeof(where), "...%s:%d", rows[i].file + flen - 25,
				 rows[i].line);
		else
			snprintf(where, sizeof(where), "%s:%d", rows[i].file, rows[i].line);
		fprintf(out, "%-40s %-34s %6.1f%% %6.1f%% %9llu\n", rows[i].qualname, where,
			share(rows[i].t->self, run->samples), share(rows[i].t->total, run->samples),
			(unsigned long long)rows[i].t->self);
	}
	if (!n)
		fputs("(no samples in Python code)\n", out);
	else if (n > top)
		fprintf(out, "(%zu more functions; --top)\n", n - top);
	pyx_print_drops(out, run->drops, 0);
}

/* Folded stacks ("a;b;c count" lines), for flamegraph.pl and speedscope. */
static int write_folded(struct sampled_run *run)
{
	FILE *f = fopen(run->s->folded, "w");
	size_t i;

	if (!f) {
		pyx_error(run->s->ctx, "cannot write %s: %s", run->s->folded, strerror(errno));
		return -errno;
	}
	for (i = 0; i < run->stacks.cap; i++)
		if (run->stacks.slots[i].key)
			fprintf(f, "%s %llu\n", run->stacks.slots[i].key,
				(unsigned long long)run->stacks.slots[i].self);
	if (fclose(f)) {
		pyx_error(run->s->ctx, "cannot write %s: %s", run->s->folded, strerror(errno));
		return -EIO;
	}
	return 0;
}

int pyx_calls_sampled_run(struct pyx_calls_sampled *s)
{
	struct sampled_run run = {.s = s};
	struct pyx_profile_cfg cfg = {};
	struct row *rows;
	size_t n;
	int err, ret = PYX_EXIT_FAILURE;

	run.cache = pyx_code_cache__new(
		&s->layout->code, (struct pyx_mem){.read = pyx_process__read_cb, .ctx = s->proc});
	if (!run.cache) {
		pyx_error(s->ctx, "out of memory");
		return PYX_EXIT_FAILURE;
	}
	cfg.tgid = (__u32)s->proc->pid;
	cfg.tid = (__u32)s->thread;
	cfg.layout = s->layout->walk;
	cfg.layout.walk_flags |= PYX_WALK_READ_GUARD; /* named later: tell reused addresses */
	struct pyx_session_opts sopts = {
		.ctx = s->ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = s->proc->pid,
		.resume_pid = s->common->resume_pid,
		.duration_ns = s->common->duration_ns,
		.cookie = &run,
		.attach = sampled_attach,
		.on_record = sampled_on_record,
		.on_interval = sampled_on_interval,
	};
	err = pyx_session__trace(&profile_bpf_ops, &sopts);
	if (err)
		goto out_free;
	rows = sorted_rows(&run, &n);
	if (!rows)
		goto out_free;
	if (s->ctx->json)
		print_json(&run, rows, n);
	else
		print_text(&run, rows, n);
	free(rows);
	if (s->folded && write_folded(&run))
		goto out_free;
	ret = PYX_EXIT_OK;
out_free:
	tallies_free(&run.functions);
	tallies_free(&run.stacks);
	pyx_code_cache__free(run.cache);
	return ret;
}
