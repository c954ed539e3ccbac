// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf/elf.h"
#include "python/detect.h"

static const char *const symbol_names[PYX_SYM__MAX] = {
	[PYX_SYM_RUNTIME] = "_PyRuntime",
	[PYX_SYM_EVAL_FRAME] = "_PyEval_EvalFrameDefault",
	[PYX_SYM_FATAL_ERROR] = "Py_FatalError",
	[PYX_SYM_FATAL_ERROR_FUNC] = "_Py_FatalErrorFunc",
	[PYX_SYM_VERSION] = "Py_Version",
};

const char *pyx_symbol_origin_name(enum pyx_symbol_origin origin)
{
	switch (origin) {
	case PYX_SYMBOL_DYNSYM:
		return ".dynsym";
	case PYX_SYMBOL_SYMTAB:
		return ".symtab";
	case PYX_SYMBOL_DEBUG_FILE:
		return "debug file";
	default:
		return NULL;
	}
}

/* Which mapped object holds the interpreter: the one defining _PyRuntime. */
static struct pyx_object *find_interpreter(struct pyx_process *proc, struct pyx_object **old)
{
	struct pyx_elf_sym sym;
	size_t i;

	*old = NULL;
	for (i = 0; i < proc->nr_objects; i++) {
		struct pyx_object *obj = &proc->objects[i];
		struct pyx_elf *elf;

		if (!obj->executable)
			continue;
		elf = pyx_process__object_elf(proc, obj);
		if (!elf)
			continue;
		if (!pyx_elf__find_symbol(elf, "_PyRuntime", &sym))
			return obj;
		/* Python 2 and 3.6 have no _PyRuntime; recognise them to say why we refuse. */
		if (!pyx_elf__find_symbol(elf, "Py_InitializeEx", &sym))
			*old = obj;
	}
	return NULL;
}

struct soabi_scan {
	char soabi[64];
	bool found;
};

/*
 * The extension-module suffix table (".cpython-311d-x86_64-linux-gnu.so")
 * is compiled into every CPython 3 interpreter. It names the minor version
 * and the ABI flags ("d" debug, "t" free-threaded) without any symbol, and
 * survives renaming the executable.
 */
static int match_soabi(void *opaque, const char *str, size_t len, uint64_t vaddr)
{
	struct soabi_scan *scan = opaque;

	if (len < 16 || strncmp(str, ".cpython-", 9) || strcmp(str + len - 3, ".so"))
		return 0;
	if (len - 4 >= sizeof(scan->soabi))
		return 0;
	memcpy(scan->soabi, str + 1, len - 4);
	scan->soabi[len - 4] = '\0';
	scan->found = true;
	return 1;
}

static int parse_soabi(struct pyx_python *py)
{
	const char *p = py->soabi + strlen("cpython-");
	unsigned int digits = 0;

	if (p[0] != '3' || !isdigit((unsigned char)p[1]))
		return -EINVAL;
	py->major = 3;
	p++;
	while (isdigit((unsigned char)*p) && digits < 3) {
		py->minor = py->minor * 10 + (unsigned int)(*p - '0');
		p++;
		digits++;
	}
	for (; *p && *p != '-'; p++) {
		if (*p == 'd')
			py->debug = true;
		else if (*p == 't')
			py->free_threaded = true;
	}
	return 0;
}

struct version_scan {
	unsigned int major;
	unsigned int minor;
	char best[32];
	unsigned int candidates;
};

/*
 * PY_VERSION, e.g. "3.9.2" or "3.10.0rc2", in .rodata (before Py_Version
 * existed). The linker merges string tails, so it may only exist as the end
 * of a longer string such as a "--prefix" path ".../versions/3.8.18": accept
 * a version at the end of a string, after a character that cannot be part
 * of one.
 */
