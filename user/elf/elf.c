// SPDX-License-Identifier: GPL-2.0-only
/*
 * ELF reading on top of libelf (elfutils).
 *
 * libelf validates the headers, section and segment tables against the file
 * size and converts typed data (symbols, dynamic entries, note headers) to
 * host byte order. Everything else is parsed here from bytes that may be
 * anything: note payloads, the debuglink, strings. Those parsers only ever
 * look inside an Elf_Data buffer whose d_size libelf vouched for, and check
 * every length they read before using it.
 *
 * Files are opened with ELF_C_READ rather than mmap: libelf then pread()s
 * only the sections we ask for, and a file truncated under us yields a read
 * error instead of SIGBUS.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/elf.h"

/* SystemTap's note type for SDT probes (sys/sdt.h); not in <elf.h>. */
#define PYX_NT_STAPSDT 3

/*
 * A build-id is an MD5/UUID (16 bytes) or SHA-1 (20 bytes) in practice;
 * anything past this is not a build-id we could look up anyway.
 */
#define PYX_BUILD_ID_MAX 64

struct pyx_elf {
	Elf *elf;
	int fd;		      /* our dup() of the caller's fd, -1 for memory images */
	unsigned char *image; /* owned copy of an open_mem() buffer */
	uint64_t size;	      /* file or image size */
	GElf_Ehdr ehdr;
	size_t shstrndx; /* section name table; valid if has_section_names */
	bool has_section_names;
	bool big_endian; /* byte order of the raw bytes we decode ourselves */
	unsigned char build_id[PYX_BUILD_ID_MAX];
	size_t build_id_len; /* 0 when the object has none */
	/* The dynamic table (SHT_DYNAMIC, else PT_DYNAMIC) and its string table. */
	Elf_Data *dynamic;
	const char *dynstr;
	size_t dynstr_size;
	const char *soname;
	const char *runpath;
};

struct note {
	uint32_t type;
	const unsigned char *name;
	uint32_t name_size; /* n_namesz, the terminating NUL included */
	const unsigned char *desc;
	uint32_t desc_size;
};

static size_t align_up(size_t value, size_t align)
{
	return (value + align - 1) & ~(align - 1);
}

static uint64_t decode_uint(const struct pyx_elf *pe, const unsigned char *bytes, size_t width)
{
	uint64_t value = 0;
	size_t i;

	for (i = 0; i < width; i++) {
		size_t shift = pe->big_endian ? (width - 1 - i) * 8 : i * 8;

		value |= (uint64_t)bytes[i] << shift;
	}
	return value;
}

/*
 * The bytes of a section, or NULL when it has none in the file (SHT_NOBITS,
 * empty, or unreadable). libelf reports SHT_NOBITS as d_buf == NULL with
 * d_size == sh_size, so both must be checked.
 */
static Elf_Data *section_bytes(Elf_Scn *scn)
{
	Elf_Data *data = elf_getdata(scn, NULL);

	if (!data || !data->d_buf || !data->d_size)
		return NULL;
	return data;
}

static const char *section_name(const struct pyx_elf *pe, const GElf_Shdr *shdr)
{
	if (!pe->has_section_names)
		return NULL;
	return elf_strptr(pe->elf, pe->shstrndx, shdr->sh_name);
}

static Elf_Scn *find_section(const struct pyx_elf *pe, const char *name, GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(pe->elf, scn))) {
		const char *scn_name;

		if (!gelf_getshdr(scn, shdr))
			continue;
		scn_name = section_name(pe, shdr);
		if (scn_name && !strcmp(scn_name, name))
			return scn;
	}
	return NULL;
}

/*
 * Step through the notes of @buf. Note headers are already in host order
 * (libelf converts ELF_T_NHDR data); @align is 8 for notes in 8-aligned
 * sections and segments (ELF_T_NHDR8, e.g. .note.gnu.property), else 4.
 * Returns false at the end or at the first malformed note: past a bad
 * length nothing that follows can be trusted.
 */
