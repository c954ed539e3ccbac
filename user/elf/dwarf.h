/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Struct layouts from DWARF (libdw): byte offsets of members along a path and
 * type sizes, for builds that have no built-in offset table and to
 * cross-check the tables. Knows nothing of Python: callers name the types.
 *
 * Errors follow libbpf's rules: int functions return 0 or -errno; pointer
 * functions return NULL and set errno. The DWARF may be any bytes: walks are
 * bounded and malformed entries read as "not found".
 */
#ifndef PYX_ELF_DWARF_H
#define PYX_ELF_DWARF_H

#include <stddef.h>
#include <stdint.h>

struct pyx_dwarf;

/*
 * Open the DWARF of the ELF file @fd (duplicated: the caller keeps its own),
 * either an object with embedded DWARF or a separate debug file. @alt_fd is
 * the file named by its .gnu_debugaltlink (dwz's shared types, see
 * pyx_dwarf__altlink), already opened by the caller, or -1; it is duplicated
 * too, and ignored when @fd has no altlink.
 *
 * Without @alt_fd, an altlink is never followed (libdw would look on the
 * host's /usr/lib/debug, not inside the target's root): what lives in the alt
 * file then simply is not found.
 *
 * NULL and errno: ENODATA when @fd has no DWARF, ENOEXEC when it is not an
 * ELF file, ESTALE when @alt_fd's build-id is not the one the altlink names,
 * EINVAL for DWARF that libdw rejects, ENOMEM.
 */
struct pyx_dwarf *pyx_dwarf__open_fd(int fd, int alt_fd);
void pyx_dwarf__close(struct pyx_dwarf *dw);

/*
 * Byte offset of member @path inside the type named @type.
 *
 * @type is a struct/union tag ("_ts", also spelled "struct _ts") or a typedef
 * name ("PyThreadState"); tags are tried first. Typedef chains and
 * const/volatile are followed, and a declaration-only struct is replaced by
 * its definition from any unit. When several units define a name, the first
 * definition wins (main file before the alt file).
 *
 * @path is "a.b.c": each component after the first is a member of the
 * previous one's struct/union type, embedded, not through a pointer. Members
 * of anonymous structs/unions are found as if they were direct members.
 *
 * Returns 0, -ENOENT when the type or a member does not exist, -EINVAL for a
 * malformed @path, a component that is not a struct/union, a bit field
 * (whose offset is not a byte offset), or DWARF that cannot be read; -ENOMEM
 * when the index (built by the first lookup) cannot be.
 */
int pyx_dwarf__member_offset(struct pyx_dwarf *dw, const char *type, const char *path,
			     uint64_t *offset);

/*
 * sizeof(@type), named as for pyx_dwarf__member_offset. 0, -ENOENT, -EINVAL
 * (no constant size: void, a function, a variable-length array) or -ENOMEM.
 */
int pyx_dwarf__type_size(struct pyx_dwarf *dw, const char *type, uint64_t *size);

/*
 * The file name in @fd's .gnu_debugaltlink, as written there (absolute, or
 * relative to the directory of @fd's file), for the caller to open inside the
 * target's root. -ENOENT when there is none, -EINVAL when it is malformed,
 * -ENOSPC when @name is too small, -ENOEXEC when @fd is not an ELF file.
 */
int pyx_dwarf__altlink(int fd, char *name, size_t size);

#endif /* PYX_ELF_DWARF_H */
