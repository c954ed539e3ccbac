// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace info: is this kernel ready (no target), or what Python does a
 * process run and can we probe it (-p / --container / -- CMD).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "elf/elf.h"
#include "kfeatures.h"
#include <linux/types.h>
#include <pyxtrace/info.h>

#include "info.skel.h"
#include "output/json.h"
#include "output/objects.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "probes/centry.h"
#include "elf/x86.h"
#include "python/layout.h"
#include "session.h"
#include "target/process.h"
#include "util/caps.h"
#include "probes/budget.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(info_bpf);

#define INFO_DEFAULT_PROBE_NS (200ull * 1000 * 1000)

struct extension {
	char name[128];
	const char *path;
	char build_id[96];
};

/* Everything `info -p` reports; filled, then printed as text or JSON. */
struct info_report {
	struct pyx_process *proc;
	struct pyx_python *py;
	struct extension *extensions;
	size_t nr_extensions;
	struct pyx_python_layout layout;
	char layout_error[256];	  /* why the frame walker cannot handle this build */
	const char *module_query; /* --module */
	bool all_symbols;	  /* --all-symbols */
	struct pyx_module *module;
	uint64_t *entry_calls;	   /* per entry point, during the probe check */
	uint64_t module_attach_ns; /* time to attach every entry point */
	size_t single_stepped;	   /* entry points probed on a single-stepped instruction */
	char module_error[160];
	/* The probe check. */
	const char *probe_symbol;
	uint64_t probe_address;
	bool probe_attached;
	char probe_error[160];
	uint64_t probe_hits;
	uint64_t probe_threads;
	uint64_t probe_ns;
	uint64_t drops[PYX_DROP__MAX];
	const char *stop_reason;
};

static void info_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s info [-p PID [--container ID] [--children] | --container ID | --all |\n"
		"       -- CMD [ARGS...]] [--module NAME] [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"Without a target: whether this kernel and these privileges can run pyxtrace,\n"
		"each missing item with what to do (exit 1 when something is missing).\n"
		"\n"
		"With a target: the CPython it runs, read from the process itself: exact\n"
		"version, debug/free-threaded flavour, static or shared libpython, USDT\n"
		"probes, _Py_DebugOffsets, DWARF, key symbols, loaded extension modules;\n"
		"then a probe check: a counting uprobe on the interpreter for -d TIME\n"
		"(default 200ms). With --all, --container ID or --children: one report per\n"
		"CPython process in scope now, one after the other.\n"
		"\n"
		"  --module NAME          also list the Python-visible C entry points of a loaded\n"
		"                         extension module (\"_json\", \"PIL._imaging\", a path),\n"
		"                         found in its data without needing symbols\n"
		"  --all-symbols          with --module: every function symbol of the module too\n",
		prog);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION |
						PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s info\n"
		"  %s info -p 1234 --json\n"
		"  %s info --container 3f2a9c -p 1\n"
		"  %s info --all -d 50ms\n"
		"  %s info -d 5s -- python3 -c 'import time; time.sleep(10)'\n",
		prog, prog, prog, prog, prog);
}

/* ---- no target: kernel readiness ------------------------------------------------------ */

