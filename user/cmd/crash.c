// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace crash: the last moments of a Python process, recorded from
 * outside as they happen (bpf/crash.bpf.c): fatal signals with the fault
 * address, Py_FatalError, abort(), failed C assertions, each with the
 * thread's mixed Python + native stack at that moment, and how the process
 * ended. Events of one thread within a second form one incident (a
 * Py_FatalError is followed by abort() and SIGABRT).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <linux/types.h>
#include <pyxtrace/crash.h>

#include "crash.skel.h"
#include "cmd/cmd.h"
#include "discovery.h"
#include "elf/elf.h"
#include "output/json.h"
#include "output/objects.h"
#include "output/stackview.h"
#include "probes/centry.h"
#include "python/code.h"
#include "python/codesnap.h"
#include "python/detect.h"
#include "python/entrypoints.h"
#include "python/layout.h"
#include "python/threadnames.h"
#include "session.h"
#include "target/process.h"
#include "unwind/unwind.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(crash_bpf);

#define CRASH_STACK_BYTES (16 * 1024)
#define CRASH_INCIDENT_NS 1000000000ull /* events of one thread this close: one incident */
#define CRASH_MAX_THREADS 64		/* threads remembered for incident grouping */
#define CRASH_MAX_FRAMES  512		/* frames compared between events of an incident */
#define CRASH_REFRESH_NS  100000000ull	/* re-read new objects at most this often (100 ms) */
#define CRASH_NAMES_NS	  20000000ull	/* a new thread is named within this (20 ms) */
#define CRASH_RENAME_NS	  5000000000ull /* a renamed thread, within this (5 s) */

static const char *const kind_names[] = {
	[PYX_CRASH_SIGNAL] = "signal",
	[PYX_CRASH_FATAL_ERROR] = "fatal_error",
	[PYX_CRASH_ABORT] = "abort",
	[PYX_CRASH_ASSERT] = "assert",
	[PYX_CRASH_EXIT] = "exit",
	[PYX_CRASH_MEMORY_ERROR] = "memory_error",
	[PYX_CRASH_RECURSION_ERROR] = "recursion_error",
	[PYX_CRASH_NEGATIVE_REFCOUNT] = "negative_refcount",
	[PYX_CRASH_OOM_KILL] = "oom_kill",
	[PYX_CRASH_BAD_RETURN] = "bad_return",
};

struct crash_opts {
	const char *module; /* --module: its C entry points' bad returns too */
};

struct crash_run {
	struct pyx_ctx *ctx;
	struct pyx_process *proc;
	struct pyx_python *py;
	struct pyx_python_layout layout;
	struct pyx_code_cache *cache;
	struct pyx_unwinder *unwinder;
	struct pyx_stackview *view;
	struct pyx_process *unwound; /* the unwinder's own view of the process's objects */
	bool maps_changed;	     /* a file was mapped executable since the unwinder was built */
	uint64_t recursion_error;    /* the RecursionError type object; 0: unknown */
	uint64_t refreshed_ns;
	int64_t realtime_offset_ns;
	uint64_t counts[PYX_ARRAY_SIZE(kind_names)];
	unsigned int incidents;		/* of this process */
	unsigned int *last_incident_id; /* incident ids: unique across the processes of a run */
	unsigned int own_incident_id;
	bool multi;		     /* one of several processes: events name theirs */
	struct pyx_session *session; /* a follower of the discovery loop (multi) */
	struct {
		__u32 tid;
		unsigned int incident;
		uint64_t last_ns;
	} threads[CRASH_MAX_THREADS];
	size_t nr_threads;
	bool exited;
	__u32 exit_status; /* wait status */
	/* The stack printed last (text): the next event of its incident shows only what differs. */
	uint64_t last_keys[CRASH_MAX_FRAMES];
	size_t last_nr_keys;
	__u32 last_tid;
	unsigned int last_incident;
	const char *probes_missing[5];
	size_t nr_missing;
	struct pyx_module *mod; /* --module */
	/* threading names (3.8-3.13; 3.14+ name threads in the kernel), read ahead of any crash */
	struct pyx_thread_names names;
	nlink_t names_nlink;	/* /proc/PID/task's link count when read: 2 + its threads */
	uint64_t names_ns;	/* when read */
	uint64_t names_cost_ns; /* how long that took */
};

static void crash_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s crash [-p PID [--container ID] [--children] | --container ID | --all |\n"
		"       -- CMD [ARGS...]] [--module NAME] [-d TIME] [--json] [-o FILE]\n"
		"\n"
		"Records the last moments of a Python process as they happen, from outside,\n"
		"nothing set up in advance: fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,\n"
		"SIGABRT, SIGTRAP) with the fault address, Py_FatalError, abort() and failed\n"
		"C assertions, each with the thread's Python and native stack at that\n"
		"moment; then how the process ended. Runs until the process exits, the\n"
		"duration ends, or Ctrl-C. Without a target: every Python process of the\n"
		"host, those started later too (--all).\n"
		"\n"
		"  --module NAME          also every bad return of this extension module's C\n"
		"                         entry points: NULL without an exception set, or a\n"
		"                         value with one (a return probe on each)\n",
		prog);
	pyx_cmd_print_common_usage(out, PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION |
						PYX_OPT_OUTPUT);
	fprintf(out,
		"\nExamples:\n"
		"  %s crash\n"
		"  %s crash -p 1234\n"
		"  %s crash --container 3f2a9c --json\n"
		"  %s crash --json -- python3 app.py\n",
		prog, prog, prog, prog);
}

static void note_missing(struct crash_run *run, const char *what)
{
	if (run->nr_missing < PYX_ARRAY_SIZE(run->probes_missing))
		run->probes_missing[run->nr_missing++] = what;
	/* A process that ended meanwhile (--all: short-lived ones) is no news. */
	if (pyx_process__alive(run->proc))
		pyx_warn(run->ctx, "%s will not be seen: no probe could be attached", what);
}

