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

#include "python/entrypoints.h"

/*
 * Attach @prog (a "uprobe.multi" program; @retprobe for the return side) to
 * every entry point of @mod in @proc. Returns the link, or NULL with errno.
 * Entry points whose first instruction the kernel cannot probe get the
 * entry probe one instruction later and no return probe
 * (pyx_centry_has_return() says which).
 */
struct bpf_link *pyx_centry_attach(struct bpf_program *prog, struct pyx_process *proc,
				   const struct pyx_module *mod, bool retprobe);

/* Whether entry point @index of @mod can have a return probe (its entry was not moved). */
bool pyx_centry_has_return(const struct pyx_module *mod, size_t index);

#endif /* PYX_PROBES_CENTRY_H */