static int report_kernel(struct pyx_ctx *ctx)
{
	struct pyx_feature_result features[PYX_FEAT__MAX];
	bool ready = true, privileged = pyx_caps_first_missing() == NULL, costed;
	struct pyx_probe_costs costs;
	struct pyx_json json;
	unsigned int i;

	if (privileged) {
		pyx_features_probe(ctx, features);
	} else {
		memset(features, 0, sizeof(features));
		for (i = 0; i < PYX_FEAT__MAX; i++)
			snprintf(features[i].detail, sizeof(features[i].detail),
				 "not checked: needs the privileges below");
	}
	for (i = 0; i < PYX_FEAT__MAX; i++)
		ready &= features[i].ok;
	ready &= privileged;
	/* What a probe hit costs here, per class: what --max-overhead weighs hits with. */
	costed = features[PYX_FEAT_UPROBE_MULTI].ok && !pyx_probe_costs_calibrate(&costs);

	if (ctx->json) {
		pyx_json_init(&json, ctx->out);
		pyx_json_object_begin(&json);
		pyx_json_kv_bool(&json, "ready", ready);
		pyx_json_key(&json, "kernel");
		pyx_json_object_begin(&json);
		for (i = 0; i < PYX_FEAT__MAX; i++) {
			pyx_json_key(&json, pyx_feature_name(i));
			pyx_json_object_begin(&json);
			pyx_json_kv_bool(&json, "ok", features[i].ok);
			pyx_json_kv_string(&json, "detail",
					   features[i].ok ? NULL : features[i].detail);
			pyx_json_object_end(&json);
		}
		pyx_json_object_end(&json);
		pyx_json_key(&json, "privileges");
		pyx_json_object_begin(&json);
		for (i = 0; i < pyx_cap_needs_count; i++)
			pyx_json_kv_bool(&json, pyx_cap_needs[i].name,
					 pyx_cap_effective(pyx_cap_needs[i].cap));
		pyx_json_object_end(&json);
		pyx_out_probe_costs(&json, "probe_costs_ns", costed ? &costs : NULL);
		pyx_json_kv_string(&json, "libbpf", libbpf_version_string());
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
	} else {
		fprintf(ctx->out, "Kernel\n");
		for (i = 0; i < PYX_FEAT__MAX; i++)
			fprintf(ctx->out, "  %-14s %s%s%s\n", pyx_feature_name(i),
				features[i].ok ? "ok" : "MISSING", features[i].ok ? "" : ": ",
				features[i].ok ? "" : features[i].detail);
		fprintf(ctx->out, "Privileges\n");
		for (i = 0; i < pyx_cap_needs_count; i++) {
			bool have = pyx_cap_effective(pyx_cap_needs[i].cap);

			fprintf(ctx->out, "  %-24s %s%s%s\n", pyx_cap_needs[i].name,
				have ? "yes" : "MISSING", have ? "" : ": needed to ",
				have ? "" : pyx_cap_needs[i].why);
		}
		if (costed) {
			char opt[32], emu[32], step[32], ret[32];

			fprintf(ctx->out,
				"Probe hit cost (measured now)\n  %s on a nop5, %s emulated (push, "
				"jmp...), %s single-stepped (mov, endbr64...), %s a return probe\n",
				pyx_format_duration(costs.trap_ns[PYX_PROBE_OPTIMIZED], opt,
						    sizeof(opt)),
				pyx_format_duration(costs.trap_ns[PYX_PROBE_EMULATED], emu,
						    sizeof(emu)),
				pyx_format_duration(costs.trap_ns[PYX_PROBE_SINGLESTEP], step,
						    sizeof(step)),
				pyx_format_duration(costs.return_ns, ret, sizeof(ret)));
		}
		fprintf(ctx->out, "%s\n",
			ready	     ? "Ready: pyxtrace can trace Python processes on this machine."
			: privileged ? "Not ready: see the MISSING kernel features above."
				     : "Not ready: run pyxtrace as root (sudo).");
	}
	return ready ? PYX_EXIT_OK : PYX_EXIT_FAILURE;
}

/* ---- with a target -------------------------------------------------------------------- */

static int collect_extensions(struct info_report *rep)
{
	struct pyx_process *proc = rep->proc;
	size_t i;

	for (i = 0; i < proc->nr_objects; i++) {
		struct pyx_object *obj = &proc->objects[i];
		struct extension *ext, *exts;
		struct pyx_elf *elf;
		char name[128];

		if (!pyx_python__extension_name(obj->path, name, sizeof(name)))
			continue;
		exts = realloc(rep->extensions, (rep->nr_extensions + 1) * sizeof(*exts));
		if (!exts)
			return -ENOMEM;
		rep->extensions = exts;
		ext = &exts[rep->nr_extensions++];
		memset(ext, 0, sizeof(*ext));
		memcpy(ext->name, name, sizeof(ext->name));
		ext->path = obj->path;
		elf = pyx_process__object_elf(proc, obj);
		if (elf)
			pyx_elf__build_id(elf, ext->build_id, sizeof(ext->build_id));
	}
	return 0;
}

static int info_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct info_report *rep = cookie;

	if (hdr->type == PYX_REC_INFO_HIT && size >= sizeof(struct pyx_info_hit))
		rep->probe_threads++;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --module: one uprobe_multi link counting every entry point of the module. */
