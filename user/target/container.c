// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target/container.h"
#include "target/process.h"
#include "util/parse.h"

static bool is_hex_run(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * The id is the last 64-hex run that forms a whole name or sits between an
 * engine prefix ("docker-", "cri-containerd-", "libpod-", ...) and ".scope".
 * Taking the last one matters for nested cgroups (a container's own
 * sub-cgroups sit below its id).
 */
bool pyx_container_from_cgroup_path(const char *path, struct pyx_container *out)
{
	const char *component = path, *next, *best = NULL;
	size_t len;

	while (component && *component) {
		const char *dash, *run;

		while (*component == '/')
			component++;
		next = strchr(component, '/');
		len = next ? (size_t)(next - component) : strlen(component);

		/* Whole component, or the tail after the last '-', before ".scope". */
		run = component;
		dash = memrchr(component, '-', len);
		if (dash && len - (size_t)(dash + 1 - component) >= PYX_CONTAINER_ID_LEN)
			run = dash + 1;
		if ((size_t)(component + len - run) >= PYX_CONTAINER_ID_LEN &&
		    is_hex_run(run, PYX_CONTAINER_ID_LEN)) {
			const char *tail = run + PYX_CONTAINER_ID_LEN;
			size_t tail_len = (size_t)(component + len - tail);

			if (tail_len == 0 || (tail_len == 6 && !strncmp(tail, ".scope", 6)))
				best = run;
		}
		component = next;
	}
	if (!best)
		return false;
	memcpy(out->id, best, PYX_CONTAINER_ID_LEN);
	out->id[PYX_CONTAINER_ID_LEN] = '\0';
	snprintf(out->cgroup, sizeof(out->cgroup), "%s", path);
	return true;
}

int pyx_container_of_pid(pid_t pid, struct pyx_container *out)
{
	char path[64], line[1024];
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *cgroup = strchr(line, ':');

		if (!cgroup || !(cgroup = strchr(cgroup + 1, ':')))
			continue;
		cgroup++;
		cgroup[strcspn(cgroup, "\n")] = '\0';
		if (pyx_container_from_cgroup_path(cgroup, out))
			break;
	}
	fclose(f);
	return 0;
}

bool pyx_container_id_matches(const char *id, const char *query)
{
	size_t len = strlen(query);

	if (!id[0] || len < 4 || len > PYX_CONTAINER_ID_LEN)
		return false;
	return !strncmp(id, query, len);
}

int pyx_for_each_pid(int (*fn)(void *ctx, pid_t pid), void *ctx)
{
	struct dirent *de;
	int err = 0;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		pid_t pid;

		if (pyx_parse_pid(de->d_name, &pid))
			continue;
		err = fn(ctx, pid);
		if (err)
			break;
	}
	closedir(dir);
	return err;
}

struct find_ctx {
	const char *query;
	pid_t ns_pid;
	pid_t found;
	char first_id[PYX_CONTAINER_ID_LEN + 1];
	bool ambiguous;
	bool container_seen;
};

static int find_one(void *opaque, pid_t pid)
{
	struct find_ctx *ctx = opaque;
	struct pyx_container c;

	if (pyx_container_of_pid(pid, &c) || !pyx_container_id_matches(c.id, ctx->query))
		return 0;
	if (ctx->container_seen && strcmp(ctx->first_id, c.id)) {
		ctx->ambiguous = true;
		return 1;
	}
	ctx->container_seen = true;
	memcpy(ctx->first_id, c.id, sizeof(c.id));
	if (!ctx->found && pyx_ns_pid_of(pid, 0) == ctx->ns_pid)
		ctx->found = pid;
	return 0;
}

int pyx_container_find_pid(const char *query, pid_t ns_pid, pid_t *host_pid)
{
	struct find_ctx ctx = { .query = query, .ns_pid = ns_pid };
	int err;

	err = pyx_for_each_pid(find_one, &ctx);
	if (err < 0)
		return err;
	if (ctx.ambiguous)
		return -EEXIST;
	if (!ctx.container_seen)
		return -ENOENT;
	if (!ctx.found)
		return -ESRCH;
	*host_pid = ctx.found;
	return 0;
}

struct list_ctx {
	char **ids;
	size_t count;
	size_t cap;
};

static int list_one(void *opaque, pid_t pid)
{
	struct list_ctx *ctx = opaque;
	struct pyx_container c;
	size_t i;

	if (pyx_container_of_pid(pid, &c) || !c.id[0])
		return 0;
	for (i = 0; i < ctx->count; i++)
		if (!strcmp(ctx->ids[i], c.id))
			return 0;
	if (ctx->count == ctx->cap) {
		size_t cap = ctx->cap ? ctx->cap * 2 : 8;
		char **ids = realloc(ctx->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		ctx->ids = ids;
		ctx->cap = cap;
	}
	ctx->ids[ctx->count] = strdup(c.id);
	if (!ctx->ids[ctx->count])
		return -ENOMEM;
	ctx->count++;
	return 0;
}

int pyx_container_list(char ***ids, size_t *count)
{
	struct list_ctx ctx = {};
	int err;

	err = pyx_for_each_pid(list_one, &ctx);
	if (err < 0) {
		while (ctx.count)
			free(ctx.ids[--ctx.count]);
		free(ctx.ids);
		return err;
	}
	*ids = ctx.ids;
	*count = ctx.count;
	return 0;
}

struct resolve_ctx {
	const char *query;
	struct pyx_container found;
	bool ambiguous;
};

static int resolve_one(void *opaque, pid_t pid)
{
	struct resolve_ctx *ctx = opaque;
	struct pyx_container c;

	if (pyx_container_of_pid(pid, &c) || !pyx_container_id_matches(c.id, ctx->query))
		return 0;
	if (ctx->found.id[0] && strcmp(ctx->found.id, c.id)) {
		ctx->ambiguous = true;
		return 1;
	}
	/* The shortest path is the container's own cgroup; its processes may sit below it. */
	if (!ctx->found.id[0] || strlen(c.cgroup) < strlen(ctx->found.cgroup))
		ctx->found = c;
	return 0;
}

int pyx_container_resolve(const char *query, struct pyx_container *out)
{
	struct resolve_ctx ctx = {.query = query};
	char *id_end;
	int err;

	err = pyx_for_each_pid(resolve_one, &ctx);
	if (err < 0)
		return err;
	if (ctx.ambiguous)
		return -EEXIST;
	if (!ctx.found.id[0])
		return -ENOENT;
	/* Cut below the component that carries the id: that is the container's cgroup. */
	id_end = strstr(ctx.found.cgroup, ctx.found.id);
	if (id_end) {
		id_end += strcspn(id_end, "/");
		*id_end = '\0';
	}
	*out = ctx.found;
	return 0;
}