static bool next_note(const unsigned char *buf, size_t size, size_t align, size_t *pos,
		      struct note *note)
{
	size_t name_off, desc_off;
	GElf_Nhdr hdr;

	if (*pos > size || size - *pos < sizeof(hdr))
		return false;
	memcpy(&hdr, buf + *pos, sizeof(hdr));
	name_off = *pos + sizeof(hdr);
	if (hdr.n_namesz > size - name_off)
		return false;
	desc_off = align_up(name_off + hdr.n_namesz, align);
	if (desc_off > size || hdr.n_descsz > size - desc_off)
		return false;

	note->type = hdr.n_type;
	note->name = buf + name_off;
	note->name_size = hdr.n_namesz;
	note->desc = buf + desc_off;
	note->desc_size = hdr.n_descsz;
	/* Always advances by at least the header size: the walk terminates. */
	*pos = align_up(desc_off + hdr.n_descsz, align);
	return true;
}

static bool note_owner_is(const struct note *note, const char *owner)
{
	size_t len = strlen(owner) + 1;

	return note->name_size == len && !memcmp(note->name, owner, len);
}

static bool scan_build_id(struct pyx_elf *pe, const Elf_Data *data, size_t align)
{
	size_t pos = 0;
	struct note note;

	while (next_note(data->d_buf, data->d_size, align, &pos, &note)) {
		if (note.type != NT_GNU_BUILD_ID || !note_owner_is(&note, "GNU"))
			continue;
		if (!note.desc_size || note.desc_size > sizeof(pe->build_id))
			continue;
		memcpy(pe->build_id, note.desc, note.desc_size);
		pe->build_id_len = note.desc_size;
		return true;
	}
	return false;
}

/* Sections first; the PT_NOTE segments cover files whose section headers were stripped. */
static void load_build_id(struct pyx_elf *pe)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	GElf_Phdr phdr;
	size_t phnum, i;

	while ((scn = elf_nextscn(pe->elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		data = section_bytes(scn);
		if (data && scan_build_id(pe, data, shdr.sh_addralign == 8 ? 8 : 4))
			return;
	}

	if (elf_getphdrnum(pe->elf, &phnum))
		return;
	for (i = 0; i < phnum; i++) {
		Elf_Data *data;
		size_t align;

		if (!gelf_getphdr(pe->elf, (int)i, &phdr) || phdr.p_type != PT_NOTE)
			continue;
		if (phdr.p_offset > pe->size || phdr.p_filesz > pe->size - phdr.p_offset)
			continue;
		align = phdr.p_align == 8 ? 8 : 4;
		data = elf_getdata_rawchunk(pe->elf, (int64_t)phdr.p_offset, phdr.p_filesz,
					    align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (data && data->d_buf && scan_build_id(pe, data, align))
			return;
	}
}

static const char *dynamic_string(const struct pyx_elf *pe, uint64_t offset)
{
	if (!pe->dynstr || offset >= pe->dynstr_size)
		return NULL;
	if (!memchr(pe->dynstr + offset, '\0', pe->dynstr_size - offset))
		return NULL;
	return pe->dynstr + offset;
}

static size_t dynamic_count(const struct pyx_elf *pe)
{
	size_t entry_size = gelf_fsize(pe->elf, ELF_T_DYN, 1, EV_CURRENT);

	size_t count;

	if (!pe->dynamic || !entry_size)
		return 0;
	count = pe->dynamic->d_size / entry_size;
	return count > INT_MAX ? INT_MAX : count; /* gelf_getdyn() takes an int index */
}

static bool load_dynamic_from_section(struct pyx_elf *pe)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr, str_shdr;

	while ((scn = elf_nextscn(pe->elf, scn))) {
		Elf_Scn *str_scn;
		Elf_Data *data, *strings;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNAMIC)
			continue;
		data = section_bytes(scn);
		str_scn = elf_getscn(pe->elf, shdr.sh_link);
		if (!data || !str_scn || !gelf_getshdr(str_scn, &str_shdr) ||
		    str_shdr.sh_type != SHT_STRTAB)
			continue;
		strings = section_bytes(str_scn);
		if (!strings)
			continue;
		pe->dynamic = data;
		pe->dynstr = strings->d_buf;
		pe->dynstr_size = strings->d_size;
		return true;
	}
	return false;
}