static int match_version_string(void *opaque, const char *str, size_t len, uint64_t vaddr)
{
	struct version_scan *scan = opaque;
	const char *start, *p;
	char prefix[16];
	int n;

	n = snprintf(prefix, sizeof(prefix), "%u.%u.", scan->major, scan->minor);
	for (start = str; (start = strstr(start, prefix)); start++) {
		if (start > str && (isdigit((unsigned char)start[-1]) || start[-1] == '.'))
			continue;
		p = start + n;
		if (!isdigit((unsigned char)*p))
			continue;
		while (isdigit((unsigned char)*p))
			p++;
		/* Optional pre-release tag (a1, b2, rc1) and a local "+" marker. */
		if (*p == 'a' || *p == 'b' || (p[0] == 'r' && p[1] == 'c')) {
			p += *p == 'r' ? 2 : 1;
			if (!isdigit((unsigned char)*p))
				continue;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p == '+')
			p++;
		if (*p)
			continue;
		if (!scan->candidates)
			snprintf(scan->best, sizeof(scan->best), "%s", start);
		if (!scan->candidates || strcmp(scan->best, start))
			scan->candidates++;
		break;
	}
	return 0;
}

/* Name the version of an interpreter too old to have _PyRuntime (2.x, 3.0-3.6). */
static const char *old_python_version(const struct pyx_object *obj)
{
	static const unsigned int candidates[][2] = { { 2, 7 }, { 3, 6 }, { 3, 5 }, { 2, 6 } };
	static char version[40];
	struct version_scan scan;
	size_t i;

	for (i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		memset(&scan, 0, sizeof(scan));
		scan.major = candidates[i][0];
		scan.minor = candidates[i][1];
		pyx_elf__for_each_string(obj->elf, ".rodata", 5, match_version_string, &scan);
		if (scan.candidates == 1) {
			snprintf(version, sizeof(version), "%s", scan.best);
			return version;
		}
	}
	return "older than 3.7";
}

static void format_version_hex(struct pyx_python *py, uint64_t hex)
{
	static const char *const levels[16] = { [0xa] = "a", [0xb] = "b", [0xc] = "rc" };
	unsigned int level = (hex >> 4) & 0xf, serial = hex & 0xf;

	py->micro = (hex >> 8) & 0xff;
	if (level == 0xf || !levels[level])
		snprintf(py->version, sizeof(py->version), "%u.%u.%u", py->major, py->minor,
			 py->micro);
	else
		snprintf(py->version, sizeof(py->version), "%u.%u.%u%s%u", py->major, py->minor,
			 py->micro, levels[level], serial);
}

static int detect_version(struct pyx_python *py, struct pyx_elf *elf, char *why, size_t why_size)
{
	struct pyx_python_symbol_info *ver = &py->symbols[PYX_SYM_VERSION];
	struct version_scan scan = {};
	uint32_t hex;

	if (ver->origin && !pyx_elf__read_vaddr(elf, ver->vaddr, &hex, sizeof(hex)) &&
	    (hex >> 24) == 3 && ((hex >> 16) & 0xff) == py->minor) {
		format_version_hex(py, hex);
		py->version_source = "Py_Version";
		return 0;
	}
	scan.major = py->major;
	scan.minor = py->minor;
	pyx_elf__for_each_string(elf, ".rodata", 5, match_version_string, &scan);
	if (scan.candidates == 1) {
		snprintf(py->version, sizeof(py->version), "%s", scan.best);
		py->micro = (unsigned int)strtoul(strrchr(scan.best, '.') + 1, NULL, 10);
		py->version_source = "PY_VERSION string";
		return 0;
	}
	/* Minor known from the ABI tag; the patch level is unknown (never guessed). */
	snprintf(py->version, sizeof(py->version), "%u.%u", py->major, py->minor);
	py->version_source = "ABI tag";
	return 0;
}