static int attach_module(struct info_report *rep, struct pyx_session *session,
			 struct info_bpf *skel)
{
	uint64_t t0 = now_ns();
	struct bpf_link *link;

	if (rep->module->nr_entries > PYX_INFO_MAX_ENTRIES) {
		snprintf(rep->module_error, sizeof(rep->module_error),
			 "%zu entry points, more than %d", rep->module->nr_entries,
			 PYX_INFO_MAX_ENTRIES);
		return 0;
	}
	link = pyx_centry_attach(skel->progs.count_entry_point, rep->proc, rep->module, false);
	if (!link) {
		snprintf(rep->module_error, sizeof(rep->module_error),
			 "uprobe_multi attach failed: %s", strerror(errno));
		return 0;
	}
	rep->module_attach_ns = now_ns() - t0;
	return pyx_session__add_link(session, link);
}

/* Sum each entry point's per-CPU call counters. */
static void read_entry_calls(struct info_report *rep, struct info_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus();
	uint64_t *values;
	__u32 i;
	int c;

	if (!rep->module || cpus < 1)
		return;
	rep->entry_calls = calloc(rep->module->nr_entries, sizeof(*rep->entry_calls));
	values = calloc((size_t)cpus, sizeof(*values));
	if (!rep->entry_calls || !values) {
		free(values);
		return;
	}
	for (i = 0; i < rep->module->nr_entries && i < PYX_INFO_MAX_ENTRIES; i++) {
		if (bpf_map__lookup_elem(skel->maps.entry_calls, &i, sizeof(i), values,
					 (size_t)cpus * sizeof(*values), 0))
			continue;
		for (c = 0; c < cpus; c++)
			rep->entry_calls[i] += values[c];
	}
	free(values);
}

static int info_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct info_report *rep = cookie;
	struct info_bpf *skel = skel_ptr;
	const struct pyx_python_symbol_info *sym = &rep->py->symbols[PYX_SYM_EVAL_FRAME];
	const struct pyx_object *obj = rep->py->interp;
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct bpf_link *link;
	char path[96];
	uint64_t offset;
	int err;

	rep->probe_symbol = sym->name;
	if (!sym->origin) {
		snprintf(rep->probe_error, sizeof(rep->probe_error), "%s not found", sym->name);
		return 0;
	}
	err = pyx_elf__vaddr_to_offset(obj->elf, sym->vaddr, &offset);
	if (err) {
		snprintf(rep->probe_error, sizeof(rep->probe_error),
			 "%s is not in a loaded segment", sym->name);
		return 0;
	}
	rep->probe_address = sym->address;
	/*
	 * Attach through map_files: the kernel resolves the very inode the
	 * target has mapped, inside its container and even if deleted on disk.
	 */
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, rep->proc->pid,
		 obj->map_start, obj->map_end);
	link = bpf_program__attach_uprobe_opts(skel->progs.handle_probe_hit, rep->proc->pid, path,
					       (size_t)offset, &opts);
	if (!link) {
		err = -errno;
		snprintf(rep->probe_error, sizeof(rep->probe_error), "uprobe attach failed: %s",
			 strerror(-err));
		return err == -ESRCH ? err : 0;
	}
	rep->probe_attached = true;
	err = pyx_session__add_link(session, link);
	if (err || !rep->module)
		return err;
	return attach_module(rep, session, skel);
}

static int info_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct info_report *rep = cookie;
	struct info_bpf *skel = pyx_session__skel(session);

	if (!final)
		return 0;
	rep->probe_hits = skel->bss->hits;
	read_entry_calls(rep, skel);
	rep->probe_ns = pyx_session__elapsed_ns(session);
	pyx_session__drops(session, rep->drops);
	rep->stop_reason = pyx_stop_reason_name(pyx_session__stop_reason(session));
	return 0;
}

static int run_probe_check(struct pyx_ctx *ctx, struct info_report *rep,
			   const struct pyx_common_opts *common)
{
	struct pyx_info_cfg cfg = {.tgid = (__u32)rep->proc->pid};
	struct pyx_session_opts opts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = rep->proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_set ? common->duration_ns : INFO_DEFAULT_PROBE_NS,
		.cookie = rep,
		.attach = info_attach,
		.on_record = info_on_record,
		.on_interval = info_on_interval,
	};
	struct pyx_session *session;
	int err;

	err = pyx_session__start(&session, &info_bpf_ops, &opts);
	if (err)
		return err;
	err = pyx_session__run(session);
	pyx_session__destroy(session);
	return err;
}

