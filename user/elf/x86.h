/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading x86-64 machine code with the capstone decoder (never by hand):
 * the few instruction shapes pyxtrace needs to find data that stripped
 * binaries do not name.
 */
#ifndef PYX_ELF_X86_H
#define PYX_ELF_X86_H

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

/*
 * Where a uprobe for a function entry can go: 0 when its first instruction
 * can be probed, else the length of that instruction when it is not a
 * branch (the next one then runs on every call just the same). The kernel
 * refuses to probe LOCK-prefixed instructions (-ENOTSUPP); compilers start
 * counters' hot paths with one. -ENOENT when nothing safe is found.
 */
int pyx_x86_entry_probe_delta(const uint8_t *code, size_t len, uint64_t addr,
			      unsigned int *delta);

#endif /* PYX_ELF_X86_H */