/* Without section headers, follow PT_DYNAMIC and its DT_STRTAB/DT_STRSZ as the loader does. */
static void load_dynamic_from_segment(struct pyx_elf *pe)
{
	uint64_t strtab = 0, strsz = 0, offset;
	size_t phnum, i, count;
	Elf_Data *strings;
	GElf_Phdr phdr;
	GElf_Dyn dyn;

	if (elf_getphdrnum(pe->elf, &phnum))
		return;
	for (i = 0; i < phnum; i++) {
		if (gelf_getphdr(pe->elf, (int)i, &phdr) && phdr.p_type == PT_DYNAMIC)
			break;
	}
	if (i == phnum || phdr.p_offset > pe->size || phdr.p_filesz > pe->size - phdr.p_offset)
		return;
	pe->dynamic =
		elf_getdata_rawchunk(pe->elf, (int64_t)phdr.p_offset, phdr.p_filesz, ELF_T_DYN);
	if (!pe->dynamic || !pe->dynamic->d_buf) {
		pe->dynamic = NULL;
		return;
	}

	count = dynamic_count(pe);
	for (i = 0; i < count && gelf_getdyn(pe->dynamic, (int)i, &dyn); i++) {
		if (dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_STRTAB)
			strtab = dyn.d_un.d_ptr;
		else if (dyn.d_tag == DT_STRSZ)
			strsz = dyn.d_un.d_val;
	}
	if (!strtab || !strsz || pyx_elf__vaddr_to_offset(pe, strtab, &offset))
		return;
	if (offset > pe->size || strsz > pe->size - offset)
		return;
	strings = elf_getdata_rawchunk(pe->elf, (int64_t)offset, strsz, ELF_T_BYTE);
	if (!strings || !strings->d_buf)
		return;
	pe->dynstr = strings->d_buf;
	pe->dynstr_size = strings->d_size;
}

static void load_dynamic(struct pyx_elf *pe)
{
	const char *runpath = NULL, *rpath = NULL;
	size_t count, i;
	GElf_Dyn dyn;

	if (!load_dynamic_from_section(pe))
		load_dynamic_from_segment(pe);

	count = dynamic_count(pe);
	for (i = 0; i < count && gelf_getdyn(pe->dynamic, (int)i, &dyn); i++) {
		if (dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_SONAME && !pe->soname)
			pe->soname = dynamic_string(pe, dyn.d_un.d_val);
		else if (dyn.d_tag == DT_RUNPATH && !runpath)
			runpath = dynamic_string(pe, dyn.d_un.d_val);
		else if (dyn.d_tag == DT_RPATH && !rpath)
			rpath = dynamic_string(pe, dyn.d_un.d_val);
	}
	/* ld.so ignores DT_RPATH when DT_RUNPATH is present. */
	pe->runpath = runpath ? runpath : rpath;
}

static struct pyx_elf *open_common(struct pyx_elf *pe)
{
	pe->elf = pe->image ? elf_memory((char *)pe->image, pe->size)
			    : elf_begin(pe->fd, ELF_C_READ, NULL);
	if (!pe->elf || elf_kind(pe->elf) != ELF_K_ELF || !gelf_getehdr(pe->elf, &pe->ehdr)) {
		pyx_elf__close(pe);
		errno = ENOEXEC;
		return NULL;
	}
	pe->big_endian = pe->ehdr.e_ident[EI_DATA] == ELFDATA2MSB;
	pe->has_section_names = !elf_getshdrstrndx(pe->elf, &pe->shstrndx);
	load_build_id(pe);
	load_dynamic(pe);
	return pe;
}

