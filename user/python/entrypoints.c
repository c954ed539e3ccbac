// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "elf/debuginfo.h"
#include "elf/elf.h"
#include "python/entrypoints.h"
#include "util/parse.h"

/* METH_* calling conventions and modifiers (Include/methodobject.h, 3.8-3.15). */
#define METH_VARARGS   0x0001
#define METH_KEYWORDS  0x0002
#define METH_NOARGS    0x0004
#define METH_O	       0x0008
#define METH_CLASS     0x0010
#define METH_STATIC    0x0020
#define METH_COEXIST   0x0040
#define METH_FASTCALL  0x0080
#define METH_STACKLESS 0x0100
#define METH_METHOD    0x0200

#define MAX_DATA_BYTES (256u << 20)
#define MAX_ENTRIES    65536

/*
 * Static PyTypeObject slots (offsets are the same in every GIL build
 * 3.8-3.15: the struct only grew at its end) and, for heap types, the
 * PyType_Slot ids of Include/typeslots.h. Only the ones worth tracing.
 */
struct slot_desc {
	const char *name;	  /* Python-facing name: a dunder, or the slot in parentheses */
	unsigned int type_offset; /* in PyTypeObject; 0 = only through a sub-table */
	unsigned int spec_id;	  /* Py_tp_* / Py_sq_* / Py_mp_* */
	enum pyx_signature sig;
};

static const struct slot_desc slots[] = {
	{"(tp_dealloc)", 48, 52, PYX_SIG_VOID}, {"__repr__", 88, 66, PYX_SIG_OBJECT},
	{"__hash__", 120, 59, PYX_SIG_SSIZE},	{"__call__", 128, 50, PYX_SIG_OBJECT},
	{"__str__", 136, 70, PYX_SIG_OBJECT},	{"__getattribute__", 144, 58, PYX_SIG_OBJECT},
	{"__setattr__", 152, 69, PYX_SIG_INT},	{"(tp_richcompare)", 200, 67, PYX_SIG_OBJECT},
	{"__iter__", 216, 62, PYX_SIG_OBJECT},	{"__next__", 224, 63, PYX_SIG_OBJECT},
	{"__init__", 296, 60, PYX_SIG_INT},	{"__new__", 312, 65, PYX_SIG_OBJECT},
	{"__len__", 0, 45, PYX_SIG_SSIZE},	{"(sq_item)", 0, 44, PYX_SIG_OBJECT},
	{"__contains__", 0, 41, PYX_SIG_INT},	{"(mp_length)", 0, 4, PYX_SIG_SSIZE},
	{"__getitem__", 0, 5, PYX_SIG_OBJECT},	{"(mp_ass_subscript)", 0, 3, PYX_SIG_INT},
};

#define TYPE_NAME	 24
#define TYPE_AS_SEQUENCE 104
#define TYPE_AS_MAPPING	 112
#define TYPE_METHODS	 232
#define TYPE_GETSET	 248
#define TYPE_SIZE	 400 /* enough of a PyTypeObject for the fields above */
#define SPEC_METHODS	 64
#define SPEC_GETSET	 73

const char *pyx_signature_name(enum pyx_signature sig)
{
	switch (sig) {
	case PYX_SIG_OBJECT:
		return "PyObject*";
	case PYX_SIG_INT:
		return "int";
	case PYX_SIG_SSIZE:
		return "Py_ssize_t";
	case PYX_SIG_VOID:
		return "void";
	case PYX_SIG_UNKNOWN:
		return "unknown";
	}
	return NULL;
}

/* The object's mappings: data is read once from the target into buffers. */
struct region {
	uint64_t start, end;
	bool exec;
	uint8_t *data; /* non-exec regions only */
};

struct scan {
	struct pyx_process *proc;
	struct pyx_module *mod;
	struct region *regions;
	size_t nr_regions;
	uint64_t type_type; /* &PyType_Type in the target */
	/* Method tables found, and which type (short name) owns each. */
	struct table {
		uint64_t addr;
		size_t count;
		char owner[96];
	} * tables;
	size_t nr_tables;
	size_t cap_entries;
};

