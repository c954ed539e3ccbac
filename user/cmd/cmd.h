/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The command table's contract and the options every command shares
 * (docs/conventions.md): target selection (-p, --container, -- CMD),
 * -d, --json, -o, -v. Each command parses its own options through
 * pyx_cmd_parse() so the shared ones behave the same everywhere.
 */
#ifndef PYX_CMD_CMD_H
#define PYX_CMD_CMD_H

#include <getopt.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pyx.h"

struct pyx_process;

/* Shared options a command accepts (bit mask). */
enum {
	PYX_OPT_TARGET = 1 << 0,   /* -p PID, --container ID, -- CMD ARGS */
	PYX_OPT_DURATION = 1 << 1, /* -d DURATION */
	PYX_OPT_OUTPUT = 1 << 2,   /* --json, -o FILE */
	PYX_OPT_SCOPE = 1 << 3,	   /* --all, --children, --container ID without -p (discovery.h) */
};

struct pyx_common_opts {
	pid_t pid;	       /* -p, as given (host PID, or PID in --container) */
	const char *container; /* --container ID */
	char **launch_argv;    /* after "--", NULL-terminated; NULL when not launching */
	uint64_t duration_ns;  /* -d; 0 when not given */
	bool duration_set;
	pid_t resume_pid; /* launch mode: the held command, to SIGCONT once attached */
	bool all;	  /* --all: every Python process, present and future */
	bool children;	  /* --children: -p PID and its descendants, present and future */
};

struct pyx_cmd {
	const char *name;
	const char *summary;
	int (*run)(struct pyx_ctx *ctx, int argc, char **argv);
	void (*usage)(FILE *out, const char *prog);
};

/*
 * Parse argv (argv[0] is the command name). @extra are the command's own
 * long options (terminated by a zero entry); each is reported through
 * @handle(cookie, val, optarg), which returns 0, or -EINVAL after printing
 * the one-line error (with pyx_usage_error()'s form and hint). Returns 0, or PYX_EXIT_USAGE after a one-line message, or -1 when
 * --help was shown (the caller returns PYX_EXIT_OK).
 */
int pyx_cmd_parse(struct pyx_ctx *ctx, const struct pyx_cmd *cmd, unsigned int accepts, int argc,
		  char **argv, const struct option *extra, const char *extra_short,
		  int (*handle)(void *cookie, int val, const char *arg), void *cookie,
		  struct pyx_common_opts *common);

