// SPDX-License-Identifier: GPL-2.0-only
/*
 * Struct layouts from DWARF, on top of libdw (elfutils).
 *
 * An interpreter's DWARF is 8-25 MB, and every compile unit repeats the
 * headers' types, so a name is looked up in an index instead of by walking
 * the units each time. The index is built on the first lookup, in one pass
 * over the top-level entries of every unit (compile, partial and type units),
 * keeping the first complete definition of each struct/union/enum tag and of
 * each typedef. C has no nested type scopes, so top-level entries are all the
 * types there are; skipping each function's subtree is what makes the pass
 * cheap.
 *
 * dwz moves types shared between files into an alt file and has the units
 * import them (DW_TAG_imported_unit). A package-wide alt file may hold
 * several different definitions under one name, from different programs, so
 * only the alt units this file imports are indexed, and after the file's own
 * units.
 *
 * libdw finds an alt file by itself on first use of an alt form, on the
 * host's /usr/lib/debug and next to the debug file; for a target in a
 * container that is the wrong tree. So the caller opens the alt file inside
 * the target's root and hands it in, and without it no alt form is ever
 * passed to libdw (form_usable()).
 *
 * The input may be any bytes: libdw bounds-checks what it decodes, and walks
 * here are bounded in depth and only move forward through sibling chains.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/dwarf.h"

/* Bounds for DWARF that loops or nests without end; real C types stay far below. */
#define MAX_TYPE_CHAIN 64  /* typedef/cv links from a name to its type */
#define MAX_ANON_DEPTH 16  /* anonymous structs/unions nested in each other */
#define MAX_PATH_DEPTH 32  /* components of a member path */
#define MAX_NAME_LEN   256 /* one path component, NUL included */

enum name_kind {
	NAME_TAG = 1, /* struct/union/enum tag: C's tag namespace */
	NAME_TYPEDEF,
};

struct name_entry {
	const char *name; /* in the owning file's string section: lives as long as its Dwarf */
	uint32_t hash;
	uint32_t kind;
	Dwarf_Die die; /* carries its unit, hence which Dwarf (main or alt) */
};

/* Alt units to index, in import order, and the set of those already queued. */
struct import_queue {
	Dwarf_Die *dies;
	size_t count, cap;
	Dwarf_Off *seen; /* open addressing on offset + 1; 0 marks an empty slot */
	size_t seen_count, seen_cap;
};

struct pyx_dwarf {
	int fd, alt_fd;
	Elf *elf, *alt_elf;
	Dwarf *main, *alt;
	bool indexed;
	struct name_entry *names; /* open addressing, power-of-two capacity */
	size_t names_count, names_cap;
};

static bool libelf_ready(void)
{
	static bool ready;

	if (!ready)
		ready = elf_version(EV_CURRENT) != EV_NONE;
	return ready;
}

/* FNV-1a: short identifiers, no adversary worth a keyed hash (a collision only costs time). */
static uint32_t name_hash(const char *name, uint32_t kind)
{
	uint32_t hash = 2166136261u ^ kind;

	while (*name) {
		hash ^= (unsigned char)*name++;
		hash *= 16777619u;
	}
	return hash;
}

static struct name_entry *names_find(const struct pyx_dwarf *dw, const char *name, uint32_t kind)
{
	uint32_t hash = name_hash(name, kind);
	size_t mask = dw->names_cap - 1, i;

	if (!dw->names_cap)
		return NULL;
	for (i = hash & mask; dw->names[i].name; i = (i + 1) & mask) {
		struct name_entry *e = &dw->names[i];

		if (e->hash == hash && e->kind == kind && !strcmp(e->name, name))
			return e;
	}
	return NULL;
}

static void names_place(struct name_entry *table, size_t cap, const struct name_entry *entry)
{
	size_t i;

	for (i = entry->hash & (cap - 1); table[i].name; i = (i + 1) & (cap - 1))
		;
	table[i] = *entry;
}

