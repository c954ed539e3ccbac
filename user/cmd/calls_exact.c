// SPDX-License-Identifier: GPL-2.0-only
/*
 * The exact call events of bpf/calls.bpf.c, shared by `calls` and `flow`:
 * the hooks and C functions to attach, the object's config, and the
 * functions seen, named from copies of their code objects.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include <pyxtrace/calls.h>

#include "calls.skel.h"
#include "cmd/calls_exact.h"
#include "probes/centry.h"
#include "python/code.h"
#include "python/codesnap.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "session.h"
#include "target/process.h"
#include "output/json.h"
#include "output/objects.h"
#include "util/log.h"
#include "util/parse.h"

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
static size_t index_slot(const struct pyx_calls_exact *x, const struct pyx_calls_key *key)
{
	size_t slots = x->cap_fns * 2, i = key_hash(key, slots);

	while (x->index[i] && !same_key(&x->fns[x->index[i] - 1].key, key))
		i = (i + 1) & (slots - 1);
	return i;
}

static int grow_fns(struct pyx_calls_exact *x)
{
	size_t cap = x->cap_fns ? x->cap_fns * 2 : 256, i;
	struct pyx_calls_fn *fns = realloc(x->fns, cap * sizeof(*fns));
	size_t *index;

	if (!fns)
		return -ENOMEM;
	x->fns = fns;
	index = calloc(cap * 2, sizeof(*index));
	if (!index)
		return -ENOMEM;
	free(x->index);
	x->index = index;
	x->cap_fns = cap;
	for (i = 0; i < x->nr_fns; i++)
		x->index[index_slot(x, &x->fns[i].key)] = i + 1;
	return 0;
}

static struct pyx_calls_fn *fn_of(struct pyx_calls_exact *x, const struct pyx_calls_key *key,
				  bool create)
{
	struct pyx_calls_fn *fn;
	size_t slot;

	if (x->cap_fns) {
		slot = index_slot(x, key);
		if (x->index[slot])
			return &x->fns[x->index[slot] - 1];
	}
	if (!create)
		return NULL;
	if (x->nr_fns == x->cap_fns && grow_fns(x))
		return NULL;
	fn = &x->fns[x->nr_fns++];
	memset(fn, 0, sizeof(*fn));
	fn->key = *key;
	x->index[index_slot(x, key)] = x->nr_fns;
	return fn;
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
 * Name a fn from the copy of its code object taken when it was first
 * counted (@snap), else from the live process.
 */
static void name_fn(struct pyx_calls_exact *x, struct pyx_calls_fn *fn,
		    const struct pyx_code_snap *snap)
{
	struct snap_mem mem = {.snap = snap, .proc = x->proc};
	struct pyx_code_cache *cache;
	struct pyx_frame_info info;

	if (fn->named)
		return;
	if (fn->key.guard == PYX_CALLS_NATIVE_GUARD) {
		const struct pyx_entry_point *e = NULL;
		const struct pyx_module *mod = NULL;
		size_t i;

		for (i = 0; i < x->nr_natives && !e; i++) {
			mod = x->natives[i];
			if (fn->key.code >= mod->cookie_base &&
			    fn->key.code - mod->cookie_base < mod->nr_entries)
				e = &mod->entries[fn->key.code - mod->cookie_base];
		}
		if (!e)
			return;
		fn->native = true;
		fn->function = strdup(e->name);
		fn->qualname = strdup(e->name);
		fn->file = strdup(mod->object->path);
		fn->named = fn->function && fn->qualname && fn->file;
		return;
	}
	cache = pyx_code_cache__new(&x->layout->code,
				    (struct pyx_mem){.read = snap_read, .ctx = &mem});
	if (!cache)
		return;
	if (!pyx_code_cache__resolve(cache, fn->key.code, PYX_CODE_NO_GUARD, 0, false, &info)) {
		fn->function = strdup(info.function ? info.function : "?");
		fn->qualname = strdup(info.qualname ? info.qualname : fn->function);
		fn->file = strdup(info.file ? info.file : "?");
		fn->line = info.firstlineno;
		fn->named = fn->function && fn->qualname && fn->file;
	}
	pyx_code_cache__free(cache);
}