static int read_regions(struct scan *s)
{
	struct pyx_object *obj = s->mod->object;
	char path[64], line[4096];
	size_t total = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->proc->pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, inode;
		unsigned int major, minor;
		char perms[8];
		struct region *r;

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &major,
			   &minor, &inode) != 7 ||
		    inode != obj->inode || makedev(major, minor) != obj->dev || perms[0] != 'r')
			continue;
		r = realloc(s->regions, (s->nr_regions + 1) * sizeof(*r));
		if (!r) {
			fclose(f);
			return -ENOMEM;
		}
		s->regions = r;
		r = &s->regions[s->nr_regions++];
		memset(r, 0, sizeof(*r));
		r->start = start;
		r->end = end;
		r->exec = perms[2] == 'x';
		if (r->exec || total + (end - start) > MAX_DATA_BYTES)
			continue;
		r->data = malloc(end - start);
		if (r->data && pyx_process__read(s->proc, start, r->data, end - start)) {
			free(r->data);
			r->data = NULL;
		}
		total += end - start;
	}
	fclose(f);
	return 0;
}

static bool in_text(const struct scan *s, uint64_t addr)
{
	size_t i;

	for (i = 0; i < s->nr_regions; i++)
		if (s->regions[i].exec && addr >= s->regions[i].start && addr < s->regions[i].end)
			return true;
	return false;
}

/* A pointer to @len bytes of the object's data, or NULL. */
static const uint8_t *at(const struct scan *s, uint64_t addr, size_t len)
{
	size_t i;

	for (i = 0; i < s->nr_regions; i++) {
		const struct region *r = &s->regions[i];

		if (r->data && addr >= r->start && addr <= r->end && len <= r->end - addr)
			return r->data + (addr - r->start);
	}
	return NULL;
}

