/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Messages for the operator, on stderr. Errors are one line that says what is
 * wrong and what to do; -v, -vv and -vvv add detail (-vvv includes libbpf's
 * own debug output).
 */
#ifndef PYX_UTIL_LOG_H
#define PYX_UTIL_LOG_H

#include "pyx.h"

enum pyx_log_level {
	PYX_LOG_ERROR = 0,
	PYX_LOG_WARN,
	PYX_LOG_INFO,  /* -v */
	PYX_LOG_DEBUG, /* -vv */
	PYX_LOG_TRACE, /* -vvv, with libbpf debug */
};

void pyx_log(const struct pyx_ctx *ctx, enum pyx_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pyx_error(ctx, ...) pyx_log(ctx, PYX_LOG_ERROR, __VA_ARGS__)
#define pyx_warn(ctx, ...)  pyx_log(ctx, PYX_LOG_WARN, __VA_ARGS__)
#define pyx_info(ctx, ...)  pyx_log(ctx, PYX_LOG_INFO, __VA_ARGS__)
#define pyx_debug(ctx, ...) pyx_log(ctx, PYX_LOG_DEBUG, __VA_ARGS__)

/*
 * Route libbpf's messages through our levels. libbpf's print callback takes
 * no context, so the verbosity is copied here once, at start-up.
 */
void pyx_log_setup_libbpf(const struct pyx_ctx *ctx);

#endif /* PYX_UTIL_LOG_H */
