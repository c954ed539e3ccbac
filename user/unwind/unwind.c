// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native stacks with elfutils' libdwfl, from a captured register set and a
 * copy of the top of the stack: the target is never ptraced nor stopped.
 *
 * One Dwfl per target, reported once in pyx_unwinder__new(): every
 * executable mapped object, opened through /proc/PID/map_files (the inode
 * that is mapped, even if deleted or replaced on disk), plus [vdso] copied
 * out of the target's memory. Separate debug files (and dwz alt files) are
 * looked up inside the target's root at that point too, so that nothing is
 * opened by a host path and the Dwfl keeps working after the target exits:
 * a crash report unwinds a stack copy of a process that is gone.
 *
 * Unwinding goes through dwfl_attach_state() with our own thread callbacks:
 * the "thread" is the captured register set, memory is the stack copy first
 * and the live process second. libdwfl tries .eh_frame, then .debug_frame,
 * and without CFI for a pc its x86-64 backend follows the frame pointer.
 *
 * Symbolization is cached per (build-id, offset in the object): a process
 * samples the same few thousand return addresses over and over, and DWARF
 * scope lookups are the expensive part.
 *
 * An unwinder is not thread-safe: one thread uses it at a time.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <elfutils/version.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/debuginfo.h"
#include "elf/elf.h"
#include "target/files.h"
#include "target/process.h"
#include "unwind/unwind.h"

/*
 * libstdc++'s demangler (abi::__cxa_demangle), looked up on first use:
 * linking libstdc++ into every run costs megabytes of resident memory for
 * the few that meet a C++ frame.
 */
