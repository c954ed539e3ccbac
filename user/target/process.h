/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A live process as /proc shows it: identity, namespaces, container, mapped
 * objects, memory. Knows nothing of Python. Reads only; never stops the
 * target (memory is read with process_vm_readv, which needs ptrace *access*
 * rights but does not attach).
 */
#ifndef PYX_TARGET_PROCESS_H
#define PYX_TARGET_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/container.h"

struct pyx_elf;

/* One file mapped into the target: all its mappings grouped by (dev, inode). */
struct pyx_object {
	char *path;	   /* as /proc/PID/maps shows it, without " (deleted)" */
	bool deleted;	   /* replaced or removed on disk since it was mapped */
	unsigned long dev; /* makedev(major, minor) of the mapping */
	unsigned long inode;
	uint64_t start;	      /* lowest mapped address */
	uint64_t end;	      /* highest mapped address (exclusive) */
	uint64_t base_start;  /* the mapping with the lowest file offset: its start... */
	uint64_t base_offset; /* ...and its file offset, to compute the load bias */
	uint64_t map_start;   /* any mapping of it, for /proc/PID/map_files */
	uint64_t map_end;
	bool executable; /* some mapping of it is r-x */
	/* Filled on demand by pyx_process__object_elf(). */
	struct pyx_elf *elf;
	int fd;
	int64_t bias; /* runtime address = link-time vaddr + bias */
	bool bias_known;
};

struct pyx_process {
	pid_t pid;    /* host PID (thread-group id) */
	pid_t ns_pid; /* PID in its own PID namespace (innermost NSpid) */
	char comm[16];
	char state; /* from /proc/PID/stat: R, S, D, Z, ... */
	uid_t uid;
	bool pid_ns_differs;
	bool mnt_ns_differs;
	struct pyx_container container; /* id[0] == 0 when not in a container */
	int root_fd;			/* O_PATH /proc/PID/root */
	struct pyx_object *objects;
	size_t nr_objects;
	bool kernel_thread; /* no user address space */
};

/*
 * Open a process by host PID. -ESRCH: no such process; -EOWNERDEAD: a
 * zombie; -EPERM/-EACCES: no rights. @pid may be a thread id: the process
 * is its thread group.
 */
int pyx_process__open(pid_t pid, struct pyx_process **out);
void pyx_process__close(struct pyx_process *proc);

/* (Re)read /proc/PID/maps into proc->objects. */
int pyx_process__read_maps(struct pyx_process *proc);

/* The scheduler state letter of a process or thread (R, S, D, Z, ...), 0 when gone. */
char pyx_task_state(pid_t pid);

/*
 * @fn on each executable file mapping of process @pid (/proc/PID/maps, a
 * line each: an object mapped in several r-x parts comes several times),
 * without opening anything: a cheap look. Stops at @fn's first non-zero;
 * 0, -ESRCH (gone) or a negative @fn result.
 */
int pyx_for_each_exec_mapping(pid_t pid,
			      int (*fn)(void *ctx, unsigned long dev, unsigned long inode,
					const char *path),
			      void *ctx);

/* The parent's host PID of process @pid (/proc/PID/stat), 0 when gone. */
pid_t pyx_parent_of(pid_t pid);

/* Whether the process is still alive (not gone, not a zombie). */
bool pyx_process__alive(const struct pyx_process *proc);

/*
 * The value of variable @name in the environment the process started with
 * (/proc/PID/environ), copied into @buf; -ENOENT when it is not set.
 */
int pyx_process__getenv(const struct pyx_process *proc, const char *name, char *buf, size_t size);

/*
 * Open the ELF of a mapped object (through map_files, so it is the mapped
 * inode even when deleted) and compute its load bias. Cached on the object.
 */
struct pyx_elf *pyx_process__object_elf(struct pyx_process *proc, struct pyx_object *obj);

/* Runtime address of link-time @vaddr of @obj (needs pyx_process__object_elf first). */
uint64_t pyx_object__runtime(const struct pyx_object *obj, uint64_t vaddr);

/* The object whose mappings contain @addr, or NULL. */
struct pyx_object *pyx_process__object_at(struct pyx_process *proc, uint64_t addr);

/* Read target memory. Returns 0, -EFAULT when unmapped/short, -ESRCH when gone. */
int pyx_process__read(const struct pyx_process *proc, uint64_t addr, void *buf, size_t len);

/* pyx_process__read() with the process as an untyped context: a memory reader callback. */
int pyx_process__read_cb(void *proc, uint64_t addr, void *buf, size_t len);

/*
 * The innermost NSpid of a process (@tid 0) or of one of its threads: its
 * PID/TID as seen inside its own PID namespace. 0 when it cannot be read.
 */
pid_t pyx_ns_pid_of(pid_t pid, pid_t tid);

/* Base name of a path ("/usr/lib/x.so" -> "x.so"). */
const char *pyx_basename(const char *path);

#endif /* PYX_TARGET_PROCESS_H */
