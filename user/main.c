// SPDX-License-Identifier: GPL-2.0-only
/*
 * pyxtrace: trace live CPython processes and their C extensions from the
 * host, without stopping them. This file is only the command table and the
 * global flags; every command lives in user/cmd/<name>.c.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <bpf/libbpf.h>

#include "cmd/cmd.h"
#include "util/log.h"
#include "util/parse.h"

static const struct pyx_cmd *const commands[] = {
	&pyx_cmd_info,
	&pyx_cmd_stack,
	&pyx_cmd_crash,
	&pyx_cmd_watch,
	&pyx_cmd_calls,
	&pyx_cmd_flow,
};

static void usage(FILE *out, const char *prog)
{
	size_t i;

	fprintf(out,
		"Usage: %s COMMAND [OPTIONS]\n"
		"\n"
		"Trace live CPython processes and their C extensions from the host,\n"
		"without stopping them and without installing anything in them.\n"
		"\n"
		"Commands:\n",
		prog);
	for (i = 0; i < PYX_ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out,
		"\n"
		"  help CMD   help for one command (same as '%s CMD --help')\n"
		"\n"
		"Options:\n"
		"  --version  print the version of pyxtrace, libbpf and the kernel\n"
		"\n"
		"Examples:\n"
		"  %s info                 is this kernel ready, do I have the privileges?\n"
		"  %s info -p 1234         what Python does process 1234 run?\n"
		"  %s info --container 3f2a9c -p 1   PID 1 of a container\n"
		"  %s stack -p 1234        where is every thread of 1234, in Python?\n",
		prog, prog, prog, prog, prog);
}

static const struct pyx_cmd *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < PYX_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

static int unknown_command(const struct pyx_ctx *ctx, const char *name)
{
	const char *best = NULL;
	unsigned int best_distance = 3;
	size_t i;

	for (i = 0; i < PYX_ARRAY_SIZE(commands); i++) {
		unsigned int d = pyx_edit_distance(name, commands[i]->name);

		if (d < best_distance) {
			best_distance = d;
			best = commands[i]->name;
		}
	}
	if (best)
		fprintf(stderr, "%s: unknown command '%s'; did you mean '%s'? (see '%s --help')\n",
			ctx->prog, name, best, ctx->prog);
	else
		fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", ctx->prog, name,
			ctx->prog);
	return PYX_EXIT_USAGE;
}

static int print_version(void)
{
	struct utsname uts;

	if (uname(&uts))
		memset(&uts, 0, sizeof(uts));
	printf("pyxtrace %s\n", PYX_VERSION);
	printf("libbpf %s (built against %d.%d)\n", libbpf_version_string(), LIBBPF_MAJOR_VERSION,
	       LIBBPF_MINOR_VERSION);
	printf("kernel %s %s\n", uts.release, uts.machine);
	printf("compiler %s\n", __VERSION__);
	return PYX_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct pyx_ctx ctx = { .prog = "pyxtrace", .out = stdout };
	const struct pyx_cmd *cmd;
	char *help_argv[3];

	/* A closed pipe on stdout must surface as a write error, not kill us mid-detach. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Following many processes (--all) loads and frees large blocks per
	 * process (the kernel's BTF, debug data): a fixed threshold keeps them
	 * mmap()ed and returned when freed, where glibc's dynamic one would
	 * move them to the heap and let fragmentation grow the RSS.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	pyx_log_setup_libbpf(&ctx);

	if (argc < 2) {
		usage(stderr, ctx.prog);
		return PYX_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout, ctx.prog);
		return PYX_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))
		return print_version();
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			usage(stdout, ctx.prog);
			return PYX_EXIT_OK;
		}
		cmd = find_command(argv[2]);
		if (!cmd)
			return unknown_command(&ctx, argv[2]);
		/* "help CMD" is "CMD --help". */
		help_argv[0] = argv[2];
		help_argv[1] = "--help";
		help_argv[2] = NULL;
		return cmd->run(&ctx, 2, help_argv);
	}
	if (argv[1][0] == '-') {
		fprintf(stderr, "%s: expected a command before '%s' (see '%s --help')\n", ctx.prog,
			argv[1], ctx.prog);
		return PYX_EXIT_USAGE;
	}
	cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(&ctx, argv[1]);
	return cmd->run(&ctx, argc - 1, argv + 1);
}