static int attach_kind(struct pyx_calls_exact *x, struct bpf_program *prog,
		       enum pyx_eval_hook_kind kind, struct pyx_session *session)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .retprobe = kind == PYX_HOOK_EVAL_RETURN);
	bool learns = kind == PYX_HOOK_RESUME || kind == PYX_HOOK_RETURN;
	const struct pyx_object *obj = x->hooks.object;
	unsigned long offsets[PYX_EVAL_HOOKS_MAX];
	__u64 cookies[PYX_EVAL_HOOKS_MAX];
	struct bpf_link *link;
	char path[96];
	size_t i, n = 0;
	int err;

	for (i = 0; i < x->hooks.nr_hooks; i++) {
		const struct pyx_eval_hook *h = &x->hooks.hooks[i];
		uint64_t off;

		if (h->kind != kind)
			continue;
		if (pyx_elf__vaddr_to_offset(obj->elf, h->vaddr + h->delta, &off))
			continue;
		offsets[n] = (unsigned long)off;
		cookies[n] = h->pop_arg;
		/* A start's (≤3.10: a return's) cookie is its site, its frame register's key. */
		if (learns && x->nr_sites < PYX_CALLS_FRAME_SITES) {
			x->site_hook[x->nr_sites] = i;
			x->frame_reg[x->nr_sites] = -1;
			cookies[n] = x->nr_sites++;
		} else if (learns) {
			continue;
		}
		n++;
	}
	if (!n)
		return 0;
	opts.offsets = offsets;
	opts.cookies = cookies;
	opts.cnt = n;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, x->proc->pid,
		 obj->map_start, obj->map_end);
	link = bpf_program__attach_uprobe_multi(prog, x->proc->pid, path, NULL, &opts);
	if (!link && !pyx_process__alive(x->proc)) {
		/* Its map_files entry went with it (ENOENT): not an error, the session flushes. */
		pyx_debug(x->ctx, "the target exited while the %s hooks were attached",
			  pyx_eval_hook_kind_name(kind));
		return 0;
	}
	if (!link) {
		err = -errno;
		pyx_error(x->ctx, "cannot attach the %s hooks of %s (file offset 0x%lx%s): %s",
			  pyx_eval_hook_kind_name(kind), obj->path, offsets[0],
			  n > 1 ? " and more" : "", strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, link);
}

static int attach_natives(struct pyx_calls_exact *x, struct bpf_program *prog, bool retprobe,
			  struct pyx_session *session)
{
	size_t i;
	int err;

	for (i = 0; i < x->nr_natives; i++) {
		struct pyx_module *mod = x->natives[i];
		struct bpf_link *link = pyx_centry_attach(prog, x->proc, mod, retprobe);

		if (!link) {
			err = -errno;
			if (!pyx_process__alive(x->proc))
				return 0;
			pyx_error(x->ctx, "cannot attach to the %s of %s's C functions: %s",
				  retprobe ? "returns" : "entries", mod->name, strerror(-err));
			return err;
		}
		err = pyx_session__add_link(session, link);
		if (err)
			return err;
	}
	return 0;
}

void pyx_calls_exact__read_frame_regs(struct pyx_calls_exact *x, const struct calls_bpf *skel)
{
	size_t s;
	int r;

	for (s = 0; s < x->nr_sites; s++) {
		uint64_t left = ~skel->bss->site_excluded[s] & ((1ull << PYX_CALLS_FRAME_REGS) - 1);

		x->frame_reg[s] = -1;
		if (skel->bss->site_samples[s] < PYX_CALLS_LEARN_SAMPLES)
			continue;
		for (r = 0; r < PYX_CALLS_FRAME_REGS; r++)
			if (left & (1ull << r)) {
				x->frame_reg[s] = r;
				break;
			}
	}
}

const char *pyx_calls_exact__frame_register(const struct pyx_calls_exact *x, size_t i)
{
	static const char *const names[PYX_CALLS_FRAME_REGS] = {
		"rbx", "rbp", "r12", "r13", "r14", "r15", "rax", "rcx",
		"rdx", "rsi", "rdi", "r8",  "r9",  "r10", "r11",
	};
	size_t s;

	for (s = 0; s < x->nr_sites; s++)
		if (x->site_hook[s] == i && x->frame_reg[s] >= 0)
			return names[x->frame_reg[s]];
	return NULL;
}

static struct bpf_program *prog_of(struct calls_bpf *skel, enum pyx_eval_hook_kind kind)
{
	switch (kind) {
	case PYX_HOOK_RESUME:
		return skel->progs.calls_resume;
	case PYX_HOOK_POP:
		return skel->progs.calls_pop;
	case PYX_HOOK_YIELD:
		return skel->progs.calls_yield;
	case PYX_HOOK_EVAL_ENTER:
		return skel->progs.calls_eval_enter;
	case PYX_HOOK_EVAL_RETURN:
		return skel->progs.calls_eval_return;
	case PYX_HOOK_FRAME_ENTER:
		return skel->progs.calls_frame_enter;
	case PYX_HOOK_RETURN:
		return skel->progs.calls_return;
	case PYX_HOOK_UNWIND:
		return skel->progs.calls_unwind;
	case PYX_HOOK_RAISE:
		return skel->progs.calls_raise;
	default:
		return NULL;
	}
}

