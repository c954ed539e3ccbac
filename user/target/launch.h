/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Launch mode (`pyxtrace CMD [OPTIONS] -- PROGRAM ARGS`): start PROGRAM,
 * hold it before it runs any Python code, let the command attach, then let
 * it run. Race-free for programs that finish in milliseconds, and without
 * ptrace: BPF stops the program at exec and at its entry point
 * (bpf/launch.bpf.c).
 */
#ifndef PYX_TARGET_LAUNCH_H
#define PYX_TARGET_LAUNCH_H

#include "cmd/cmd.h"

/*
 * Run @common->launch_argv held, then call @fn with a copy of @common whose
 * pid is the program's and whose resume_pid tells the session to SIGCONT it
 * once attached. If @fn fails before resuming it, the program is killed
 * (it was meant to run traced). Returns @fn's exit code, or
 * PYX_EXIT_FAILURE after a one-line error. @cookie is passed to @fn.
 */
int pyx_launch_run(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		   int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie),
		   void *cookie);

#endif /* PYX_TARGET_LAUNCH_H */
