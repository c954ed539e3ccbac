// SPDX-License-Identifier: GPL-2.0-only
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "elf/elf.h"
#include "target/files.h"
#include "target/process.h"

const char *pyx_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static bool ns_differs(pid_t pid, const char *ns)
{
	char path[64];
	struct stat mine, theirs;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	if (stat(path, &mine))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	if (stat(path, &theirs))
		return false;
	return mine.st_ino != theirs.st_ino || mine.st_dev != theirs.st_dev;
}

pid_t pyx_ns_pid_of(pid_t pid, pid_t tid)
{
	char path[64], line[512];
	pid_t ns_pid = 0;
	FILE *f;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save;

		if (strncmp(line, "NSpid:", 6))
			continue;
		/* One PID per nesting level, outermost first: the last is the innermost. */
		for (tok = strtok_r(line + 6, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save))
			ns_pid = (pid_t)atoi(tok);
		break;
	}
	fclose(f);
	return ns_pid;
}

/* Name, Tgid and Uid from /proc/PID/status. */
static int read_status(struct pyx_process *proc, pid_t pid, pid_t *tgid)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	*tgid = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok;

		if (!strncmp(line, "Name:", 5)) {
			tok = line + 5;
			tok += strspn(tok, " \t");
			tok[strcspn(tok, "\n")] = '\0';
			snprintf(proc->comm, sizeof(proc->comm), "%s", tok);
		} else if (!strncmp(line, "Tgid:", 5)) {
			*tgid = (pid_t)atoi(line + 5);
		} else if (!strncmp(line, "Uid:", 4)) {
			proc->uid = (uid_t)strtoul(line + 4, NULL, 10);
		}
	}
	fclose(f);
	return *tgid ? 0 : -ESRCH;
}

/*
 * /proc/PID/stat past the command name (which may hold spaces and ')': the
 * last ')' ends it), into @buf; NULL when the process is gone.
 */
static const char *stat_fields(pid_t pid, char *buf, size_t size)
{
	char path[64], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' ? paren + 2 : NULL;
}

/* The state letter: the first field after the name. */
char pyx_task_state(pid_t pid)
{
	char buf[512];
	const char *fields = stat_fields(pid, buf, sizeof(buf));

	return fields ? fields[0] : 0;
}

