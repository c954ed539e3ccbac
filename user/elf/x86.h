/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading x86-64 machine code with the capstone decoder (never by hand):
 * the few instruction shapes pyxtrace needs to find data that stripped
 * binaries do not name.
 */
#ifndef PYX_ELF_X86_H
#define PYX_ELF_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A thread-local load at the start of a function: the first
 * `mov reg, qword ptr fs:[disp]` among its first instructions (what a
 * local-exec TLS accessor compiles to). 0 with *disp set, -ENOENT.
 */
int pyx_x86_fs_load(const uint8_t *code, size_t len, uint64_t addr, int64_t *disp);

/*
 * glibc's pthread_getspecific() fast path: the slot of key k is at
 * thread_pointer + ((k + add) << shift) + load, read from
 * `add $add,reg` (or `lea add(reg),reg`), `shl $shift,reg`, `add fs:0x10,reg`
 * (or a mov from fs:0x10 then an add) and `mov load(reg),reg`. 0 or -ENOENT.
 */
struct pyx_x86_tsd {
	int64_t add;
	unsigned int shift;
	int64_t load;
};

int pyx_x86_tsd_access(const uint8_t *code, size_t len, uint64_t addr, struct pyx_x86_tsd *out);

/* What a uprobe on an instruction costs: the kernel optimizes, emulates or single-steps it. */
enum pyx_probe_class {
	PYX_PROBE_OPTIMIZED = 1, /* nop5: turned into a call, ~0.27 µs here */
	PYX_PROBE_EMULATED,	 /* push, nop, relative jmp/jcc/call: ~0.55 µs */
	PYX_PROBE_SINGLESTEP,	 /* everything else (endbr64, mov, sub...): ~12 µs */
	PYX_PROBE_REFUSED,	 /* LOCK or segment prefixes: the kernel will not probe it */
};

const char *pyx_probe_class_name(enum pyx_probe_class cls);

/*
 * Where to put the probe of a function entry so that every call hits it as
 * cheaply as possible: the first instruction of the straight-line prologue
 * that the kernel optimizes or emulates, provided nothing before it writes
 * the stack pointer (a return probe placed there still finds the return
 * address on top of the stack), an argument register or branches. Falls back to the entry, or
 * past a refused first instruction. *delta is the offset from the entry.
 */
struct pyx_x86_entry_plan {
	unsigned int delta;
	enum pyx_probe_class cls;	/* at the chosen place */
	enum pyx_probe_class entry_cls; /* at the entry itself */
};

int pyx_x86_plan_entry(const uint8_t *code, size_t len, uint64_t addr,
		       struct pyx_x86_entry_plan *plan);

/*
 * Where to probe a block that runs straight from @addr (an eval-loop opcode
 * handler), so that every run of it hits the probe once and cheaply: the
 * first instruction the kernel optimizes or emulates, at or before the
 * first branch, among the first PYX_X86_STRAIGHT_MAX. Falls back to @addr.
 * The caller checks that nothing else jumps in between.
 */
#define PYX_X86_STRAIGHT_MAX 64

int pyx_x86_plan_straight(const uint8_t *code, size_t len, uint64_t addr,
			  struct pyx_x86_entry_plan *plan);

/*
 * Follow the code at @addr along its fall-through path (conditional
 * branches not taken) to its first direct call: 0 with *target set; 1 with
 * *target set when an unconditional direct jmp leaves the buffer first (the
 * caller reads the code there and asks again); -ENOENT at an indirect
 * branch, a return or the end of the buffer. *sets_arg2 becomes true when an
 * instruction on the way writes rsi (the call passes a second argument).
 */
int pyx_x86_first_call(const uint8_t *code, size_t len, uint64_t addr, uint64_t *target,
		       bool *sets_arg2);

/* Whether any direct branch in the code at @addr targets (@lo, @hi]. */
bool pyx_x86_branches_into(const uint8_t *code, size_t len, uint64_t addr, uint64_t lo,
			   uint64_t hi);

#endif /* PYX_ELF_X86_H */