static int names_grow(struct pyx_dwarf *dw)
{
	size_t cap = dw->names_cap ? dw->names_cap * 2 : 4096, i;
	struct name_entry *table = calloc(cap, sizeof(*table));

	if (!table)
		return -ENOMEM;
	for (i = 0; i < dw->names_cap; i++)
		if (dw->names[i].name)
			names_place(table, cap, &dw->names[i]);
	free(dw->names);
	dw->names = table;
	dw->names_cap = cap;
	return 0;
}

/* Keep the first definition of a name: later ones are the same header type in other units. */
static int names_add(struct pyx_dwarf *dw, const char *name, uint32_t kind, const Dwarf_Die *die)
{
	uint32_t hash = name_hash(name, kind);
	size_t mask, i;
	int err;

	if ((dw->names_count + 1) * 2 > dw->names_cap) {
		err = names_grow(dw);
		if (err)
			return err;
	}
	mask = dw->names_cap - 1;
	for (i = hash & mask; dw->names[i].name; i = (i + 1) & mask) {
		const struct name_entry *e = &dw->names[i];

		if (e->hash == hash && e->kind == kind && !strcmp(e->name, name))
			return 0;
	}
	dw->names[i] = (struct name_entry){.name = name, .hash = hash, .kind = kind, .die = *die};
	dw->names_count++;
	return 0;
}

/*
 * Whether libdw may decode @attr. Alt forms point into the alt file, which
 * libdw would go and look for itself when none was set; only the main file's
 * alt forms are meaningful, and only once we attached the alt file.
 */
static bool form_usable(const struct pyx_dwarf *dw, const Dwarf_Attribute *attr)
{
	switch (attr->form) {
	case DW_FORM_GNU_ref_alt:
	case DW_FORM_GNU_strp_alt:
	case DW_FORM_ref_sup4:
	case DW_FORM_ref_sup8:
	case DW_FORM_strp_sup:
		return dw->alt && attr->cu && dwarf_cu_getdwarf(attr->cu) == dw->main;
	default:
		return true;
	}
}

static const char *die_name(const struct pyx_dwarf *dw, Dwarf_Die *die)
{
	Dwarf_Attribute attr;

	if (!dwarf_attr(die, DW_AT_name, &attr) || !form_usable(dw, &attr))
		return NULL;
	return dwarf_formstring(&attr);
}

/* The DIE that @at of @die refers to; @out may be @die. */
static bool die_ref(const struct pyx_dwarf *dw, Dwarf_Die *die, unsigned int at, Dwarf_Die *out)
{
	Dwarf_Attribute attr;

	if (!dwarf_attr(die, at, &attr) || !form_usable(dw, &attr))
		return false;
	return dwarf_formref_die(&attr, out) != NULL;
}

static bool is_declaration(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	bool flag;

	return dwarf_attr(die, DW_AT_declaration, &attr) && !dwarf_formflag(&attr, &flag) && flag;
}

static bool is_aggregate(int tag)
{
	return tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type;
}

static int queue_push(struct import_queue *q, Dwarf_Die *die)
{
	Dwarf_Off key = dwarf_dieoffset(die) + 1;
	size_t i, mask;

	if (key == 0) /* dwarf_dieoffset() failed: (Dwarf_Off)-1 */
		return 0;
	if ((q->seen_count + 1) * 2 > q->seen_cap) {
		size_t cap = q->seen_cap ? q->seen_cap * 2 : 256;
		Dwarf_Off *seen = calloc(cap, sizeof(*seen));

		if (!seen)
			return -ENOMEM;
		for (i = 0; i < q->seen_cap; i++) {
			size_t j;

			if (!q->seen[i])
				continue;
			for (j = q->seen[i] & (cap - 1); seen[j]; j = (j + 1) & (cap - 1))
				;
			seen[j] = q->seen[i];
		}
		free(q->seen);
		q->seen = seen;
		q->seen_cap = cap;
	}
	mask = q->seen_cap - 1;
	for (i = key & mask; q->seen[i]; i = (i + 1) & mask)
		if (q->seen[i] == key)
			return 0;
	if (q->count == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		Dwarf_Die *dies = realloc(q->dies, cap * sizeof(*dies));

		if (!dies)
			return -ENOMEM;
		q->dies = dies;
		q->cap = cap;
	}
	q->seen[i] = key;
	q->seen_count++;
	q->dies[q->count++] = *die;
	return 0;
}