typedef char *(*cxa_demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

static cxa_demangle_fn find_demangler(void)
{
	static cxa_demangle_fn fn;
	static bool tried;
	void *lib;

	if (tried)
		return fn;
	tried = true;
	lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
	if (lib)
		*(void **)&fn = dlsym(lib, "__cxa_demangle");
	return fn;
}

#define DEBUG_ROOT "/usr/lib/debug"

/* x86-64 DWARF register numbers: rax rdx rcx rbx rsi rdi rbp rsp r8..r15. */
#define DWARF_REG_SP 7
#define DWARF_NR_GP  16

#define BUILD_ID_HEX_MAX (2 * 64 + 1)
/* [vdso] is one or two pages; anything much larger is not what we think it is. */
#define VDSO_MAX_SIZE (1 << 20)
/* Function scopes around one pc: inlined calls nest a few deep, rarely dozens. */
#define MAX_INLINE_DEPTH 64
/* Cached pcs per unwinder; past this, pcs are symbolized each time. */
#define CACHE_MAX_ENTRIES (1u << 16)
#define STRING_CHUNK	  (64 * 1024)

struct module {
	Dwfl_Module *mod;
	char *path; /* as /proc/PID/maps shows it, or "[vdso]" */
	pid_t pid;  /* for map_files in find_elf() */
	uint64_t map_start, map_end;
	int64_t bias; /* runtime address - link-time address */
	uint32_t key; /* cache key: the same for equal build-ids */
	char build_id[BUILD_ID_HEX_MAX];
	int debug_fd;	/* separate debug file, -1 */
	int alt_fd;	/* dwz alt file of the DWARF, -1 */
	char *alt_name; /* as .gnu_debugaltlink names it */
	void *image;	/* [vdso]: its bytes, for elf_memory() */
	size_t image_size;
	/* Which of its ELF files (main, debug, minidebuginfo) have a .symtab. */
	struct {
		Elf *elf;
		bool has_symtab;
	} symtabs[3];
};

/* One symbolized frame of a pc; addresses are link-time, the bias added on output. */
struct sym_entry {
	const char *symbol;
	const char *file;
	uint64_t symbol_start;
	uint64_t symbol_offset;
	int line;
	bool inlined;
};

struct cache_slot {
	uint64_t offset; /* lookup pc - bias */
	uint32_t key;
	uint32_t first; /* into u->entries */
	uint32_t count;
	bool used;
};

struct string_chunk {
	struct string_chunk *next;
	size_t used, size;
	char data[];
};

/* Interned strings: stable pointers for the unwinder's lifetime. */
struct string_pool {
	const char **slots; /* open addressing, power-of-two capacity */
	size_t cap, count;
	struct string_chunk *chunks;
};

struct pyx_unwinder {
	/*
	 * Only pid is set: what pyx_process__read() needs, without keeping the
	 * caller's pyx_process, which may be closed before we are.
	 */
	struct pyx_process target;
	Dwfl *dwfl;
	struct module *mods;
	size_t nr_mods;
	/* The unwind in progress, for the thread callbacks. */
	struct {
		pid_t tid;
		const struct pyx_regs *regs;
		const struct pyx_stack_copy *stack;
		bool stack_only;
	} cur;
	struct cache_slot *cache;
	size_t cache_cap, cache_count;
	struct sym_entry *entries;
	size_t nr_entries, entries_cap;
	struct string_pool strings;
	bool oom;
	struct pyx_unwind_stats stats;
};

/* ---- strings ---- */

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static char *pool_alloc(struct string_pool *pool, size_t len)
{
	struct string_chunk *chunk = pool->chunks;
	char *p;

	if (!chunk || chunk->size - chunk->used < len) {
		size_t size = len > STRING_CHUNK ? len : STRING_CHUNK;

		chunk = malloc(sizeof(*chunk) + size);
		if (!chunk)
			return NULL;
		chunk->size = size;
		chunk->used = 0;
		chunk->next = pool->chunks;
		pool->chunks = chunk;
	}
	p = chunk->data + chunk->used;
	chunk->used += len;
	return p;
}

static int pool_grow(struct string_pool *pool)
{
	size_t cap = pool->cap ? pool->cap * 2 : 1024, i;
	const char **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < pool->cap; i++) {
		const char *s = pool->slots[i];
		size_t j;

		if (!s)
			continue;
		for (j = hash_bytes(s, strlen(s)) & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
			;
		slots[j] = s;
	}
	free(pool->slots);
	pool->slots = slots;
	pool->cap = cap;
	return 0;
}

/* @s as a string owned by the unwinder, NULL for NULL; sets u->oom on failure. */
static const char *intern(struct pyx_unwinder *u, const char *s)
{
	struct string_pool *pool = &u->strings;
	size_t len, i;
	char *copy;

	if (!s)
		return NULL;
	if ((pool->count + 1) * 2 > pool->cap && pool_grow(pool)) {
		u->oom = true;
		return NULL;
	}
	len = strlen(s);
	for (i = hash_bytes(s, len) & (pool->cap - 1); pool->slots[i];
	     i = (i + 1) & (pool->cap - 1))
		if (!strcmp(pool->slots[i], s))
			return pool->slots[i];
	copy = pool_alloc(pool, len + 1);
	if (!copy) {
		u->oom = true;
		return NULL;
	}
	memcpy(copy, s, len + 1);
	pool->slots[i] = copy;
	pool->count++;
	return copy;
}

/* C++ names demangled ("ns::Klass::method(int)"); anything else as it is. */
static const char *intern_symbol(struct pyx_unwinder *u, const char *name)
{
	const char *result;
	char *demangled;
	int status;

	cxa_demangle_fn demangle;

	if (!name || name[0] != '_' || name[1] != 'Z' || !(demangle = find_demangler()))
		return intern(u, name);
	demangled = demangle(name, NULL, NULL, &status);
	if (!demangled)
		return intern(u, name);
	result = intern(u, demangled);
	free(demangled);
	return result;
}

/*
 * An ELF symbol's name without its version: glibc's .symtab spells some
 * "__libc_start_main@@GLIBC_2.34"; the function is __libc_start_main.
 */
static const char *intern_elf_symbol(struct pyx_unwinder *u, const char *name)
{
	const char *at = strchr(name, '@');
	char buf[512];

	if (!at || at == name || (size_t)(at - name) >= sizeof(buf))
		return intern_symbol(u, name);
	memcpy(buf, name, (size_t)(at - name));
	buf[at - name] = '\0';
	return intern_symbol(u, buf);
}

static void pool_free(struct string_pool *pool)
{
	struct string_chunk *chunk = pool->chunks, *next;

	for (; chunk; chunk = next) {
		next = chunk->next;
		free(chunk);
	}
	free(pool->slots);
}

/* ---- symbolization cache ---- */

static size_t cache_hash(uint32_t key, uint64_t offset, size_t cap)
{
	uint64_t h = (offset ^ ((uint64_t)key << 40)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (cap - 1);
}

static struct cache_slot *cache_lookup(struct pyx_unwinder *u, uint32_t key, uint64_t offset)
{
	size_t i;

	if (!u->cache_cap)
		return NULL;
	for (i = cache_hash(key, offset, u->cache_cap); u->cache[i].used;
	     i = (i + 1) & (u->cache_cap - 1))
		if (u->cache[i].key == key && u->cache[i].offset == offset)
			return &u->cache[i];
	return NULL;
}

static int cache_grow(struct pyx_unwinder *u)
{
	size_t cap = u->cache_cap ? u->cache_cap * 2 : 1024, i;
	struct cache_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < u->cache_cap; i++) {
		const struct cache_slot *old = &u->cache[i];
		size_t j;

		if (!old->used)
			continue;
		for (j = cache_hash(old->key, old->offset, cap); slots[j].used;
		     j = (j + 1) & (cap - 1))
			;
		slots[j] = *old;
	}
	free(u->cache);
	u->cache = slots;
	u->cache_cap = cap;
	return 0;
}

/* Keep entries [first, first + count) for this pc; false when the cache is full. */
static bool cache_insert(struct pyx_unwinder *u, uint32_t key, uint64_t offset, size_t first,
			 size_t count)
{
	size_t i;

	if (u->cache_count >= CACHE_MAX_ENTRIES)
		return false;
	if ((u->cache_count + 1) * 2 > u->cache_cap && cache_grow(u))
		return false;
	for (i = cache_hash(key, offset, u->cache_cap); u->cache[i].used;
	     i = (i + 1) & (u->cache_cap - 1))
		;
	u->cache[i] = (struct cache_slot){
		.offset = offset,
		.key = key,
		.first = (uint32_t)first,
		.count = (uint32_t)count,
		.used = true,
	};
	u->cache_count++;
	return true;
}

static struct sym_entry *add_entry(struct pyx_unwinder *u)
{
	if (u->nr_entries == u->entries_cap) {
		size_t cap = u->entries_cap ? u->entries_cap * 2 : 1024;
		struct sym_entry *entries = realloc(u->entries, cap * sizeof(*entries));

		if (!entries) {
			u->oom = true;
			return NULL;
		}
		u->entries = entries;
		u->entries_cap = cap;
	}
	return memset(&u->entries[u->nr_entries++], 0, sizeof(struct sym_entry));
}

/* ---- DWARF: inlined calls ---- */

/*
 * The function DIEs active at @pc (CU-relative to libdw's bias), innermost
 * first: inlined instances, then the subprogram they were inlined into.
 * dwarf_getscopes() is only used for the innermost scope: past an inlined
 * instance it continues into the abstract definition's scopes, whereas the
 * callers an instance was inlined into are its parents in the DIE tree.
 */
static int function_scopes(Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die *out, int max)
{
	Dwarf_Die *scopes = NULL, inner;
	int n, i, count = 0;

	n = dwarf_getscopes(cudie, pc, &scopes);
	if (n <= 0) {
		free(scopes);
		return 0;
	}
	inner = scopes[0];
	free(scopes);
	scopes = NULL;
	n = dwarf_getscopes_die(&inner, &scopes);
	for (i = 0; i < n && count < max; i++) {
		int tag = dwarf_tag(&scopes[i]);

		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		out[count++] = scopes[i];
		if (tag == DW_TAG_subprogram)
			break;
	}
	free(scopes);
	return count;
}

static bool die_is_cxx(Dwarf_Die *die)
{
	Dwarf_Die cu;

	if (!dwarf_diecu(die, &cu, NULL, NULL))
		return false;
	switch (dwarf_srclang(&cu)) {
	case DW_LANG_C_plus_plus:
	case DW_LANG_C_plus_plus_03:
	case DW_LANG_C_plus_plus_11:
	case DW_LANG_C_plus_plus_14:
	case DW_LANG_ObjC_plus_plus:
		return true;
	default:
		return false;
	}
}

/*
 * "ns::Klass::name" for a C++ function that has no linkage name (GCC gives
 * none to functions with internal linkage): the namespaces and classes
 * around its declaration, which the abstract origin/specification chain
 * leads to.
 */
static const char *qualified_name(struct pyx_unwinder *u, Dwarf_Die *die, const char *name)
{
	Dwarf_Die decl = *die, next, *scopes = NULL;
	size_t len = 0, part_len;
	Dwarf_Attribute attr;
	char buf[1024];
	int n, i, hops;

	for (hops = 0; hops < 8; hops++) {
		if (!dwarf_formref_die(dwarf_attr(&decl, DW_AT_abstract_origin, &attr), &next) &&
		    !dwarf_formref_die(dwarf_attr(&decl, DW_AT_specification, &attr), &next))
			break;
		decl = next;
	}
	n = dwarf_getscopes_die(&decl, &scopes);
	buf[0] = '\0';
	for (i = n - 1; i > 0; i--) {
		int tag = dwarf_tag(&scopes[i]);
		const char *part;

		if (tag != DW_TAG_namespace && tag != DW_TAG_class_type &&
		    tag != DW_TAG_structure_type && tag != DW_TAG_union_type)
			continue;
		part = dwarf_diename(&scopes[i]);
		if (!part)
			part = tag == DW_TAG_namespace ? "(anonymous namespace)" : "(anonymous)";
		part_len = strlen(part);
		if (len + part_len + 2 >= sizeof(buf))
			break;
		memcpy(buf + len, part, part_len);
		memcpy(buf + len + part_len, "::", 3);
		len += part_len + 2;
	}
	free(scopes);
	if (!len || len + strlen(name) >= sizeof(buf))
		return intern(u, name);
	strcpy(buf + len, name);
	return intern(u, buf);
}

/*
 * A function DIE's name: the linkage name demangled when there is one (C++:
 * "ns::Klass::method(int)" where DW_AT_name says "method"), else its name,
 * qualified for C++. Both follow DW_AT_abstract_origin and
 * DW_AT_specification.
 */
static const char *die_function_name(struct pyx_unwinder *u, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name;

	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (name)
		return intern_symbol(u, name);
	name = dwarf_diename(die);
	if (name && die_is_cxx(die))
		return qualified_name(u, die, name);
	return intern(u, name);
}

/* Start of the DIE's address range holding @pc (inlined code is often split in several). */
static Dwarf_Addr die_range_start(Dwarf_Die *die, Dwarf_Addr pc)
{
	Dwarf_Addr base, start, end, entry;
	ptrdiff_t off = 0;

	while ((off = dwarf_ranges(die, off, &base, &start, &end)) > 0)
		if (pc >= start && pc < end)
			return start;
	if (dwarf_entrypc(die, &entry) == 0 && entry <= pc)
		return entry;
	return pc;
}

/* Where an inlined instance was called from: DW_AT_call_file/DW_AT_call_line. */
static void call_site(struct pyx_unwinder *u, Dwarf_Die *inlined, const char **file, int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Files *files;
	Dwarf_Word value;
	Dwarf_Die cu;
	size_t nfiles;

	*file = NULL;
	*line = 0;
	if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0 &&
	    value <= INT_MAX)
		*line = (int)value;
	if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) == 0 &&
	    dwarf_diecu(inlined, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
	    value < nfiles)
		*file = intern(u, dwarf_filesrc(files, value, NULL, NULL));
}

