// SPDX-License-Identifier: GPL-2.0-only
#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>

#include "elf/x86.h"

/* Both patterns sit in a function's first dozen instructions; never look further. */
#define MAX_INSNS 16

static size_t decode(const uint8_t *code, size_t len, uint64_t addr, csh *handle, cs_insn **insn)
{
	size_t count;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, handle) != CS_ERR_OK)
		return 0;
	cs_option(*handle, CS_OPT_DETAIL, CS_OPT_ON);
	count = cs_disasm(*handle, code, len, addr, MAX_INSNS, insn);
	if (!count)
		cs_close(handle);
	return count;
}

static bool is_fs_absolute(const cs_x86_op *op)
{
	return op->type == X86_OP_MEM && op->mem.segment == X86_REG_FS &&
	       op->mem.base == X86_REG_INVALID && op->mem.index == X86_REG_INVALID;
}

int pyx_x86_fs_load(const uint8_t *code, size_t len, uint64_t addr, int64_t *disp)
{
	cs_insn *insn = NULL;
	int err = -ENOENT;
	size_t count, i;
	csh handle;

	count = decode(code, len, addr, &handle, &insn);
	for (i = 0; i < count; i++) {
		const cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[0].size == 8 && is_fs_absolute(&x->operands[1])) {
			*disp = x->operands[1].mem.disp;
			err = 0;
			break;
		}
		/* A TLS accessor loads before it branches or returns. */
		if (cs_insn_group(handle, &insn[i], CS_GRP_JUMP) ||
		    cs_insn_group(handle, &insn[i], CS_GRP_RET) ||
		    cs_insn_group(handle, &insn[i], CS_GRP_CALL))
			break;
	}
	if (count) {
		cs_free(insn, count);
		cs_close(&handle);
	}
	return err;
}

int pyx_x86_tsd_access(const uint8_t *code, size_t len, uint64_t addr, struct pyx_x86_tsd *out)
{
	bool have_add = false, have_shift = false, have_self = false;
	cs_insn *insn = NULL;
	int err = -ENOENT;
	size_t count, i;
	csh handle;

	count = decode(code, len, addr, &handle, &insn);
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
	if (count) {
		cs_free(insn, count);
		cs_close(&handle);
	}
	/* Sanity: a 16-byte stride and a slot inside struct pthread's first pages. */
	if (!err && (out->shift > 6 || out->add < 0 || out->add > 4096 || out->load < 0 ||
		     out->load > 64))
		err = -ENOENT;
	return err;
}
