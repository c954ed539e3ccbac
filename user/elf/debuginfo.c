// SPDX-License-Identifier: GPL-2.0-only
/*
 * Separate debug files. Every candidate path is opened inside the target's
 * root, so a container's /usr/lib/debug is the one searched, and a symlink
 * in it cannot lead to the host's files. A candidate is only a name: it is
 * accepted when its build-id (or the debuglink CRC) proves it was split from
 * this very object, since stale debug files of an older build are common and
 * would give wrong offsets silently.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf/debuginfo.h"
#include "target/files.h"

#define DEBUG_ROOT "/usr/lib/debug"

/* Hex build-id: 2 per byte of the longest build-id elf.c keeps, plus NUL. */
#define BUILD_ID_HEX_MAX (2 * 64 + 1)

const char *pyx_dwarf_source_name(enum pyx_dwarf_source source)
{
	switch (source) {
	case PYX_DWARF_NONE:
		return "none";
	case PYX_DWARF_EMBEDDED:
		return "embedded";
	case PYX_DWARF_BUILD_ID:
		return "build-id";
	case PYX_DWARF_DEBUGLINK:
		return "debuglink";
	}
	return "unknown";
}

/*
 * CRC-32 with the reflected polynomial 0xedb88320 (zlib's, and the one
 * binutils uses for .gnu_debuglink), table built on first use.
 */
uint32_t pyx_debuglink_crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	static bool table_ready;
	const unsigned char *bytes = buf;
	size_t i;

	if (!table_ready) {
		for (i = 0; i < 256; i++) {
			uint32_t value = (uint32_t)i;
			int bit;

			for (bit = 0; bit < 8; bit++)
				value = (value & 1) ? (value >> 1) ^ 0xedb88320u : value >> 1;
			table[i] = value;
		}
		table_ready = true;
	}

	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

int pyx_debuglink_crc32_fd(int fd, uint32_t *crc)
{
	unsigned char buf[65536];
	uint32_t value = 0;
	off_t offset = 0;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		value = pyx_debuglink_crc32(value, buf, (size_t)n);
		offset += n;
	}
	*crc = value;
	return 0;
}

struct expectation {
	const char *build_id; /* the object's, or NULL */
	bool has_debuglink;
	uint32_t debuglink_crc;
};

/*
 * Whether the file open at @fd is the debug file split from our object: an
 * ELF object with DWARF of its own whose build-id matches ours; a debug file
 * without a build-id (or an object without one) can only be checked by the
 * debuglink CRC over the whole file.
 */
static bool candidate_matches(int fd, const struct expectation *expect, bool by_build_id)
{
	char build_id[BUILD_ID_HEX_MAX];
	struct pyx_elf *debug;
	bool has_build_id, ok = false;
	uint32_t crc;
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return false;
	debug = pyx_elf__open_fd(fd);
	if (!debug)
		return false;
	if (!pyx_elf__has_section_data(debug, ".debug_info"))
		goto out;
	has_build_id = !pyx_elf__build_id(debug, build_id, sizeof(build_id));
	if (expect->build_id && has_build_id) {
		ok = !strcmp(build_id, expect->build_id);
		goto out;
	}
	if (by_build_id || !expect->has_debuglink)
		goto out;
	ok = !pyx_debuglink_crc32_fd(fd, &crc) && crc == expect->debuglink_crc;
out:
	pyx_elf__close(debug);
	return ok;
}

/* Returns 1 and fills @out when @path is accepted, 0 when not, -ENOMEM. */
static int try_candidate(int root_fd, const char *path, const struct expectation *expect,
			 enum pyx_dwarf_source source, struct pyx_debuginfo *out)
{
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(out->path))
		return 0;
	/*
	 * The root is the target's, so anything may sit at these paths:
	 * O_NONBLOCK keeps a FIFO from hanging us in open(), and
	 * candidate_matches() then accepts regular files only.
	 */
	fd = pyx_root_openat(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd == -ENOMEM)
		return -ENOMEM;
	if (fd < 0)
		return 0;
	if (!candidate_matches(fd, expect, source == PYX_DWARF_BUILD_ID)) {
		close(fd);
		return 0;
	}
	out->source = source;
	memcpy(out->path, path, len + 1);
	out->fd = fd;
	return 1;
}