/*
 * The entry probes of one object, attached together as one uprobe_multi
 * link: its removal waits for the kernel once, not once per probe (~90 ms
 * each here), and neither it nor its attach takes the lock perf-event
 * uprobes share (which made one process's attach wait for another's
 * detach under --all).
 */
#define CRASH_OBJECT_PROBES 8

struct object_probes {
	struct pyx_object *obj;
	unsigned long offsets[CRASH_OBJECT_PROBES];
	__u64 cookies[CRASH_OBJECT_PROBES];
	const char *what[CRASH_OBJECT_PROBES]; /* what each sees, for note_missing() */
	size_t n;
};

/* Plan a probe at @symbol (or @vaddr) of @probes->obj. -ENOENT: no such symbol. */
static int plan_symbol(struct crash_run *run, struct object_probes *probes, const char *symbol,
		       uint64_t vaddr, __u64 cookie, const char *what)
{
	struct pyx_elf *elf = probes->obj ? pyx_process__object_elf(run->proc, probes->obj) : NULL;
	struct pyx_elf_sym sym;
	uint64_t offset;

	if (!elf || probes->n >= CRASH_OBJECT_PROBES)
		return -ENOENT;
	if (!vaddr) {
		if (pyx_elf__find_symbol(elf, symbol, &sym))
			return -ENOENT;
		vaddr = sym.value;
	}
	if (pyx_elf__vaddr_to_offset(elf, vaddr, &offset))
		return -ENOENT;
	probes->offsets[probes->n] = (unsigned long)offset;
	probes->cookies[probes->n] = cookie;
	probes->what[probes->n] = what;
	probes->n++;
	pyx_debug(run->ctx, "probe on %s in %s", symbol, pyx_basename(probes->obj->path));
	return 0;
}

/* Attach @prog at the planned probes, through map_files (the very inode the target maps). */
static int attach_planned(struct crash_run *run, struct pyx_session *session,
			  struct bpf_program *prog, const struct object_probes *probes)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .offsets = probes->offsets,
		    .cookies = probes->cookies, .cnt = probes->n);
	struct bpf_link *link;
	char path[96];
	size_t i;

	if (!probes->n)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, run->proc->pid,
		 probes->obj->map_start, probes->obj->map_end);
	link = bpf_program__attach_uprobe_multi(prog, run->proc->pid, path, NULL, &opts);
	if (link)
		return pyx_session__add_link(session, link);
	for (i = 0; i < probes->n; i++)
		if (probes->what[i] && (!i || probes->what[i] != probes->what[i - 1]))
			note_missing(run, probes->what[i]);
	return 0;
}

/* The C library the target maps (glibc's libc.so.6, or an older libc-2.x.so). */
static struct pyx_object *find_libc(struct pyx_process *proc)
{
	size_t i;

	for (i = 0; i < proc->nr_objects; i++) {
		const char *base = pyx_basename(proc->objects[i].path);

		if (proc->objects[i].executable &&
		    (!strcmp(base, "libc.so.6") || !strncmp(base, "libc-", 5)))
			return &proc->objects[i];
	}
	return NULL;
}

/* The RecursionError type: the object the exported PyExc_RecursionError points to. */
static uint64_t recursion_error_type(struct crash_run *run)
{
	struct pyx_elf *elf = pyx_process__object_elf(run->proc, run->py->interp);
	struct pyx_elf_sym sym;
	uint64_t type = 0;

	if (!elf || pyx_elf__find_symbol(elf, "PyExc_RecursionError", &sym) ||
	    pyx_process__read(run->proc, pyx_object__runtime(run->py->interp, sym.value), &type,
			      sizeof(type)))
		return 0;
	return type;
}

