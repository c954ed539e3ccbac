// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf/elf.h"
#include "python/evalhooks.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define OPCODE_TABLE_SIZE 256

struct named_op {
	const char *name;
	int op;
	bool rare; /* runs once per code object, then is quickened to a form listed too */
};

/*
 * Opcode numbers of each minor version (Lib/opcode.py and the specialized
 * and instrumented forms, as dis._all_opmap / _opcode_metadata give them on
 * 3.11.2-7, 3.12.1, 3.13.0-5, 3.14.10, 3.15.2). They are fixed within a
 * minor version: the bytecode magic number changes with them.
 */
struct version_ops {
	unsigned int minor;
	struct named_op resume[4];
	struct named_op yield[2];
	struct named_op ret[1]; /* ≤3.10; 3.11+ pops frames in functions hooked instead */
	unsigned int unused;	/* opcode numbers sharing the unknown-opcode handler */
};

#define OP(name, n)            \
	{                      \
		name, n, false \
	}
#define RARE(name, n)         \
	{                     \
		name, n, true \
	}

static const struct version_ops version_ops[] = {
	/* ≤3.10: a frame starts or resumes in _PyEval_EvalFrameDefault's entry. */
	{.minor = 8,
	 .yield = {OP("YIELD_VALUE", 86)},
	 .ret = {OP("RETURN_VALUE", 83)},
	 .unused = 136},
	{.minor = 9,
	 .yield = {OP("YIELD_VALUE", 86)},
	 .ret = {OP("RETURN_VALUE", 83)},
	 .unused = 137},
	{.minor = 10,
	 .yield = {OP("YIELD_VALUE", 86)},
	 .ret = {OP("RETURN_VALUE", 83)},
	 .unused = 129},
	{.minor = 11,
	 .unused = 74,
	 .resume = {RARE("RESUME", 151), OP("RESUME_QUICK", 150)},
	 .yield = {OP("YIELD_VALUE", 86)}},
	{.minor = 12,
	 .unused = 63,
	 .resume = {OP("RESUME", 151), OP("INSTRUMENTED_RESUME", 240)},
	 .yield = {OP("YIELD_VALUE", 150), OP("INSTRUMENTED_YIELD_VALUE", 243)}},
	{.minor = 13,
	 .unused = 44,
	 .resume = {RARE("RESUME", 149), OP("RESUME_CHECK", 207), OP("INSTRUMENTED_RESUME", 236)},
	 .yield = {OP("YIELD_VALUE", 118), OP("INSTRUMENTED_YIELD_VALUE", 241)}},
	{.minor = 14,
	 .unused = 29,
	 .resume = {RARE("RESUME", 128), OP("RESUME_CHECK", 196), OP("INSTRUMENTED_RESUME", 245)},
	 .yield = {OP("YIELD_VALUE", 120), OP("INSTRUMENTED_YIELD_VALUE", 247)}},
	{.minor = 15,
	 .unused = 22,
	 .resume = {RARE("RESUME", 128), OP("RESUME_CHECK", 200), OP("RESUME_CHECK_JIT", 201),
		    OP("INSTRUMENTED_RESUME", 244)},
	 .yield = {OP("YIELD_VALUE", 119), OP("INSTRUMENTED_YIELD_VALUE", 246)}},
};

/*
 * Functions that clear and pop a finished frame, per minor version. The
 * outer one is hooked; the inner ones only where the eval loop calls them
 * directly (the outer one was inlined there). 3.11's _PyFrame_Clear is
 * under every pop: _PyEvalFrameClearAndPop's, and a finished generator's.
 */
struct pop_function {
	const char *name;
	__u32 arg;
	bool outer;
	unsigned int min_minor, max_minor;
};

static const struct pop_function pop_functions[] = {
	{"_PyFrame_Clear", PYX_CALLS_POP_ARG1, true, 11, 11},
	{"_PyEvalFrameClearAndPop", PYX_CALLS_POP_ARG2, true, 12, 12},
	{"_PyEval_FrameClearAndPop", PYX_CALLS_POP_ARG2, true, 13, 99},
	{"clear_thread_frame", PYX_CALLS_POP_ARG2, false, 12, 99},
	{"clear_gen_frame", PYX_CALLS_POP_ARG2, false, 12, 99},
};

