/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The context every module receives: what the user asked for on the command
 * line that is not specific to one command. Passed explicitly; there is no
 * global configuration.
 */
#ifndef PYX_PYX_H
#define PYX_PYX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes (docs/conventions.md). */
enum {
	PYX_EXIT_OK = 0,      /* attached and flushed results (also when the target exits) */
	PYX_EXIT_FAILURE = 1, /* could not attach, or lost results */
	PYX_EXIT_USAGE = 2,   /* bad command line */
};

struct pyx_ctx {
	const char *prog; /* "pyxtrace" as invoked */
	int verbosity;	  /* number of -v */
	bool json;	  /* --json: machine-readable stdout */
	FILE *out;	  /* stdout, or the -o FILE */
	const char *out_path;
};

#define PYX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* PYX_PYX_H */
