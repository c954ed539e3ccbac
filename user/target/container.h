/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Containers as the kernel sees them: a cgroup path that carries an engine's
 * 64-hex container id. Recognised forms (cgroupfs and systemd drivers):
 *   /docker/<id>
 *   /system.slice/docker-<id>.scope
 *   /kubepods.slice/.../cri-containerd-<id>.scope, crio-<id>.scope
 *   /machine.slice/libpod-<id>.scope
 *   /kubepods/<qos>/pod<uid>/<id>
 */
#ifndef PYX_TARGET_CONTAINER_H
#define PYX_TARGET_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PYX_CONTAINER_ID_LEN 64

struct pyx_container {
	char id[PYX_CONTAINER_ID_LEN + 1]; /* empty when not in a container */
	char cgroup[512];		   /* the cgroup path the id was found in */
};

/* Extract a container id from one cgroup path. Returns true when found. */
bool pyx_container_from_cgroup_path(const char *path, struct pyx_container *out);

/* Read /proc/PID/cgroup. -ENOENT-free: a process outside containers gives id "". */
int pyx_container_of_pid(pid_t pid, struct pyx_container *out);

/* Whether @query (a full id, a unique prefix of >= 4 hex digits) names @id. */
bool pyx_container_id_matches(const char *id, const char *query);

/*
 * Find the host PID of the process whose PID inside container @query is
 * @ns_pid. Returns 0, -ENOENT (no such container), -ESRCH (no such PID in
 * it) or -EEXIST (the prefix names several containers).
 */
int pyx_container_find_pid(const char *query, pid_t ns_pid, pid_t *host_pid);

/*
 * Every container id seen on the host (from the cgroup of every process), as a newly
 * allocated array of strings; the caller frees each and the array.
 */
int pyx_container_list(char ***ids, size_t *count);

/*
 * The container @query (a full id, a unique prefix of >= 4 hex digits)
 * names, with its own cgroup path (the component carrying the id, not a
 * sub-cgroup below it). 0, -ENOENT (no such container), -EEXIST (several).
 */
int pyx_container_resolve(const char *query, struct pyx_container *out);

/* Call @fn for each process in /proc (numeric entries); stops at the first non-zero return. */
int pyx_for_each_pid(int (*fn)(void *ctx, pid_t pid), void *ctx);

#endif /* PYX_TARGET_CONTAINER_H */