/*
 * PYTHON_JIT=1 (3.13+ builds with the JIT: Debian's 3.14 has it) runs hot
 * loops as JIT traces, whose calls pass none of the hooks: measured on
 * Debian 3.14, 28 672 of 200 000 calls of a hot loop seen.
 */
bool pyx_eval_hooks__jit_requested(const struct pyx_process *proc, const struct pyx_python *py,
				   char *value, size_t size)
{
	return py->minor >= 13 && !pyx_process__getenv(proc, "PYTHON_JIT", value, size) &&
	       value[0] && strcmp(value, "0");
}

const char *pyx_eval_hook_kind_name(enum pyx_eval_hook_kind kind)
{
	switch (kind) {
	case PYX_HOOK_RESUME:
		return "resume";
	case PYX_HOOK_YIELD:
		return "yield";
	case PYX_HOOK_POP:
		return "pop";
	case PYX_HOOK_EVAL_RETURN:
		return "eval-return";
	case PYX_HOOK_EVAL_ENTER:
		return "eval-enter";
	case PYX_HOOK_FRAME_ENTER:
		return "frame-enter";
	case PYX_HOOK_RETURN:
		return "return";
	case PYX_HOOK_UNWIND:
		return "unwind";
	case PYX_HOOK_RAISE:
		return "raise";
	case PYX_HOOK__MAX:
		break;
	}
	return "?";
}

/* A code range of the eval function: its body and its .cold part. */
struct code_range {
	uint64_t start, size;
};

struct symbol_scan {
	uint64_t table, table_size;
	uint64_t traceback_here; /* PyTraceBack_Here */
	struct code_range eval_cold;
	struct {
		uint64_t vaddr;
		bool found;
	} pops[ARRAY_SIZE(pop_functions)];
};

/*
 * "name", or "name" plus a suffix that only renames it (".lto_priv.0"):
 * never ".isra"/".constprop"/".part" clones whose arguments were changed.
 */
static bool same_function(const char *sym, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(sym, name, n))
		return false;
	if (!sym[n])
		return true;
	return !strncmp(sym + n, ".lto_priv.", 10);
}

static int scan_symbol(void *ctx, const struct pyx_elf_sym *sym)
{
	struct symbol_scan *scan = ctx;
	size_t i;

	/* static void *opcode_targets[256] (a function-local static: "opcode_targets.0"). */
	if (!strncmp(sym->name, "opcode_targets", 14) && sym->size == OPCODE_TABLE_SIZE * 8 &&
	    !scan->table) {
		scan->table = sym->value;
		scan->table_size = sym->size;
	}
	if (!strcmp(sym->name, "PyTraceBack_Here") && sym->type == 2 /* STT_FUNC */)
		scan->traceback_here = sym->value;
	if (!strcmp(sym->name, "_PyEval_EvalFrameDefault.cold")) {
		scan->eval_cold.start = sym->value;
		scan->eval_cold.size = sym->size;
	}
	for (i = 0; i < ARRAY_SIZE(pop_functions); i++)
		if (!scan->pops[i].found && sym->type == 2 /* STT_FUNC */ &&
		    same_function(sym->name, pop_functions[i].name)) {
			scan->pops[i].vaddr = sym->value;
			scan->pops[i].found = true;
		}
	return 0;
}