/*
 * Queue the alt unit an imported_unit entry brings in. Units of the main
 * file are indexed by the walk over all of them anyway.
 */
static int queue_import(struct pyx_dwarf *dw, Dwarf_Die *entry, struct import_queue *q)
{
	Dwarf_Die unit;

	if (!dw->alt || !die_ref(dw, entry, DW_AT_import, &unit))
		return 0;
	if (!unit.cu || dwarf_cu_getdwarf(unit.cu) != dw->alt)
		return 0;
	return queue_push(q, &unit);
}

static int index_unit(struct pyx_dwarf *dw, Dwarf_Die *unit, struct import_queue *q)
{
	Dwarf_Off last = dwarf_dieoffset(unit);
	Dwarf_Die child;
	int err = 0;

	if (dwarf_child(unit, &child) != 0)
		return 0;
	do {
		Dwarf_Off off = dwarf_dieoffset(&child);
		const char *name;
		int tag;

		/* A sibling link that does not move forward would loop. */
		if (off == (Dwarf_Off)-1 || off <= last)
			break;
		last = off;

		tag = dwarf_tag(&child);
		switch (tag) {
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_class_type:
		case DW_TAG_enumeration_type:
			if (is_declaration(&child))
				break;
			name = die_name(dw, &child);
			if (name && *name)
				err = names_add(dw, name, NAME_TAG, &child);
			break;
		case DW_TAG_typedef:
			name = die_name(dw, &child);
			if (name && *name)
				err = names_add(dw, name, NAME_TYPEDEF, &child);
			break;
		case DW_TAG_imported_unit:
			err = queue_import(dw, &child, q);
			break;
		default:
			break;
		}
	} while (!err && dwarf_siblingof(&child, &child) == 0);
	return err;
}

/*
 * One pass: every unit of the main file, then the alt units it imports
 * (which may import further alt units). A unit libdw cannot decode ends the
 * walk over that file; what was indexed before it stays usable.
 */
static int build_index(struct pyx_dwarf *dw)
{
	struct import_queue q = {};
	Dwarf_CU *cu = NULL;
	Dwarf_Die unit;
	size_t i;
	int err = 0;

	while (!err && dwarf_get_units(dw->main, cu, &cu, NULL, NULL, &unit, NULL) == 0) {
		/* libdw clears the unit DIE of a unit type it does not know. */
		if (unit.addr)
			err = index_unit(dw, &unit, &q);
	}
	for (i = 0; !err && i < q.count; i++) {
		unit = q.dies[i]; /* index_unit() may grow q.dies */
		err = index_unit(dw, &unit, &q);
	}
	free(q.dies);
	free(q.seen);
	if (err) {
		/* Out of memory: drop the partial index, so a later lookup tries again. */
		free(dw->names);
		dw->names = NULL;
		dw->names_count = dw->names_cap = 0;
		return err;
	}
	dw->indexed = true;
	return 0;
}

/*
 * Follow typedefs and qualifiers from @die to the type they name, and a
 * struct declaration (a unit that only saw "struct _ts;") to a definition
 * from any unit. -ENOENT when the chain ends in void or an undefined struct.
 */
