/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The threading names of a live process's threads, read from outside.
 * CPython 3.14+ gives a thread its Thread.name as the kernel's task name
 * (comm); before, the name lives only in the Thread object, which is gone
 * with the process by the time a crash is reported: commands read the names
 * ahead (at attach, on new threads, at each interval) and look them up when
 * an event names a thread.
 */
#ifndef PYX_PYTHON_THREADNAMES_H
#define PYX_PYTHON_THREADNAMES_H
#include <stddef.h>
#include <stdint.h>
#include "python/code.h"
#include "python/layout.h"

struct pyx_thread_name {
	uint64_t thread_id; /* pthread_self() as the thread's PyThreadState records it */
	const char *name;   /* interned in the code cache the names were read with */
};

struct pyx_thread_names {
	struct pyx_thread_name *names;
	size_t nr, cap;
};

/*
 * Whether this pyxtrace reads threading names from memory for @py (3.8 to
 * 3.13; later versions name their threads in the kernel).
 */
bool pyx_thread_names__supported(const struct pyx_python *py);

/*
 * Replace @names with the threads of every interpreter whose outermost
 * Python frame is threading's Thread._bootstrap: that frame's self is the
 * Thread, its _name attribute the name. The main thread and threads started
 * without threading (_thread, C) get none. Reads @mem only (no stop);
 * strings are interned in @cache. 0, or -errno (e.g. -EOPNOTSUPP for a
 * version this does not read).
 */
int pyx_thread_names__read(struct pyx_thread_names *names, const struct pyx_python *py,
			   const struct pyx_python_layout *layout, struct pyx_code_cache *cache,
			   struct pyx_mem mem);

/*
 * The name to show for the thread a walk reported in @rec: its threading
 * name when known (*@source "threading"), else the kernel's task name
 * (*@source "comm"). *@len bytes: a kernel name is not NUL-terminated.
 */
const char *pyx_thread_names__of(const struct pyx_thread_names *names,
				 const struct pyx_rec_pystack *rec, size_t *len,
				 const char **source);

void pyx_thread_names__free(struct pyx_thread_names *names);

#endif /* PYX_PYTHON_THREADNAMES_H */