/* --module: a return probe on each C entry point that returns an object. */
static int attach_module(struct crash_run *run, struct pyx_session *session, struct crash_bpf *skel)
{
	struct bpf_link *link;
	__u32 i;
	int err;

	for (i = 0; i < run->mod->nr_entries; i++) {
		__u32 sig = pyx_centry_bpf_signature(run->mod->entries[i].signature);

		err = bpf_map__update_elem(skel->maps.signatures, &i, sizeof(i), &sig, sizeof(sig),
					   BPF_ANY);
		if (err)
			return err;
	}
	link = pyx_centry_attach(skel->progs.on_centry_return, run->proc, run->mod, true);
	if (!link) {
		err = -errno;
		if (!pyx_process__alive(run->proc))
			return 0;
		pyx_error(run->ctx, "cannot attach to the returns of %s's C entry points: %s",
			  run->mod->name, strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, link);
}

/* PYX_CRASH_BAD_RETURN: which C function, and what it did. */
static const char *bad_return_function(const struct crash_run *run, const struct pyx_rec_crash *rec)
{
	if (!run->mod || rec->line >= run->mod->nr_entries)
		return NULL;
	return run->mod->entries[rec->line].name;
}

static const char *bad_return_why(const struct pyx_rec_crash *rec)
{
	return rec->code == PYX_CRASH_BAD_NULL_NO_EXCEPTION ? "null_without_exception"
							    : "value_with_exception";
}

/*
 * Programs this run has no use for are not loaded: each stack-capturing
 * one costs ~23 ms of verification, paid per process under --all.
 */
static int crash_prepare(void *cookie, void *skel_ptr)
{
	const struct crash_run *run = cookie;
	struct crash_bpf *skel = skel_ptr;

	return bpf_program__set_autoload(skel->progs.on_centry_return, run->mod != NULL);
}

static int crash_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct crash_run *run = cookie;
	struct crash_bpf *skel = skel_ptr;
	const struct pyx_python_symbol_info *fatal = &run->py->symbols[PYX_SYM_FATAL_ERROR];
	const struct pyx_python_symbol_info *fatal_func =
		&run->py->symbols[PYX_SYM_FATAL_ERROR_FUNC];
	struct object_probes interp = {.obj = run->py->interp},
			     libc = {.obj = find_libc(run->proc)};
	struct bpf_link *link;
	bool any_fatal = false;
	int err;

	/* Signals and the exit are the kernel's: these must work. */
	link = bpf_program__attach(skel->progs.on_signal);
	err = link ? pyx_session__add_link(session, link) : -errno;
	if (!err) {
		link = bpf_program__attach(skel->progs.on_exit);
		err = link ? pyx_session__add_link(session, link) : -errno;
	}
	if (err) {
		pyx_error(run->ctx, "cannot attach to the kernel's signal and exit events: %s",
			  strerror(-err));
		return err;
	}
	link = bpf_program__attach(skel->progs.on_oom_victim);
	if (!link || pyx_session__add_link(session, link))
		note_missing(run, "the OOM killer");
	/* Modules imported later: without it their frames stay unsymbolized, nothing worse. */
	link = bpf_program__attach(skel->progs.on_mm_write);
	if (!link || pyx_session__add_link(session, link))
		pyx_warn(run->ctx, "objects mapped after attach will not be unwound: %s",
			 strerror(errno));
	if (fatal->origin && !plan_symbol(run, &interp, fatal->name, fatal->vaddr,
					  PYX_CRASH_FATAL_ERROR, "Py_FatalError"))
		any_fatal = true;
	if (fatal_func->origin &&
	    !plan_symbol(run, &interp, fatal_func->name, fatal_func->vaddr,
			 PYX_CRASH_FATAL_ERROR | PYX_CRASH_COOKIE_FATAL_FUNC, "Py_FatalError"))
		any_fatal = true;
	if (!any_fatal)
		note_missing(run, "Py_FatalError");
	/* The internal raise every MemoryError goes through where it is a symbol; else the API. */
	if (plan_symbol(run, &interp, "_PyErr_NoMemory", 0, PYX_CRASH_MEMORY_ERROR,
			"MemoryError") &&
	    plan_symbol(run, &interp, "PyErr_NoMemory", 0, PYX_CRASH_MEMORY_ERROR, "MemoryError"))
		note_missing(run, "MemoryError");
	/* Debug interpreters (Py_DEBUG, python3.Xd) only: release builds check nothing. */
	if (run->py->debug && plan_symbol(run, &interp, "_Py_NegativeRefcount", 0,
					  PYX_CRASH_NEGATIVE_REFCOUNT, "negative reference counts"))
		note_missing(run, "negative reference counts");
	if (!run->recursion_error || plan_symbol(run, &interp, "_PyErr_Format", 0,
						 PYX_CRASH_RECURSION_ERROR, "RecursionError"))
		note_missing(run, "RecursionError");
	if (plan_symbol(run, &libc, "abort", 0, PYX_CRASH_ABORT, "abort()"))
		note_missing(run, "abort()");
	if (plan_symbol(run, &libc, "__assert_fail", 0, PYX_CRASH_ASSERT, "__assert_fail()"))
		note_missing(run, "__assert_fail()");
	err = attach_planned(run, session, skel->progs.on_call, &interp);
	if (!err)
		err = attach_planned(run, session, skel->progs.on_call, &libc);
	if (!err && run->mod)
		err = attach_module(run, session, skel);
	return err;
}