int pyx_calls_exact__autoload(const struct pyx_calls_exact *x, struct calls_bpf *skel)
{
	bool used[PYX_HOOK__MAX] = {};
	size_t i;
	int kind, err = 0;

	for (i = 0; i < x->hooks.nr_hooks; i++)
		used[x->hooks.hooks[i].kind] = true;
	for (kind = 1; kind < PYX_HOOK__MAX && !err; kind++)
		if (prog_of(skel, (enum pyx_eval_hook_kind)kind))
			err = bpf_program__set_autoload(prog_of(skel, kind), used[kind]);
	if (!err)
		err = bpf_program__set_autoload(skel->progs.calls_centry, x->nr_natives > 0);
	if (!err)
		err = bpf_program__set_autoload(skel->progs.calls_cexit, x->nr_natives > 0);
	return err;
}

/*
 * Attach order: pops and yields first (a frame started once resume is live
 * must find them live), then the C functions (returns before entries, so
 * no entry is pushed that nothing would pop), the starts last.
 */
static const enum pyx_eval_hook_kind ends_first[] = {
	PYX_HOOK_POP,	 PYX_HOOK_EVAL_RETURN, PYX_HOOK_EVAL_ENTER, PYX_HOOK_YIELD,
	PYX_HOOK_RETURN, PYX_HOOK_UNWIND,      PYX_HOOK_RAISE,
};
static const enum pyx_eval_hook_kind starts_last[] = {PYX_HOOK_FRAME_ENTER, PYX_HOOK_RESUME};

int pyx_calls_exact__attach(struct pyx_calls_exact *x, struct pyx_session *session,
			    struct calls_bpf *skel)
{
	size_t i;
	int err = 0;

	for (i = 0; i < PYX_ARRAY_SIZE(ends_first) && !err; i++)
		err = attach_kind(x, prog_of(skel, ends_first[i]), ends_first[i], session);
	if (!err)
		err = attach_natives(x, skel->progs.calls_cexit, true, session);
	if (!err)
		err = attach_natives(x, skel->progs.calls_centry, false, session);
	for (i = 0; i < PYX_ARRAY_SIZE(starts_last) && !err; i++)
		err = attach_kind(x, prog_of(skel, starts_last[i]), starts_last[i], session);
	if (!err && x->budgeted)
		pyx_budget__attached(&x->budget, pyx_monotonic_ns());
	return err;
}

int pyx_calls_exact__budget(struct pyx_calls_exact *x, struct calls_bpf *skel, double max_pct)
{
	const struct pyx_probe_costs *costs = &x->budget.costs;
	uint64_t entry_trap = 0;
	size_t i, m;
	int kind, err;

	err = pyx_budget__init(&x->budget, x->ctx, x->proc->pid, max_pct);
	if (err)
		return err;
	x->budgeted = true;
	/*
	 * Each program at the trap of its costliest site, rare ones aside (a
	 * single-stepped RESUME runs once per code object, before quickening).
	 */
	for (kind = 0; kind < PYX_HOOK__MAX; kind++) {
		uint64_t trap = 0, rare_trap = 0;

		for (i = 0; i < x->hooks.nr_hooks; i++) {
			const struct pyx_eval_hook *h = &x->hooks.hooks[i];
			uint64_t t = kind == PYX_HOOK_EVAL_RETURN
					     ? costs->return_ns
					     : pyx_probe_costs_trap(costs, h->cls);
			uint64_t *worst = h->rare ? &rare_trap : &trap;

			if ((int)h->kind == kind && t > *worst)
				*worst = t;
		}
		if (!trap)
			trap = rare_trap;
		if (trap && prog_of(skel, (enum pyx_eval_hook_kind)kind))
			err = pyx_budget__add_prog(&x->budget, bpf_program__fd(prog_of(skel, kind)),
						   trap);
		if (err)
			return err;
	}
	for (m = 0; m < x->nr_natives; m++)
		for (i = 0; i < x->natives[m]->nr_entries; i++) {
			uint64_t t =
				pyx_probe_costs_trap(costs, x->natives[m]->entries[i].probe_class);

			entry_trap = t > entry_trap ? t : entry_trap;
		}
	if (entry_trap) {
		err = pyx_budget__add_prog(&x->budget, bpf_program__fd(skel->progs.calls_centry),
					   entry_trap);
		if (!err)
			err = pyx_budget__add_prog(&x->budget,
						   bpf_program__fd(skel->progs.calls_cexit),
						   costs->return_ns);
	}
	return err;
}