/* What the object's own symbols lack, from its debug file's. True when the table came from there. */
static bool scan_debug_file(struct symbol_scan *scan, struct pyx_elf *debug_elf)
{
	struct symbol_scan more = {};
	bool table = false;
	size_t i;

	if (!debug_elf)
		return false;
	pyx_elf__for_each_symbol(debug_elf, scan_symbol, &more);
	if (!scan->table && more.table) {
		scan->table = more.table;
		scan->table_size = more.table_size;
		table = true;
	}
	if (!scan->traceback_here)
		scan->traceback_here = more.traceback_here;
	if (!scan->eval_cold.start)
		scan->eval_cold = more.eval_cold;
	for (i = 0; i < ARRAY_SIZE(pop_functions); i++)
		if (!scan->pops[i].found && more.pops[i].found)
			scan->pops[i] = more.pops[i];
	return table;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void opset_add(uint64_t *set, int op)
{
	set[(op >> 6) & 3] |= 1ull << (op & 63);
}

/*
 * Without a symbol: the table is 256 pointers into the interpreter's own
 * code, in a data section, aligned to 32 bytes, and unlike any other such
 * array it repeats one target (the unknown-opcode handler) once per unused
 * opcode number: exactly ops->unused times (measured on the symbol-bearing
 * builds of each minor version, release and debug alike).
 */
#define SHAPE_MIN_DISTINCT 100
#define SHAPE_ALIGN	   32

static bool table_shape(const uint64_t *v, uint64_t lo, uint64_t hi, unsigned int unused)
{
	uint64_t sorted[OPCODE_TABLE_SIZE];
	size_t i, distinct = 1, run = 1, best = 1;

	for (i = 0; i < OPCODE_TABLE_SIZE; i++)
		if (v[i] < lo || v[i] >= hi)
			return false;
	memcpy(sorted, v, sizeof(sorted));
	qsort(sorted, OPCODE_TABLE_SIZE, sizeof(sorted[0]), compare_u64);
	for (i = 1; i < OPCODE_TABLE_SIZE; i++) {
		if (sorted[i] != sorted[i - 1]) {
			distinct++;
			run = 1;
		} else if (++run > best) {
			best = run;
		}
	}
	return distinct >= SHAPE_MIN_DISTINCT && best == unused;
}

/* Scan the live data sections of @obj for the table; 0 with *vaddr when exactly one fits. */
static int find_table_by_shape(struct pyx_process *proc, struct pyx_object *obj,
			       struct pyx_elf *elf, unsigned int unused, uint64_t *vaddr)
{
	uint64_t candidate = 0;
	static const char *const sections[] = {".data.rel.ro", ".data", ".rodata"};
	size_t found = 0, i, k;

	for (i = 0; i < ARRAY_SIZE(sections); i++) {
		uint64_t addr, size, *words;
		size_t n, run = 0;

		if (pyx_elf__section(elf, sections[i], &addr, &size, NULL) || !size ||
		    size > (64u << 20))
			continue;
		words = malloc(size);
		if (!words)
			return -ENOMEM;
		addr = (addr + 7) & ~7ull;
		n = (size - 8) / 8;
		if (pyx_process__read(proc, pyx_object__runtime(obj, addr), words, n * 8)) {
			free(words);
			continue;
		}
		for (k = 0; k < n; k++) {
			uint64_t at;

			run = words[k] >= obj->start && words[k] < obj->end ? run + 1 : 0;
			if (run < OPCODE_TABLE_SIZE)
				continue;
			at = addr + (k + 1 - OPCODE_TABLE_SIZE) * 8;
			if (at % SHAPE_ALIGN || !table_shape(&words[k + 1 - OPCODE_TABLE_SIZE],
							     obj->start, obj->end, unused))
				continue;
			candidate = at;
			found++;
		}
		free(words);
	}
	if (found != 1)
		return -ENOENT;
	*vaddr = candidate;
	return 0;
}

/* Code of the eval function's ranges, to check branches into a handler's head. */
struct eval_code {
	struct code_range ranges[2];
	uint8_t *bytes[2];
};

static void eval_code_load(struct eval_code *ec, struct pyx_elf *elf)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ec->ranges); i++) {
		struct code_range *r = &ec->ranges[i];

		if (!r->size || r->size > (64u << 20))
			continue;
		ec->bytes[i] = malloc(r->size);
		if (ec->bytes[i] && pyx_elf__read_vaddr(elf, r->start, ec->bytes[i], r->size)) {
			free(ec->bytes[i]);
			ec->bytes[i] = NULL;
		}
	}
}