/* ---- symbolization ---- */

/*
 * Whether @elf, one of @m's files, has a .symtab. A sizeless symbol (asm
 * without .size, like glibc's __restore_rt) is only trusted from there: in
 * a full table the next function has its own entry, so the symbol ends
 * where that one begins; in a .dynsym the next one may be missing.
 */
static bool elf_has_symtab(struct module *m, Elf *elf)
{
	const size_t slots = sizeof(m->symtabs) / sizeof(m->symtabs[0]);
	Elf_Scn *scn = NULL;
	bool found = false;
	GElf_Shdr shdr;
	size_t i;

	for (i = 0; i < slots && m->symtabs[i].elf; i++)
		if (m->symtabs[i].elf == elf)
			return m->symtabs[i].has_symtab;
	while (!found && (scn = elf_nextscn(elf, scn)))
		found = gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_SYMTAB;
	if (i < slots) {
		m->symtabs[i].elf = elf;
		m->symtabs[i].has_symtab = found;
	}
	return found;
}

/*
 * Append the frames of runtime address @pc in @m to u->entries: inlined
 * calls innermost first, then the function holding them.
 */
static void resolve(struct pyx_unwinder *u, struct module *m, Dwarf_Addr pc)
{
	Dwarf_Die funcs[MAX_INLINE_DEPTH], *cudie;
	const char *elf_name, *line_file = NULL;
	Dwarf_Addr dwbias = 0;
	GElf_Off sym_off = 0;
	Elf *sym_elf = NULL;
	int nfuncs = 0, line_no = 0, j;
	struct sym_entry *e;
	Dwfl_Line *line;
	GElf_Sym sym;

	/*
	 * The nearest preceding symbol is only trusted when the pc lies inside
	 * it: in a stripped object, a static function's code follows some
	 * exported one, and naming it after that one would be wrong. Sizeless
	 * symbols: see elf_has_symtab().
	 */
	elf_name = dwfl_module_addrinfo(m->mod, pc, &sym_off, &sym, NULL, &sym_elf, NULL);
	if (elf_name && (!*elf_name || (sym.st_size && sym_off >= sym.st_size) ||
			 (!sym.st_size && (!sym_elf || !elf_has_symtab(m, sym_elf)))))
		elf_name = NULL;

	line = dwfl_module_getsrc(m->mod, pc);
	if (line) {
		line_file = intern(u, dwfl_lineinfo(line, NULL, &line_no, NULL, NULL, NULL));
		if (line_no < 0)
			line_no = 0;
	}
	cudie = dwfl_module_addrdie(m->mod, pc, &dwbias);
	if (cudie)
		nfuncs = function_scopes(cudie, pc - dwbias, funcs, MAX_INLINE_DEPTH);

	if (!nfuncs) {
		e = add_entry(u);
		if (!e)
			return;
		if (elf_name) {
			e->symbol = intern_elf_symbol(u, elf_name);
			e->symbol_start = pc - sym_off - (uint64_t)m->bias;
			e->symbol_offset = sym_off;
		}
		e->file = line_file;
		e->line = line_no;
		return;
	}
	for (j = 0; j < nfuncs; j++) {
		bool outer = j == nfuncs - 1;
		Dwarf_Addr start;

		e = add_entry(u);
		if (!e)
			return;
		e->inlined = !outer;
		if (outer && elf_name) {
			/* The ELF symbol has the full C++ name and any .cold/.constprop suffix. */
			e->symbol = intern_elf_symbol(u, elf_name);
			start = pc - sym_off;
		} else {
			e->symbol = die_function_name(u, &funcs[j]);
			start = die_range_start(&funcs[j], pc - dwbias) + dwbias;
		}
		if (e->symbol) {
			e->symbol_start = start - (uint64_t)m->bias;
			e->symbol_offset = pc - start;
		}
		/* The innermost line is the line table's; each caller's is its call site. */
		if (j == 0) {
			e->file = line_file;
			e->line = line_no;
		} else {
			call_site(u, &funcs[j - 1], &e->file, &e->line);
		}
	}
}