static int resolve(struct pyx_dwarf *dw, Dwarf_Die *die)
{
	const struct name_entry *e;
	const char *name;
	int i;

	for (i = 0; i < MAX_TYPE_CHAIN; i++) {
		int tag = dwarf_tag(die);

		switch (tag) {
		case DW_TAG_typedef:
		case DW_TAG_const_type:
		case DW_TAG_volatile_type:
		case DW_TAG_restrict_type:
		case DW_TAG_atomic_type:
		case DW_TAG_immutable_type:
			if (!die_ref(dw, die, DW_AT_type, die))
				return -ENOENT;
			continue;
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_class_type:
		case DW_TAG_enumeration_type:
			/* A stub standing for the definition in a type unit (-fdebug-types-section). */
			if (dwarf_hasattr(die, DW_AT_signature)) {
				if (!die_ref(dw, die, DW_AT_signature, die))
					return -ENOENT;
				continue;
			}
			if (!is_declaration(die))
				return 0;
			name = die_name(dw, die);
			e = name ? names_find(dw, name, NAME_TAG) : NULL;
			if (!e)
				return -ENOENT;
			*die = e->die;
			return 0;
		default:
			return tag == DW_TAG_invalid ? -EINVAL : 0;
		}
	}
	return -EINVAL;
}

static int find_type(struct pyx_dwarf *dw, const char *type, Dwarf_Die *die)
{
	static const char *const tag_prefixes[] = {"struct ", "union ", "enum "};
	const struct name_entry *e = NULL;
	bool tag_only = false;
	size_t i;
	int err;

	if (!dw || !type)
		return -EINVAL;
	for (i = 0; i < sizeof(tag_prefixes) / sizeof(tag_prefixes[0]); i++) {
		size_t len = strlen(tag_prefixes[i]);

		if (!strncmp(type, tag_prefixes[i], len)) {
			type += len;
			tag_only = true;
			break;
		}
	}
	if (!*type)
		return -EINVAL;
	if (!dw->indexed) {
		err = build_index(dw);
		if (err)
			return err;
	}
	e = names_find(dw, type, NAME_TAG);
	if (!e && !tag_only)
		e = names_find(dw, type, NAME_TYPEDEF);
	if (!e)
		return -ENOENT;
	*die = e->die;
	return resolve(dw, die);
}

/*
 * Byte offset of @member in its struct. Bit fields have none that a reader
 * could load the field from, so they are refused rather than rounded.
 */
static int member_location(Dwarf_Die *member, uint64_t *offset)
{
	Dwarf_Attribute attr;
	Dwarf_Op *ops;
	Dwarf_Sword sval;
	Dwarf_Word uval;
	size_t nops;

	if (dwarf_hasattr(member, DW_AT_bit_size))
		return -EINVAL;
	/* Absent: the member starts the struct (DWARF 5, 5.7.6); unions always omit it. */
	if (!dwarf_attr(member, DW_AT_data_member_location, &attr)) {
		*offset = 0;
		return 0;
	}
	switch (attr.form) {
	case DW_FORM_data1:
	case DW_FORM_data2:
	case DW_FORM_data4:
	case DW_FORM_data8:
	case DW_FORM_udata:
	case DW_FORM_implicit_const:
		if (dwarf_formudata(&attr, &uval))
			return -EINVAL;
		*offset = uval;
		return 0;
	case DW_FORM_sdata:
		if (dwarf_formsdata(&attr, &sval) || sval < 0)
			return -EINVAL;
		*offset = (uint64_t)sval;
		return 0;
	case DW_FORM_block1:
	case DW_FORM_block2:
	case DW_FORM_block4:
	case DW_FORM_block:
	case DW_FORM_exprloc:
		/* DWARF 2 style: the struct's address is pushed, then "+ N". */
		if (dwarf_getlocation(&attr, &ops, &nops) || nops != 1 ||
		    ops[0].atom != DW_OP_plus_uconst)
			return -EINVAL;
		*offset = ops[0].number;
		return 0;
	default:
		/* A location list: not a fixed offset. */
		return -EINVAL;
	}
}

/*
 * Find member @name in aggregate @parent, looking through anonymous struct
 * and union members as C does. On success @member is the member's DIE and
 * @offset its offset from @parent.
 */