static bool libelf_ready(void)
{
	static bool ready;

	if (!ready)
		ready = elf_version(EV_CURRENT) != EV_NONE;
	return ready;
}

struct pyx_elf *pyx_elf__open_fd(int fd)
{
	struct pyx_elf *pe;
	struct stat st;

	if (!libelf_ready()) {
		errno = ENOSYS;
		return NULL;
	}
	if (fstat(fd, &st))
		return NULL;
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		return NULL;
	pe->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (pe->fd < 0) {
		free(pe);
		return NULL;
	}
	pe->size = (uint64_t)st.st_size;
	return open_common(pe);
}

struct pyx_elf *pyx_elf__open_mem(const void *buf, size_t size)
{
	struct pyx_elf *pe;

	if (!libelf_ready()) {
		errno = ENOSYS;
		return NULL;
	}
	if (!buf && size) {
		errno = EINVAL;
		return NULL;
	}
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		return NULL;
	pe->fd = -1;
	/* elf_memory() wants a writable buffer, and the caller's need not outlive us. */
	pe->image = malloc(size ? size : 1);
	if (!pe->image) {
		free(pe);
		return NULL;
	}
	if (size)
		memcpy(pe->image, buf, size);
	pe->size = size;
	return open_common(pe);
}

void pyx_elf__close(struct pyx_elf *pe)
{
	int saved_errno = errno;

	if (!pe)
		return;
	elf_end(pe->elf);
	if (pe->fd >= 0)
		close(pe->fd);
	free(pe->image);
	free(pe);
	errno = saved_errno;
}

int pyx_elf__type(const struct pyx_elf *pe)
{
	return pe->ehdr.e_type;
}

uint64_t pyx_elf__entry(const struct pyx_elf *pe)
{
	return pe->ehdr.e_entry;
}

int pyx_elf__build_id(const struct pyx_elf *pe, char *hex, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (!pe->build_id_len)
		return -ENOENT;
	if (size < pe->build_id_len * 2 + 1)
		return -ENOSPC;
	for (i = 0; i < pe->build_id_len; i++) {
		hex[2 * i] = digits[pe->build_id[i] >> 4];
		hex[2 * i + 1] = digits[pe->build_id[i] & 0xf];
	}
	hex[2 * i] = '\0';
	return 0;
}

/* .gnu_debuglink: the file name, NUL, padding to 4 bytes, then a 4-byte CRC in file byte order. */
int pyx_elf__debuglink(const struct pyx_elf *pe, char *name, size_t size, uint32_t *crc)
{
	const unsigned char *bytes, *nul;
	size_t name_len, crc_off;
	GElf_Shdr shdr;
	Elf_Scn *scn;
	Elf_Data *data;

	scn = find_section(pe, ".gnu_debuglink", &shdr);
	if (!scn)
		return -ENOENT;
	data = section_bytes(scn);
	if (!data)
		return -ENOENT;
	bytes = data->d_buf;
	nul = memchr(bytes, '\0', data->d_size);
	if (!nul || nul == bytes)
		return -EINVAL;
	name_len = (size_t)(nul - bytes);
	crc_off = align_up(name_len + 1, 4);
	if (crc_off > data->d_size || data->d_size - crc_off < 4)
		return -EINVAL;
	if (size < name_len + 1)
		return -ENOSPC;
	memcpy(name, bytes, name_len + 1);
	if (crc)
		*crc = (uint32_t)decode_uint(pe, bytes + crc_off, 4);
	return 0;
}

bool pyx_elf__has_section(const struct pyx_elf *pe, const char *name)
{
	uint64_t size;

	return !pyx_elf__section(pe, name, NULL, &size, NULL) && size;
}

bool pyx_elf__has_section_data(const struct pyx_elf *pe, const char *name)
{
	GElf_Shdr shdr;

	if (!find_section(pe, name, &shdr))
		return false;
	return shdr.sh_type != SHT_NOBITS && shdr.sh_size && shdr.sh_offset < pe->size &&
	       shdr.sh_size <= pe->size - shdr.sh_offset;
}

