// SPDX-License-Identifier: GPL-2.0-only
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "elf/x86.h"

/* Both patterns sit in a function's first dozen instructions; never look further. */
#define MAX_INSNS 16

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
	if (!d->open || !d->option || !d->disasm || !d->free || !d->close || !d->insn_group ||
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

static size_t decode(struct decoder *d, const uint8_t *code, size_t len, uint64_t addr,
		     cs_insn **insn)
{
	if (decoder_open(d))
		return 0;
	return d->disasm(d->handle, code, len, addr, MAX_INSNS, insn);
}

static bool is_fs_absolute(const cs_x86_op *op)
{
	return op->type == X86_OP_MEM && op->mem.segment == X86_REG_FS &&
	       op->mem.base == X86_REG_INVALID && op->mem.index == X86_REG_INVALID;
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

		if (insn[i].id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[0].size == 8 && is_fs_absolute(&x->operands[1])) {
			*disp = x->operands[1].mem.disp;
			err = 0;
			break;
		}
		/* A TLS accessor loads before it branches or returns. */
		if (d.insn_group(d.handle, &insn[i], CS_GRP_JUMP) ||
		    d.insn_group(d.handle, &insn[i], CS_GRP_RET) ||
		    d.insn_group(d.handle, &insn[i], CS_GRP_CALL))
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
	if (!err && (out->shift > 6 || out->add < 0 || out->add > 4096 || out->load < 0 ||
		     out->load > 64))
		err = -ENOENT;
	return err;
}

int pyx_x86_entry_probe_delta(const uint8_t *code, size_t len, uint64_t addr,
			      unsigned int *delta)
{
	struct decoder d = {};
	cs_insn *insn = NULL;
	int err = -ENOENT;
	size_t count;
	bool locked;

	count = decode(&d, code, len, addr, &insn);
	if (!d.lib)
		return -ENOENT;
	if (count >= 1) {
		locked = insn[0].detail->x86.prefix[0] == X86_PREFIX_LOCK;
		if (!locked) {
			*delta = 0;
			err = 0;
		} else if (count >= 2 && !d.insn_group(d.handle, &insn[0], CS_GRP_JUMP) &&
			   !d.insn_group(d.handle, &insn[0], CS_GRP_CALL) &&
			   !d.insn_group(d.handle, &insn[0], CS_GRP_RET) &&
			   insn[1].detail->x86.prefix[0] != X86_PREFIX_LOCK) {
			*delta = insn[0].size;
			err = 0;
		}
	}
	decoder_close(&d, insn, count);
	return err;
}