enum pyx_budget_action pyx_calls_exact__tick(struct pyx_calls_exact *x, struct pyx_session *session,
					     struct calls_bpf *skel)
{
	enum pyx_budget_action action;

	if (!x->budgeted)
		return PYX_BUDGET_NONE;
	action = pyx_budget__tick(&x->budget, pyx_monotonic_ns());
	if (action == PYX_BUDGET_DETACH) {
		pyx_session__detach(session);
	} else if (action == PYX_BUDGET_ATTACH) {
		/* What the shadow stacks hold is stale: the ends in the pause were not seen. */
		skel->bss->pyx_generation++;
		if (pyx_calls_exact__attach(x, session, skel) && pyx_process__alive(x->proc))
			pyx_warn(x->ctx, "cannot attach the hooks again after a pause");
		pyx_session__reattached(session);
	}
	return action;
}

void pyx_calls_exact__budget_end(struct pyx_calls_exact *x)
{
	if (x->budgeted)
		pyx_budget__end(&x->budget, pyx_monotonic_ns());
}

void pyx_calls_exact__json_overhead(const struct pyx_calls_exact *x, struct pyx_json *json)
{
	const struct pyx_budget *b = &x->budget;
	uint64_t total = b->traced_ns + b->paused_ns;

	pyx_json_key(json, "overhead");
	if (!x->budgeted) {
		pyx_json_null(json);
		return;
	}
	pyx_json_object_begin(json);
	pyx_json_kv_double(json, "max_pct", b->max_pct);
	pyx_json_kv_double(json, "last_window_pct", b->last_pct);
	pyx_json_kv_double(json, "max_window_pct", b->max_seen_pct);
	pyx_json_kv_u64(json, "traced_ns", b->traced_ns);
	pyx_json_kv_u64(json, "paused_ns", b->paused_ns);
	pyx_json_kv_double(json, "traced_fraction",
			   total ? (double)b->traced_ns / (double)total : 1.0);
	pyx_json_kv_u64(json, "pauses", b->pauses);
	pyx_out_probe_costs(json, "probe_costs_ns", &b->costs);
	pyx_json_object_end(json);
}