static void eval_code_free(struct eval_code *ec)
{
	free(ec->bytes[0]);
	free(ec->bytes[1]);
}

/*
 * Whether code of the eval function jumps into (lo, hi]: then a probe at hi
 * would count runs that did not start at lo. Unknown code counts as yes.
 */
static bool jumped_into(const struct eval_code *ec, uint64_t lo, uint64_t hi)
{
	size_t i;
	bool inside = false;

	for (i = 0; i < ARRAY_SIZE(ec->ranges); i++) {
		const struct code_range *r = &ec->ranges[i];

		if (!ec->bytes[i])
			continue;
		if (lo >= r->start && lo < r->start + r->size)
			inside = true;
		if (pyx_x86_branches_into(ec->bytes[i], r->size, r->start, lo, hi))
			return true;
	}
	return !inside;
}

/* Whether the eval function calls or jumps to @target directly. */
static bool eval_calls(const struct eval_code *ec, uint64_t target)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ec->ranges); i++)
		if (ec->bytes[i] && pyx_x86_branches_into(ec->bytes[i], ec->ranges[i].size,
							  ec->ranges[i].start, target - 1, target))
			return true;
	return false;
}

static int add_hook(struct pyx_eval_hooks *out, enum pyx_eval_hook_kind kind, const char *what,
		    uint64_t vaddr, __u32 pop_arg)
{
	struct pyx_eval_hook *h;

	if (out->nr_hooks >= PYX_EVAL_HOOKS_MAX)
		return -E2BIG;
	h = &out->hooks[out->nr_hooks++];
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	snprintf(h->what, sizeof(h->what), "%s", what);
	h->vaddr = vaddr;
	h->pop_arg = pop_arg;
	return 0;
}

/*
 * Place @h's probe: on a handler (@ec given), where every run of it passes
 * once; on a function's entry, past its endbr64 to an instruction the
 * kernel emulates. Nothing else may jump in between. @anywhere: a hook
 * that reads no argument and may run twice (it marks something): at the
 * first such instruction on the function's straight path, where every
 * call passes.
 */
static void plan_hook(struct pyx_eval_hook *h, struct pyx_elf *elf, const struct eval_code *ec,
		      bool anywhere)
{
	uint8_t code[PYX_X86_STRAIGHT_MAX * 15];
	struct pyx_x86_entry_plan plan;
	size_t len = ec || anywhere ? sizeof(code) : 256;
	int err;

	h->delta = 0;
	h->cls = PYX_PROBE_SINGLESTEP;
	while (len > 16 && pyx_elf__read_vaddr(elf, h->vaddr, code, len))
		len /= 2;
	if (len <= 16)
		return;
	err = ec || anywhere ? pyx_x86_plan_straight(code, len, h->vaddr, &plan)
			     : pyx_x86_plan_entry(code, len, h->vaddr, &plan);
	if (err)
		return;
	h->cls = plan.entry_cls;
	if (!plan.delta)
		return;
	if (ec ? jumped_into(ec, h->vaddr, h->vaddr + plan.delta)
	       : !anywhere && pyx_x86_branches_into(code, len, h->vaddr, h->vaddr,
						    h->vaddr + plan.delta))
		return;
	h->delta = plan.delta;
	h->cls = plan.cls;
}

/*
 * No symbol for the frame-pop function (a stripped 3.11 or 3.12): it is the
 * first function RETURN_VALUE's handler calls on its fall-through path
 * (_PyFrame_Clear(frame), or _PyEvalFrameClearAndPop(tstate, frame) where
 * that is not inlined): the frame is the second argument if rsi was set.
 */
#define RETURN_VALUE_311_312 83

