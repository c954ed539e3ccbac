/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Generic ELF reading (libelf): symbols, build-id, debuglink, notes, segments
 * and file-backed data. Knows nothing of Python or of processes; callers hand
 * it an fd they opened safely (user/target/files.h).
 *
 * Errors follow libbpf's rules: int functions return 0 or -errno; pointer
 * functions return NULL and set errno. Every parser is bounds-checked: the
 * input may be any bytes (tests/fuzz/fuzz_elf.c).
 */
#ifndef PYX_ELF_H
#define PYX_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pyx_elf;

/*
 * Open from an fd (duplicated: the caller keeps its own) or from a buffer
 * (copied: the caller may free it). errno is ENOEXEC when the bytes are not
 * an ELF object.
 */
struct pyx_elf *pyx_elf__open_fd(int fd);
struct pyx_elf *pyx_elf__open_mem(const void *buf, size_t size);
void pyx_elf__close(struct pyx_elf *elf);

/* ET_EXEC or ET_DYN etc., and the entry point (a link-time vaddr). */
int pyx_elf__type(const struct pyx_elf *elf);
uint64_t pyx_elf__entry(const struct pyx_elf *elf);

/* NT_GNU_BUILD_ID as lower-case hex; -ENOENT when absent, -ENOSPC when hex is too small. */
int pyx_elf__build_id(const struct pyx_elf *elf, char *hex, size_t size);

/*
 * .gnu_debuglink file name and CRC (@crc may be NULL); -ENOENT when absent,
 * -EINVAL when malformed, -ENOSPC when @name is too small.
 */
int pyx_elf__debuglink(const struct pyx_elf *elf, char *name, size_t size, uint32_t *crc);

/* Whether a section of that name exists with non-zero size (e.g. ".debug_info", ".symtab"). */
bool pyx_elf__has_section(const struct pyx_elf *elf, const char *name);

/*
 * Stricter: the section also has its bytes in this file (not SHT_NOBITS, as
 * in a stripped object's or a debug file's placeholder sections).
 */
bool pyx_elf__has_section_data(const struct pyx_elf *elf, const char *name);

/* Section lookup: link-time address, size, file offset (each may be NULL). -ENOENT when absent. */
int pyx_elf__section(const struct pyx_elf *elf, const char *name, uint64_t *addr, uint64_t *size,
		     uint64_t *offset);

/*
 * x86-64: the PLT entry through which this object calls @name (a function
 * another object, or this one, defines): calls to it are calls to @name.
 * -ENOENT when it has none.
 */
int pyx_elf__plt_stub(const struct pyx_elf *elf, const char *name, uint64_t *stub);

struct pyx_elf_sym {
	const char *name; /* valid while the pyx_elf is open */
	uint64_t value;	  /* link-time vaddr (st_value) */
	uint64_t size;
	unsigned char type; /* STT_* */
	unsigned char bind; /* STB_* */
	bool dynamic;	    /* from .dynsym rather than .symtab */
};

/*
 * Find a defined symbol by exact name (versioned names like "foo@@V" match
 * "foo"); .symtab is preferred over .dynsym. Within a table a global
 * default-version definition wins over a hidden version ("foo@V1"), and
 * either over a local one. -ENOENT when absent.
 */
int pyx_elf__find_symbol(const struct pyx_elf *elf, const char *name, struct pyx_elf_sym *sym);

/*
 * Call @fn for each defined, named symbol of both tables (.symtab first); a
 * non-zero return stops and is returned.
 */
int pyx_elf__for_each_symbol(const struct pyx_elf *elf,
			     int (*fn)(void *ctx, const struct pyx_elf_sym *sym), void *ctx);

/* Translate a link-time vaddr to a file offset through the PT_LOAD segments; -ENOENT when unmapped. */
int pyx_elf__vaddr_to_offset(const struct pyx_elf *elf, uint64_t vaddr, uint64_t *offset);

/*
 * Copy @len bytes stored in the file at link-time vaddr @vaddr (initialized
 * data: .rodata, .data; not .bss). -ENOENT when not file-backed, -ERANGE
 * when it crosses the end of its segment, -EIO when the file is shorter
 * than its program headers claim.
 */
int pyx_elf__read_vaddr(const struct pyx_elf *elf, uint64_t vaddr, void *buf, size_t len);

/* PT_TLS: memsz, align and vaddr of the TLS template; -ENOENT when the object has no TLS. */
int pyx_elf__tls(const struct pyx_elf *elf, uint64_t *memsz, uint64_t *align, uint64_t *vaddr);

/* DT_NEEDED entries, in order; a non-zero return from @fn stops and is returned. */
int pyx_elf__for_each_needed(const struct pyx_elf *elf, int (*fn)(void *ctx, const char *name),
			     void *ctx);

/* DT_SONAME, DT_RUNPATH/DT_RPATH strings (NULL when absent). */
const char *pyx_elf__soname(const struct pyx_elf *elf);
const char *pyx_elf__runpath(const struct pyx_elf *elf);

/* One SystemTap SDT probe from .note.stapsdt, address already adjusted for prelink (.stapsdt.base). */
struct pyx_usdt_note {
	const char *provider; /* valid while the pyx_elf is open */
	const char *name;
	const char *args;   /* the argument spec string, e.g. "8@%rbp 8@%r12 -4@%eax" */
	uint64_t pc;	    /* link-time vaddr of the probe site */
	uint64_t semaphore; /* link-time vaddr of the semaphore, 0 when none */
};

int pyx_elf__for_each_usdt(const struct pyx_elf *elf,
			   int (*fn)(void *ctx, const struct pyx_usdt_note *note), void *ctx);

/*
 * Call @fn for every NUL-terminated printable string (0x20-0x7e, tab,
 * newline) of at least @min_len bytes in section @section (e.g. ".rodata"),
 * with its link-time vaddr; a non-zero return stops and is returned.
 * -ENOENT when there is no such section.
 */
int pyx_elf__for_each_string(const struct pyx_elf *elf, const char *section, size_t min_len,
			     int (*fn)(void *ctx, const char *str, size_t len, uint64_t vaddr),
			     void *ctx);

#endif /* PYX_ELF_H */