void pyx_calls_exact__print_overhead(const struct pyx_calls_exact *x, FILE *out)
{
	const struct pyx_budget *b = &x->budget;
	uint64_t total = b->traced_ns + b->paused_ns;
	char traced[32], all[32];

	if (!x->budgeted || !b->pauses)
		return;
	fprintf(out,
		"(--max-overhead %g%%: the hooks cost the target up to %.0f%% of its CPU time, so "
		"they were on %s of %s, in %u window%s: counts cover those; --max-overhead 0 "
		"for all)\n",
		b->max_pct, b->max_seen_pct,
		pyx_format_duration(b->traced_ns, traced, sizeof(traced)),
		pyx_format_duration(total, all, sizeof(all)), b->pauses + (b->on ? 1 : 0),
		b->pauses + (b->on ? 1 : 0) == 1 ? "" : "s");
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

static void free_fns(struct pyx_calls_exact *x)
{
	size_t i;

	for (i = 0; i < x->nr_fns; i++) {
		free(x->fns[i].function);
		free(x->fns[i].qualname);
		free(x->fns[i].file);
		free(x->fns[i].rendered);
	}
	free(x->fns);
	free(x->index);
}

/* C functions across modules: one cookie space, at most this many probed. */
#define CALLS_MAX_NATIVE 4096

static int add_native(struct pyx_calls_exact *x, struct pyx_module *mod)
{
	struct pyx_module **natives;

	if (x->nr_native_functions + mod->nr_entries > CALLS_MAX_NATIVE) {
		pyx_error(x->ctx, "more than %d C functions to probe: narrow --cfunc",
			  CALLS_MAX_NATIVE);
		pyx_module__free(mod);
		return -E2BIG;
	}
	natives = realloc(x->natives, (x->nr_natives + 1) * sizeof(*natives));
	if (!natives) {
		pyx_module__free(mod);
		return -ENOMEM;
	}
	x->natives = natives;
	mod->cookie_base = (uint32_t)x->nr_native_functions;
	pyx_centry_plan(mod);
	natives[x->nr_natives++] = mod;
	x->nr_native_functions += mod->nr_entries;
	return 0;
}

/*
 * --module: a module's C entry points; --cfunc: the function symbols
 * matching a glob in the interpreter and every extension module loaded.
 */
static int add_natives(struct pyx_calls_exact *x, const char *module, const char *cfunc)
{
	struct pyx_module *mod;
	char why[1024], name[128];
	size_t i, matched = 0;
	int err;

	if (module) {
		err = pyx_module__discover(x->proc, x->py, module, &mod, why, sizeof(why));
		if (err) {
			pyx_error(x->ctx, "%s", why);
			return err;
		}
		if (!mod->nr_entries) {
			pyx_error(x->ctx, "%s: no entry points found", mod->name);
			pyx_module__free(mod);
			return -ENOENT;
		}
		err = add_native(x, mod);
		if (err)
			return err;
	}
	if (!cfunc)
		return 0;
	for (i = 0; i < x->proc->nr_objects; i++) {
		struct pyx_object *obj = &x->proc->objects[i];

		if (!obj->executable ||
		    (obj != x->py->interp &&
		     !pyx_python__extension_name(obj->path, name, sizeof(name))))
			continue;
		mod = pyx_module__of_symbols(x->proc, obj, cfunc);
		if (!mod)
			continue;
		matched += mod->nr_entries;
		err = add_native(x, mod);
		if (err)
			return err;
	}
	if (!matched) {
		pyx_error(x->ctx,
			  "--cfunc '%s' matches no function symbol of the interpreter or its "
			  "extension modules",
			  cfunc);
		return -ENOENT;
	}
	return 0;
}

int pyx_calls_exact__find(struct pyx_calls_exact *x, char *jit, size_t jit_len, char *why,
			  size_t why_len)
{
	/* JIT-compiled code passes none of the hooks. */
	if (pyx_eval_hooks__jit_requested(x->proc, x->py, jit, jit_len))
		return -EOPNOTSUPP;
	return pyx_eval_hooks__find(x->proc, x->py, &x->hooks, why, why_len);
}

int pyx_calls_exact__prepare(struct pyx_calls_exact *x, const char *module, const char *cfunc,
			     struct pyx_calls_cfg *cfg)
{
	int err;

	err = add_natives(x, module, cfunc);
	if (err)
		return err;
	if (x->hooks.single_stepped)
		pyx_warn(x->ctx,
			 "%zu of %zu hooks sit on an instruction the kernel single-steps (~12 µs a "
			 "hit): expect a high overhead",
			 x->hooks.single_stepped, x->hooks.nr_hooks);
	if (!pyx_codesnap_cfg(&cfg->snap, &x->layout->code))
		pyx_warn(x->ctx,
			 "code objects too large to copy: short-lived functions may be unnamed");
	err = code_span(cfg, &x->layout->code, x->hooks.co_flags);
	if (err) {
		pyx_error(x->ctx, "code objects of this build are laid out too sparsely to read");
		return err;
	}
	memcpy(cfg->resume_ops, x->hooks.resume_ops, sizeof(cfg->resume_ops));
	memcpy(cfg->yield_ops, x->hooks.yield_ops, sizeof(cfg->yield_ops));
	cfg->stale_are_exceptions = x->hooks.legacy;
	cfg->raise_marked = x->hooks.raise_hooked;
	cfg->gen_state_model = x->hooks.gen_state_model;
	cfg->gen_state_off = x->hooks.gen_state_off;
	cfg->layout = x->layout->walk;
	return 0;
}

struct pyx_calls_fn *pyx_calls_exact__fn(struct pyx_calls_exact *x, const struct pyx_calls_key *key,
					 bool create, const struct pyx_code_snap *snap)
{
	struct pyx_calls_fn *fn = fn_of(x, key, create);

	if (fn)
		name_fn(x, fn, snap);
	return fn;
}

void pyx_calls_exact__on_record(struct pyx_calls_exact *x, const struct pyx_rec_hdr *hdr,
				size_t size)
{
	const struct pyx_rec_calls_code *rec = (const void *)hdr;

	if (hdr->type == PYX_REC_CALLS_CODE && size >= sizeof(*rec))
		pyx_calls_exact__fn(x, &rec->key, true, &rec->snap);
}

void pyx_calls_exact__free(struct pyx_calls_exact *x)
{
	size_t i;

	free_fns(x);
	if (x->budgeted)
		pyx_budget__free(&x->budget);
	for (i = 0; i < x->nr_natives; i++)
		pyx_module__free(x->natives[i]);
	free(x->natives);
	memset(x, 0, sizeof(*x));
}