/*
 * The entries for @pc in @m: [*first, *first + *count) of u->entries, from
 * the cache or resolved now. *cached is false when they were not kept: the
 * caller drops them after use.
 */
static int symbolize(struct pyx_unwinder *u, struct module *m, Dwarf_Addr pc, size_t *first,
		     size_t *count, bool *cached)
{
	uint64_t offset = pc - (uint64_t)m->bias;
	struct cache_slot *slot = cache_lookup(u, m->key, offset);

	if (slot) {
		u->stats.cache_hits++;
		*first = slot->first;
		*count = slot->count;
		*cached = true;
		return 0;
	}
	u->stats.cache_misses++;
	*first = u->nr_entries;
	resolve(u, m, pc);
	if (u->oom) {
		u->oom = false;
		u->nr_entries = *first;
		return -ENOMEM;
	}
	*count = u->nr_entries - *first;
	*cached = cache_insert(u, m->key, offset, *first, *count);
	return 0;
}

/* ---- libdwfl callbacks: modules ---- */

static struct module *module_of(Dwfl_Module *mod)
{
	void **userdata = NULL;

	if (!mod || !dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL) ||
	    !userdata)
		return NULL;
	return *userdata;
}

/*
 * Only for modules not reported with an fd: [vdso] (its bytes copied out of
 * the target) and objects whose bias we could not compute (libdwfl then
 * derives it from the lowest mapping). Never a path: on the host it may be
 * another file, or none.
 */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	struct module *m = *userdata;
	int fd;

	if (!m)
		return -1;
	if (m->image) {
		*elfp = elf_memory(m->image, m->image_size);
		return -1;
	}
	fd = pyx_map_file_open(m->pid, m->map_start, m->map_end);
	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	*elfp = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!*elfp) {
		close(fd);
		errno = ENOEXEC;
		return -1;
	}
	return fd;
}