pid_t pyx_parent_of(pid_t pid)
{
	char buf[512];
	const char *fields = stat_fields(pid, buf, sizeof(buf));
	int ppid = 0;

	if (!fields || sscanf(fields, "%*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

int pyx_process__open(pid_t pid, struct pyx_process **out)
{
	struct pyx_process *proc;
	pid_t tgid;
	int err;

	proc = calloc(1, sizeof(*proc));
	if (!proc)
		return -ENOMEM;
	proc->root_fd = -1;
	err = read_status(proc, pid, &tgid);
	if (err)
		goto out_free;
	proc->pid = tgid;
	proc->ns_pid = pyx_ns_pid_of(tgid, 0);
	proc->state = pyx_task_state(tgid);
	if (proc->state == 0) {
		err = -ESRCH;
		goto out_free;
	}
	if (proc->state == 'Z' || proc->state == 'X') {
		err = -EOWNERDEAD;
		goto out_free;
	}
	proc->pid_ns_differs = ns_differs(tgid, "pid");
	proc->mnt_ns_differs = ns_differs(tgid, "mnt");
	err = pyx_container_of_pid(tgid, &proc->container);
	if (err)
		goto out_free;
	proc->root_fd = pyx_root_open(tgid);
	if (proc->root_fd < 0) {
		err = proc->root_fd == -ENOENT ? -ESRCH : proc->root_fd;
		goto out_free;
	}
	err = pyx_process__read_maps(proc);
	if (err)
		goto out_close_root;
	*out = proc;
	return 0;

out_close_root:
	close(proc->root_fd);
out_free:
	free(proc);
	return err;
}

static void free_objects(struct pyx_process *proc)
{
	size_t i;

	for (i = 0; i < proc->nr_objects; i++) {
		pyx_elf__close(proc->objects[i].elf);
		if (proc->objects[i].fd >= 0)
			close(proc->objects[i].fd);
		free(proc->objects[i].path);
	}
	free(proc->objects);
	proc->objects = NULL;
	proc->nr_objects = 0;
}

void pyx_process__close(struct pyx_process *proc)
{
	if (!proc)
		return;
	free_objects(proc);
	if (proc->root_fd >= 0)
		close(proc->root_fd);
	free(proc);
}

static struct pyx_object *find_object(struct pyx_process *proc, unsigned long dev,
				      unsigned long inode, const char *path)
{
	size_t i;

	for (i = 0; i < proc->nr_objects; i++) {
		struct pyx_object *obj = &proc->objects[i];

		if (obj->dev == dev && obj->inode == inode && !strcmp(obj->path, path))
			return obj;
	}
	return NULL;
}

static int add_mapping(struct pyx_process *proc, size_t *cap, uint64_t start, uint64_t end,
		       uint64_t offset, const char *perms, unsigned long dev, unsigned long inode,
		       char *path)
{
	static const char deleted_suffix[] = " (deleted)";
	size_t len = strlen(path), suffix = sizeof(deleted_suffix) - 1;
	struct pyx_object *obj;
	bool deleted = false;

	if (len > suffix && !strcmp(path + len - suffix, deleted_suffix)) {
		path[len - suffix] = '\0';
		deleted = true;
	}
	obj = find_object(proc, dev, inode, path);
	if (!obj) {
		if (proc->nr_objects == *cap) {
			size_t new_cap = *cap ? *cap * 2 : 32;
			struct pyx_object *objs = realloc(proc->objects, new_cap * sizeof(*objs));

			if (!objs)
				return -ENOMEM;
			proc->objects = objs;
			*cap = new_cap;
		}
		obj = &proc->objects[proc->nr_objects];
		memset(obj, 0, sizeof(*obj));
		obj->fd = -1;
		obj->path = strdup(path);
		if (!obj->path)
			return -ENOMEM;
		obj->dev = dev;
		obj->inode = inode;
		obj->start = start;
		obj->end = end;
		obj->base_start = start;
		obj->base_offset = offset;
		obj->map_start = start;
		obj->map_end = end;
		proc->nr_objects++;
	}
	obj->deleted |= deleted;
	if (start < obj->start)
		obj->start = start;
	if (end > obj->end)
		obj->end = end;
	if (offset < obj->base_offset) {
		obj->base_offset = offset;
		obj->base_start = start;
	}
	if (perms[2] == 'x')
		obj->executable = true;
	return 0;
}

int pyx_process__read_maps(struct pyx_process *proc)
{
	char path[64], *line = NULL;
	size_t line_cap = 0, cap = 0;
	bool any = false;
	int err = 0;
	FILE *f;

	free_objects(proc);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)proc->pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &line_cap, f) > 0) {
		unsigned long long start, end, offset, inode;
		unsigned int major, minor;
		char perms[8];
		int path_pos = 0;

		any = true;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset,
			   &major, &minor, &inode, &path_pos) < 7 ||
		    !path_pos)
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* Only file-backed mappings are objects; [heap], [vdso] and anonymous ones are not. */
		if (line[path_pos] != '/' || inode == 0)
			continue;
		err = add_mapping(proc, &cap, start, end, offset, perms, makedev(major, minor),
				  (unsigned long)inode, line + path_pos);
		if (err)
			break;
	}
	free(line);
	fclose(f);
	if (!err && !any)
		proc->kernel_thread = true;
	return err;
}