int pyx_elf__section(const struct pyx_elf *pe, const char *name, uint64_t *addr, uint64_t *size,
		     uint64_t *offset)
{
	GElf_Shdr shdr;

	if (!find_section(pe, name, &shdr))
		return -ENOENT;
	if (addr)
		*addr = shdr.sh_addr;
	if (size)
		*size = shdr.sh_size;
	if (offset)
		*offset = shdr.sh_offset;
	return 0;
}

/* The GOT slot the dynamic linker fills with @name's address (x86-64 .rela.plt). */
static int plt_slot(const struct pyx_elf *pe, const char *name, uint64_t *slot)
{
	GElf_Shdr shdr, sym_shdr;
	Elf_Scn *scn = find_section(pe, ".rela.plt", &shdr), *sym_scn;
	Elf_Data *relas, *syms;
	size_t i, count;

	if (!scn || shdr.sh_type != SHT_RELA || !shdr.sh_entsize)
		return -ENOENT;
	sym_scn = elf_getscn(pe->elf, shdr.sh_link);
	if (!sym_scn || !gelf_getshdr(sym_scn, &sym_shdr))
		return -ENOENT;
	relas = section_bytes(scn);
	syms = section_bytes(sym_scn);
	if (!relas || !syms)
		return -ENOENT;
	count = relas->d_size / shdr.sh_entsize;
	for (i = 0; i < count; i++) {
		const char *sym_name;
		GElf_Rela rela;
		GElf_Sym sym;

		if (!gelf_getrela(relas, (int)i, &rela) ||
		    GELF_R_TYPE(rela.r_info) != R_X86_64_JUMP_SLOT ||
		    !gelf_getsym(syms, (int)GELF_R_SYM(rela.r_info), &sym))
			continue;
		sym_name = elf_strptr(pe->elf, sym_shdr.sh_link, sym.st_name);
		if (sym_name && !strcmp(sym_name, name)) {
			*slot = rela.r_offset;
			return 0;
		}
	}
	return -ENOENT;
}

/* A 16-byte PLT entry: [endbr64] [bnd] jmp *disp32(%rip). Where it jumps through, 0 if not that. */
static uint64_t plt_entry_slot(const unsigned char *entry, uint64_t addr)
{
	static const unsigned char endbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
	size_t at = 0;
	int32_t disp;

	if (!memcmp(entry, endbr64, sizeof(endbr64)))
		at += sizeof(endbr64);
	if (entry[at] == 0xf2) /* bnd */
		at++;
	if (entry[at] != 0xff || entry[at + 1] != 0x25)
		return 0;
	memcpy(&disp, entry + at + 2, sizeof(disp));
	return addr + at + 6 + (int64_t)disp;
}

int pyx_elf__plt_stub(const struct pyx_elf *pe, const char *name, uint64_t *stub)
{
	static const char *const sections[] = {".plt.sec", ".plt"};
	uint64_t slot;
	size_t i, off;

	if (pe->ehdr.e_machine != EM_X86_64 || plt_slot(pe, name, &slot))
		return -ENOENT;
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		GElf_Shdr shdr;
		Elf_Scn *scn = find_section(pe, sections[i], &shdr);
		Elf_Data *data = scn ? section_bytes(scn) : NULL;

		if (!data || shdr.sh_type != SHT_PROGBITS)
			continue;
		for (off = 0; off + 16 <= data->d_size; off += 16)
			if (plt_entry_slot((const unsigned char *)data->d_buf + off,
					   shdr.sh_addr + off) == slot) {
				*stub = shdr.sh_addr + off;
				return 0;
			}
	}
	return -ENOENT;
}

typedef int (*symbol_fn)(void *ctx, const struct pyx_elf_sym *sym);

