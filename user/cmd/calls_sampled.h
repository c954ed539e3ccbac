/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `calls` in sampled mode (user/cmd/calls_sampled.c): where no exact hook
 * applies (the target runs a JIT) or when asked (--sampled), the target's
 * Python stacks sampled while it runs: time shares per function and folded
 * stacks, not call counts.
 */
#ifndef PYX_CMD_CALLS_SAMPLED_H
#define PYX_CMD_CALLS_SAMPLED_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmd/cmd.h"
#include "python/layout.h"

struct pyx_calls_sampled {
	struct pyx_ctx *ctx;
	const struct pyx_common_opts *common;
	struct pyx_process *proc;
	struct pyx_python *py;
	const struct pyx_python_layout *layout;
	const char *why;      /* why sampled, for the output: "asked", "PYTHON_JIT=1" */
	unsigned int hz;      /* samples per second per running thread */
	pid_t thread;	      /* only this host TID; 0: all */
	size_t top;	      /* rows in the text table; 0: default */
	bool sort_total;      /* by inclusive share instead of self share */
	const regex_t *match; /* only functions whose qualname or file matches; NULL: all */
	const char *folded;   /* write folded stacks here (flame graphs); NULL: no */
};

/* Run it to the end (duration, signal, target exit); the command's exit code. */
int pyx_calls_sampled_run(struct pyx_calls_sampled *s);

#endif /* PYX_CMD_CALLS_SAMPLED_H */
