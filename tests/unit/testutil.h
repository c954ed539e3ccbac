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