static uint64_t word(const struct scan *s, uint64_t addr)
{
	const uint8_t *p = at(s, addr, 8);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Call @visit for every 8-byte-aligned address of the module's data that
 * has @span bytes after it. @visit returns how far to move on: 8, or past
 * a structure it recognised; SCAN_STOP ends the scan.
 */
#define SCAN_STOP UINT64_MAX

static void scan_data(struct scan *s, uint64_t span,
		      uint64_t (*visit)(struct scan *s, uint64_t addr, void *ctx), void *ctx)
{
	size_t i;

	for (i = 0; i < s->nr_regions; i++) {
		const struct region *r = &s->regions[i];
		uint64_t addr, step;

		if (!r->data)
			continue;
		for (addr = (r->start + 7) & ~7ull; addr + span <= r->end; addr += step) {
			step = visit(s, addr, ctx);
			if (step == SCAN_STOP)
				return;
		}
	}
}

/*
 * A NUL-terminated string of the object's data at @addr, copied to @buf;
 * @dotted allows '.' (type names). Only names a C compiler would emit for
 * Python: identifiers, dotted for types.
 */
static bool read_name(const struct scan *s, uint64_t addr, char *buf, size_t size, bool dotted)
{
	const uint8_t *p;
	size_t i;

	for (i = 0; i + 1 < size; i++) {
		p = at(s, addr + i, 1);
		if (!p)
			return false;
		if (!*p)
			break;
		if (!(isalnum(*p) || *p == '_' || (dotted && *p == '.')) || (i == 0 && isdigit(*p)))
			return false;
		buf[i] = (char)*p;
	}
	if (i == 0 || i + 1 >= size)
		return false;
	buf[i] = '\0';
	return true;
}

/* One PyMethodDef {ml_name, ml_meth, ml_flags, ml_doc} at @addr, if it looks like one. */
static bool method_def(const struct scan *s, uint64_t addr, char *name, size_t size, uint64_t *meth,
		       unsigned int *flags)
{
	const uint8_t *p = at(s, addr, 32);
	unsigned int f, convention;

	if (!p)
		return false;
	*meth = word(s, addr + 8);
	memcpy(&f, p + 16, sizeof(f));
	if (f & ~0x3ffu)
		return false;
	convention = f & (METH_VARARGS | METH_NOARGS | METH_O | METH_FASTCALL);
	if (convention != METH_VARARGS && convention != METH_NOARGS && convention != METH_O &&
	    convention != METH_FASTCALL)
		return false;
	if ((f & METH_KEYWORDS) && !(convention & (METH_VARARGS | METH_FASTCALL)))
		return false;
	/* ml_doc is not checked: numpy points it at docstrings it builds at import. */
	if (!in_text(s, *meth))
		return false;
	*flags = f;
	return read_name(s, word(s, addr), name, size, false);
}

static struct pyx_entry_point *add_entry(struct scan *s, const char *name, uint64_t addr,
					 enum pyx_signature sig, enum pyx_entry_kind kind)
{
	struct pyx_module *mod = s->mod;
	struct pyx_entry_point *e;
	size_t i;

	for (i = 0; i < mod->nr_entries; i++)
		if (mod->entries[i].address == addr && !strcmp(mod->entries[i].name, name))
			return NULL;
	if (mod->nr_entries >= MAX_ENTRIES)
		return NULL;
	if (mod->nr_entries == s->cap_entries) {
		size_t cap = s->cap_entries ? s->cap_entries * 2 : 64;

		e = realloc(mod->entries, cap * sizeof(*e));
		if (!e)
			return NULL;
		mod->entries = e;
		s->cap_entries = cap;
	}
	e = &mod->entries[mod->nr_entries++];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->address = addr;
	e->offset = (uint64_t)((int64_t)addr - mod->object->bias);
	e->signature = sig;
	e->kind = kind;
	return e;
}

/* A PyMethodDef array at @addr: entries in a row, then a zero terminator. */
static uint64_t visit_method_table(struct scan *s, uint64_t addr, void *ctx)
{
	uint64_t meth, end = addr;
	struct table *t;
	unsigned int flags;
	size_t count = 0;
	char name[96];

	while (method_def(s, end, name, sizeof(name), &meth, &flags)) {
		end += 32;
		count++;
	}
	if (!count || word(s, end) != 0 || word(s, end + 8) != 0)
		return 8;
	t = realloc(s->tables, (s->nr_tables + 1) * sizeof(*t));
	if (!t)
		return SCAN_STOP;
	s->tables = t;
	t = &s->tables[s->nr_tables++];
	t->addr = addr;
	t->count = count;
	t->owner[0] = '\0';
	return end - addr + 8; /* past the terminator's first word */
}

static void find_method_tables(struct scan *s)
{
	scan_data(s, 32, visit_method_table, NULL);
}

static void own_table(struct scan *s, uint64_t addr, const char *type)
{
	size_t i;

	for (i = 0; i < s->nr_tables; i++)
		if (s->tables[i].addr == addr && !s->tables[i].owner[0])
			snprintf(s->tables[i].owner, sizeof(s->tables[i].owner), "%s", type);
}

static const char *short_type_name(const char *tp_name)
{
	const char *dot = strrchr(tp_name, '.');

	return dot ? dot + 1 : tp_name;
}

/* PyGetSetDef {name, get, set, doc, closure} entries of a type, up to the zero terminator. */
static void add_getsets(struct scan *s, uint64_t addr, const char *type)
{
	char attr[96], name[200];
	int i;

	for (i = 0; i < 512 && at(s, addr, 40) && word(s, addr); i++, addr += 40) {
		uint64_t get = word(s, addr + 8), set = word(s, addr + 16);

		if (!read_name(s, word(s, addr), attr, sizeof(attr), false))
			return;
		if (get && in_text(s, get)) {
			snprintf(name, sizeof(name), "%s.%s (get)", type, attr);
			add_entry(s, name, get, PYX_SIG_OBJECT, PYX_ENTRY_GETTER);
		}
		if (set && in_text(s, set)) {
			snprintf(name, sizeof(name), "%s.%s (set)", type, attr);
			add_entry(s, name, set, PYX_SIG_INT, PYX_ENTRY_SETTER);
		}
	}
}

static void add_slot(struct scan *s, const char *type, const struct slot_desc *d, uint64_t fn)
{
	char name[200];

	if (!fn || !in_text(s, fn))
		return; /* inherited, or a generic function of the interpreter */
	snprintf(name, sizeof(name), "%s.%s", type, d->name);
	add_entry(s, name, fn, d->sig, PYX_ENTRY_SLOT);
}

static bool is_table(const struct scan *s, uint64_t addr)
{
	size_t i;

	for (i = 0; i < s->nr_tables; i++)
		if (s->tables[i].addr == addr)
			return true;
	return false;
}

/*
 * A static PyTypeObject: its type is PyType_Type once PyType_Ready() ran,
 * NULL before (Pillow readies some types only on first use), so the shape
 * decides: sizes a C struct can have, and its method table (if any) one we
 * found, its dealloc (if any) in this module's code.
 */
static bool looks_like_type(const struct scan *s, uint64_t addr)
{
	uint64_t ob_type = word(s, addr + 8), basicsize = word(s, addr + 32);
	uint64_t itemsize = word(s, addr + 40), dealloc = word(s, addr + 48);
	uint64_t methods = word(s, addr + TYPE_METHODS);

	if (ob_type == s->type_type && ob_type)
		return true;
	if (ob_type || basicsize < 16 || basicsize > (1u << 20) || itemsize > (1u << 16))
		return false;
	if (methods && !is_table(s, methods))
		return false;
	if (dealloc && !in_text(s, dealloc))
		return false;
	return methods || dealloc;
}

/* A static PyTypeObject at @addr: its methods, getters, setters and slots. */
static uint64_t visit_static_type(struct scan *s, uint64_t addr, void *ctx)
{
	uint64_t seq, map;
	char tp_name[96];
	const char *type;
	size_t j;

	if (!looks_like_type(s, addr) ||
	    !read_name(s, word(s, addr + TYPE_NAME), tp_name, sizeof(tp_name), true))
		return 8;
	type = short_type_name(tp_name);
	s->mod->nr_types++;
	own_table(s, word(s, addr + TYPE_METHODS), type);
	add_getsets(s, word(s, addr + TYPE_GETSET), type);
	for (j = 0; j < sizeof(slots) / sizeof(slots[0]); j++)
		if (slots[j].type_offset)
			add_slot(s, type, &slots[j], word(s, addr + slots[j].type_offset));
	/* The sequence and mapping tables are separate structs the type points to. */
	seq = word(s, addr + TYPE_AS_SEQUENCE);
	map = word(s, addr + TYPE_AS_MAPPING);
	if (seq && at(s, seq, 64)) {
		add_slot(s, type, &slots[12], word(s, seq + 0));  /* sq_length */
		add_slot(s, type, &slots[13], word(s, seq + 24)); /* sq_item */
		add_slot(s, type, &slots[14], word(s, seq + 56)); /* sq_contains */
	}
	if (map && at(s, map, 24)) {
		add_slot(s, type, &slots[15], word(s, map + 0));  /* mp_length */
		add_slot(s, type, &slots[16], word(s, map + 8));  /* mp_subscript */
		add_slot(s, type, &slots[17], word(s, map + 16)); /* mp_ass_subscript */
	}
	return 8;
}

/* Static types: PyTypeObjects in the module's data. */
static void find_static_types(struct scan *s)
{
	scan_data(s, TYPE_SIZE, visit_static_type, NULL);
}

/* Heap types: PyType_Spec {name, basicsize, itemsize, flags, slots} with a PyType_Slot array. */
static uint64_t visit_type_spec(struct scan *s, uint64_t addr, void *ctx)
{
	uint64_t slot_array = word(s, addr + 24), slot;
	char tp_name[96];
	const char *type;
	size_t j;
	int n;

	if (!slot_array || !at(s, slot_array, 16) ||
	    !read_name(s, word(s, addr), tp_name, sizeof(tp_name), true) || !strchr(tp_name, '.'))
		return 8;
	/* Every slot id in range, up to the {0, NULL} terminator. */
	for (n = 0, slot = slot_array; n < 128 && at(s, slot, 16); n++, slot += 16) {
		uint32_t id = (uint32_t)word(s, slot);

		if (!id || id > 100)
			break;
	}
	if (n == 0 || n == 128 || (uint32_t)word(s, slot) != 0 || word(s, slot + 8))
		return 8;
	type = short_type_name(tp_name);
	s->mod->nr_types++;
	for (slot = slot_array; (uint32_t)word(s, slot); slot += 16) {
		uint32_t id = (uint32_t)word(s, slot);
		uint64_t fn = word(s, slot + 8);

		if (id == SPEC_METHODS)
			own_table(s, fn, type);
		else if (id == SPEC_GETSET)
			add_getsets(s, fn, type);
		for (j = 0; j < sizeof(slots) / sizeof(slots[0]); j++)
			if (slots[j].spec_id == id)
				add_slot(s, type, &slots[j], fn);
	}
	return 8;
}

static void find_type_specs(struct scan *s)
{
	scan_data(s, 32, visit_type_spec, NULL);
}

/*
 * The PyModuleDef of the module: {PyModuleDef_Base (40 bytes), m_name,
 * m_doc, m_size, m_methods, ...} whose m_name is the module's own name. Its
 * m_methods are the module-level functions; any other table without a type
 * belongs to a type we did not see.
 */
static uint64_t visit_module_def(struct scan *s, uint64_t addr, void *ctx)
{
	const char *last = strrchr(s->mod->name, '.');
	const char *short_name = last ? last + 1 : s->mod->name;
	uint64_t methods = word(s, addr + 64), *found = ctx;
	char m_name[128];

	if (!methods || !is_table(s, methods) ||
	    !read_name(s, word(s, addr + 40), m_name, sizeof(m_name), true))
		return 8;
	last = strrchr(m_name, '.');
	if (strcmp(last ? last + 1 : m_name, short_name))
		return 8;
	*found = methods;
	return SCAN_STOP;
}

static uint64_t find_module_methods(struct scan *s)
{
	uint64_t methods = 0;

	scan_data(s, 80, visit_module_def, &methods);
	return methods;
}

static void add_methods(struct scan *s)
{
	uint64_t module_methods = find_module_methods(s);
	size_t i, k;

	for (i = 0; i < s->nr_tables; i++) {
		const struct table *t = &s->tables[i];
		/* Without a PyModuleDef found, unowned tables are the best guess. */
		bool module_level = module_methods ? t->addr == module_methods : !t->owner[0];

		if (!module_level && !t->owner[0])
			continue; /* a type we could not identify: its methods would be misnamed */

		s->mod->nr_method_tables++;
		for (k = 0; k < t->count; k++) {
			struct pyx_entry_point *e;
			char method[96], name[256];
			unsigned int flags;
			uint64_t meth;

			if (!method_def(s, t->addr + 32 * k, method, sizeof(method), &meth, &flags))
				continue;
			snprintf(name, sizeof(name), "%s.%s",
				 module_level ? s->mod->name : t->owner, method);
			e = add_entry(s, name, meth, PYX_SIG_OBJECT,
				      module_level ? PYX_ENTRY_FUNCTION : PYX_ENTRY_METHOD);
			if (e)
				e->flags = flags;
		}
	}
}

/* C names from whatever symbols the object (and its debug file) carries. */
struct sym_lookup {
	struct pyx_module *mod;
	int64_t bias;
};

static int name_entries(void *opaque, const struct pyx_elf_sym *sym)
{
	struct sym_lookup *l = opaque;
	size_t i;

	if (sym->type != 2 /* STT_FUNC */)
		return 0;
	for (i = 0; i < l->mod->nr_entries; i++) {
		struct pyx_entry_point *e = &l->mod->entries[i];

		if (!e->symbol[0] && e->offset == sym->value) {
			const char *at_sign = strchr(sym->name, '@');
			int len = at_sign ? (int)(at_sign - sym->name) : (int)strlen(sym->name);

			snprintf(e->symbol, sizeof(e->symbol), "%.*s", len, sym->name);
		}
	}
	return 0;
}

static void name_symbols(struct pyx_process *proc, struct pyx_module *mod)
{
	struct sym_lookup l = {.mod = mod, .bias = mod->object->bias};
	struct pyx_debuginfo dbg;
	struct pyx_elf *debug_elf;

	pyx_elf__for_each_symbol(mod->object->elf, name_entries, &l);
	if (pyx_debuginfo__find(proc->root_fd, mod->object->path, mod->object->elf, &dbg))
		return;
	if (dbg.fd >= 0) {
		debug_elf = pyx_elf__open_fd(dbg.fd);
		if (debug_elf) {
			pyx_elf__for_each_symbol(debug_elf, name_entries, &l);
			pyx_elf__close(debug_elf);
		}
	}
	pyx_debuginfo__release(&dbg);
}

/* "numpy.core._multiarray_umath" ~ "numpy._core._multiarray_umath": components minus leading '_'. */
static bool same_name_loosely(const char *a, const char *b)
{
	while (*a && *b) {
		while (*a == '_')
			a++;
		while (*b == '_')
			b++;
		if (*a != *b)
			return false;
		if (*a) {
			a++;
			b++;
		}
	}
	while (*a == '_')
		a++;
	while (*b == '_')
		b++;
	return *a == *b;
}

static bool matches(const char *query, const char *name, const char *path)
{
	const char *last = strrchr(name, '.');
	size_t qlen = strlen(query), nlen = strlen(name);

	if (strchr(query, '/'))
		return !strcmp(query, path);
	if (!strcmp(query, name) || same_name_loosely(query, name))
		return true;
	/* "_imaging" names "PIL._imaging"; "_imaging" never names "PIL._imagingft". */
	return !strchr(query, '.') && last && !strcmp(last + 1, query) && nlen > qlen;
}

static void list_modules(struct pyx_process *proc, const char *query, char *why, size_t size)
{
	char names[64][128];
	unsigned int dist[64];
	size_t n = 0, i, j, used;

	for (i = 0; i < proc->nr_objects && n < 64; i++)
		if (pyx_python__extension_name(proc->objects[i].path, names[n], sizeof(names[n]))) {
			const char *last = strrchr(names[n], '.');

			dist[n] = pyx_edit_distance(query, last ? last + 1 : names[n]);
			n++;
		}
	/* Closest names first. */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && dist[j] < dist[j - 1]; j--) {
			char tmp[128];
			unsigned int d = dist[j];

			memcpy(tmp, names[j], sizeof(tmp));
			memcpy(names[j], names[j - 1], sizeof(tmp));
			memcpy(names[j - 1], tmp, sizeof(tmp));
			dist[j] = dist[j - 1];
			dist[j - 1] = d;
		}
	used = (size_t)snprintf(why, size,
				"no loaded extension module matches '%s' (loaded: ", query);
	for (i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(why + used, size - used, "%s%s", i ? ", " : "", names[i]);
	if (used < size)
		snprintf(why + used, size - used, "%s)", n ? "" : "none");
}

int pyx_module__discover(struct pyx_process *proc, struct pyx_python *py, const char *query,
			 struct pyx_module **out, char *why, size_t why_size)
{
	struct pyx_elf_sym type_sym;
	struct scan s = {.proc = proc};
	struct pyx_module *mod;
	char name[128];
	size_t i;
	int err;

	mod = calloc(1, sizeof(*mod));
	if (!mod)
		return -ENOMEM;
	for (i = 0; i < proc->nr_objects; i++) {
		struct pyx_object *obj = &proc->objects[i];

		if (pyx_python__extension_name(obj->path, name, sizeof(name)) &&
		    matches(query, name, obj->path)) {
			mod->object = obj;
			memcpy(mod->name, name, sizeof(mod->name));
			break;
		}
	}
	if (!mod->object) {
		list_modules(proc, query, why, why_size);
		free(mod);
		return -ENOENT;
	}
	if (!pyx_process__object_elf(proc, mod->object)) {
		err = -errno;
		snprintf(why, why_size, "cannot read %s: %s", mod->object->path, strerror(errno));
		free(mod);
		return err;
	}
	pyx_elf__build_id(mod->object->elf, mod->build_id, sizeof(mod->build_id));
	if (!pyx_elf__find_symbol(py->interp->elf, "PyType_Type", &type_sym))
		s.type_type = pyx_object__runtime(py->interp, type_sym.value);
	s.mod = mod;
	err = read_regions(&s);
	if (!err) {
		find_method_tables(&s);
		find_static_types(&s);
		find_type_specs(&s);
		add_methods(&s);
		name_symbols(proc, mod);
	}
	for (i = 0; i < s.nr_regions; i++)
		free(s.regions[i].data);
	free(s.regions);
	free(s.tables);
	if (err) {
		snprintf(why, why_size, "cannot read module %s: %s", mod->name, strerror(-err));
		pyx_module__free(mod);
		return err;
	}
	*out = mod;
	return 0;
}

struct symbol_add {
	struct pyx_module *mod;
	size_t cap;
	size_t added;
	const char *pattern; /* a glob symbols must match; NULL: every one */
};

static int add_symbol(void *opaque, const struct pyx_elf_sym *sym)
{
	struct symbol_add *a = opaque;
	struct pyx_module *mod = a->mod;
	struct pyx_entry_point *e;
	const char *at_sign;
	size_t i;

	if (sym->type != 2 /* STT_FUNC */ || !sym->value || !sym->size)
		return 0;
	if (a->pattern) {
		char plain[128];

		at_sign = strchr(sym->name, '@');
		snprintf(plain, sizeof(plain), "%.*s",
			 at_sign ? (int)(at_sign - sym->name) : (int)strlen(sym->name), sym->name);
		if (fnmatch(a->pattern, plain, 0))
			return 0;
	}
	for (i = 0; i < mod->nr_entries; i++)
		if (mod->entries[i].offset == sym->value)
			return 0; /* an entry point already, or the other table's copy */
	if (mod->nr_entries >= MAX_ENTRIES)
		return 1;
	if (mod->nr_entries == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;

		e = realloc(mod->entries, cap * sizeof(*e));
		if (!e)
			return 1;
		mod->entries = e;
		a->cap = cap;
	}
	e = &mod->entries[mod->nr_entries++];
	memset(e, 0, sizeof(*e));
	at_sign = strchr(sym->name, '@');
	snprintf(e->symbol, sizeof(e->symbol), "%.*s",
		 at_sign ? (int)(at_sign - sym->name) : (int)strlen(sym->name), sym->name);
	snprintf(e->name, sizeof(e->name), "%s", e->symbol);
	e->offset = sym->value;
	e->address = pyx_object__runtime(mod->object, sym->value);
	e->signature = PYX_SIG_UNKNOWN;
	e->kind = PYX_ENTRY_SYMBOL;
	a->added++;
	return 0;
}

static size_t add_symbols(struct pyx_process *proc, struct pyx_module *mod, const char *pattern)
{
	struct symbol_add a = {.mod = mod, .cap = mod->nr_entries, .pattern = pattern};
	struct pyx_debuginfo dbg;
	struct pyx_elf *debug_elf;

	pyx_elf__for_each_symbol(mod->object->elf, add_symbol, &a);
	if (!pyx_debuginfo__find(proc->root_fd, mod->object->path, mod->object->elf, &dbg)) {
		if (dbg.fd >= 0) {
			debug_elf = pyx_elf__open_fd(dbg.fd);
			if (debug_elf) {
				pyx_elf__for_each_symbol(debug_elf, add_symbol, &a);
				pyx_elf__close(debug_elf);
			}
		}
		pyx_debuginfo__release(&dbg);
	}
	return a.added;
}

size_t pyx_module__add_all_symbols(struct pyx_process *proc, struct pyx_module *mod)
{
	return add_symbols(proc, mod, NULL);
}

struct pyx_module *pyx_module__of_symbols(struct pyx_process *proc, struct pyx_object *obj,
					  const char *pattern)
{
	struct pyx_module *mod;

	if (!pyx_process__object_elf(proc, obj)) {
		errno = ENOENT;
		return NULL;
	}
	mod = calloc(1, sizeof(*mod));
	if (!mod)
		return NULL;
	mod->object = obj;
	snprintf(mod->name, sizeof(mod->name), "%s", pyx_basename(obj->path));
	if (!add_symbols(proc, mod, pattern)) {
		pyx_module__free(mod);
		errno = ENOENT;
		return NULL;
	}
	return mod;
}

void pyx_module__free(struct pyx_module *mod)
{
	if (!mod)
		return;
	free(mod->entries);
	free(mod);
}