static int pop_from_return(struct pyx_eval_hooks *out, struct pyx_python *py, struct pyx_elf *elf,
			   const uint64_t *table)
{
	uint64_t at = table[RETURN_VALUE_311_312] - (uint64_t)py->interp->bias, target = 0;
	bool sets_arg2 = false;
	uint8_t code[1024];
	int hops, ret = -ENOENT;

	if (py->minor != 11 && py->minor != 12)
		return -ENOENT;
	for (hops = 0; hops < 4; hops++) {
		size_t len = sizeof(code);

		while (len > 16 && pyx_elf__read_vaddr(elf, at, code, len))
			len /= 2;
		if (len <= 16)
			return -ENOENT;
		ret = pyx_x86_first_call(code, len, at, &target, &sets_arg2);
		if (ret != 1)
			break;
		at = target; /* an unconditional jmp: follow it */
	}
	if (ret)
		return -ENOENT;
	/* f(frame) or f(tstate, frame): whether rsi was set for the call. */
	return add_hook(out, PYX_HOOK_POP, "frame-pop function (from RETURN_VALUE)", target,
			sets_arg2 ? PYX_CALLS_POP_ARG2 : PYX_CALLS_POP_ARG1);
}

/*
 * ≤3.10: every frame runs in its own eval-loop activation, so the eval
 * function's entry sees each start and resumption (the frame is an
 * argument); RETURN_VALUE sees returns; PyTraceBack_Here(frame) sees an
 * exception reach a frame, the frames above it having ended by it.
 */
static int add_legacy_hooks(struct pyx_eval_hooks *out, struct pyx_python *py, struct pyx_elf *elf,
			    struct symbol_scan *scan, char *why, size_t why_size)
{
	const struct pyx_python_symbol_info *eval = &py->symbols[PYX_SYM_EVAL_FRAME];
	int err;

	if (!scan->traceback_here) {
		snprintf(why, why_size, "no symbol for PyTraceBack_Here in %s", py->interp->path);
		return -ENOENT;
	}
	/* 3.8: (PyFrameObject *f, int throwflag); 3.9, 3.10: (tstate, f, throwflag). */
	err = add_hook(out, PYX_HOOK_FRAME_ENTER, "_PyEval_EvalFrameDefault", eval->vaddr,
		       py->minor == 8 ? PYX_CALLS_POP_ARG1 : PYX_CALLS_POP_ARG2);
	if (err)
		return err;
	plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
	err = add_hook(out, PYX_HOOK_UNWIND, "PyTraceBack_Here", scan->traceback_here,
		       PYX_CALLS_POP_ARG1);
	if (err)
		return err;
	plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
	out->legacy = true;
	/* PyObject_HEAD, then co_argcount, co_posonlyargcount, co_kwonlyargcount, co_nlocals, co_stacksize. */
	out->co_flags = 36;
	/*
	 * PyFrameObject (DWARF of pyenv's 3.8-3.10, the same in Debian's debug
	 * builds): f_stacktop, non-NULL while suspended (3.8, 3.9); f_state (3.10).
	 */
	out->gen_state_model = py->minor <= 9 ? PYX_CALLS_GEN_STACKTOP : PYX_CALLS_GEN_F_STATE;
	out->gen_state_off = py->minor <= 9 ? 72 : 108;
	return 0;
}

int pyx_eval_hooks__find(struct pyx_process *proc, struct pyx_python *py,
			 struct pyx_eval_hooks *out, char *why, size_t why_size)
{
	const struct pyx_python_symbol_info *eval = &py->symbols[PYX_SYM_EVAL_FRAME];
	const struct version_ops *ops = NULL;
	struct symbol_scan scan = {};
	struct eval_code ec = {};
	struct pyx_elf *elf, *debug_elf = NULL;
	uint64_t table[OPCODE_TABLE_SIZE], plt;
	bool outer_found = false;
	size_t i, j;
	int err;