static int find_member(struct pyx_dwarf *dw, Dwarf_Die *parent, const char *name, int depth,
		       Dwarf_Die *member, uint64_t *offset)
{
	Dwarf_Off last = dwarf_dieoffset(parent);
	Dwarf_Die child;

	if (depth > MAX_ANON_DEPTH || dwarf_child(parent, &child) != 0)
		return -ENOENT;
	do {
		Dwarf_Off off = dwarf_dieoffset(&child);
		uint64_t base, inner;
		const char *child_name;
		Dwarf_Die type;
		int err;

		if (off == (Dwarf_Off)-1 || off <= last)
			break;
		last = off;
		if (dwarf_tag(&child) != DW_TAG_member)
			continue;

		/*
		 * A name we cannot read (say, in an alt file we do not have) is
		 * not anonymity: descending there could find a wrong member.
		 */
		if (dwarf_hasattr(&child, DW_AT_name)) {
			child_name = die_name(dw, &child);
			if (!child_name || strcmp(child_name, name))
				continue;
			err = member_location(&child, offset);
			if (!err)
				*member = child;
			return err;
		}

		if (!die_ref(dw, &child, DW_AT_type, &type) || resolve(dw, &type) ||
		    !is_aggregate(dwarf_tag(&type)))
			continue;
		err = find_member(dw, &type, name, depth + 1, member, &inner);
		if (err == -ENOENT)
			continue;
		if (!err)
			err = member_location(&child, &base);
		if (err)
			return err;
		if (__builtin_add_overflow(base, inner, offset))
			return -EINVAL;
		return 0;
	} while (dwarf_siblingof(&child, &child) == 0);
	return -ENOENT;
}

/*
 * Whether @path is one or more non-empty components joined by dots, within
 * the bounds: checked before any lookup, so that a malformed path is -EINVAL
 * whatever the DWARF holds.
 */
static bool path_valid(const char *path)
{
	int depth = 0;

	for (;;) {
		size_t len = strcspn(path, ".");

		if (!len || len >= MAX_NAME_LEN || ++depth > MAX_PATH_DEPTH)
			return false;
		if (!path[len])
			return true;
		path += len + 1;
	}
}

int pyx_dwarf__member_offset(struct pyx_dwarf *dw, const char *type, const char *path,
			     uint64_t *offset)
{
	char component[MAX_NAME_LEN];
	uint64_t total = 0;
	Dwarf_Die cur;
	bool first = true;
	int err;

	if (!path || !offset || !path_valid(path))
		return -EINVAL;
	err = find_type(dw, type, &cur);
	if (err)
		return err;

	while (*path) {
		size_t len = strcspn(path, ".");
		Dwarf_Die member;
		uint64_t off;

		memcpy(component, path, len);
		component[len] = '\0';
		path += len + (path[len] == '.');

		/* After the first component, @cur is the member just found: go to its type. */
		if (!first) {
			if (!die_ref(dw, &cur, DW_AT_type, &cur))
				return -EINVAL;
			err = resolve(dw, &cur);
			if (err)
				return err;
		}
		first = false;
		if (!is_aggregate(dwarf_tag(&cur)))
			return -EINVAL;
		err = find_member(dw, &cur, component, 0, &member, &off);
		if (err)
			return err;
		if (__builtin_add_overflow(total, off, &total))
			return -EINVAL;
		cur = member;
	}
	*offset = total;
	return 0;
}

static int attr_sdata(Dwarf_Die *die, unsigned int at, int64_t *value)
{
	Dwarf_Attribute attr;
	Dwarf_Sword sval;
	Dwarf_Word uval;

	if (!dwarf_attr(die, at, &attr))
		return -ENOENT;
	if (attr.form == DW_FORM_sdata || attr.form == DW_FORM_implicit_const) {
		if (dwarf_formsdata(&attr, &sval))
			return -EINVAL;
		*value = sval;
		return 0;
	}
	if (dwarf_formudata(&attr, &uval) || uval > INT64_MAX)
		return -EINVAL;
	*value = (int64_t)uval;
	return 0;
}

