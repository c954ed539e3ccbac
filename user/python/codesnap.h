/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Code objects copied in the kernel (include/pyxtrace/codesnap.h): what to
 * copy for a build, and reading a copy back as if it were target memory,
 * so user/python/code.c names frames whose code object is gone.
 */
#ifndef PYX_PYTHON_CODESNAP_H
#define PYX_PYTHON_CODESNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include <pyxtrace/codesnap.h>

#include "python/code.h"

/*
 * Fill @cfg for code objects laid out as @layout. False when they are too
 * large to copy (then code_hdr_len is 0: nothing is copied).
 */
bool pyx_codesnap_cfg(struct pyx_codesnap_cfg *cfg, const struct pyx_code_layout *layout);

/* Copy @len bytes at @addr out of @n snapshots; -ENOENT when none holds them. */
int pyx_codesnap_read(const struct pyx_code_snap *snaps, size_t n, uint64_t addr, void *buf,
		      size_t len);

#endif /* PYX_PYTHON_CODESNAP_H */