/*
 * Hands libdwfl the debug file (or, when asked for the name in
 * .gnu_debugaltlink, the dwz alt file) found in the target's root by
 * pyx_unwinder__new(). Never sets *debuginfo_file_name: libdwfl would open
 * that path on the host when no fd is returned.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	struct module *m = *userdata;
	int src, fd;

	if (!m)
		return -1;
	if (m->alt_name && debuglink_file && !strcmp(debuglink_file, m->alt_name))
		src = m->alt_fd;
	else
		src = m->debug_fd;
	if (src < 0)
		return -1;
	/* libdwfl owns (and closes) what we return; ours stays for another ask. */
	fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -1 : fd;
}

static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
	/* Only ET_REL files need it; harmless for the others. */
	.section_address = dwfl_offline_section_address,
};

/* ---- libdwfl callbacks: the captured thread ---- */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct pyx_unwinder *u = arg;

	if (*thread_argp || !u->cur.regs)
		return 0;
	*thread_argp = u;
	return u->cur.tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct pyx_unwinder *u = arg;

	if (!u->cur.regs || tid != u->cur.tid)
		return false;
	*thread_argp = u;
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct pyx_unwinder *u = arg;
	const struct pyx_stack_copy *stack = u->cur.stack;

	if (stack && stack->len >= sizeof(*result) && addr >= stack->start &&
	    addr - stack->start <= stack->len - sizeof(*result)) {
		memcpy(result, stack->data + (addr - stack->start), sizeof(*result));
		u->stats.stack_reads++;
		return true;
	}
	if (u->cur.stack_only || pyx_process__read(&u->target, addr, result, sizeof(*result))) {
		u->stats.failed_reads++;
		return false;
	}
	u->stats.live_reads++;
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct pyx_unwinder *u = arg;
	const struct pyx_regs *r = u->cur.regs;
	/* DWARF order, not pt_regs order. */
	const Dwarf_Word regs[DWARF_NR_GP] = {
		r->ax, r->dx, r->cx,  r->bx,  r->si,  r->di,  r->bp,  r->sp,
		r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
	};

	if (!dwfl_thread_state_registers(thread, 0, DWARF_NR_GP, regs))
		return false;
	dwfl_thread_state_register_pc(thread, r->ip);
	return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

/* ---- unwinding ---- */

struct unwind_ctx {
	struct pyx_unwinder *u;
	struct pyx_native_frame *frames;
	size_t max, n;
	size_t physical;
	uint64_t prev_sp;
	int err;
};

static void emit(struct unwind_ctx *ctx, const struct module *m, Dwarf_Addr pc, Dwarf_Addr lookup,
		 const struct sym_entry *e)
{
	struct pyx_native_frame *f = &ctx->frames[ctx->n++];

	memset(f, 0, sizeof(*f));
	f->pc = pc;
	f->lookup_pc = lookup;
	if (!m)
		return;
	f->object = m->path;
	/* The link-time address: what addr2line, objdump and readelf take. */
	f->object_offset = lookup - (uint64_t)m->bias;
	if (!e)
		return;
	f->symbol = e->symbol;
	if (e->symbol) {
		f->symbol_start = e->symbol_start + (uint64_t)m->bias;
		f->symbol_offset = e->symbol_offset;
	}
	f->file = e->file;
	f->line = e->line;
	f->inlined = e->inlined;
}

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
	struct unwind_ctx *ctx = arg;
	struct pyx_unwinder *u = ctx->u;
	size_t first, count, i;
	Dwarf_Addr pc, lookup;
	bool activation, cached;
	struct module *m;
	Dwarf_Word sp;
	int err;

	if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0)
		return DWARF_CB_ABORT;
	/* Each caller's frame lies above its callee's: anything else is a loop or garbage. */
	if (dwfl_frame_reg(frame, DWARF_REG_SP, &sp) == 0) {
		if (ctx->physical && sp <= ctx->prev_sp)
			return DWARF_CB_ABORT;
		ctx->prev_sp = sp;
	}
	/* A return address is past the call: look up the call itself. */
	lookup = activation ? pc : pc - 1;
	m = module_of(dwfl_addrmodule(u->dwfl, lookup));
	if (!m) {
		/*
		 * The thread really is executing there (JIT code, say); a
		 * return address outside every object is more likely a bad
		 * unwind than a real caller.
		 */
		if (!ctx->physical)
			emit(ctx, NULL, pc, lookup, NULL);
		return DWARF_CB_ABORT;
	}
