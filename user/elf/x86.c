// SPDX-License-Identifier: GPL-2.0-only
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "elf/x86.h"

/* Both patterns sit in a function's first dozen instructions; never look further. */
#define MAX_INSNS 16

#define X86_MAX_INSN_LEN 15

#define PYX_X86_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * capstone is loaded only while decoding: its tables are megabytes of
 * relocated data that would otherwise stay resident for the whole run of
 * every command, for a few dozen instructions decoded at start-up.
 */
struct decoder {
	void *lib;
	cs_err (*open)(cs_arch arch, cs_mode mode, csh *handle);
	cs_err (*option)(csh handle, cs_opt_type type, size_t value);
	size_t (*disasm)(csh handle, const uint8_t *code, size_t size, uint64_t address,
			 size_t count, cs_insn **insn);
	void (*free)(cs_insn *insn, size_t count);
	cs_err (*close)(csh *handle);
	bool (*insn_group)(csh handle, const cs_insn *insn, unsigned int group_id);
	cs_insn *(*malloc_insn)(csh handle);
	bool (*disasm_iter)(csh handle, const uint8_t **code, size_t *size, uint64_t *address,
			    cs_insn *insn);
	csh handle;
};

static int decoder_open(struct decoder *d)
{
	char soname[32];

	/* The ABI we compiled against: libcapstone.so.<API major>. */
	snprintf(soname, sizeof(soname), "libcapstone.so.%d", CS_API_MAJOR);
	d->lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!d->lib)
		return -ENOENT;
	*(void **)&d->open = dlsym(d->lib, "cs_open");
	*(void **)&d->option = dlsym(d->lib, "cs_option");
	*(void **)&d->disasm = dlsym(d->lib, "cs_disasm");
	*(void **)&d->free = dlsym(d->lib, "cs_free");
	*(void **)&d->close = dlsym(d->lib, "cs_close");
	*(void **)&d->insn_group = dlsym(d->lib, "cs_insn_group");
	*(void **)&d->malloc_insn = dlsym(d->lib, "cs_malloc");
	*(void **)&d->disasm_iter = dlsym(d->lib, "cs_disasm_iter");
	if (!d->open || !d->option || !d->disasm || !d->free || !d->close || !d->insn_group ||
	    !d->malloc_insn || !d->disasm_iter ||
	    d->open(CS_ARCH_X86, CS_MODE_64, &d->handle) != CS_ERR_OK) {
		dlclose(d->lib);
		return -ENOENT;
	}
	d->option(d->handle, CS_OPT_DETAIL, CS_OPT_ON);
	return 0;
}

static void decoder_close(struct decoder *d, cs_insn *insn, size_t count)
{
	if (count)
		d->free(insn, count);
	d->close(&d->handle);
	dlclose(d->lib);
}

static size_t decode_upto(struct decoder *d, const uint8_t *code, size_t len, uint64_t addr,
			  size_t max, cs_insn **insn)
{
	if (decoder_open(d))
		return 0;
	return d->disasm(d->handle, code, len, addr, max, insn);
}

static size_t decode(struct decoder *d, const uint8_t *code, size_t len, uint64_t addr,
		     cs_insn **insn)
{
	return decode_upto(d, code, len, addr, MAX_INSNS, insn);
}

static bool is_fs_absolute(const cs_x86_op *op)
{
	return op->type == X86_OP_MEM && op->mem.segment == X86_REG_FS &&
	       op->mem.base == X86_REG_INVALID && op->mem.index == X86_REG_INVALID;
}

/* Any transfer of control: jumps, calls, returns, interrupts. */
static bool is_branch(struct decoder *d, const cs_insn *insn)
{
	return d->insn_group(d->handle, insn, CS_GRP_JUMP) ||
	       d->insn_group(d->handle, insn, CS_GRP_CALL) ||
	       d->insn_group(d->handle, insn, CS_GRP_RET) ||
	       d->insn_group(d->handle, insn, CS_GRP_INT) ||
	       d->insn_group(d->handle, insn, CS_GRP_IRET);
}

int pyx_x86_fs_load(const uint8_t *code, size_t len, uint64_t addr, int64_t *disp)
{
	struct decoder d = {};
	cs_insn *insn = NULL;
	int err = -ENOENT;
	size_t count, i;

	count = decode(&d, code, len, addr, &insn);
	if (!d.lib)
		return -ENOENT;
	for (i = 0; i < count; i++) {
		const cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id == X86_INS_MOV && x->op_count == 2 &&
		    x->operands[0].type == X86_OP_REG && x->operands[0].size == 8 &&
		    is_fs_absolute(&x->operands[1])) {
			*disp = x->operands[1].mem.disp;
			err = 0;
			break;
		}
		/* A TLS accessor loads before it branches or returns. */
		if (is_branch(&d, &insn[i]))
			break;
	}
	decoder_close(&d, insn, count);
	return err;
}

