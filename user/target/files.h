/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Opening a target's files without following its symlinks out of its root.
 * Mapped objects are opened through /proc/PID/map_files (the very inode that
 * is mapped, even if deleted or replaced on disk); every other path with
 * openat2(RESOLVE_IN_ROOT) on /proc/PID/root, so an absolute symlink inside a
 * container resolves inside the container, never to the host's file.
 */
#ifndef PYX_TARGET_FILES_H
#define PYX_TARGET_FILES_H

#include <sys/types.h>

/* O_PATH fd of /proc/PID/root, or -errno. */
int pyx_root_open(pid_t pid);

/*
 * Open @path (absolute or relative to the root) under @root_fd, confined to
 * it: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS. Returns an fd or -errno.
 */
int pyx_root_openat(int root_fd, const char *path, int flags);

/* Open /proc/PID/map_files/START-END read-only. Returns an fd or -errno. */
int pyx_map_file_open(pid_t pid, unsigned long start, unsigned long end);

#endif /* PYX_TARGET_FILES_H */