#if _ELFUTILS_VERSION >= 192
	if (dwfl_frame_unwound_source(frame) == DWFL_UNWOUND_EBL)
		u->stats.fp_frames++;
#endif
	ctx->physical++;
	u->stats.frames++;

	err = symbolize(u, m, lookup, &first, &count, &cached);
	if (err) {
		ctx->err = err;
		return DWARF_CB_ABORT;
	}
	if (!count)
		emit(ctx, m, pc, lookup, NULL);
	for (i = 0; i < count && ctx->n < ctx->max; i++)
		emit(ctx, m, pc, lookup, &u->entries[first + i]);
	if (!cached)
		u->nr_entries = first;
	return ctx->n < ctx->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int pyx_unwinder__unwind(struct pyx_unwinder *u, pid_t tid, const struct pyx_regs *regs,
			 const struct pyx_stack_copy *stack, bool stack_only,
			 struct pyx_native_frame *frames, size_t max, size_t *n)
{
	struct unwind_ctx ctx = {
		.u = u,
		.frames = frames,
		.max = max,
	};

	if (n)
		*n = 0;
	if (!u || !regs || tid <= 0 || !n || (max && !frames) ||
	    (stack && stack->len && !stack->data))
		return -EINVAL;
	if (!max || !regs->ip)
		return 0;
	u->cur.tid = tid;
	u->cur.regs = regs;
	u->cur.stack = stack;
	u->cur.stack_only = stack_only;
	u->stats.unwinds++;
	/*
	 * -1 is also how libdwfl ends at an unreadable or undefined return
	 * address: a short stack, not an error of ours.
	 */
	dwfl_getthread_frames(u->dwfl, tid, frame_cb, &ctx);
	memset(&u->cur, 0, sizeof(u->cur));
	*n = ctx.n;
	return ctx.err;
}

/* ---- reporting ---- */

static void hex_encode(const unsigned char *bytes, size_t len, char *hex, size_t size)
{
	size_t i;

	hex[0] = '\0';
	if (2 * len + 1 > size)
		return;
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
}

/* .gnu_debugaltlink of the ELF file @fd: a file name and the alt file's build-id. */
static int read_altlink(int fd, char *name, size_t name_size, char *hex, size_t hex_size)
{
	Elf_Scn *scn = NULL;
	int err = -ENOENT;
	size_t shstrndx;
	Elf *elf;

	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_getshdrstrndx(elf, &shstrndx))
		goto out;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *scn_name;
		size_t name_len;
		Elf_Data *data;
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
			continue;
		scn_name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!scn_name || strcmp(scn_name, ".gnu_debugaltlink"))
			continue;
		err = -EINVAL;
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf)
			break;
		name_len = strnlen(data->d_buf, data->d_size);
		if (!name_len || name_len + 1 >= data->d_size || name_len >= name_size)
			break;
		memcpy(name, data->d_buf, name_len + 1);
		hex_encode((const unsigned char *)data->d_buf + name_len + 1,
			   data->d_size - name_len - 1, hex, hex_size);
		err = hex[0] ? 0 : -EINVAL;
		break;
	}
out:
	elf_end(elf);
	return err;
}

/* An fd of @path in the target's root when it is a regular ELF file with build-id @hex. */
static int open_alt_candidate(int root_fd, const char *path, const char *hex)
{
	char have[BUILD_ID_HEX_MAX];
	struct pyx_elf *elf;
	struct stat st;
	bool ok;
	int fd;

	/* O_NONBLOCK: whatever sits at that path in the target's root, a FIFO must not hang us. */
	fd = pyx_root_openat(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1;
	elf = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pyx_elf__open_fd(fd) : NULL;
	ok = elf && !pyx_elf__build_id(elf, have, sizeof(have)) && !strcmp(have, hex);
	pyx_elf__close(elf);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * dwz's alt file for the DWARF in @fd (at @path in the target's root): named
 * absolute or relative to that file's directory, else by its build-id. Only
 * the very build named is taken: another one's DIE offsets would be garbage.
 */
static void find_alt_file(struct module *m, int root_fd, int fd, const char *path)
{
	char name[PATH_MAX], hex[BUILD_ID_HEX_MAX], candidate[PATH_MAX];
	const char *slash;
	int len;

	if (read_altlink(fd, name, sizeof(name), hex, sizeof(hex)))
		return;
	if (name[0] == '/') {
		m->alt_fd = open_alt_candidate(root_fd, name, hex);
	} else if ((slash = strrchr(path, '/'))) {
		len = snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)(slash - path), path,
			       name);
		if (len > 0 && (size_t)len < sizeof(candidate))
			m->alt_fd = open_alt_candidate(root_fd, candidate, hex);
	}
	if (m->alt_fd < 0 && strlen(hex) > 2) {
		len = snprintf(candidate, sizeof(candidate), DEBUG_ROOT "/.build-id/%.2s/%s.debug",
			       hex, hex + 2);
		if (len > 0 && (size_t)len < sizeof(candidate))
			m->alt_fd = open_alt_candidate(root_fd, candidate, hex);
	}
	if (m->alt_fd < 0)
		return;
	m->alt_name = strdup(name);
	if (!m->alt_name) {
		close(m->alt_fd);
		m->alt_fd = -1;
	}
}