int pyx_x86_tsd_access(const uint8_t *code, size_t len, uint64_t addr, struct pyx_x86_tsd *out)
{
	bool have_add = false, have_shift = false, have_self = false;
	struct decoder d = {};
	cs_insn *insn = NULL;
	int err = -ENOENT;
	size_t count, i;

	count = decode(&d, code, len, addr, &insn);
	if (!d.lib)
		return -ENOENT;
	for (i = 0; i < count; i++) {
		const cs_x86 *x = &insn[i].detail->x86;
		const cs_x86_op *a = &x->operands[0], *b = &x->operands[1];

		if (x->op_count != 2)
			continue;
		if (!have_add && insn[i].id == X86_INS_ADD && a->type == X86_OP_REG &&
		    b->type == X86_OP_IMM) {
			out->add = b->imm;
			have_add = true;
		} else if (!have_add && insn[i].id == X86_INS_LEA && b->type == X86_OP_MEM &&
			   b->mem.base != X86_REG_INVALID && b->mem.index == X86_REG_INVALID &&
			   b->mem.base != X86_REG_RIP) {
			out->add = b->mem.disp;
			have_add = true;
		} else if (have_add && !have_shift && insn[i].id == X86_INS_SHL &&
			   b->type == X86_OP_IMM) {
			out->shift = (unsigned int)b->imm;
			have_shift = true;
		} else if (have_shift && !have_self && is_fs_absolute(b) && b->mem.disp == 0x10) {
			/* struct pthread's self pointer: the thread pointer itself. */
			have_self = true;
		} else if (have_self && insn[i].id == X86_INS_MOV && b->type == X86_OP_MEM &&
			   b->mem.segment == X86_REG_INVALID && b->mem.base != X86_REG_INVALID &&
			   b->mem.index == X86_REG_INVALID) {
			out->load = b->mem.disp;
			err = 0;
			break;
		}
	}
	decoder_close(&d, insn, count);
	/* Sanity: a 16-byte stride and a slot inside struct pthread's first pages. */
	if (!err &&
	    (out->shift > 6 || out->add < 0 || out->add > 4096 || out->load < 0 || out->load > 64))
		err = -ENOENT;
	return err;
}

const char *pyx_probe_class_name(enum pyx_probe_class cls)
{
	switch (cls) {
	case PYX_PROBE_OPTIMIZED:
		return "optimized";
	case PYX_PROBE_EMULATED:
		return "emulated";
	case PYX_PROBE_SINGLESTEP:
		return "single-step";
	case PYX_PROBE_REFUSED:
		return "refused";
	}
	return NULL;
}

/* How the x86 uprobe code treats one instruction (arch/x86/kernel/uprobes.c). */
static enum pyx_probe_class classify_insn(struct decoder *d, const cs_insn *insn)
{
	static const uint8_t nop5[] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
	const cs_x86 *x = &insn->detail->x86;
	int i;

	for (i = 0; i < 4; i++) {
		uint8_t p = x->prefix[i];

		if (p == X86_PREFIX_LOCK || p == X86_PREFIX_CS || p == X86_PREFIX_SS ||
		    p == X86_PREFIX_DS || p == X86_PREFIX_ES)
			return PYX_PROBE_REFUSED;
	}
	if (insn->size == sizeof(nop5) && !memcmp(insn->bytes, nop5, sizeof(nop5)))
		return PYX_PROBE_OPTIMIZED;
	if (insn->id == X86_INS_NOP ||
	    (insn->id == X86_INS_PUSH && x->op_count == 1 && x->operands[0].type == X86_OP_REG))
		return PYX_PROBE_EMULATED;
	if (is_branch(d, insn) && x->op_count == 1 && x->operands[0].type == X86_OP_IMM)
		return PYX_PROBE_EMULATED; /* relative jmp, jcc, call */
	return PYX_PROBE_SINGLESTEP;
}

static bool writes_sp(struct decoder *d, const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	uint8_t i;

	for (i = 0; i < insn->detail->regs_write_count; i++)
		if (insn->detail->regs_write[i] == X86_REG_RSP)
			return true;
	for (i = 0; i < x->op_count; i++)
		if (x->operands[i].type == X86_OP_REG && x->operands[i].reg == X86_REG_RSP &&
		    (x->operands[i].access & CS_AC_WRITE))
			return true;
	return insn->id == X86_INS_PUSH || insn->id == X86_INS_POP || insn->id == X86_INS_LEAVE ||
	       insn->id == X86_INS_ENTER;
}

/* Whether @insn writes one of @regs. */
static bool writes_reg(const cs_insn *insn, const x86_reg *regs, size_t n)
{
	const cs_x86 *x = &insn->detail->x86;
	size_t i, j;

	for (i = 0; i < insn->detail->regs_write_count; i++)
		for (j = 0; j < n; j++)
			if (insn->detail->regs_write[i] == regs[j])
				return true;
	for (i = 0; i < x->op_count; i++)
		for (j = 0; j < n; j++)
			if (x->operands[i].type == X86_OP_REG && x->operands[i].reg == regs[j] &&
			    (x->operands[i].access & CS_AC_WRITE))
				return true;
	return false;
}