static int die_size(struct pyx_dwarf *dw, Dwarf_Die *die, int depth, uint64_t *size);

/* Arrays carry no byte size in C's DWARF: element size times each dimension's count. */
static int array_size(struct pyx_dwarf *dw, Dwarf_Die *array, int depth, uint64_t *size)
{
	Dwarf_Off last = dwarf_dieoffset(array);
	uint64_t total;
	Dwarf_Die elem, dim;
	int err;

	if (!die_ref(dw, array, DW_AT_type, &elem))
		return -EINVAL;
	err = die_size(dw, &elem, depth + 1, &total);
	if (err)
		return err;
	if (dwarf_child(array, &dim) != 0)
		return -EINVAL;
	do {
		Dwarf_Off off = dwarf_dieoffset(&dim);
		int64_t count, lower = 0, upper;

		if (off == (Dwarf_Off)-1 || off <= last)
			break;
		last = off;
		if (dwarf_tag(&dim) != DW_TAG_subrange_type)
			continue;
		if (!attr_sdata(&dim, DW_AT_count, &count)) {
			/* fine as it is */
		} else if (!attr_sdata(&dim, DW_AT_upper_bound, &upper)) {
			err = attr_sdata(&dim, DW_AT_lower_bound, &lower);
			if (err && err != -ENOENT)
				return err;
			count = upper >= lower ? upper - lower + 1 : 0;
		} else if (dwarf_hasattr(&dim, DW_AT_count) ||
			   dwarf_hasattr(&dim, DW_AT_upper_bound)) {
			return -EINVAL; /* a variable-length array */
		} else {
			count = 0; /* a flexible array member: "x[]" */
		}
		if (count < 0 || __builtin_mul_overflow(total, (uint64_t)count, &total))
			return -EINVAL;
	} while (dwarf_siblingof(&dim, &dim) == 0);
	*size = total;
	return 0;
}

static int die_size(struct pyx_dwarf *dw, Dwarf_Die *die, int depth, uint64_t *size)
{
	Dwarf_Attribute attr;
	Dwarf_Word value;
	int err;

	if (depth > MAX_TYPE_CHAIN)
		return -EINVAL;
	err = resolve(dw, die);
	if (err)
		return err;
	if (dwarf_attr(die, DW_AT_byte_size, &attr)) {
		/* Not a constant (an expression for a variable-sized type): no static size. */
		if (dwarf_formudata(&attr, &value))
			return -EINVAL;
		*size = value;
		return 0;
	}
	if (dwarf_tag(die) == DW_TAG_array_type)
		return array_size(dw, die, depth, size);
	return -EINVAL; /* void, functions: no size */
}

int pyx_dwarf__type_size(struct pyx_dwarf *dw, const char *type, uint64_t *size)
{
	Dwarf_Die die;
	int err;

	if (!size)
		return -EINVAL;
	err = find_type(dw, type, &die);
	if (err)
		return err;
	return die_size(dw, &die, 0, size);
}

/* Whether @elf holds DWARF bytes, not just the NOBITS placeholders of a stripped object. */
static bool has_dwarf(Elf *elf)
{
	static const char *const sections[] = {".debug_info", ".zdebug_info", ".debug_types"};
	Elf_Scn *scn = NULL;
	size_t shstrndx, i;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS || !shdr.sh_size)
			continue;
		name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!name)
			continue;
		for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			if (!strcmp(name, sections[i]))
				return true;
	}
	return false;
}

/*
 * ELF_C_READ rather than mmap: libelf pread()s the sections, so a file
 * truncated under us (a target's file can change at any time) is a read
 * error, not SIGBUS.
 */
static int open_elf(int fd, Elf **elf)
{
	*elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF)
		return -ENOEXEC;
	return 0;
}

static int open_dwarf(Elf *elf, Dwarf **dwarf)
{
	if (!has_dwarf(elf))
		return -ENODATA;
	*dwarf = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
	return *dwarf ? 0 : -EINVAL;
}

