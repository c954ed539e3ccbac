// SPDX-License-Identifier: GPL-2.0-only
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "util/log.h"

void pyx_log(const struct pyx_ctx *ctx, enum pyx_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > PYX_LOG_WARN && (int)level - PYX_LOG_WARN > ctx->verbosity)
		return;
	fprintf(stderr, "%s: ", ctx->prog);
	if (level == PYX_LOG_WARN)
		fputs("warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int libbpf_verbosity;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf warnings are noise for an operator unless they asked (-v). */
	if (level == LIBBPF_DEBUG && libbpf_verbosity < 3)
		return 0;
	if (level != LIBBPF_DEBUG && libbpf_verbosity < 1)
		return 0;
	fputs("libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

void pyx_log_setup_libbpf(const struct pyx_ctx *ctx)
{
	libbpf_verbosity = ctx->verbosity;
	libbpf_set_print(print_libbpf);
}