/* Visit the defined, named symbols of every section of type @sh_type. */
static int walk_symbols(const struct pyx_elf *pe, Elf64_Word sh_type, symbol_fn fn, void *ctx)
{
	size_t entry_size = gelf_fsize(pe->elf, ELF_T_SYM, 1, EV_CURRENT);
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	if (!entry_size)
		return 0;
	while ((scn = elf_nextscn(pe->elf, scn))) {
		Elf_Data *data;
		size_t count, i;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != sh_type)
			continue;
		data = section_bytes(scn);
		if (!data)
			continue;
		count = data->d_size / entry_size;
		if (count > INT_MAX)
			count = INT_MAX; /* gelf_getsym() takes an int index */
		/* Entry 0 is the reserved null symbol. */
		for (i = 1; i < count; i++) {
			struct pyx_elf_sym sym;
			const char *name;
			GElf_Sym raw;
			int err;

			if (!gelf_getsym(data, (int)i, &raw))
				break;
			if (raw.st_shndx == SHN_UNDEF || !raw.st_name)
				continue;
			name = elf_strptr(pe->elf, shdr.sh_link, raw.st_name);
			if (!name || !*name)
				continue;
			sym.name = name;
			sym.value = raw.st_value;
			sym.size = raw.st_size;
			sym.type = GELF_ST_TYPE(raw.st_info);
			sym.bind = GELF_ST_BIND(raw.st_info);
			sym.dynamic = sh_type == SHT_DYNSYM;
			err = fn(ctx, &sym);
			if (err)
				return err;
		}
	}
	return 0;
}

struct symbol_search {
	const char *name;
	size_t name_len;
	struct pyx_elf_sym found;
	bool versioned_name; /* the name asked for has its own "@VERSION" */
	int found_rank;	     /* 0: nothing yet */
};

enum {
	RANK_LOCAL = 1,	 /* a static of some translation unit */
	RANK_HIDDEN = 2, /* "foo@V1": a non-default version kept for old binaries */
	RANK_DEFAULT = 3 /* "foo" or "foo@@V2": what a new link would bind to */
};

/*
 * "foo", "foo@V1" and "foo@@V2" are all the symbol foo; a name that spells
 * a version itself must match exactly. Returns 0 when not foo.
 */
static int symbol_rank(const struct pyx_elf_sym *sym, const char *name, size_t name_len,
		       bool versioned_name)
{
	const char *suffix = sym->name + name_len;

	if (strncmp(sym->name, name, name_len) || (*suffix && (*suffix != '@' || versioned_name)))
		return 0;
	if (sym->bind == STB_LOCAL)
		return RANK_LOCAL;
	if (*suffix == '@' && suffix[1] != '@')
		return RANK_HIDDEN;
	return RANK_DEFAULT;
}

/* Keep the best-ranked match, the first among equals; a default global one ends the search. */
static int match_symbol(void *ctx, const struct pyx_elf_sym *sym)
{
	struct symbol_search *search = ctx;
	int rank = symbol_rank(sym, search->name, search->name_len, search->versioned_name);

	if (rank > search->found_rank) {
		search->found = *sym;
		search->found_rank = rank;
	}
	return rank == RANK_DEFAULT;
}

int pyx_elf__find_symbol(const struct pyx_elf *pe, const char *name, struct pyx_elf_sym *sym)
{
	static const Elf64_Word tables[] = {SHT_SYMTAB, SHT_DYNSYM};
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		struct symbol_search search = {
			.name = name,
			.name_len = strlen(name),
			.versioned_name = strchr(name, '@') != NULL,
		};

		walk_symbols(pe, tables[i], match_symbol, &search);
		if (search.found_rank) {
			*sym = search.found;
			return 0;
		}
	}
	return -ENOENT;
}

int pyx_elf__for_each_symbol(const struct pyx_elf *pe,
			     int (*fn)(void *ctx, const struct pyx_elf_sym *sym), void *ctx)
{
	int err = walk_symbols(pe, SHT_SYMTAB, fn, ctx);

	return err ? err : walk_symbols(pe, SHT_DYNSYM, fn, ctx);
}