/*
 * Separate debug file and dwz alt file of an object, looked up now, inside
 * the target's root: libdwfl asks for them lazily, possibly after the target
 * (and so its root) is gone.
 */
static void find_debug_files(struct pyx_unwinder *u, struct module *m, int root_fd,
			     const struct pyx_elf *elf, int elf_fd)
{
	struct pyx_debuginfo info;

	if (pyx_debuginfo__find(root_fd, m->path, elf, &info))
		return;
	if (info.source == PYX_DWARF_EMBEDDED) {
		find_alt_file(m, root_fd, elf_fd, m->path);
	} else if (info.fd >= 0) {
		m->debug_fd = info.fd;
		info.fd = -1;
		u->stats.debug_files++;
		find_alt_file(m, root_fd, m->debug_fd, info.path);
	}
	if (m->alt_fd >= 0)
		u->stats.alt_files++;
	pyx_debuginfo__release(&info);
}

static struct module *new_module(struct pyx_unwinder *u, const char *path)
{
	struct module *m = &u->mods[u->nr_mods];

	memset(m, 0, sizeof(*m));
	m->pid = u->target.pid;
	m->debug_fd = -1;
	m->alt_fd = -1;
	m->path = strdup(path);
	return m->path ? m : NULL;
}

static void module_free(struct module *m)
{
	if (m->debug_fd >= 0)
		close(m->debug_fd);
	if (m->alt_fd >= 0)
		close(m->alt_fd);
	free(m->alt_name);
	free(m->path);
	free(m->image);
}

static void attach_module(struct pyx_unwinder *u, struct module *m, Dwfl_Module *mod)
{
	void **userdata = NULL;

	dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
	*userdata = m;
	m->mod = mod;
	u->nr_mods++;
}

static int report_object(struct pyx_unwinder *u, struct pyx_process *proc, struct pyx_object *obj)
{
	struct pyx_elf *elf = pyx_process__object_elf(proc, obj);
	struct module *m;
	Dwfl_Module *mod;
	int fd;

	/* ENOTSUP: mapped at a layout compute_bias() does not know; libdwfl can still place it. */
	if (!elf && errno != ENOTSUP)
		return 0;
	m = new_module(u, obj->path);
	if (!m)
		return -ENOMEM;
	m->map_start = obj->map_start;
	m->map_end = obj->map_end;
	if (elf) {
		/* libdwfl consumes the fd on success; obj->fd stays the caller's. */
		fd = fcntl(obj->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			module_free(m);
			return -errno;
		}
		/* add_p_vaddr: @base is the bias itself, for ET_DYN; ET_EXEC ignores it. */
		mod = dwfl_report_elf(u->dwfl, obj->path, obj->path, fd, (GElf_Addr)obj->bias,
				      true);
		if (!mod)
			close(fd);
	} else {
		mod = dwfl_report_module(u->dwfl, obj->path, obj->start, obj->end);
	}
	if (!mod) {
		module_free(m);
		return 0;
	}
	attach_module(u, m, mod);
	if (elf) {
		find_debug_files(u, m, proc->root_fd, elf, obj->fd);
	} else {
		int map_fd = pyx_map_file_open(proc->pid, obj->map_start, obj->map_end);

		elf = map_fd >= 0 ? pyx_elf__open_fd(map_fd) : NULL;
		if (elf)
			find_debug_files(u, m, proc->root_fd, elf, map_fd);
		pyx_elf__close(elf);
		if (map_fd >= 0)
			close(map_fd);
	}
	return 0;
}