int pyx_process__getenv(const struct pyx_process *proc, const char *name, char *buf, size_t size)
{
	size_t len = strlen(name), used = 0;
	char path[64], *env;
	int fd, err = -ENOENT;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/environ", proc->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	env = malloc(1 << 20);
	if (!env) {
		close(fd);
		return -ENOMEM;
	}
	while (used < (1u << 20) - 1 && (n = read(fd, env + used, (1u << 20) - 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	env[used] = 0;
	for (char *p = env; p < env + used; p += strlen(p) + 1) {
		if (!strncmp(p, name, len) && p[len] == '=') {
			snprintf(buf, size, "%s", p + len + 1);
			err = 0;
			break;
		}
	}
	free(env);
	return err;
}

bool pyx_process__alive(const struct pyx_process *proc)
{
	char state = pyx_task_state(proc->pid);

	return state && state != 'Z' && state != 'X';
}

/*
 * The load bias: the mapping at the lowest file offset holds the segment
 * whose p_offset is that offset; for the usual layouts (PT_LOAD p_vaddr ==
 * p_offset for the first segment, or ET_EXEC at its link address) this is
 * start - offset - (vaddr - offset).
 */
static int compute_bias(struct pyx_object *obj)
{
	uint64_t off;

	if (pyx_elf__type(obj->elf) == ET_EXEC) {
		obj->bias = 0;
		obj->bias_known = true;
		return 0;
	}
	if (pyx_elf__vaddr_to_offset(obj->elf, obj->base_offset, &off) || off != obj->base_offset)
		return -ENOTSUP;
	obj->bias = (int64_t)(obj->base_start - obj->base_offset);
	obj->bias_known = true;
	return 0;
}

struct pyx_elf *pyx_process__object_elf(struct pyx_process *proc, struct pyx_object *obj)
{
	int fd;

	if (obj->elf)
		return obj->elf;
	fd = pyx_map_file_open(proc->pid, obj->map_start, obj->map_end);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	obj->elf = pyx_elf__open_fd(fd);
	if (!obj->elf) {
		int err = errno;

		close(fd);
		errno = err;
		return NULL;
	}
	obj->fd = fd;
	if (compute_bias(obj)) {
		pyx_elf__close(obj->elf);
		obj->elf = NULL;
		close(fd);
		obj->fd = -1;
		errno = ENOTSUP;
		return NULL;
	}
	return obj->elf;
}

uint64_t pyx_object__runtime(const struct pyx_object *obj, uint64_t vaddr)
{
	return (uint64_t)((int64_t)vaddr + obj->bias);
}

struct pyx_object *pyx_process__object_at(struct pyx_process *proc, uint64_t addr)
{
	size_t i;

	for (i = 0; i < proc->nr_objects; i++)
		if (addr >= proc->objects[i].start && addr < proc->objects[i].end)
			return &proc->objects[i];
	return NULL;
}

int pyx_process__read(const struct pyx_process *proc, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t n;

	n = process_vm_readv(proc->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return errno == ESRCH ? -ESRCH : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

int pyx_process__read_cb(void *proc, uint64_t addr, void *buf, size_t len)
{
	return pyx_process__read(proc, addr, buf, len);
}

int pyx_for_each_exec_mapping(pid_t pid,
			      int (*fn)(void *ctx, unsigned long dev, unsigned long inode,
					const char *path),
			      void *ctx)
{
	char path[64], *line = NULL;
	size_t line_cap = 0;
	int err = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (!err && getline(&line, &line_cap, f) > 0) {
		unsigned long long inode;
		unsigned int major, minor;
		char perms[8];
		int path_pos = 0;

		if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu %n", perms, &major, &minor, &inode,
			   &path_pos) < 4 ||
		    !path_pos || perms[2] != 'x')
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (line[path_pos] != '/' || inode == 0)
			continue;
		err = fn(ctx, makedev(major, minor), (unsigned long)inode, line + path_pos);
	}
	free(line);
	fclose(f);
	return err < 0 ? err : 0;
}