static void print_symbol_json(struct pyx_json *json, const struct pyx_python_symbol_info *sym)
{
	pyx_json_key(json, sym->name);
	if (!sym->origin) {
		pyx_json_null(json);
		return;
	}
	pyx_json_object_begin(json);
	pyx_json_kv_hex(json, "address", sym->address);
	pyx_json_kv_hex(json, "file_address", sym->vaddr);
	pyx_json_kv_string(json, "from", pyx_symbol_origin_name(sym->origin));
	pyx_json_object_end(json);
}

static const char *const entry_kinds[] = {
	[PYX_ENTRY_FUNCTION] = "function", [PYX_ENTRY_METHOD] = "method",
	[PYX_ENTRY_GETTER] = "getter",	   [PYX_ENTRY_SETTER] = "setter",
	[PYX_ENTRY_SLOT] = "slot",	   [PYX_ENTRY_SYMBOL] = "symbol",
};

static void print_module_json(struct pyx_json *json, const struct info_report *rep)
{
	const struct pyx_module *mod = rep->module;
	size_t i;

	pyx_json_key(json, "module");
	pyx_json_object_begin(json);
	pyx_json_kv_string(json, "name", mod->name);
	pyx_json_kv_string(json, "path", mod->object->path);
	pyx_json_kv_string(json, "build_id", mod->build_id[0] ? mod->build_id : NULL);
	pyx_json_kv_u64(json, "types", mod->nr_types);
	pyx_json_kv_u64(json, "attach_ns", rep->module_attach_ns);
	pyx_json_kv_u64(json, "single_stepped", rep->single_stepped);
	pyx_json_kv_string(json, "error", rep->module_error[0] ? rep->module_error : NULL);
	pyx_json_key(json, "entry_points");
	pyx_json_array_begin(json);
	for (i = 0; i < mod->nr_entries; i++) {
		const struct pyx_entry_point *e = &mod->entries[i];

		pyx_json_object_begin(json);
		pyx_json_kv_string(json, "name", e->name);
		pyx_json_kv_string(json, "symbol", e->symbol[0] ? e->symbol : NULL);
		pyx_json_kv_hex(json, "address", e->address);
		pyx_json_kv_hex(json, "offset", e->offset);
		pyx_json_kv_string(json, "kind", entry_kinds[e->kind]);
		pyx_json_kv_string(json, "signature", pyx_signature_name(e->signature));
		if (e->kind == PYX_ENTRY_FUNCTION || e->kind == PYX_ENTRY_METHOD)
			pyx_json_kv_hex(json, "flags", e->flags);
		/* Calls during the probe check (-d), counted by the uprobe_multi link. */
		pyx_json_kv_u64(json, "calls", rep->entry_calls ? rep->entry_calls[i] : 0);
		pyx_json_kv_string(json, "probe", pyx_probe_class_name(e->probe_class));
		pyx_json_kv_string(json, "entry_instruction", pyx_probe_class_name(e->entry_class));
		pyx_json_kv_u64(json, "probe_offset", e->probe_delta);
		pyx_json_object_end(json);
	}
	pyx_json_array_end(json);
	pyx_json_object_end(json);
}