/* [vdso]'s range from /proc/PID/maps: it is no file, so not among proc->objects. */
static int find_vdso(pid_t pid, uint64_t *start, uint64_t *end)
{
	char path[64], line[512];
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		size_t len = strcspn(line, "\n");

		line[len] = '\0';
		if (len < 6 || strcmp(line + len - 6, "[vdso]") ||
		    sscanf(line, "%llx-%llx", &lo, &hi) != 2 || hi <= lo)
			continue;
		*start = lo;
		*end = hi;
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

/*
 * Code in [vdso] (clock_gettime, gettimeofday) shows up in sampled stacks,
 * and its CFI is what gets us back into libc. Its bytes are the target's
 * own, read once: no file to open.
 */
static int report_vdso(struct pyx_unwinder *u)
{
	uint64_t start, end;
	struct module *m;
	Dwfl_Module *mod;

	if (find_vdso(u->target.pid, &start, &end) || end - start > VDSO_MAX_SIZE)
		return 0;
	m = new_module(u, "[vdso]");
	if (!m)
		return -ENOMEM;
	m->image_size = end - start;
	m->image = malloc(m->image_size);
	if (!m->image) {
		module_free(m);
		return -ENOMEM;
	}
	if (pyx_process__read(&u->target, start, m->image, m->image_size) ||
	    !(mod = dwfl_report_module(u->dwfl, "[vdso]", start, end))) {
		module_free(m);
		return 0;
	}
	attach_module(u, m, mod);
	return 0;
}

/* After dwfl_report_end(): open each ELF now (find_elf needs the process) and key it. */
static void finish_module(struct pyx_unwinder *u, size_t idx)
{
	struct module *m = &u->mods[idx];
	const unsigned char *bits;
	Dwarf_Addr bias, start;
	GElf_Addr vaddr;
	size_t i;
	int len;

	if (dwfl_module_getelf(m->mod, &bias)) {
		m->bias = (int64_t)bias;
	} else {
		dwfl_module_info(m->mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
		m->bias = (int64_t)start;
	}
	len = dwfl_module_build_id(m->mod, &bits, &vaddr);
	if (len > 0)
		hex_encode(bits, (size_t)len, m->build_id, sizeof(m->build_id));
	m->key = (uint32_t)idx;
	if (!m->build_id[0])
		return;
	for (i = 0; i < idx; i++) {
		if (!strcmp(u->mods[i].build_id, m->build_id)) {
			m->key = u->mods[i].key;
			break;
		}
	}
}

/* The first reported object that is x86-64 code, or NULL. */
static Elf *x86_64_elf(struct pyx_unwinder *u)
{
	GElf_Ehdr ehdr;
	Dwarf_Addr bias;
	size_t i;

	for (i = 0; i < u->nr_mods; i++) {
		Elf *elf = dwfl_module_getelf(u->mods[i].mod, &bias);

		if (elf && gelf_getclass(elf) == ELFCLASS64 && gelf_getehdr(elf, &ehdr) &&
		    ehdr.e_machine == EM_X86_64)
			return elf;
	}
	return NULL;
}

void pyx_unwinder__preload(struct pyx_unwinder *u)
{
	Dwarf_Addr bias;
	size_t i;

	/*
	 * What the first symbolization of each object would load: its symbol
	 * table, its debug file and address ranges (tens of milliseconds for an
	 * interpreter with full DWARF).
	 */
	for (i = 0; u && i < u->nr_mods; i++) {
		Dwarf *dw;

		dwfl_module_getsymtab(u->mods[i].mod);
		dw = dwfl_module_getdwarf(u->mods[i].mod, &bias);
		if (dw) {
			Dwarf_Aranges *aranges;
			size_t n;

			dwarf_getaranges(dw, &aranges, &n);
		}
	}
}

struct pyx_unwinder *pyx_unwinder__new(struct pyx_process *proc)
{
	struct pyx_unwinder *u;
	Elf *arch_elf;
	size_t i;
	int err = 0;

	if (!proc) {
		errno = EINVAL;
		return NULL;
	}
	if (proc->kernel_thread) {
		errno = ENOENT;
		return NULL;
	}
	elf_version(EV_CURRENT);
	u = calloc(1, sizeof(*u));
	if (!u) {
		errno = ENOMEM;
		return NULL;
	}
	u->target.pid = proc->pid;
	u->target.root_fd = -1;
	/* Every object may become a module, plus [vdso]. */
	u->mods = calloc(proc->nr_objects + 1, sizeof(*u->mods));
	u->dwfl = u->mods ? dwfl_begin(&dwfl_callbacks) : NULL;
	if (!u->dwfl) {
		err = -ENOMEM;
		goto err_out;
	}
	dwfl_report_begin(u->dwfl);
	for (i = 0; i < proc->nr_objects && !err; i++)
		if (proc->objects[i].executable)
			err = report_object(u, proc, &proc->objects[i]);
	if (!err)
		err = report_vdso(u);
	if (dwfl_report_end(u->dwfl, NULL, NULL) && !err)
		err = -ENOMEM;
	if (err)
		goto err_out;
	if (!u->nr_mods) {
		err = -ENOENT;
		goto err_out;
	}
	for (i = 0; i < u->nr_mods; i++)
		finish_module(u, i);
	u->stats.modules = u->nr_mods;
	/*
	 * The registers are x86-64's: a 32-bit process would need i386's
	 * DWARF numbering. The ELF given also sets libdwfl's architecture.
	 */
	arch_elf = x86_64_elf(u);
	if (!arch_elf) {
		err = -ENOTSUP;
		goto err_out;
	}
	if (!dwfl_attach_state(u->dwfl, arch_elf, proc->pid, &thread_callbacks, u)) {
		err = -ENOEXEC;
		goto err_out;
	}
	return u;

err_out:
	pyx_unwinder__free(u);
	errno = -err;
	return NULL;
}

void pyx_unwinder__free(struct pyx_unwinder *u)
{
	size_t i;

	if (!u)
		return;
	/* First: its Elf handles point into our [vdso] image. */
	if (u->dwfl)
		dwfl_end(u->dwfl);
	for (i = 0; i < u->nr_mods; i++)
		module_free(&u->mods[i]);
	free(u->mods);
	free(u->cache);
	free(u->entries);
	pool_free(&u->strings);
	free(u);
}

void pyx_unwinder__stats(const struct pyx_unwinder *u, struct pyx_unwind_stats *stats)
{
	*stats = u->stats;
}