	memset(out, 0, sizeof(*out));
	out->co_flags = PYX_OFF_NONE;
	for (i = 0; i < ARRAY_SIZE(version_ops); i++)
		if (version_ops[i].minor == py->minor)
			ops = &version_ops[i];
	if (py->major != 3 || !ops) {
		snprintf(why, why_size, "no exact call hooks known for CPython %s", py->version);
		return -EPROTONOSUPPORT;
	}
	elf = pyx_process__object_elf(proc, py->interp);
	if (!elf) {
		snprintf(why, why_size, "cannot read the interpreter's ELF file %s",
			 py->interp->path);
		return -ENOENT;
	}
	out->object = py->interp;
	pyx_elf__for_each_symbol(elf, scan_symbol, &scan);
	out->table_symbol_origin = "symtab";
	if (py->dwarf.fd >= 0) {
		debug_elf = pyx_elf__open_fd(py->dwarf.fd);
		if (scan_debug_file(&scan, debug_elf))
			out->table_symbol_origin = "debug file";
	}
	if (!scan.table && !find_table_by_shape(proc, py->interp, elf, ops->unused, &scan.table))
		out->table_symbol_origin = "shape";
	if (!scan.table) {
		snprintf(
			why, why_size,
			"cannot find the eval loop's opcode table (opcode_targets) in %s, which has no "
			"symbol for it%s: install its debug symbols (Debian: python%u.%u-dbg)",
			py->interp->path, debug_elf ? " in its debug file either" : "", py->major,
			py->minor);
		err = -ENOENT;
		goto out_close;
	}
	if (!eval->address || !eval->size) {
		snprintf(why, why_size, "no symbol for _PyEval_EvalFrameDefault in %s",
			 py->interp->path);
		err = -ENOENT;
		goto out_close;
	}
	out->table = scan.table;
	/* The table holds relocated addresses: read it from the live process. */
	err = pyx_process__read(proc, pyx_object__runtime(py->interp, scan.table), table,
				sizeof(table));
	if (err) {
		snprintf(why, why_size, "cannot read the opcode table of process %d: %s", proc->pid,
			 strerror(-err));
		goto out_close;
	}
	ec.ranges[0] = (struct code_range){eval->vaddr, eval->size};
	ec.ranges[1] = scan.eval_cold;
	eval_code_load(&ec, elf);

	for (i = 0; i < 3; i++) {
		static const enum pyx_eval_hook_kind kinds[] = {PYX_HOOK_RESUME, PYX_HOOK_YIELD,
								PYX_HOOK_RETURN};
		const struct named_op *sets[] = {ops->resume, ops->yield, ops->ret};
		const size_t sizes[] = {ARRAY_SIZE(ops->resume), ARRAY_SIZE(ops->yield),
					ARRAY_SIZE(ops->ret)};
		const struct named_op *set = sets[i];
		enum pyx_eval_hook_kind kind = kinds[i];

		for (j = 0; j < sizes[i] && set[j].name; j++) {
			uint64_t target = table[set[j].op], vaddr;
			struct pyx_object *at = pyx_process__object_at(proc, target);
			struct pyx_eval_hook *h;
			char what[64];
			size_t k, sharing = 0;

			if (kind == PYX_HOOK_RESUME)
				opset_add(out->resume_ops, set[j].op);
			else if (kind == PYX_HOOK_YIELD)
				opset_add(out->yield_ops, set[j].op);
			if (at != py->interp) {
				snprintf(
					why, why_size,
					"the opcode table of %s does not point into its code (%s: 0x%llx)",
					py->interp->path, set[j].name, (unsigned long long)target);
				err = -ENOENT;
				goto out_free;
			}
			/* A handler shared with other opcodes would count them too. */
			for (k = 0; k < OPCODE_TABLE_SIZE; k++)
				sharing += table[k] == target;
			if (sharing > 1)
				continue;
			vaddr = target - (uint64_t)py->interp->bias;
			snprintf(what, sizeof(what), "%s (%d)", set[j].name, set[j].op);
			err = add_hook(out, kind, what, vaddr, 0);
			if (err)
				goto out_free;
			h = &out->hooks[out->nr_hooks - 1];
			h->rare = set[j].rare;
			plan_hook(h, elf, &ec, false);
			/*
			 * A suspension is also noticed at the thread's next hook
			 * (bpf/calls.bpf.c settle()): not worth ~12 µs a yield.
			 */
			if (kind == PYX_HOOK_YIELD && h->cls == PYX_PROBE_SINGLESTEP) {
				out->nr_hooks--;
				out->yields_unhooked++;
			}
		}
	}