static void print_report_json(struct pyx_ctx *ctx, const struct info_report *rep)
{
	const struct pyx_python *py = rep->py;
	struct pyx_json json;
	unsigned int i;
	size_t j;

	pyx_json_init(&json, ctx->out);
	pyx_json_object_begin(&json);
	pyx_out_process(&json, "process", rep->proc);
	pyx_out_python(&json, "python", py);

	pyx_json_key(&json, "usdt");
	pyx_json_array_begin(&json);
	for (j = 0; j < py->nr_usdt; j++) {
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "provider", py->usdt[j].provider);
		pyx_json_kv_string(&json, "name", py->usdt[j].name);
		pyx_json_kv_hex(&json, "address", py->usdt[j].address);
		if (py->usdt[j].semaphore)
			pyx_json_kv_hex(&json, "semaphore", py->usdt[j].semaphore);
		else
			pyx_json_kv_null(&json, "semaphore");
		pyx_json_kv_string(&json, "args", py->usdt[j].args);
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);

	pyx_json_key(&json, "debug_offsets");
	pyx_json_object_begin(&json);
	pyx_json_kv_bool(&json, "present", py->debug_offsets_present);
	if (py->debug_offsets_present) {
		pyx_json_kv_hex(&json, "version", py->debug_offsets_version);
		pyx_json_kv_bool(&json, "free_threaded", py->debug_offsets_free_threaded);
	} else {
		pyx_json_kv_null(&json, "version");
	}
	pyx_json_object_end(&json);

	pyx_json_key(&json, "offsets");
	pyx_json_object_begin(&json);
	pyx_json_kv_string(&json, "source", rep->layout.source);
	pyx_json_kv_string(&json, "crosscheck",
			   rep->layout.crosscheck[0] ? rep->layout.crosscheck : NULL);
	pyx_json_kv_string(&json, "error", rep->layout_error[0] ? rep->layout_error : NULL);
	pyx_json_kv_string(&json, "fast_tstate", rep->layout.fast_tstate);
	pyx_json_object_end(&json);

	pyx_json_key(&json, "dwarf");
	pyx_json_object_begin(&json);
	pyx_json_kv_bool(&json, "available", py->dwarf.source != PYX_DWARF_NONE);
	pyx_json_kv_string(&json, "source", pyx_dwarf_source_name(py->dwarf.source));
	pyx_json_kv_string(&json, "path", py->dwarf.path[0] ? py->dwarf.path : NULL);
	pyx_json_object_end(&json);

	pyx_json_key(&json, "symbols");
	pyx_json_object_begin(&json);
	pyx_json_kv_bool(&json, "symtab", py->has_symtab);
	pyx_json_kv_bool(&json, "dynsym", py->has_dynsym);
	for (i = 0; i < PYX_SYM__MAX; i++)
		print_symbol_json(&json, &py->symbols[i]);
	pyx_json_object_end(&json);

	pyx_json_key(&json, "extensions");
	pyx_json_array_begin(&json);
	for (j = 0; j < rep->nr_extensions; j++) {
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "name", rep->extensions[j].name);
		pyx_json_kv_string(&json, "path", rep->extensions[j].path);
		pyx_json_kv_string(&json, "build_id",
				   rep->extensions[j].build_id[0] ? rep->extensions[j].build_id
								  : NULL);
		pyx_json_object_end(&json);
	}
	pyx_json_array_end(&json);

	if (rep->module)
		print_module_json(&json, rep);

	pyx_json_key(&json, "probe");
	pyx_json_object_begin(&json);
	pyx_json_kv_string(&json, "function", rep->probe_symbol);
	pyx_json_kv_bool(&json, "attached", rep->probe_attached);
	pyx_json_kv_string(&json, "error", rep->probe_error[0] ? rep->probe_error : NULL);
	pyx_json_kv_u64(&json, "hits", rep->probe_hits);
	pyx_json_kv_u64(&json, "threads", rep->probe_threads);
	pyx_json_kv_u64(&json, "duration_ns", rep->probe_ns);
	pyx_json_kv_string(&json, "stopped_by", rep->stop_reason);
	pyx_json_object_end(&json);

	pyx_out_drops(&json, rep->drops);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