static const char *signal_name(unsigned int sig)
{
	static const char *const names[] = {
		[SIGILL] = "SIGILL",   [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
		[SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",   [SIGSEGV] = "SIGSEGV",
		[SIGKILL] = "SIGKILL", [SIGTERM] = "SIGTERM", [SIGINT] = "SIGINT",
	};

	return sig < PYX_ARRAY_SIZE(names) && names[sig] ? names[sig] : NULL;
}

/* si_code's name (siginfo.h), NULL when unknown. */
static const char *code_name(unsigned int sig, int code)
{
	static const char *const segv[] = {NULL, "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR",
					   "SEGV_PKUERR"};
	static const char *const bus[] = {NULL, "BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR"};
	static const char *const fpe[] = {NULL,		"FPE_INTDIV", "FPE_INTOVF",
					  "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND",
					  "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB"};
	static const char *const ill[] = {NULL,		"ILL_ILLOPC", "ILL_ILLOPN",
					  "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC",
					  "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK"};

	switch (code) {
	case 0:
		return "SI_USER";
	case 0x80:
		return "SI_KERNEL";
	case -1:
		return "SI_QUEUE";
	case -6:
		return "SI_TKILL";
	default:
		break;
	}
	if (code < 0)
		return NULL;
#define PICK(table) ((size_t)code < PYX_ARRAY_SIZE(table) ? table[code] : NULL)
	switch (sig) {
	case SIGSEGV:
		return PICK(segv);
	case SIGBUS:
		return PICK(bus);
	case SIGFPE:
		return PICK(fpe);
	case SIGILL:
		return PICK(ill);
	default:
		return NULL;
	}
#undef PICK
}

/* The incident of an event: the thread's last one if within a second, else a new one. */
static unsigned int incident_of(struct crash_run *run, __u32 tid, uint64_t ns)
{
	size_t i, slot = run->nr_threads;

	for (i = 0; i < run->nr_threads; i++)
		if (run->threads[i].tid == tid)
			break;
	if (i < run->nr_threads && ns - run->threads[i].last_ns <= CRASH_INCIDENT_NS) {
		run->threads[i].last_ns = ns;
		return run->threads[i].incident;
	}
	if (i < run->nr_threads)
		slot = i;
	else if (run->nr_threads < CRASH_MAX_THREADS)
		run->nr_threads++;
	else
		slot = (size_t)run->incidents % CRASH_MAX_THREADS; /* forget an old thread */
	run->incidents++;
	run->threads[slot].tid = tid;
	run->threads[slot].incident = ++*run->last_incident_id;
	run->threads[slot].last_ns = ns;
	return run->threads[slot].incident;
}

/*
 * Read the threads' threading names again when the process's thread count
 * changed (a thread started or ended), and with @renamed every
 * CRASH_RENAME_NS (a thread renamed: rare). A crash is too late to read
 * them: the process is gone by the time it is reported. Each read walks
 * every thread's frames: the next one waits 20 times as long as it took
 * (at most 5 % of a CPU for a process with many deep threads that churn).
 */
static void refresh_names(struct crash_run *run, bool renamed)
{
	uint64_t t = pyx_monotonic_ns();
	char path[64];
	struct stat st;
	int err;

	if (!run->cache || !pyx_thread_names__supported(run->py))
		return;
	if (run->names_ns && t - run->names_ns < 20 * run->names_cost_ns)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", run->proc->pid);
	if (stat(path, &st))
		return;
	if (st.st_nlink == run->names_nlink && (!renamed || t - run->names_ns < CRASH_RENAME_NS))
		return;
	run->names_nlink = st.st_nlink;
	run->names_ns = t;
	err = pyx_thread_names__read(
		&run->names, run->py, &run->layout, run->cache,
		(struct pyx_mem){.read = pyx_process__read_cb, .ctx = run->proc});
	run->names_cost_ns = pyx_monotonic_ns() - t;
	if (err)
		pyx_debug(run->ctx, "process %d: thread names: %s", run->proc->pid, strerror(-err));
	else
		pyx_debug(run->ctx, "process %d: %zu thread names read in %.1f µs", run->proc->pid,
			  run->names.nr, (double)run->names_cost_ns / 1e3);
}

static void print_event_json(struct crash_run *run, const struct pyx_rec_crash *rec,
			     unsigned int incident, pid_t ns_tid, bool stack)
{
	const char *name = NULL, *source = NULL;
	struct pyx_json json;
	size_t len = 0;

	pyx_json_init(&json, run->ctx->out);
	pyx_json_object_begin(&json);
	pyx_json_kv_string(&json, "event", kind_names[rec->kind]);
	pyx_json_kv_i64(&json, "time_ns", (int64_t)rec->time_ns + run->realtime_offset_ns);
	pyx_out_process(&json, "process", run->proc);
	pyx_json_key(&json, "thread");
	pyx_json_object_begin(&json);
	pyx_json_kv_u64(&json, "tid", rec->tid);
	pyx_json_kv_i64(&json, "ns_tid", ns_tid);
	/* No stack (oom_kill: another task's event), no thread to name. */
	if (rec->flags & PYX_CRASH_HAS_STACK)
		name = pyx_thread_names__of(&run->names, &rec->py, &len, &source);
	pyx_json_key(&json, "name");
	if (name)
		pyx_json_string_len(&json, name, len);
	else
		pyx_json_null(&json);
	pyx_json_key(&json, "name_source");
	if (source)
		pyx_json_string(&json, source);
	else
		pyx_json_null(&json);
	pyx_json_object_end(&json);
	pyx_json_kv_u64(&json, "incident", incident);
	if (rec->kind == PYX_CRASH_SIGNAL) {
		pyx_json_kv_string(&json, "signal", signal_name(rec->signal));
		pyx_json_kv_u64(&json, "signo", rec->signal);
		pyx_json_kv_i64(&json, "code", rec->code);
		pyx_json_kv_string(&json, "code_name", code_name(rec->signal, rec->code));
		pyx_json_kv_hex(&json, "addr", rec->addr);
		pyx_json_kv_u64(&json, "sender_tid", rec->sender);
		pyx_json_kv_bool(&json, "delivered", rec->result == 0);
	}
	if (rec->kind == PYX_CRASH_BAD_RETURN) {
		pyx_json_kv_string(&json, "why", bad_return_why(rec));
		pyx_json_kv_hex(&json, "value", rec->addr);
	}
	pyx_json_kv_string(&json, "message", rec->message[0] ? rec->message : NULL);
	if (rec->kind == PYX_CRASH_OOM_KILL) {
		pyx_json_kv_u64(&json, "rss_bytes", rec->rss_bytes);
		pyx_json_kv_string(&json, "cgroup", rec->cgroup[0] ? rec->cgroup : NULL);
	}
	if (rec->kind == PYX_CRASH_ASSERT || rec->kind == PYX_CRASH_NEGATIVE_REFCOUNT) {
		pyx_json_kv_string(&json, "file", rec->file);
		pyx_json_kv_u64(&json, "line", rec->line);
	}
	if (rec->kind == PYX_CRASH_BAD_RETURN)
		pyx_json_kv_string(&json, "function", bad_return_function(run, rec));
	else
		pyx_json_kv_string(&json, "function", rec->function[0] ? rec->function : NULL);
	pyx_json_key(&json, "stack");
	if (stack)
		pyx_stackview__print_json(run->view, &json);
	else
		pyx_json_null(&json);
	pyx_json_object_end(&json);
	pyx_json_document_end(&json);
}

static void print_event_text(struct crash_run *run, const struct pyx_rec_crash *rec,
			     unsigned int incident, pid_t ns_tid, bool stack)
{
	FILE *out = run->ctx->out;
	const char *code = code_name(rec->signal, rec->code);
	const char *name, *source;
	char time[32];
	size_t len;

	pyx_format_clock((int64_t)rec->time_ns + run->realtime_offset_ns, time, sizeof(time));
	fprintf(out, "[incident %u] %s ", incident, time);
	switch (rec->kind) {
	case PYX_CRASH_SIGNAL:
		fprintf(out, "%s", signal_name(rec->signal) ? signal_name(rec->signal) : "signal");
		if (code)
			fprintf(out, " (%s", code);
		else
			fprintf(out, " (code %d", rec->code);
		if (rec->addr)
			fprintf(out, ", address 0x%llx", (unsigned long long)rec->addr);
		fputc(')', out);
		if (rec->sender != rec->tid)
			fprintf(out, " sent by thread %u", rec->sender);
		break;
	case PYX_CRASH_FATAL_ERROR:
		fprintf(out, "Py_FatalError%s%s: %s", rec->function[0] ? " in " : "", rec->function,
			rec->message);
		break;
	case PYX_CRASH_ABORT:
		fputs("abort()", out);
		break;
	case PYX_CRASH_ASSERT:
		fprintf(out, "assertion failed: %s (%s:%u, in %s)", rec->message, rec->file,
			rec->line, rec->function);
		break;
	case PYX_CRASH_OOM_KILL:
		fprintf(out, "chosen by the OOM killer: %llu MiB resident, memory cgroup %s",
			(unsigned long long)(rec->rss_bytes >> 20),
			rec->cgroup[0] ? rec->cgroup : "?");
		break;
	case PYX_CRASH_NEGATIVE_REFCOUNT:
		fprintf(out, "negative reference count after Py_DECREF at %s:%u", rec->file,
			rec->line);
		break;
	case PYX_CRASH_RECURSION_ERROR:
		/* The raise's format string, up to its first directive (a page not yet read is empty). */
		fprintf(out, "RecursionError raised%s%.*s", rec->message[0] ? ": " : "",
			(int)strcspn(rec->message, "%"), rec->message);
		break;
	case PYX_CRASH_MEMORY_ERROR:
		fputs("MemoryError raised", out);
		break;
	case PYX_CRASH_BAD_RETURN:
		if (rec->code == PYX_CRASH_BAD_NULL_NO_EXCEPTION)
			fprintf(out, "bad return: %s returned NULL without an exception set",
				bad_return_function(run, rec) ?: "?");
		else
			fprintf(out,
				"bad return: %s returned a value (0x%llx) with an exception set",
				bad_return_function(run, rec) ?: "?",
				(unsigned long long)rec->addr);
		break;
	default:
		break;
	}
	if (run->multi) {
		char label[160];

		fprintf(out, ", %s", pyx_process_label(run->proc, label, sizeof(label)));
	}
	fprintf(out, ", thread %u", rec->tid);
	if (ns_tid != (pid_t)rec->tid)
		fprintf(out, " (tid %d in container)", ns_tid);
	if (rec->flags & PYX_CRASH_HAS_STACK) {
		name = pyx_thread_names__of(&run->names, &rec->py, &len, &source);
		fprintf(out, " \"%.*s\"", (int)len, name);
	}
	fputc('\n', out);
	if (stack) {
		uint64_t keys[CRASH_MAX_FRAMES];
		size_t n = pyx_stackview__keys(run->view, keys, CRASH_MAX_FRAMES), same = 0;

		/* Events of one incident share their outer frames: print those once. */
		if (incident == run->last_incident && rec->tid == run->last_tid)
			while (same < n && same < run->last_nr_keys &&
			       keys[same] == run->last_keys[same])
				same++;
		pyx_stackview__print_text_from(run->view, out, "    ", same < n ? same : n - 1);
		memcpy(run->last_keys, keys, n * sizeof(keys[0]));
		run->last_nr_keys = n;
		run->last_tid = rec->tid;
		run->last_incident = incident;
	} else if (rec->kind == PYX_CRASH_SIGNAL)
		fputs("    (sent by another process: its target's stack cannot be read from there)\n",
		      out);
	fflush(out);
}

/* Reads served from the code objects copied with one event, else from the live process. */
struct snap_mem {
	const struct pyx_rec_crash *rec;
	struct pyx_process *proc;
};

static int snap_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct snap_mem *m = ctx;

	if (!pyx_codesnap_read(m->rec->codes, PYX_CRASH_CODES, addr, buf, len))
		return 0;
	/* Not copied (a longer table, a deeper frame): the process may still be there. */
	return pyx_process__read(m->proc, addr, buf, len);
}

/* Whether @a and @b map the same executable files. */
static bool same_code(const struct pyx_process *a, const struct pyx_process *b)
{
	size_t i, j, na = 0, nb = 0;

	for (i = 0; i < a->nr_objects; i++) {
		if (!a->objects[i].executable)
			continue;
		na++;
		for (j = 0; j < b->nr_objects; j++)
			if (b->objects[j].executable && b->objects[j].dev == a->objects[i].dev &&
			    b->objects[j].inode == a->objects[i].inode)
				break;
		if (j == b->nr_objects)
			return false;
	}
	for (j = 0; j < b->nr_objects; j++)
		nb += b->objects[j].executable;
	return na == nb;
}

/*
 * Objects mapped after attach (modules imported later): unwinding needs
 * their files, which can be opened only while the process lives, so when
 * its executable objects changed, build a new unwinder from a fresh read of
 * its maps now. At most once per CRASH_REFRESH_NS unless @now is set (an
 * event needs it): an import maps several segments, numpy dozens of files.
 */
static void refresh_unwinder(struct crash_run *run, bool now)
{
	const struct pyx_process *current = run->unwound ? run->unwound : run->proc;
	struct pyx_process *proc = NULL;
	struct pyx_unwinder *unwinder;
	struct pyx_stackview *view;
	uint64_t t = pyx_monotonic_ns();

	if (!run->maps_changed || (!now && t - run->refreshed_ns < CRASH_REFRESH_NS))
		return;
	run->maps_changed = false;
	run->refreshed_ns = t;
	if (pyx_process__open(run->proc->pid, &proc))
		return; /* gone: the old unwinder is all there is */
	if (same_code(current, proc)) {
		pyx_process__close(proc);
		return;
	}
	unwinder = pyx_unwinder__new(proc);
	view = unwinder ? pyx_stackview__new(run->ctx, run->proc, run->py, &run->layout, run->cache,
					     unwinder)
			: NULL;
	if (!view) {
		pyx_unwinder__free(unwinder);
		pyx_process__close(proc);
		return;
	}
	pyx_unwinder__preload(unwinder);
	pyx_stackview__free(run->view);
	pyx_unwinder__free(run->unwinder);
	pyx_process__close(run->unwound);
	run->view = view;
	run->unwinder = unwinder;
	run->unwound = proc;
	pyx_debug(run->ctx, "unwinder rebuilt: %zu objects mapped", proc->nr_objects);
}

static int crash_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	struct crash_run *run = cookie;
	const struct pyx_rec_crash *rec = (const void *)hdr;
	struct pyx_code_cache *cache = NULL;
	struct snap_mem mem;
	unsigned int incident;
	bool stack;
	pid_t ns_tid;

	if (hdr->type == PYX_REC_CRASH_MAP) {
		pyx_debug(run->ctx, "mappings changed (thread %u)",
			  ((const struct pyx_rec_crash_map *)hdr)->tid);
		run->maps_changed = true;
		refresh_unwinder(run, false);
		return 0;
	}
	if (hdr->type != PYX_REC_CRASH || size < sizeof(*rec) || !rec->kind ||
	    rec->kind >= PYX_ARRAY_SIZE(kind_names))
		return 0;
	run->counts[rec->kind]++;
	if (rec->kind == PYX_CRASH_EXIT) {
		run->exited = true;
		run->exit_status = rec->exit_code;
		return 0;
	}
	incident = incident_of(run, rec->tid, rec->time_ns);
	ns_tid = rec->ns_tid ? (pid_t)rec->ns_tid : (pid_t)rec->tid;
	stack = rec->flags & PYX_CRASH_HAS_STACK;
	/*
	 * The process is usually gone by now: Python frames are named from the
	 * code objects copied with the event (a cache of this event only: the
	 * names live in it until printed), native frames unwound from the
	 * stack copy alone.
	 */
	if (stack) {
		refresh_unwinder(run, true);
		mem.rec = rec;
		mem.proc = run->proc;
		cache = pyx_code_cache__new(&run->layout.code,
					    (struct pyx_mem){.read = snap_read, .ctx = &mem});
		pyx_stackview__set_cache(run->view, cache ? cache : run->cache);
		pyx_stackview__build(run->view, &rec->py, &rec->native, true);
	}
	if (run->ctx->json)
		print_event_json(run, rec, incident, ns_tid, stack);
	else
		print_event_text(run, rec, incident, ns_tid, stack);
	pyx_stackview__set_cache(run->view, run->cache);
	pyx_code_cache__free(cache);
	return 0;
}