	if (py->minor <= 10) {
		err = add_legacy_hooks(out, py, elf, &scan, why, why_size);
		goto out_free;
	}

	for (i = 0; i < ARRAY_SIZE(pop_functions); i++)
		if (py->minor < pop_functions[i].min_minor ||
		    py->minor > pop_functions[i].max_minor)
			scan.pops[i].found = false;
	for (i = 0; i < ARRAY_SIZE(pop_functions); i++)
		if (scan.pops[i].found && pop_functions[i].outer) {
			err = add_hook(out, PYX_HOOK_POP, pop_functions[i].name, scan.pops[i].vaddr,
				       pop_functions[i].arg);
			if (err)
				goto out_free;
			plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
			outer_found = true;
			break;
		}
	for (i = 0; i < ARRAY_SIZE(pop_functions); i++) {
		if (!scan.pops[i].found || pop_functions[i].outer)
			continue;
		if (outer_found && !eval_calls(&ec, scan.pops[i].vaddr))
			continue;
		err = add_hook(out, PYX_HOOK_POP, pop_functions[i].name, scan.pops[i].vaddr,
			       pop_functions[i].arg);
		if (err)
			goto out_free;
		plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
	}
	/*
	 * 3.11 runs a frame called from C as the eval loop's entry frame and
	 * leaves its pop to the C caller, which may inline it whole.
	 */
	if (py->minor == 11) {
		err = add_hook(out, PYX_HOOK_EVAL_RETURN, "_PyEval_EvalFrameDefault", eval->vaddr,
			       0);
		if (err)
			goto out_free;
		plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
		out->hooks[out->nr_hooks - 1].delta = 0; /* a return probe sits on the entry */
		/*
		 * The same place, so the same trap: the frame it was entered for,
		 * whose RESUME may run before the frame is stored as current.
		 */
		err = add_hook(out, PYX_HOOK_EVAL_ENTER, "_PyEval_EvalFrameDefault", eval->vaddr,
			       0);
		if (err)
			goto out_free;
		out->hooks[out->nr_hooks - 1].cls = out->hooks[out->nr_hooks - 2].cls;
	}
	/*
	 * Every exception that leaves a frame first reached it at the eval
	 * loop's error label, which calls PyTraceBack_Here for the frame (a
	 * re-raise goes past it, but only after its first arrival did): a pop
	 * need not read the thread's exception for a frame it never reached,
	 * ~60 ns a call. It is called directly or through the PLT (a shared
	 * libpython); where LTO inlined it into the eval loop, every pop reads
	 * the exception.
	 */
	if (scan.traceback_here &&
	    (eval_calls(&ec, scan.traceback_here) ||
	     (!pyx_elf__plt_stub(elf, "PyTraceBack_Here", &plt) && eval_calls(&ec, plt)))) {
		err = add_hook(out, PYX_HOOK_RAISE, "PyTraceBack_Here", scan.traceback_here, 0);
		if (err)
			goto out_free;
		plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, true);
		out->raise_hooked = true;
	}
	for (i = 0, j = 0; i < out->nr_hooks; i++)
		j += out->hooks[i].kind == PYX_HOOK_POP;
	if (!j && !pop_from_return(out, py, elf, table)) {
		plan_hook(&out->hooks[out->nr_hooks - 1], elf, NULL, false);
		j = 1;
	}
	if (!j) {
		snprintf(
			why, why_size,
			"no frame-pop function (_PyEval_FrameClearAndPop and kin) found in %s or its "
			"debug file",
			py->interp->path);
		err = -ENOENT;
		goto out_free;
	}
	for (i = 0; i < out->nr_hooks; i++)
		out->single_stepped +=
			out->hooks[i].cls == PYX_PROBE_SINGLESTEP && !out->hooks[i].rare;
	err = 0;
out_free:
	eval_code_free(&ec);
out_close:
	pyx_elf__close(debug_elf);
	return err;
}
