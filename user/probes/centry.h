/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bulk attach to a module's C entry points (python/entrypoints.h): one
 * uprobe_multi link for all of them, through the module's map_files path
 * (the very inode the target mapped), the entry point's index as each
 * probe's cookie. Shared by every command that probes C entry points.
 */
#ifndef PYX_PROBES_CENTRY_H
#define PYX_PROBES_CENTRY_H

#include <stdbool.h>

#include <bpf/libbpf.h>

#include <linux/types.h>
#include <pyxtrace/centry.h>

#include "python/entrypoints.h"

/*
 * Attach @prog (a "uprobe.multi" program; @retprobe for the return side) to
 * every entry point of @mod in @proc. Returns the link, or NULL with errno.
 * Probes go where pyx_centry_plan() put them; entry points it found no
 * place for are left out.
 */
/* An entry point's signature class as centry.bpf.c and crash.bpf.c read it (PYX_CENTRY_SIG_*). */
__u32 pyx_centry_bpf_signature(enum pyx_signature sig);

struct bpf_link *pyx_centry_attach(struct bpf_program *prog, struct pyx_process *proc,
				   const struct pyx_module *mod, bool retprobe);

/*
 * Decide where each entry point's probes go (entry->probe_delta and
 * probe_class), decoding its prologue: the first instruction the kernel
 * emulates or optimizes, when nothing before it can branch or move the stack
 * pointer and no branch in the function lands between the entry and it.
 * Entry and return probes share the place. Returns how many entry points
 * stay single-stepped.
 */
size_t pyx_centry_plan(struct pyx_module *mod);

#endif /* PYX_PROBES_CENTRY_H */