static void resolve_symbols(struct pyx_python *py, struct pyx_elf *elf)
{
	struct pyx_elf *debug_elf = NULL;
	unsigned int i;

	py->has_symtab = pyx_elf__has_section(elf, ".symtab");
	py->has_dynsym = pyx_elf__has_section(elf, ".dynsym");
	if (py->dwarf.fd >= 0)
		debug_elf = pyx_elf__open_fd(py->dwarf.fd);
	for (i = 0; i < PYX_SYM__MAX; i++) {
		struct pyx_python_symbol_info *info = &py->symbols[i];
		struct pyx_elf_sym sym;

		info->name = symbol_names[i];
		if (!pyx_elf__find_symbol(elf, info->name, &sym))
			info->origin = sym.dynamic ? PYX_SYMBOL_DYNSYM : PYX_SYMBOL_SYMTAB;
		else if (debug_elf && !pyx_elf__find_symbol(debug_elf, info->name, &sym))
			info->origin = PYX_SYMBOL_DEBUG_FILE;
		else
			continue;
		info->vaddr = sym.value;
		info->size = sym.size;
		info->address = pyx_object__runtime(py->interp, sym.value);
	}
	pyx_elf__close(debug_elf);
}

/*
 * _Py_DebugOffsets (3.13+) is the first member of _PyRuntime: the cookie
 * "xdebugpy", the writer's PY_VERSION_HEX and the free-threaded flag. Read
 * it live; the file's initialized .PyRuntime data is the fallback.
 */
static void read_debug_offsets(struct pyx_python *py, struct pyx_process *proc,
			       struct pyx_elf *elf)
{
	struct {
		char cookie[8];
		uint64_t version;
		uint64_t free_threaded;
	} head;
	const struct pyx_python_symbol_info *rt = &py->symbols[PYX_SYM_RUNTIME];

	if (!rt->origin)
		return;
	if (pyx_process__read(proc, rt->address, &head, sizeof(head)) &&
	    pyx_elf__read_vaddr(elf, rt->vaddr, &head, sizeof(head)))
		return;
	if (memcmp(head.cookie, "xdebugpy", 8))
		return;
	py->debug_offsets_present = true;
	py->debug_offsets_version = head.version;
	py->debug_offsets_free_threaded = head.free_threaded != 0;
}

struct usdt_collect {
	struct pyx_python *py;
	int err;
};

static int collect_usdt(void *opaque, const struct pyx_usdt_note *note)
{
	struct usdt_collect *c = opaque;
	struct pyx_python *py = c->py;
	struct pyx_usdt_probe *probes, *probe;

	probes = realloc(py->usdt, (py->nr_usdt + 1) * sizeof(*probes));
	if (!probes) {
		c->err = -ENOMEM;
		return 1;
	}
	py->usdt = probes;
	probe = &probes[py->nr_usdt++];
	memset(probe, 0, sizeof(*probe));
	snprintf(probe->provider, sizeof(probe->provider), "%s", note->provider);
	snprintf(probe->name, sizeof(probe->name), "%s", note->name);
	snprintf(probe->args, sizeof(probe->args), "%s", note->args);
	probe->address = pyx_object__runtime(py->interp, note->pc);
	probe->semaphore = note->semaphore ? pyx_object__runtime(py->interp, note->semaphore) : 0;
	return 0;
}