static void print_summary(struct crash_run *run, const char *stopped_by, const uint64_t *drops)
{
	unsigned int status = run->exit_status, sig = status & 0x7f;
	FILE *out = run->ctx->out;
	char label[160];
	size_t i;

	if (run->ctx->json) {
		struct pyx_json json;

		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "event", "summary");
		pyx_out_process(&json, "process", run->proc);
		pyx_out_python(&json, "python", run->py);
		pyx_json_key(&json, "events");
		pyx_json_object_begin(&json);
		for (i = 1; i < PYX_ARRAY_SIZE(kind_names); i++)
			if (i != PYX_CRASH_EXIT)
				pyx_json_kv_u64(&json, kind_names[i], run->counts[i]);
		pyx_json_object_end(&json);
		pyx_json_kv_u64(&json, "incidents", run->incidents);
		pyx_json_key(&json, "exit");
		if (run->exited) {
			pyx_json_object_begin(&json);
			if (sig) {
				pyx_json_kv_null(&json, "status");
				pyx_json_kv_string(&json, "signal", signal_name(sig));
				pyx_json_kv_u64(&json, "signo", sig);
				pyx_json_kv_bool(&json, "core_dumped", status & 0x80);
			} else {
				pyx_json_kv_u64(&json, "status", (status >> 8) & 0xff);
				pyx_json_kv_null(&json, "signal");
				pyx_json_kv_null(&json, "signo");
				pyx_json_kv_bool(&json, "core_dumped", false);
			}
			pyx_json_object_end(&json);
		} else {
			pyx_json_null(&json);
		}
		pyx_json_key(&json, "not_probed");
		pyx_json_array_begin(&json);
		for (i = 0; i < run->nr_missing; i++)
			pyx_json_string(&json, run->probes_missing[i]);
		pyx_json_array_end(&json);
		pyx_json_kv_string(&json, "stopped_by", stopped_by);
		pyx_out_drops(&json, drops);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		return;
	}
	fprintf(out, "\n%s: %u incident%s", pyx_process_label(run->proc, label, sizeof(label)),
		run->incidents, run->incidents == 1 ? "" : "s");
	for (i = 1; i < PYX_ARRAY_SIZE(kind_names); i++)
		if (i != PYX_CRASH_EXIT && run->counts[i])
			fprintf(out, ", %s %llu", kind_names[i],
				(unsigned long long)run->counts[i]);
	if (!run->exited)
		fprintf(out, "; still running (%s)\n", stopped_by);
	else if (sig)
		fprintf(out, "; killed by %s%s\n", signal_name(sig) ? signal_name(sig) : "a signal",
			(status & 0x80) ? " (core dumped)" : "");
	else
		fprintf(out, "; exited with status %u\n", (status >> 8) & 0xff);
	pyx_print_drops(out, drops, 0);
}

