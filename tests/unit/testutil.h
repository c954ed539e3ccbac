/* SPDX-License-Identifier: GPL-2.0-only */
/* Helpers for unit tests that build their own inputs with the system toolchain. */
#ifndef PYX_TEST_TESTUTIL_H
#define PYX_TEST_TESTUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Run a shell command built from @fmt; true when it exits 0. */
static bool run(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static bool run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

/* The whole stdout of a shell command, trailing newlines removed. */
static char *capture_output(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static char *capture_output(const char *fmt, ...)
{
	char cmd[4096], *out = NULL;
	size_t size = 0, len = 0, n;
	va_list ap;
	FILE *pipe;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pipe = popen(cmd, "r");
	if (!pipe)
		return NULL;
	do {
		if (len + 4096 + 1 > size) {
			size = size ? size * 2 : 8192;
			out = realloc(out, size);
			if (!out)
				break;
		}
		n = fread(out + len, 1, size - len - 1, pipe);
		len += n;
	} while (n);
	pclose(pipe);
	if (!out)
		return NULL;
	while (len && out[len - 1] == '\n')
		len--;
	out[len] = '\0';
	return out;
}

/* Write @text to @path; true on success. */
static bool __attribute__((unused)) write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

#include <fcntl.h>
#include <unistd.h>

#include "elf/elf.h"

/* Open an ELF file by path. */
static __attribute__((unused)) struct pyx_elf *open_elf_path(const char *path)
{
	struct pyx_elf *elf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	elf = pyx_elf__open_fd(fd);
	/* open_fd dup()s: ours can go at once. */
	close(fd);
	return elf;
}

#endif /* PYX_TEST_TESTUTIL_H */