/* Print a one-line usage error and the hint to run --help; returns PYX_EXIT_USAGE. */
int pyx_usage_error(const struct pyx_ctx *ctx, const struct pyx_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The common options' help text, for each command's usage(). */
/*
 * Print a table command's result (@print_json or @print_text on @run): on a
 * terminal (@live) each table replaces the last one; otherwise interval
 * tables (not @final) end with a blank line, and @gap_before separates the
 * final one from lines printed before it.
 */
void pyx_cmd_print_table(struct pyx_ctx *ctx, bool live, bool final, bool gap_before,
			 void (*print_json)(void *run), void (*print_text)(void *run), void *run);

/* A command's own option with a bad value: one line with @hint, -EINVAL. */
int pyx_option_error(const struct pyx_cmd *cmd, const char *what, const char *arg,
		     const char *hint);

void pyx_cmd_print_common_usage(FILE *out, unsigned int accepts);

/*
 * Check privileges, resolve -p/--container to a host process and open it.
 * Prints the one-line error itself; returns 0 or PYX_EXIT_FAILURE.
 */
int pyx_cmd_open_target(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			struct pyx_process **proc);

struct pyx_python;
struct pyx_python_layout;

/*
 * pyx_cmd_open_target(), then what CPython it runs and how to walk it
 * (python/detect.h, python/layout.h). Prints the one-line error itself;
 * returns 0 or PYX_EXIT_FAILURE, with nothing left open on failure.
 */
int pyx_cmd_open_python(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			struct pyx_process **proc, struct pyx_python **py,
			struct pyx_python_layout *layout);

/*
 * A process found by discovery (several processes): open it and inspect
 * its CPython as pyx_cmd_open_python() does, but a failure is a warning
 * ("not traced: ...") or, for a process gone meanwhile, silent (-ESRCH).
 * 0 or -errno, with nothing left open on failure.
 */
int pyx_cmd_found_python(const struct pyx_ctx *ctx, pid_t pid, struct pyx_process **proc,
			 struct pyx_python **py, struct pyx_python_layout *layout);

/* Options several commands share, parsed alike: 0 or pyx_option_error()'s -EINVAL. */
int pyx_opt_thread(const struct pyx_cmd *cmd, const char *arg, pid_t *tid);
int pyx_opt_min_latency(const struct pyx_cmd *cmd, const char *arg, uint64_t *ns);
/* --max-overhead PCT: a percentage ("5", "2.5%"), 0 for no limit. */
int pyx_opt_max_overhead(const struct pyx_cmd *cmd, const char *arg, double *pct);

/* --match REGEX: on a function's qualified name or its file. */
struct pyx_match {
	const char *pattern; /* NULL: everything matches */
	regex_t re;
};

int pyx_opt_match(const struct pyx_cmd *cmd, const char *arg, struct pyx_match *match);
bool pyx_match_fn(const struct pyx_match *match, const char *qualname, const char *file);
void pyx_match_free(struct pyx_match *match);

/*
 * A one-shot command over several processes: @fn on every CPython process
 * in the scope the options name (as pyx_cmd_run_target() would with -p),
 * in turn; a process gone meanwhile is skipped. PYX_EXIT_OK unless the
 * scope is wrong or every process failed.
 */
int pyx_cmd_run_each(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		     int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			       void *cookie),
		     void *cookie);

/* Whether the options name several processes (--all, --children, --container without -p). */
bool pyx_cmd_is_scope(const struct pyx_common_opts *common);

struct pyx_discovery_opts;

/*
 * Fill @dopts's scope from the options (the root of --children checked as
 * -p is, the privileges too). Prints the one-line error itself; returns 0
 * or PYX_EXIT_FAILURE.
 */
int pyx_cmd_scope(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		  struct pyx_discovery_opts *dopts);

/* -p, --container or -- CMD given; else the usage error (PYX_EXIT_USAGE). */
int pyx_cmd_require_target(const struct pyx_ctx *ctx, const struct pyx_cmd *cmd,
			   const struct pyx_common_opts *common);

/* --thread @tid (0: none) is a thread of @proc; else the one-line error and PYX_EXIT_FAILURE. */
int pyx_cmd_check_thread(const struct pyx_ctx *ctx, const struct pyx_process *proc, pid_t tid);

/* Same check used before any BPF work: one line naming the missing capability. */
int pyx_cmd_check_privileges(const struct pyx_ctx *ctx);

/* Open -o FILE (or keep stdout). Returns 0 or PYX_EXIT_FAILURE. */
int pyx_cmd_open_output(struct pyx_ctx *ctx);

/* Flush and check stdout / the -o file: a write error is a lost result. */
int pyx_cmd_close_output(struct pyx_ctx *ctx);

/*
 * The usual body of a command: open -o, run @fn on the target the options
 * name (-p / --container, or launched with -- CMD: @fn then sees the
 * launched PID), flush the output. Returns @fn's exit code, or
 * PYX_EXIT_FAILURE when the output could not be written.
 */
int pyx_cmd_run_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		       int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
				 void *cookie),
		       void *cookie);

extern const struct pyx_cmd pyx_cmd_info;
extern const struct pyx_cmd pyx_cmd_stack;
extern const struct pyx_cmd pyx_cmd_crash;
extern const struct pyx_cmd pyx_cmd_watch;
extern const struct pyx_cmd pyx_cmd_calls;
extern const struct pyx_cmd pyx_cmd_flow;

#endif /* PYX_CMD_CMD_H */