static int crash_on_tick(void *cookie, struct pyx_session *session)
{
	(void)session;
	refresh_names(cookie, false);
	return 0;
}

static int crash_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct crash_run *run = cookie;
	uint64_t drops[PYX_DROP__MAX];

	if (!final) {
		refresh_unwinder(run, false);
		refresh_names(run, true);
		return 0;
	}
	pyx_session__drops(session, drops);
	print_summary(run, pyx_stop_reason_name(pyx_session__stop_reason(session)), drops);
	return 0;
}

/* Everything but the session for tracing run->proc (opened, Python detected): 0 or an exit code. */
static int crash_run_prepare(struct crash_run *run, const struct crash_opts *opts,
			     struct pyx_crash_cfg *cfg)
{
	struct pyx_ctx *ctx = run->ctx;
	char why[1024];

	if (!run->last_incident_id)
		run->last_incident_id = &run->own_incident_id;
	if (opts->module) {
		if (pyx_module__discover(run->proc, run->py, opts->module, &run->mod, why,
					 sizeof(why))) {
			pyx_error(ctx, "%s", why);
			return PYX_EXIT_FAILURE;
		}
		if (!run->mod->nr_entries) {
			pyx_error(ctx, "%s: no entry points found", run->mod->name);
			return PYX_EXIT_FAILURE;
		}
		pyx_centry_plan(run->mod);
	}
	run->cache = pyx_code_cache__new(
		&run->layout.code,
		(struct pyx_mem){.read = pyx_process__read_cb, .ctx = run->proc});
	/* Symbolization data is read now, while every object is mapped: a crash is too late. */
	run->unwinder = pyx_unwinder__new(run->proc);
	if (!run->unwinder)
		pyx_warn(ctx, "native unwinding unavailable: %s (Python frames only)",
			 strerror(errno));
	/*
	 * The files are open now; reading their symbols and DWARF ahead only
	 * makes the first event print sooner. With many processes, attaching
	 * each soon after it starts matters more (~175 ms for python3.11's).
	 */
	if (!run->multi)
		pyx_unwinder__preload(run->unwinder);
	run->view = run->cache ? pyx_stackview__new(ctx, run->proc, run->py, &run->layout,
						    run->cache, run->unwinder)
			       : NULL;
	if (!run->view) {
		pyx_error(ctx, "out of memory");
		return PYX_EXIT_FAILURE;
	}
	run->realtime_offset_ns = pyx_realtime_offset_ns();
	refresh_names(run, true);
	cfg->tgid = (__u32)run->proc->pid;
	cfg->stack_bytes = CRASH_STACK_BYTES;
	run->recursion_error = recursion_error_type(run);
	cfg->recursion_error = run->recursion_error;
	cfg->layout = run->layout.walk;
	if (!pyx_codesnap_cfg(&cfg->snap, &run->layout.code))
		pyx_warn(ctx,
			 "code objects too large to copy (%u bytes): Python frames of a "
			 "process that is gone will be unnamed",
			 pyx_code_header_len(&run->layout.code));
	return 0;
}

