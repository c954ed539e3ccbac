/* SPDX-License-Identifier: GPL-2.0-only */
/* ABI of bpf/stack.bpf.c: `pyxtrace stack`, every thread of one process. */
#ifndef __PYXTRACE_STACK_H
#define __PYXTRACE_STACK_H

#include "pywalk.h"

/* Bytes of each thread's user stack copied for native unwinding (--native). */
/*
 * Each thread's records must fit the task iterator's 32 KiB seq_file buffer
 * (larger writes fail with E2BIG); memory past the copy is read live.
 */
#define PYX_NATIVE_STACK_MAX (24 * 1024)

struct pyx_stack_cfg {
	__u32 tgid;	   /* host PID of the target */
	__u32 native;	   /* also capture registers and the top of each user stack */
	__u32 stack_bytes; /* how much stack to copy, <= PYX_NATIVE_STACK_MAX */
	__u32 __pad;
	struct pyx_py_layout layout;
};

/*
 * The thread was running on a CPU when it was read: its saved registers
 * are from its last entry into the kernel, so the native frames are only
 * an approximation.
 */
#define PYX_NATIVE_APPROXIMATE (1u << 0)
#define PYX_NATIVE_NO_STACK (1u << 1) /* the stack could not be copied: registers only */

/* x86-64 user registers, struct pt_regs order (user/unwind/unwind.h: struct pyx_regs). */
#define PYX_NATIVE_NR_REGS 17

struct pyx_rec_native {
	struct pyx_rec_hdr hdr; /* PYX_REC_NATIVE; size covers stack_len bytes of stack */
	__u32 tid;
	__u32 flags;		/* PYX_NATIVE_* */
	__u64 regs[PYX_NATIVE_NR_REGS]; /* r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di ip sp */
	__u64 stack_start;	/* = sp */
	__u32 stack_len;
	__u32 __pad;
	__u8 stack[PYX_NATIVE_STACK_MAX];
};

#endif /* __PYXTRACE_STACK_H */