/*
 * The first PT_LOAD whose file-backed part (p_filesz, not p_memsz: .bss has
 * no bytes in the file) contains @vaddr.
 */
static bool find_load_segment(const struct pyx_elf *pe, uint64_t vaddr, GElf_Phdr *phdr)
{
	size_t phnum, i;

	if (elf_getphdrnum(pe->elf, &phnum))
		return false;
	for (i = 0; i < phnum; i++) {
		if (!gelf_getphdr(pe->elf, (int)i, phdr) || phdr->p_type != PT_LOAD)
			continue;
		if (vaddr >= phdr->p_vaddr && vaddr - phdr->p_vaddr < phdr->p_filesz)
			return true;
	}
	return false;
}

int pyx_elf__vaddr_to_offset(const struct pyx_elf *pe, uint64_t vaddr, uint64_t *offset)
{
	GElf_Phdr phdr;
	uint64_t delta;

	if (!find_load_segment(pe, vaddr, &phdr))
		return -ENOENT;
	delta = vaddr - phdr.p_vaddr;
	if (phdr.p_offset > UINT64_MAX - delta)
		return -ENOENT;
	*offset = phdr.p_offset + delta;
	return 0;
}

static int read_file(const struct pyx_elf *pe, uint64_t offset, void *buf, size_t len)
{
	size_t done = 0;

	if (offset > pe->size || len > pe->size - offset)
		return -EIO;
	if (pe->image) {
		memcpy(buf, pe->image + offset, len);
		return 0;
	}
	while (done < len) {
		ssize_t n = pread(pe->fd, (char *)buf + done, len - done, (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* truncated since we opened it */
		done += (size_t)n;
	}
	return 0;
}

int pyx_elf__read_vaddr(const struct pyx_elf *pe, uint64_t vaddr, void *buf, size_t len)
{
	GElf_Phdr phdr;
	uint64_t delta;

	if (!find_load_segment(pe, vaddr, &phdr))
		return -ENOENT;
	delta = vaddr - phdr.p_vaddr;
	if (len > phdr.p_filesz - delta)
		return -ERANGE;
	if (phdr.p_offset > UINT64_MAX - delta)
		return -EIO;
	return read_file(pe, phdr.p_offset + delta, buf, len);
}

int pyx_elf__tls(const struct pyx_elf *pe, uint64_t *memsz, uint64_t *align, uint64_t *vaddr)
{
	size_t phnum, i;
	GElf_Phdr phdr;

	if (elf_getphdrnum(pe->elf, &phnum))
		return -ENOENT;
	for (i = 0; i < phnum; i++) {
		if (!gelf_getphdr(pe->elf, (int)i, &phdr) || phdr.p_type != PT_TLS)
			continue;
		if (memsz)
			*memsz = phdr.p_memsz;
		if (align)
			*align = phdr.p_align;
		if (vaddr)
			*vaddr = phdr.p_vaddr;
		return 0;
	}
	return -ENOENT;
}

int pyx_elf__for_each_needed(const struct pyx_elf *pe, int (*fn)(void *ctx, const char *name),
			     void *ctx)
{
	size_t count = dynamic_count(pe), i;
	GElf_Dyn dyn;

	for (i = 0; i < count && gelf_getdyn(pe->dynamic, (int)i, &dyn); i++) {
		const char *name;
		int err;

		if (dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED)
			continue;
		name = dynamic_string(pe, dyn.d_un.d_val);
		if (!name)
			continue;
		err = fn(ctx, name);
		if (err)
			return err;
	}
	return 0;
}

const char *pyx_elf__soname(const struct pyx_elf *pe)
{
	return pe->soname;
}

const char *pyx_elf__runpath(const struct pyx_elf *pe)
{
	return pe->runpath;
}

/*
 * desc = pc, base, semaphore (one address each: 8 bytes in ELFCLASS64, 4 in
 * ELFCLASS32, file byte order), then "provider\0name\0args\0".
 */
static bool parse_stapsdt(const struct pyx_elf *pe, const struct note *note,
			  struct pyx_usdt_note *usdt, uint64_t *note_base)
{
	size_t addr_size = pe->ehdr.e_ident[EI_CLASS] == ELFCLASS32 ? 4 : 8;
	const char *strings[3];
	const unsigned char *pos, *end;
	size_t i;

	if (note->desc_size < 3 * addr_size)
		return false;
	usdt->pc = decode_uint(pe, note->desc, addr_size);
	*note_base = decode_uint(pe, note->desc + addr_size, addr_size);
	usdt->semaphore = decode_uint(pe, note->desc + 2 * addr_size, addr_size);

	pos = note->desc + 3 * addr_size;
	end = note->desc + note->desc_size;
	for (i = 0; i < 3; i++) {
		const unsigned char *nul = memchr(pos, '\0', (size_t)(end - pos));

		if (!nul)
			return false;
		strings[i] = (const char *)pos;
		pos = nul + 1;
	}
	usdt->provider = strings[0];
	usdt->name = strings[1];
	usdt->args = strings[2];
	return true;
}

int pyx_elf__for_each_usdt(const struct pyx_elf *pe,
			   int (*fn)(void *ctx, const struct pyx_usdt_note *note), void *ctx)
{
	uint64_t base_section_addr = 0;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	/* Absent outside prelinked-or-not SDT objects; 0 then disables the adjustment. */
	pyx_elf__section(pe, ".stapsdt.base", &base_section_addr, NULL, NULL);

	while ((scn = elf_nextscn(pe->elf, scn))) {
		const char *name;
		Elf_Data *data;
		struct note note;
		size_t pos = 0, align;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		name = section_name(pe, &shdr);
		if (!name || strcmp(name, ".note.stapsdt"))
			continue;
		data = section_bytes(scn);
		if (!data)
			continue;
		align = shdr.sh_addralign == 8 ? 8 : 4;
		while (next_note(data->d_buf, data->d_size, align, &pos, &note)) {
			struct pyx_usdt_note usdt;
			uint64_t note_base;
			int err;

			if (note.type != PYX_NT_STAPSDT || !note_owner_is(&note, "stapsdt"))
				continue;
			if (!parse_stapsdt(pe, &note, &usdt, &note_base))
				continue;
			/*
			 * The note records .stapsdt.base's link-time address;
			 * prelink moves the section but not the note, so the
			 * difference is how far the probe moved too. The
			 * semaphore is left as recorded, as libbpf does.
			 */
			if (base_section_addr && note_base)
				usdt.pc += base_section_addr - note_base;
			err = fn(ctx, &usdt);
			if (err)
				return err;
		}
	}
	return 0;
}

static bool is_text_byte(unsigned char c)
{
	return (c >= 0x20 && c <= 0x7e) || c == '\t' || c == '\n';
}

int pyx_elf__for_each_string(const struct pyx_elf *pe, const char *section, size_t min_len,
			     int (*fn)(void *ctx, const char *str, size_t len, uint64_t vaddr),
			     void *ctx)
{
	const unsigned char *bytes;
	size_t start = 0, i;
	GElf_Shdr shdr;
	Elf_Scn *scn;
	Elf_Data *data;

	scn = find_section(pe, section, &shdr);
	if (!scn)
		return -ENOENT;
	data = section_bytes(scn);
	if (!data)
		return 0;
	if (!min_len)
		min_len = 1;
	bytes = data->d_buf;
	for (i = 0; i < data->d_size; i++) {
		int err;

		if (is_text_byte(bytes[i]))
			continue;
		/* Only a NUL-terminated run is a C string; anything else resets. */
		if (bytes[i] == '\0' && i - start >= min_len) {
			err = fn(ctx, (const char *)bytes + start, i - start, shdr.sh_addr + start);
			if (err)
				return err;
		}
		start = i + 1;
	}
	return 0;
}