static void crash_run_release(struct crash_run *run)
{
	pyx_thread_names__free(&run->names);
	pyx_session__destroy(run->session);
	pyx_module__free(run->mod);
	pyx_stackview__free(run->view);
	pyx_unwinder__free(run->unwinder);
	pyx_process__close(run->unwound);
	pyx_code_cache__free(run->cache);
	pyx_python__free(run->py);
	pyx_process__close(run->proc);
}

static int crash_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie)
{
	const struct crash_opts *opts = cookie;
	struct crash_run run = {.ctx = ctx};
	struct pyx_crash_cfg cfg = {};
	int err, ret = PYX_EXIT_FAILURE;

	err = pyx_cmd_open_python(ctx, common, &run.proc, &run.py, &run.layout);
	if (err)
		return err;
	if (crash_run_prepare(&run, opts, &cfg))
		goto out_release;
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = run.proc->pid,
		.resume_pid = common->resume_pid,
		.duration_ns = common->duration_ns,
		.interval_ns = 5 * CRASH_REFRESH_NS,
		.cookie = &run,
		.prepare = crash_prepare,
		.attach = crash_attach,
		.on_record = crash_on_record,
		.on_interval = crash_on_interval,
		.tick_ns = CRASH_NAMES_NS,
		.on_tick = crash_on_tick,
	};
	if (!pyx_session__trace(&crash_bpf_ops, &sopts))
		ret = PYX_EXIT_OK;
out_release:
	crash_run_release(&run);
	return ret;
}

/* Several processes (--all, --container ID, --children): one crash_run each. */
struct crash_fleet {
	struct pyx_ctx *ctx;
	const struct crash_opts *opts;
	unsigned int last_incident_id;
	/* Processes ended (their summaries printed when they did), by how. */
	unsigned int traced, exited, not_traced;
	uint64_t counts[PYX_ARRAY_SIZE(kind_names)];
	unsigned int incidents;
	uint64_t drops[PYX_DROP__MAX];
};

/* The events ring per process when several are traced: crashes are rare, processes many. */
#define CRASH_FLEET_RING_BYTES (1024 * 1024)

static int crash_fleet_prepare(void *cookie, void *skel_ptr)
{
	struct crash_bpf *skel = skel_ptr;
	int err = crash_prepare(cookie, skel_ptr);

	return err ? err : bpf_map__set_max_entries(skel->maps.events, CRASH_FLEET_RING_BYTES);
}

static int crash_fleet_found(void *cookie, struct pyx_discovery *disc, pid_t pid, void **state)
{
	struct crash_fleet *fleet = cookie;
	struct pyx_ctx *ctx = fleet->ctx;
	struct pyx_crash_cfg cfg = {};
	struct crash_run *run;
	int err;

	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->ctx = ctx;
	run->multi = true;
	run->last_incident_id = &fleet->last_incident_id;
	err = pyx_cmd_found_python(ctx, pid, &run->proc, &run->py, &run->layout);
	if (err) {
		fleet->not_traced += err != -ESRCH;
		goto out_release;
	}
	if (crash_run_prepare(run, fleet->opts, &cfg)) {
		err = -EINVAL;
		goto out_release;
	}
	struct pyx_session_opts sopts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = run,
		.prepare = crash_fleet_prepare,
		.attach = crash_attach,
		.on_record = crash_on_record,
	};
	err = pyx_discovery__start_follower(disc, &crash_bpf_ops, &sopts, &run->session);
	if (err)
		goto out_release;
	pyx_info(ctx, "tracing process %d (%s, Python %s)", pid, run->proc->comm, run->py->version);
	fleet->traced++;
	*state = run;
	return 0;

out_release:
	crash_run_release(run);
	free(run);
	return err;
}

/* A process's end: its last events, its summary, and its resources freed at once. */
static void crash_fleet_gone(void *cookie, struct pyx_discovery *disc, void *state,
			     enum pyx_gone_reason why, __u32 status)
{
	struct crash_fleet *fleet = cookie;
	struct crash_run *run = state;
	uint64_t drops[PYX_DROP__MAX];
	size_t i;