static void print_report_text(struct pyx_ctx *ctx, const struct info_report *rep)
{
	const struct pyx_python *py = rep->py;
	FILE *out = ctx->out;
	char label[160], dur[32];
	uint64_t dropped = 0;
	unsigned int i;
	size_t j;

	fprintf(out, "process     %s\n", pyx_process_label(rep->proc, label, sizeof(label)));
	if (rep->proc->container.id[0])
		fprintf(out, "container   %s\n            cgroup %s\n", rep->proc->container.id,
			rep->proc->container.cgroup);
	fprintf(out, "python      %s%s%s (from %s)\n", py->version, py->debug ? " debug" : "",
		py->free_threaded ? " free-threaded" : "", py->version_source);
	fprintf(out, "            %s %s\n",
		py->shared ? "shared libpython" : "static interpreter in", py->interp->path);
	fprintf(out, "            ABI %s, build-id %s\n", py->soabi,
		py->build_id[0] ? py->build_id : "none");
	if (py->dwarf.source == PYX_DWARF_NONE)
		fprintf(out,
			"dwarf       none (install the interpreter's -dbg package in the target's root for more)\n");
	else
		fprintf(out, "dwarf       %s%s%s\n", pyx_dwarf_source_name(py->dwarf.source),
			py->dwarf.path[0] ? " " : "", py->dwarf.path);
	if (py->debug_offsets_present)
		fprintf(out, "debug offs  _Py_DebugOffsets present, version 0x%" PRIx64 "\n",
			py->debug_offsets_version);
	else
		fprintf(out, "debug offs  none (CPython publishes _Py_DebugOffsets from 3.13)\n");
	if (rep->layout.source)
		fprintf(out, "offsets     from %s%s%s\n", rep->layout.source,
			rep->layout.crosscheck[0] ? "; DWARF cross-check: " : "",
			rep->layout.crosscheck);
	else
		fprintf(out, "offsets     none: %s\n", rep->layout_error);
	if (rep->layout.source)
		fprintf(out, "threads     found through %s\n",
			rep->layout.fast_tstate ? rep->layout.fast_tstate
						: "the interpreters' thread lists");
	fprintf(out, "symbols     .symtab %s, .dynsym %s\n", py->has_symtab ? "yes" : "no",
		py->has_dynsym ? "yes" : "no");
	for (i = 0; i < PYX_SYM__MAX; i++) {
		const struct pyx_python_symbol_info *sym = &py->symbols[i];

		if (sym->origin)
			fprintf(out, "            %-26s 0x%" PRIx64 " (%s)\n", sym->name,
				sym->address, pyx_symbol_origin_name(sym->origin));
		else
			fprintf(out, "            %-26s -\n", sym->name);
	}
	fprintf(out, "usdt        %zu probe%s%s\n", py->nr_usdt, py->nr_usdt == 1 ? "" : "s",
		py->nr_usdt ? ":" : " (built without --with-dtrace)");
	for (j = 0; j < py->nr_usdt; j++)
		fprintf(out, "            %s:%s 0x%" PRIx64 "%s\n", py->usdt[j].provider,
			py->usdt[j].name, py->usdt[j].address,
			py->usdt[j].semaphore ? " (semaphore)" : "");
	fprintf(out, "extensions  %zu loaded\n", rep->nr_extensions);
	for (j = 0; j < rep->nr_extensions; j++)
		fprintf(out, "            %-24s %s\n", rep->extensions[j].name,
			rep->extensions[j].path);
	if (rep->module) {
		fprintf(out, "module      %s: %s, %zu entry points, %zu types\n", rep->module->name,
			rep->module->object->path, rep->module->nr_entries, rep->module->nr_types);
		if (rep->module_error[0])
			fprintf(out, "            not probed: %s\n", rep->module_error);
		else
			fprintf(out,
				"            all attached in %s with one uprobe_multi link; %zu single-stepped; calls during the check:\n",
				pyx_format_duration(rep->module_attach_ns, dur, sizeof(dur)),
				rep->single_stepped);
		for (j = 0; j < rep->module->nr_entries; j++) {
			const struct pyx_entry_point *e = &rep->module->entries[j];

			fprintf(out,
				"            %-40s %-10s %-8s +0x%-8" PRIx64 " %-11s %-32s %" PRIu64
				"\n",
				e->name, pyx_signature_name(e->signature), entry_kinds[e->kind],
				e->offset,
				e->probe_class ? pyx_probe_class_name(e->probe_class) : "unprobed",
				e->symbol[0] ? e->symbol : "-",
				rep->entry_calls ? rep->entry_calls[j] : 0);
		}
	}
	for (i = 0; i < PYX_DROP__MAX; i++)
		dropped += rep->drops[i];
	if (rep->probe_attached)
		fprintf(out,
			"probe       uprobe on %s: %" PRIu64 " hits from %" PRIu64
			" thread%s in %s, %" PRIu64 " dropped\n",
			rep->probe_symbol, rep->probe_hits, rep->probe_threads,
			rep->probe_threads == 1 ? "" : "s",
			pyx_format_duration(rep->probe_ns, dur, sizeof(dur)), dropped);
	else
		fprintf(out, "probe       not attached: %s\n", rep->probe_error);
}

