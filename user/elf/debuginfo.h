/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Separate debug files, looked up the way gdb and elfutils do, but inside the
 * target's root (RESOLVE_IN_ROOT): by build-id
 * (/usr/lib/debug/.build-id/xx/rest.debug), then by .gnu_debuglink next to
 * the object, in its .debug/ directory and under /usr/lib/debug/<dir>/.
 */
#ifndef PYX_ELF_DEBUGINFO_H
#define PYX_ELF_DEBUGINFO_H

#include <stddef.h>
#include <stdint.h>

#include "elf.h"

enum pyx_dwarf_source {
	PYX_DWARF_NONE = 0,
	PYX_DWARF_EMBEDDED, /* the object itself has .debug_info */
	PYX_DWARF_BUILD_ID, /* /usr/lib/debug/.build-id/... */
	PYX_DWARF_DEBUGLINK,
};

const char *pyx_dwarf_source_name(enum pyx_dwarf_source source);

struct pyx_debuginfo {
	enum pyx_dwarf_source source;
	char path[4096]; /* inside the target's root; empty for NONE and EMBEDDED */
	int fd;		 /* open debug file, -1 for NONE and EMBEDDED */
};

/*
 * Find DWARF for @elf, whose path inside the target's root is @obj_path.
 * @root_fd is an O_PATH fd of the target's root (pyx_root_open). A debug
 * file is accepted only if its build-id matches the object's (or, for a
 * debuglink without build-id, its CRC matches). Always fills @out; returns
 * 0, or -errno on a hard error. Close @out->fd with pyx_debuginfo__release.
 */
int pyx_debuginfo__find(int root_fd, const char *obj_path, const struct pyx_elf *elf,
			struct pyx_debuginfo *out);
void pyx_debuginfo__release(struct pyx_debuginfo *info);

/*
 * The .gnu_debuglink CRC: CRC-32 (zlib's polynomial), continued from @crc
 * (0 to start). The _fd form covers the whole file, read with pread().
 */
uint32_t pyx_debuglink_crc32(uint32_t crc, const void *buf, size_t len);
int pyx_debuglink_crc32_fd(int fd, uint32_t *crc);

#endif /* PYX_ELF_DEBUGINFO_H */