	pyx_discovery__end_follower(disc, run->session);
	if (why == PYX_GONE_EXIT) {
		fleet->exited++;
		/* The exit record may trail the discovery's: the status is the same. */
		if (!run->exited) {
			run->exited = true;
			run->exit_status = status;
		}
	} else if (why == PYX_GONE_EXEC) {
		fleet->traced--; /* the same process: counted again if its new image is Python */
	}
	pyx_session__drops(run->session, drops);
	/* JSON keeps every process; text only those with something to say. */
	if (fleet->ctx->json || run->incidents || (run->exited && (run->exit_status & 0x7f)))
		print_summary(run, pyx_discovery__gone_name(disc, why), drops);
	for (i = 1; i < PYX_ARRAY_SIZE(kind_names); i++)
		fleet->counts[i] += run->counts[i];
	for (i = 0; i < PYX_DROP__MAX; i++)
		fleet->drops[i] += drops[i];
	fleet->incidents += run->incidents;
	crash_run_release(run);
	free(run);
}

static void crash_fleet_mapped(void *cookie, struct pyx_discovery *disc, void *state)
{
	struct crash_run *run = state;

	(void)cookie;
	(void)disc;
	run->maps_changed = true;
	refresh_unwinder(run, false);
}

static void crash_fleet_refresh(void *cookie, struct pyx_discovery *disc, void *state)
{
	(void)cookie;
	(void)disc;
	refresh_unwinder(state, false);
	refresh_names(state, true);
}

static void crash_fleet_tick_one(void *cookie, struct pyx_discovery *disc, void *state)
{
	(void)cookie;
	(void)disc;
	refresh_names(state, false);
}

static int crash_fleet_tick(void *cookie, struct pyx_discovery *disc)
{
	(void)cookie;
	pyx_discovery__for_each(disc, crash_fleet_tick_one);
	return 0;
}

static int crash_fleet_interval(void *cookie, struct pyx_discovery *disc, bool final)
{
	struct crash_fleet *fleet = cookie;
	FILE *out = fleet->ctx->out;
	struct pyx_discovery_end end;
	size_t i;

	if (!final) {
		pyx_discovery__for_each(disc, crash_fleet_refresh);
		return 0;
	}
	pyx_discovery__end(disc, fleet->drops, &end);
	if (fleet->ctx->json) {
		struct pyx_json json;

		pyx_json_init(&json, out);
		pyx_json_object_begin(&json);
		pyx_json_kv_string(&json, "event", "scope_summary");
		pyx_json_kv_string(&json, "scope", end.scope);
		pyx_json_kv_u64(&json, "processes", fleet->traced);
		pyx_json_kv_u64(&json, "exited", fleet->exited);
		pyx_json_kv_u64(&json, "not_traced", fleet->not_traced);
		pyx_json_key(&json, "events");
		pyx_json_object_begin(&json);
		for (i = 1; i < PYX_ARRAY_SIZE(kind_names); i++)
			if (i != PYX_CRASH_EXIT)
				pyx_json_kv_u64(&json, kind_names[i], fleet->counts[i]);
		pyx_json_object_end(&json);
		pyx_json_kv_u64(&json, "incidents", fleet->incidents);
		pyx_json_kv_string(&json, "stopped_by", end.stopped_by);
		pyx_out_drops(&json, fleet->drops);
		pyx_json_object_end(&json);
		pyx_json_document_end(&json);
		return 0;
	}
	fprintf(out, "\n%s: %u Python process%s traced (%u exited), %u incident%s (%s)\n",
		end.scope, fleet->traced, fleet->traced == 1 ? "" : "es", fleet->exited,
		fleet->incidents, fleet->incidents == 1 ? "" : "s", end.stopped_by);
	if (fleet->not_traced)
		fprintf(out, "%u Python process%s not traceable (see the warnings)\n",
			fleet->not_traced, fleet->not_traced == 1 ? "" : "es");
	pyx_print_drops(out, fleet->drops, 0);
	return 0;
}

static int crash_scope(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		       const struct crash_opts *opts)
{
	struct crash_fleet fleet = {.ctx = ctx, .opts = opts};
	struct pyx_discovery_opts dopts = {
		.ctx = ctx,
		.duration_ns = common->duration_ns,
		.interval_ns = 5 * CRASH_REFRESH_NS,
		.cookie = &fleet,
		.found = crash_fleet_found,
		.mapped = crash_fleet_mapped,
		.gone = crash_fleet_gone,
		.on_interval = crash_fleet_interval,
		.tick_ns = CRASH_NAMES_NS,
		.on_tick = crash_fleet_tick,
	};

	if (pyx_cmd_scope(ctx, common, &dopts))
		return PYX_EXIT_FAILURE;
	return pyx_discovery__run(&dopts) ? PYX_EXIT_FAILURE : PYX_EXIT_OK;
}

enum {
	OPT_MODULE = 0x3fff,
};

static const struct option crash_options[] = {
	{"module", required_argument, NULL, OPT_MODULE},
	{},
};

static int crash_option(void *cookie, int val, const char *arg)
{
	struct crash_opts *opts = cookie;

	if (val != OPT_MODULE)
		return -EINVAL;
	opts->module = arg;
	return 0;
}

static int crash_run(struct pyx_ctx *ctx, int argc, char **argv)
{
	struct crash_opts opts = {};
	struct pyx_common_opts common;
	int err;

	err = pyx_cmd_parse(ctx, &pyx_cmd_crash,
			    PYX_OPT_TARGET | PYX_OPT_SCOPE | PYX_OPT_DURATION | PYX_OPT_OUTPUT,
			    argc, argv, crash_options, "", crash_option, &opts, &common);
	if (err)
		return err < 0 ? PYX_EXIT_OK : err;
	/* No target at all: every Python process of the host. */
	if (!common.pid && !common.launch_argv && !common.container)
		common.all = true;
	if (pyx_cmd_is_scope(&common)) {
		if (pyx_cmd_open_output(ctx))
			return PYX_EXIT_FAILURE;
		err = crash_scope(ctx, &common, &opts);
		return pyx_cmd_close_output(ctx) && err == PYX_EXIT_OK ? PYX_EXIT_FAILURE : err;
	}
	return pyx_cmd_run_target(ctx, &common, crash_target, &opts);
}

const struct pyx_cmd pyx_cmd_crash = {
	.name = "crash",
	.summary = "the last moments of a process: fatal signals, Py_FatalError, abort, assert",
	.usage = crash_usage,
	.run = crash_run,
};