static void free_report(struct info_report *rep)
{
	free(rep->entry_calls);
	pyx_module__free(rep->module);
	free(rep->extensions);
	pyx_python__free(rep->py);
	pyx_process__close(rep->proc);
}

struct info_opts {
	const char *module;
	bool all_symbols;
};

static int report_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct info_opts *opts = cookie;
	struct info_report rep = {.module_query = opts->module, .all_symbols = opts->all_symbols};
	char why[512];
	int err, ret = PYX_EXIT_FAILURE;

	err = pyx_cmd_open_target(ctx, common, &rep.proc);
	if (err)
		return err;
	err = pyx_python__detect(rep.proc, &rep.py, why, sizeof(why));
	if (err) {
		pyx_error(ctx, "%s", why);
		goto out_free;
	}
	if (pyx_python__layout(rep.py, rep.proc, &rep.layout, rep.layout_error,
			       sizeof(rep.layout_error)))
		pyx_warn(ctx, "%s", rep.layout_error);
	err = collect_extensions(&rep);
	if (err) {
		pyx_error(ctx, "out of memory");
		goto out_free;
	}
	if (rep.module_query) {
		err = pyx_module__discover(rep.proc, rep.py, rep.module_query, &rep.module, why,
					   sizeof(why));
		if (err) {
			pyx_error(ctx, "%s", why);
			goto out_free;
		}
		if (rep.all_symbols)
			pyx_module__add_all_symbols(rep.proc, rep.module);
		rep.single_stepped = pyx_centry_plan(rep.module);
	}
	err = run_probe_check(ctx, &rep, common);
	if (err == -ESRCH) {
		pyx_error(ctx, "process %d exited during inspection", rep.proc->pid);
		goto out_free;
	}
	if (err)
		goto out_free;
	if (ctx->json)
		print_report_json(ctx, &rep);
	else
		print_report_text(ctx, &rep);
	/* A probe that could not attach means info could not do its job. */
	ret = rep.probe_attached ? PYX_EXIT_OK : PYX_EXIT_FAILURE;
	if (!rep.probe_attached)
		pyx_error(ctx, "the probe check failed: %s", rep.probe_error);
out_free:
	free_report(&rep);
	return ret;
}

enum { OPT_MODULE = 0x3000, OPT_ALL_SYMBOLS };

static const struct option info_options[] = {
	{"module", required_argument, NULL, OPT_MODULE},
	{"all-symbols", no_argument, NULL, OPT_ALL_SYMBOLS},
	{},
};

static int info_option(void *cookie, int val, const char *arg)
{
	struct info_opts *opts = cookie;

	if (val == OPT_MODULE)
		opts->module = arg;
	else if (val == OPT_ALL_SYMBOLS)
		opts->all_symbols = true;
	else
		return -EINVAL;
	return 0;
}

static int info_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct pyx_common_opts common;
	struct info_opts opts = {};
	int err, ret;

	err = pyx_cmd_parse(ctx, &pyx_cmd_info,
			    PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, info_options, NULL, info_option, &opts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	if (opts.module && !common.pid && !common.launch_argv)
		return pyx_usage_error(ctx, &pyx_cmd_info,
				       "--module needs a target: -p PID or -- CMD");
	/* One report per CPython process in scope now, each with its probe check. */
	if (pyx_cmd_is_scope(&common))
		return pyx_cmd_run_each(ctx, &common, report_target, &opts);
	if (opts.all_symbols && !opts.module)
		return pyx_usage_error(ctx, &pyx_cmd_info, "--all-symbols goes with --module NAME");
	if (common.launch_argv || common.pid)
		return pyx_cmd_run_target(ctx, &common, report_target, &opts);
	if (pyx_cmd_open_output(ctx))
		return PYX_EXIT_FAILURE;
	ret = report_kernel(ctx);
	if (pyx_cmd_close_output(ctx) && ret == PYX_EXIT_OK)
		ret = PYX_EXIT_FAILURE;
	return ret;
}

const struct pyx_cmd pyx_cmd_info = {
	.name = "info",
	.summary = "kernel readiness, or what CPython a process runs",
	.usage = info_usage,
	.run = info_run,
};
