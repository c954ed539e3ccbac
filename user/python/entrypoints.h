/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The Python-visible C functions of an extension module, found without
 * symbols (distribution builds are stripped and their methods static): in
 * the module's relocated data, read from the live target (read-only),
 * PyMethodDef arrays (module functions and type methods), static
 * PyTypeObjects (their slots and PyGetSetDef tables) and PyType_Spec slot
 * arrays (heap types). Symbols, where the object or its debug file has
 * them, only add the C names.
 */
#ifndef PYX_PYTHON_ENTRYPOINTS_H
#define PYX_PYTHON_ENTRYPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "python/detect.h"
#include "target/process.h"

/* What a C entry point returns, which decides what an error or a bad return is. */
enum pyx_signature {
	PYX_SIG_OBJECT = 1, /* PyObject*: NULL is an error (with an exception set) */
	PYX_SIG_INT,	    /* int: -1 is an error (setters, tp_init, most slots) */
	PYX_SIG_SSIZE,	    /* Py_ssize_t / Py_hash_t: -1 is an error (__len__, __hash__) */
	PYX_SIG_VOID,	    /* returns nothing (tp_dealloc) */
	PYX_SIG_UNKNOWN,    /* a plain C function (--all-symbols): returns not classified */
};

const char *pyx_signature_name(enum pyx_signature sig);

enum pyx_entry_kind {
	PYX_ENTRY_FUNCTION = 1, /* module-level PyMethodDef */
	PYX_ENTRY_METHOD,	/* a type's PyMethodDef */
	PYX_ENTRY_GETTER,
	PYX_ENTRY_SETTER,
	PYX_ENTRY_SLOT,	  /* a type slot (tp_init, tp_dealloc, sq_length...) */
	PYX_ENTRY_SYMBOL, /* any other function symbol of the module (--all-symbols) */
};

struct pyx_entry_point {
	char name[160];	  /* Python name: "PIL._imaging.fill", "ImagingCore.getpixel" */
	char symbol[128]; /* C symbol, "" when the object has no symbol for it */
	uint64_t address; /* runtime address in the target */
	uint64_t offset;  /* link-time address in the object */
	enum pyx_signature signature;
	enum pyx_entry_kind kind;
	unsigned int flags; /* METH_* for methods and functions */
	/* Probe placement (probes/centry.c: pyx_centry_plan). */
	unsigned int probe_delta; /* probe at address + delta: the cheapest safe place */
	int probe_class;	  /* enum pyx_probe_class there; 0 when not probeable */
	int entry_class;	  /* at the entry itself */
};

struct pyx_module {
	char name[128]; /* import name as resolved ("PIL._imaging") */
	struct pyx_object *object;
	char build_id[96];
	struct pyx_entry_point *entries;
	size_t nr_entries;
	size_t nr_types;
	size_t nr_method_tables;
	uint32_t cookie_base; /* BPF cookie of entries[0] (probes/centry.c); entries follow */
};

/*
 * Resolve @query (an import name: "_imaging", "PIL._imaging", or a path) to
 * a loaded extension module of @proc and discover its entry points.
 * -ENOENT with a one-line reason in @why (listing the loaded extension
 * modules, closest names first) when nothing matches; -ENOEXEC when the
 * name is a pure-Python module.
 */
int pyx_module__discover(struct pyx_process *proc, struct pyx_python *py, const char *query,
			 struct pyx_module **out, char *why, size_t why_size);

/*
 * --all-symbols: add every function symbol of the module (.symtab,
 * .dynsym, its debug file) that is not an entry point already, named by
 * its symbol. Returns how many were added.
 */
size_t pyx_module__add_all_symbols(struct pyx_process *proc, struct pyx_module *mod);

/*
 * The function symbols of @obj (.symtab, .dynsym, its debug file) whose
 * names match the shell glob @pattern, as a module of plain C functions
 * (signature unknown), named after the object's file. NULL with errno
 * (ENOENT: nothing matches).
 */
struct pyx_module *pyx_module__of_symbols(struct pyx_process *proc, struct pyx_object *obj,
					  const char *pattern);
void pyx_module__free(struct pyx_module *mod);

#endif /* PYX_PYTHON_ENTRYPOINTS_H */