static const x86_reg arg_regs[] = {
	X86_REG_RDI, X86_REG_EDI, X86_REG_DI,  X86_REG_DIL, X86_REG_RSI, X86_REG_ESI,
	X86_REG_SI,  X86_REG_SIL, X86_REG_RDX, X86_REG_EDX, X86_REG_DX,	 X86_REG_DL,
	X86_REG_RCX, X86_REG_ECX, X86_REG_CX,  X86_REG_CL,
};

static const x86_reg rsi_regs[] = {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL};

/* Whether @insn writes an argument register (rdi, rsi, rdx, rcx or a part of one). */
static bool writes_arg_reg(const cs_insn *insn)
{
	return writes_reg(insn, arg_regs, PYX_X86_ARRAY_SIZE(arg_regs));
}

static int plan_probe(const uint8_t *code, size_t len, uint64_t addr, bool straight,
		      struct pyx_x86_entry_plan *plan)
{
	struct decoder d = {};
	cs_insn *insn = NULL;
	size_t count, i;
	int err = 0;

	count = decode_upto(&d, code, len, addr, straight ? PYX_X86_STRAIGHT_MAX : 4, &insn);
	if (!d.lib)
		return -ENOENT;
	if (!count) {
		decoder_close(&d, insn, count);
		return -ENOENT;
	}
	plan->delta = 0;
	plan->entry_cls = plan->cls = classify_insn(&d, &insn[0]);
	for (i = 0; i < count; i++) {
		enum pyx_probe_class cls = classify_insn(&d, &insn[i]);

		if (cls == PYX_PROBE_OPTIMIZED || cls == PYX_PROBE_EMULATED ||
		    (!straight && cls == PYX_PROBE_SINGLESTEP &&
		     plan->entry_cls == PYX_PROBE_REFUSED)) {
			plan->delta = (unsigned int)(insn[i].address - addr);
			plan->cls = cls;
			break;
		}
		if (is_branch(&d, &insn[i]))
			break;
		if (!straight && (writes_sp(&d, &insn[i]) || writes_arg_reg(&insn[i])))
			break;
	}
	if (plan->cls == PYX_PROBE_REFUSED)
		err = -ENOENT;
	decoder_close(&d, insn, count);
	return err;
}

int pyx_x86_plan_entry(const uint8_t *code, size_t len, uint64_t addr,
		       struct pyx_x86_entry_plan *plan)
{
	return plan_probe(code, len, addr, false, plan);
}

int pyx_x86_plan_straight(const uint8_t *code, size_t len, uint64_t addr,
			  struct pyx_x86_entry_plan *plan)
{
	return plan_probe(code, len, addr, true, plan);
}

int pyx_x86_first_call(const uint8_t *code, size_t len, uint64_t addr, uint64_t *target,
		       bool *sets_arg2)
{
	struct decoder d = {};
	const uint8_t *p = code;
	uint64_t at = addr;
	size_t left = len;
	cs_insn *insn;
	int ret = -ENOENT;

	if (decoder_open(&d))
		return -ENOENT;
	insn = d.malloc_insn(d.handle);
	while (insn && d.disasm_iter(d.handle, &p, &left, &at, insn)) {
		const cs_x86 *x = &insn->detail->x86;
		bool direct = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;

		if (d.insn_group(d.handle, insn, CS_GRP_CALL)) {
			if (direct) {
				*target = (uint64_t)x->operands[0].imm;
				ret = 0;
			}
			break;
		}
		if (insn->id == X86_INS_JMP) {
			if (direct) {
				*target = (uint64_t)x->operands[0].imm;
				ret = 1;
			}
			break;
		}
		if (d.insn_group(d.handle, insn, CS_GRP_RET) ||
		    d.insn_group(d.handle, insn, CS_GRP_INT))
			break;
		if (writes_reg(insn, rsi_regs, PYX_X86_ARRAY_SIZE(rsi_regs)))
			*sets_arg2 = true;
		/* A conditional branch: keep to the fall-through path. */
	}
	if (insn)
		d.free(insn, 1);
	d.close(&d.handle);
	dlclose(d.lib);
	return ret;
}

bool pyx_x86_branches_into(const uint8_t *code, size_t len, uint64_t addr, uint64_t lo, uint64_t hi)
{
	struct decoder d = {};
	const uint8_t *p = code;
	uint64_t at = addr;
	size_t left = len;
	cs_insn *insn;
	bool found = false;

	if (decoder_open(&d))
		return true; /* cannot tell: assume the worst */
	insn = d.malloc_insn(d.handle);
	while (insn && !found && d.disasm_iter(d.handle, &p, &left, &at, insn)) {
		const cs_x86 *x = &insn->detail->x86;

		if (is_branch(&d, insn) && x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
		    (uint64_t)x->operands[0].imm > lo && (uint64_t)x->operands[0].imm <= hi)
			found = true;
	}
	/*
	 * Bytes that do not decode: the rest cannot be vouched for. Fewer than
	 * one instruction's worth is only a buffer cut mid-instruction.
	 */
	if (left >= X86_MAX_INSN_LEN)
		found = true;
	if (insn)
		d.free(insn, 1);
	d.close(&d.handle);
	dlclose(d.lib);
	return found;
}