/* /usr/lib/debug/.build-id/ab/cdef....debug, as gdb and elfutils lay it out. */
static int try_build_id(int root_fd, const struct expectation *expect, struct pyx_debuginfo *out)
{
	char path[sizeof(out->path)];
	int len;

	if (!expect->build_id || strlen(expect->build_id) < 3)
		return 0;
	len = snprintf(path, sizeof(path), DEBUG_ROOT "/.build-id/%.2s/%s.debug", expect->build_id,
		       expect->build_id + 2);
	if (len < 0 || (size_t)len >= sizeof(path))
		return 0;
	return try_candidate(root_fd, path, expect, PYX_DWARF_BUILD_ID, out);
}

static int try_debuglink(int root_fd, const char *obj_path, const char *link,
			 const struct expectation *expect, struct pyx_debuginfo *out)
{
	const char *slash = strrchr(obj_path, '/');
	char dir[sizeof(out->path)], path[sizeof(out->path)];
	static const struct {
		const char *prefix, *subdir;
	} places[] = {
		{"", "/"},	   /* next to the object */
		{"", "/.debug/"},  /* in its .debug directory */
		{DEBUG_ROOT, "/"}, /* mirrored under /usr/lib/debug */
	};
	size_t dir_len = slash ? (size_t)(slash - obj_path) : 0, i;

	/* The object's directory, absolute within the root ("" for the root itself). */
	if (dir_len + 2 > sizeof(dir))
		return 0;
	dir[0] = '\0';
	if (dir_len && obj_path[0] != '/')
		strcat(dir, "/");
	strncat(dir, obj_path, dir_len);

	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		int len = snprintf(path, sizeof(path), "%s%s%s%s", places[i].prefix, dir,
				   places[i].subdir, link);
		int ret;

		if (len < 0 || (size_t)len >= sizeof(path))
			continue;
		ret = try_candidate(root_fd, path, expect, PYX_DWARF_DEBUGLINK, out);
		if (ret)
			return ret;
	}
	return 0;
}

int pyx_debuginfo__find(int root_fd, const char *obj_path, const struct pyx_elf *elf,
			struct pyx_debuginfo *out)
{
	char build_id[BUILD_ID_HEX_MAX], link[256];
	struct expectation expect = {0};
	int ret;

	out->source = PYX_DWARF_NONE;
	out->path[0] = '\0';
	out->fd = -1;
	if (!elf || !obj_path)
		return -EINVAL;

	if (pyx_elf__has_section_data(elf, ".debug_info")) {
		out->source = PYX_DWARF_EMBEDDED;
		return 0;
	}

	if (!pyx_elf__build_id(elf, build_id, sizeof(build_id)))
		expect.build_id = build_id;
	/*
	 * The debuglink names a file, not a path; one with a '/' is malformed,
	 * and following it would make the object choose which file we read.
	 */
	if (!pyx_elf__debuglink(elf, link, sizeof(link), &expect.debuglink_crc) &&
	    !strchr(link, '/') && strcmp(link, ".") && strcmp(link, ".."))
		expect.has_debuglink = true;

	ret = try_build_id(root_fd, &expect, out);
	if (!ret && expect.has_debuglink)
		ret = try_debuglink(root_fd, obj_path, link, &expect, out);
	return ret < 0 ? ret : 0;
}

void pyx_debuginfo__release(struct pyx_debuginfo *info)
{
	if (info->fd >= 0)
		close(info->fd);
	info->fd = -1;
	info->source = PYX_DWARF_NONE;
	info->path[0] = '\0';
}
