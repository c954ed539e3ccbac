/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What CPython a process runs, read from the target itself: the object that
 * holds the interpreter (the executable or libpython), its exact version,
 * flavour (debug, free-threaded), symbols, USDT probes, _Py_DebugOffsets and
 * DWARF. This directory is the only place that knows CPython versions.
 */
#ifndef PYX_PYTHON_DETECT_H
#define PYX_PYTHON_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elf/debuginfo.h"
#include "target/process.h"

#define PYX_PYTHON_MIN_MINOR 8
#define PYX_PYTHON_MAX_MINOR 15

/* Interpreter symbols every command may need, in this order. */
enum pyx_python_symbol {
	PYX_SYM_RUNTIME = 0,	  /* _PyRuntime */
	PYX_SYM_EVAL_FRAME,	  /* _PyEval_EvalFrameDefault */
	PYX_SYM_FATAL_ERROR,	  /* Py_FatalError (a macro over _Py_FatalErrorFunc on 3.9+) */
	PYX_SYM_FATAL_ERROR_FUNC, /* _Py_FatalErrorFunc */
	PYX_SYM_VERSION,	  /* Py_Version (3.11+) */
	PYX_SYM__MAX,
};

enum pyx_symbol_origin {
	PYX_SYMBOL_MISSING = 0,
	PYX_SYMBOL_DYNSYM,
	PYX_SYMBOL_SYMTAB,
	PYX_SYMBOL_DEBUG_FILE,
};

struct pyx_python_symbol_info {
	const char *name;
	enum pyx_symbol_origin origin;
	uint64_t vaddr;	  /* link-time address in the interpreter object */
	uint64_t address; /* runtime address in the target */
	uint64_t size;
};

struct pyx_usdt_probe {
	char provider[32];
	char name[64];
	char args[128];
	uint64_t address;   /* runtime address of the probe site */
	uint64_t semaphore; /* runtime address, 0 when none */
};

struct pyx_python {
	unsigned int major, minor, micro;
	char version[32];	 /* "3.11.2", "3.15.0a2" */
	const char *version_source; /* "Py_Version", "PY_VERSION string" */
	char soabi[64];		 /* "cpython-311-x86_64-linux-gnu" */
	bool debug;		 /* Py_DEBUG build ("d" ABI flag) */
	bool free_threaded;	 /* Py_GIL_DISABLED build ("t" ABI flag) */
	bool shared;		 /* interpreter in libpython, not in the executable */
	struct pyx_object *interp; /* the object holding _PyRuntime */
	char build_id[96];
	bool has_symtab;
	bool has_dynsym;
	struct pyx_python_symbol_info symbols[PYX_SYM__MAX];
	struct pyx_debuginfo dwarf;

	/* _Py_DebugOffsets at the start of _PyRuntime (3.13+). */
	bool debug_offsets_present;
	uint64_t debug_offsets_version; /* PY_VERSION_HEX of the writer */
	bool debug_offsets_free_threaded;

	struct pyx_usdt_probe *usdt;
	size_t nr_usdt;

	/* Set by pyx_python__layout(): where the frame walker's offsets came from. */
	const char *offsets_source;
};

/*
 * Inspect @proc. On failure returns -errno and puts a one-line reason in
 * @why: -ENOEXEC not CPython, -EPROTONOSUPPORT a CPython outside 3.8–3.15,
 * -ESRCH the process went away.
 */
int pyx_python__detect(struct pyx_process *proc, struct pyx_python **out, char *why,
		       size_t why_size);
void pyx_python__free(struct pyx_python *py);

/*
 * Whether @obj (an executable object of @proc) holds a Python interpreter,
 * supported or not: what process discovery recognises a Python process by.
 */
bool pyx_python__holds_interpreter(struct pyx_process *proc, struct pyx_object *obj);

/* Whether any Python interpreter (supported or not) is mapped: launch mode waits for one. */
bool pyx_python__mapped(struct pyx_process *proc);

const char *pyx_symbol_origin_name(enum pyx_symbol_origin origin);

/* Import-style name of an extension module from its path ("PIL._imaging"), NULL if not one. */
bool pyx_python__extension_name(const char *path, char *name, size_t size);

#endif /* PYX_PYTHON_DETECT_H */