int pyx_python__detect(struct pyx_process *proc, struct pyx_python **out, char *why,
		       size_t why_size)
{
	struct usdt_collect usdt = {};
	struct soabi_scan soabi = {};
	struct pyx_python *py;
	struct pyx_object *old;
	struct pyx_elf *elf;
	int err;

	if (proc->kernel_thread) {
		snprintf(why, why_size, "process %d (%s) is a kernel thread, not CPython", proc->pid,
			 proc->comm);
		return -ENOEXEC;
	}
	py = calloc(1, sizeof(*py));
	if (!py)
		return -ENOMEM;
	py->dwarf.fd = -1;
	py->interp = find_interpreter(proc, &old);
	if (!py->interp) {
		if (!pyx_process__alive(proc)) {
			snprintf(why, why_size, "process %d exited during inspection", proc->pid);
			err = -ESRCH;
		} else if (old) {
			snprintf(why, why_size,
				 "process %d (%s) runs Python %s, which pyxtrace does not support (CPython 3.%d-3.%d)",
				 proc->pid, proc->comm, old_python_version(old), PYX_PYTHON_MIN_MINOR,
				 PYX_PYTHON_MAX_MINOR);
			err = -EPROTONOSUPPORT;
		} else {
			snprintf(why, why_size,
				 "process %d (%s) is not a CPython process (no interpreter mapped)",
				 proc->pid, proc->comm);
			err = -ENOEXEC;
		}
		goto out_free;
	}
	elf = py->interp->elf;
	py->shared = pyx_elf__type(elf) == 3 /* ET_DYN */ &&
		     strstr(pyx_basename(py->interp->path), "libpython") != NULL;
	pyx_elf__for_each_string(elf, ".rodata", 16, match_soabi, &soabi);
	if (!soabi.found) {
		snprintf(why, why_size, "%s has _PyRuntime but no CPython ABI tag: not a CPython build pyxtrace knows",
			 py->interp->path);
		err = -ENOEXEC;
		goto out_free;
	}
	memcpy(py->soabi, soabi.soabi, sizeof(py->soabi));
	err = parse_soabi(py);
	if (err) {
		snprintf(why, why_size, "unrecognised CPython ABI tag '%s' in %s", py->soabi,
			 py->interp->path);
		err = -ENOEXEC;
		goto out_free;
	}
	pyx_elf__build_id(elf, py->build_id, sizeof(py->build_id));
	pyx_debuginfo__find(proc->root_fd, py->interp->path, elf, &py->dwarf);
	resolve_symbols(py, elf);
	detect_version(py, elf, why, why_size);
	if (py->minor < PYX_PYTHON_MIN_MINOR || py->minor > PYX_PYTHON_MAX_MINOR) {
		snprintf(why, why_size,
			 "process %d runs Python %s, which pyxtrace does not support (CPython 3.%d-3.%d)",
			 proc->pid, py->version, PYX_PYTHON_MIN_MINOR, PYX_PYTHON_MAX_MINOR);
		err = -EPROTONOSUPPORT;
		goto out_free;
	}
	read_debug_offsets(py, proc, elf);
	usdt.py = py;
	pyx_elf__for_each_usdt(elf, collect_usdt, &usdt);
	if (usdt.err) {
		err = usdt.err;
		goto out_free;
	}
	*out = py;
	return 0;

out_free:
	pyx_python__free(py);
	return err;
}

bool pyx_python__holds_interpreter(struct pyx_process *proc, struct pyx_object *obj)
{
	struct pyx_elf *elf = obj->executable ? pyx_process__object_elf(proc, obj) : NULL;
	struct pyx_elf_sym sym;

	return elf && (!pyx_elf__find_symbol(elf, "_PyRuntime", &sym) ||
		       !pyx_elf__find_symbol(elf, "Py_InitializeEx", &sym));
}

bool pyx_python__mapped(struct pyx_process *proc)
{
	struct pyx_object *old;

	return find_interpreter(proc, &old) != NULL || old;
}

void pyx_python__free(struct pyx_python *py)
{
	if (!py)
		return;
	pyx_debuginfo__release(&py->dwarf);
	free(py->usdt);
	free(py);
}

bool pyx_python__extension_name(const char *path, char *name, size_t size)
{
	static const char *const roots[] = { "/site-packages/", "/dist-packages/", "/lib-dynload/" };
	const char *base = pyx_basename(path), *start = base, *dot;
	size_t i, len;

	/* CPython's suffixes: ".cpython-<tag>.so", ".abi3.so" (and plain ".so", too vague to claim). */
	if (!strstr(base, ".cpython-") && !strstr(base, ".abi3.so"))
		return false;
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		const char *hit = strstr(path, roots[i]);

		if (hit) {
			start = hit + strlen(roots[i]);
			break;
		}
	}
	dot = strchr(base, '.');
	if (!dot)
		return false;
	len = (size_t)(dot - start);
	if (len + 1 > size)
		return false;
	memcpy(name, start, len);
	name[len] = '\0';
	for (i = 0; i < len; i++)
		if (name[i] == '/')
			name[i] = '.';
	return true;
}
