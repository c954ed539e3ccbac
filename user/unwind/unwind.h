/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Native stacks: unwind a thread from a captured register set and a copy
 * of the top of its user stack (taken by BPF: bpf_task_pt_regs and
 * bpf_copy_from_user_task), with elfutils libdwfl (.eh_frame/.debug_frame,
 * frame pointers as the fallback), never ptrace; then symbolize each frame
 * through the target's own files (map_files, debug files inside its root):
 * .symtab, .dynsym, DWARF lines, inlined frames, C++ names demangled.
 *
 * Knows nothing of Python. Errors: 0/-errno; NULL+errno.
 */
#ifndef PYX_UNWIND_UNWIND_H
#define PYX_UNWIND_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pyx_process;

/* x86-64 user registers, as struct pt_regs holds them. */
struct pyx_regs {
	uint64_t r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	uint64_t ip, sp;
};

/* A copy of the stack from sp upwards: data[0] is the byte at address @start. */
struct pyx_stack_copy {
	uint64_t start;
	const uint8_t *data;
	size_t len;
};

struct pyx_native_frame {
	uint64_t pc;		 /* return address (or the ip for the innermost frame) */
	uint64_t lookup_pc;	 /* pc - 1 for return addresses: inside the call */
	const char *object;	 /* path of the mapped object, NULL when unmapped */
	uint64_t object_offset;	 /* lookup_pc relative to the object's load address */
	const char *symbol;	 /* function (demangled), NULL when unknown */
	uint64_t symbol_offset;	 /* lookup_pc - symbol start */
	uint64_t symbol_start;	 /* runtime address of the symbol */
	const char *file;	 /* source file from DWARF, NULL without */
	int line;		 /* 0 without */
	bool inlined;		 /* an inlined call inside the next (outer) frame's function */
};

struct pyx_unwinder;

/* Per process: its mapped objects reported to libdwfl; caches keyed by build-id. */
struct pyx_unwinder *pyx_unwinder__new(struct pyx_process *proc);
void pyx_unwinder__free(struct pyx_unwinder *u);

/*
 * Load now what the first unwind would load lazily (symbol tables, debug
 * files), for callers that must unwind promptly once tracing runs.
 */
void pyx_unwinder__preload(struct pyx_unwinder *u);

/*
 * Unwind thread @tid from @regs and @stack. Memory outside @stack is read
 * from the live process (read-only) unless @stack_only is set (a process
 * that may be gone: crash). Fills up to @max frames, innermost first,
 * symbolized (inlined frames expanded, each its own entry); *n is how many.
 * The strings live as long as the unwinder. Returns 0 (also for a short
 * stack: the unwind simply ended), or -errno.
 */
int pyx_unwinder__unwind(struct pyx_unwinder *u, pid_t tid, const struct pyx_regs *regs,
			 const struct pyx_stack_copy *stack, bool stack_only,
			 struct pyx_native_frame *frames, size_t max, size_t *n);

/* Counters since pyx_unwinder__new(), for tests and diagnostics. */
struct pyx_unwind_stats {
	size_t modules;	    /* objects reported to libdwfl, [vdso] included */
	size_t debug_files; /* separate debug files found for them in the target's root */
	size_t alt_files;   /* dwz alt files (.gnu_debugaltlink) found there */
	uint64_t unwinds;
	uint64_t frames;       /* physical frames, before inlined calls are expanded */
	uint64_t fp_frames;    /* of which unwound through frame pointers (no CFI for the callee) */
	uint64_t stack_reads;  /* 8-byte reads served from the stack copy */
	uint64_t live_reads;   /* ... from the live process */
	uint64_t failed_reads; /* refused (@stack_only) or failed */
	uint64_t cache_hits;   /* physical frames symbolized from the cache */
	uint64_t cache_misses;
};

/* A copy of the counters. */
void pyx_unwinder__stats(const struct pyx_unwinder *u, struct pyx_unwind_stats *stats);

#endif /* PYX_UNWIND_UNWIND_H */