/*
 * Use @alt_fd as the alt file if the main file names one, and only if it is
 * the very file named: types from another build's alt file would resolve to
 * wrong offsets without any error.
 */
static int attach_alt(struct pyx_dwarf *dw, int alt_fd)
{
	const void *want, *have;
	const char *alt_name;
	ssize_t want_len, have_len;
	int err;

	want_len = dwelf_dwarf_gnu_debugaltlink(dw->main, &alt_name, &want);
	if (want_len == 0)
		return 0;
	if (want_len < 0)
		return -EINVAL;

	dw->alt_fd = fcntl(alt_fd, F_DUPFD_CLOEXEC, 0);
	if (dw->alt_fd < 0)
		return -errno;
	err = open_elf(dw->alt_fd, &dw->alt_elf);
	if (err)
		return -ESTALE;
	have_len = dwelf_elf_gnu_build_id(dw->alt_elf, &have);
	if (have_len != want_len || memcmp(have, want, (size_t)want_len))
		return -ESTALE;
	err = open_dwarf(dw->alt_elf, &dw->alt);
	if (err)
		return err == -ENODATA ? -ESTALE : err;
	/* Before any DIE is read: libdw would otherwise look for the file itself. */
	dwarf_setalt(dw->main, dw->alt);
	return 0;
}

struct pyx_dwarf *pyx_dwarf__open_fd(int fd, int alt_fd)
{
	struct pyx_dwarf *dw;
	int err;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if (!libelf_ready()) {
		errno = ENOSYS;
		return NULL;
	}
	dw = calloc(1, sizeof(*dw));
	if (!dw) {
		errno = ENOMEM;
		return NULL;
	}
	dw->alt_fd = -1;
	dw->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dw->fd < 0) {
		err = -errno;
		goto fail;
	}
	err = open_elf(dw->fd, &dw->elf);
	if (!err)
		err = open_dwarf(dw->elf, &dw->main);
	if (!err && alt_fd >= 0)
		err = attach_alt(dw, alt_fd);
	if (err)
		goto fail;
	return dw;

fail:
	pyx_dwarf__close(dw);
	errno = -err;
	return NULL;
}

void pyx_dwarf__close(struct pyx_dwarf *dw)
{
	if (!dw)
		return;
	/* The main Dwarf refers to the alt one (dwarf_setalt), so it goes first. */
	dwarf_end(dw->main);
	dwarf_end(dw->alt);
	elf_end(dw->elf);
	elf_end(dw->alt_elf);
	if (dw->fd >= 0)
		close(dw->fd);
	if (dw->alt_fd >= 0)
		close(dw->alt_fd);
	free(dw->names);
	free(dw);
}

int pyx_dwarf__altlink(int fd, char *name, size_t size)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int err = -ENOENT;
	Elf *elf;

	if (fd < 0 || !name || !size)
		return -EINVAL;
	if (!libelf_ready())
		return -ENOSYS;
	err = open_elf(fd, &elf);
	if (err) {
		elf_end(elf);
		return err;
	}
	err = -ENOENT;
	if (elf_getshdrstrndx(elf, &shstrndx)) {
		elf_end(elf);
		return -EINVAL;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		const char *sname;
		Elf_Data *data;
		GElf_Shdr shdr;
		size_t len;

		if (!gelf_getshdr(scn, &shdr))
			continue;
		sname = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!sname || strcmp(sname, ".gnu_debugaltlink") || shdr.sh_type == SHT_NOBITS)
			continue;
		/* The file name, NUL, then the alt file's build-id. */
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf) {
			err = -EINVAL;
			break;
		}
		len = strnlen(data->d_buf, data->d_size);
		if (!len || len + 1 >= data->d_size) {
			err = -EINVAL;
			break;
		}
		if (len >= size) {
			err = -ENOSPC;
			break;
		}
		memcpy(name, data->d_buf, len + 1);
		err = 0;
		break;
	}
	elf_end(elf);
	return err;
}
