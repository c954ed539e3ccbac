// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "discovery.h"
#include "python/detect.h"
#include "python/layout.h"
#include "target/container.h"
#include "target/launch.h"
#include "target/process.h"
#include "util/caps.h"
#include "util/log.h"
#include "util/parse.h"

enum {
	OPT_CONTAINER = 0x1000,
	OPT_JSON,
	OPT_ALL,
	OPT_CHILDREN,
};

static const struct option common_options[] = {
	{"pid", required_argument, NULL, 'p'},
	{"container", required_argument, NULL, OPT_CONTAINER},
	{"all", no_argument, NULL, OPT_ALL},
	{"children", no_argument, NULL, OPT_CHILDREN},
	{"duration", required_argument, NULL, 'd'},
	{"json", no_argument, NULL, OPT_JSON},
	{"output", required_argument, NULL, 'o'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
};

int pyx_usage_error(const struct pyx_ctx *ctx, const struct pyx_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", ctx->prog, cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s %s --help')\n", ctx->prog, cmd->name);
	return PYX_EXIT_USAGE;
}

void pyx_cmd_print_table(struct pyx_ctx *ctx, bool live, bool final, bool gap_before,
			 void (*print_json)(void *run), void (*print_text)(void *run), void *run)
{
	if (ctx->json) {
		print_json(run);
	} else {
		if (live)
			fputs("\033[H\033[J", ctx->out);
		else if (gap_before)
			fputc('\n', ctx->out);
		print_text(run);
		if (!live && !final)
			fputc('\n', ctx->out);
	}
	fflush(ctx->out);
}

int pyx_option_error(const struct pyx_cmd *cmd, const char *what, const char *arg, const char *hint)
{
	fprintf(stderr, "pyxtrace %s: invalid %s '%s': %s (see 'pyxtrace %s --help')\n", cmd->name,
		what, arg, hint, cmd->name);
	return -EINVAL;
}

void pyx_cmd_print_common_usage(FILE *out, unsigned int accepts)
{
	fputs("\nCommon options:\n", out);
	if (accepts & PYX_OPT_TARGET)
		fputs("  -p, --pid PID          trace the process with this host PID\n"
		      "      --container ID     with -p, PID is the PID inside this container (id or prefix)\n"
		      "  -- CMD [ARGS...]       launch CMD stopped, attach, then let it run\n",
		      out);
	if (accepts & PYX_OPT_SCOPE)
		fputs("      --children         with -p, the process and every descendant, present and future\n"
		      "      --container ID     without -p, every Python process of the container, present\n"
		      "                         and future\n"
		      "      --all              every Python process of the host, present and future\n",
		      out);
	if (accepts & PYX_OPT_DURATION)
		fputs("  -d, --duration TIME    stop after TIME (250ms, 5s, 2m); default: until Ctrl-C\n",
		      out);
	if (accepts & PYX_OPT_OUTPUT)
		fputs("      --json             JSON Lines on stdout (docs/schema.md)\n"
		      "  -o, --output FILE      write results to FILE instead of stdout\n",
		      out);
	fputs("  -v, --verbose          more detail on stderr (-vv, -vvv adds libbpf's log)\n"
	      "  -h, --help             this help\n",
	      out);
}

/* Whether the common option with getopt value @val is one @accepts allows. */
static bool common_allowed(int val, unsigned int accepts)
{
	switch (val) {
	case 'p':
	case OPT_CONTAINER:
		return accepts & PYX_OPT_TARGET;
	case 'd':
		return accepts & PYX_OPT_DURATION;
	case OPT_JSON:
	case 'o':
		return accepts & PYX_OPT_OUTPUT;
	case OPT_ALL:
	case OPT_CHILDREN:
		return accepts & PYX_OPT_SCOPE;
	default:
		return true;
	}
}

static size_t count_options(const struct option *opts)
{
	size_t n = 0;

	while (opts && opts[n].name)
		n++;
	return n;
}

/* "did you mean" for an unknown long option, from the command's and the common options. */
static const char *closest_option(const char *given, const struct option *all, size_t n)
{
	unsigned int best = 3;
	const char *name = NULL;
	size_t i;

	while (*given == '-')
		given++;
	for (i = 0; i < n; i++) {
		unsigned int d = pyx_edit_distance(given, all[i].name);

		if (d < best) {
			best = d;
			name = all[i].name;
		}
	}
	return name;
}

static int handle_common(struct pyx_ctx *ctx, const struct pyx_cmd *cmd, int val, const char *arg,
			 struct pyx_common_opts *common)
{
	int err;

	switch (val) {
	case 'p':
		err = pyx_parse_pid(arg, &common->pid);
		if (err)
			return pyx_usage_error(ctx, cmd,
					       "invalid PID '%s': expected a positive number", arg);
		return 0;
	case OPT_CONTAINER:
		common->container = arg;
		return 0;
	case OPT_ALL:
		common->all = true;
		return 0;
	case OPT_CHILDREN:
		common->children = true;
		return 0;
	case 'd':
		err = pyx_parse_duration(arg, &common->duration_ns);
		if (err || common->duration_ns == 0)
			return pyx_usage_error(
				ctx, cmd,
				"invalid duration '%s': use a number with a unit, e.g. 250ms, 5s, 2m",
				arg);
		common->duration_set = true;
		return 0;
	case OPT_JSON:
		ctx->json = true;
		return 0;
	case 'o':
		ctx->out_path = arg;
		return 0;
	case 'v':
		ctx->verbosity++;
		return 0;
	}
	return -ENOENT; /* not a common option: the command's own */
}

int pyx_cmd_parse(struct pyx_ctx *ctx, const struct pyx_cmd *cmd, unsigned int accepts, int argc,
		  char **argv, const struct option *extra, const char *extra_short,
		  int (*handle)(void *cookie, int val, const char *arg), void *cookie,
		  struct pyx_common_opts *common)
{
	size_t n_extra = count_options(extra), n_common = PYX_ARRAY_SIZE(common_options), i;
	struct option *all;
	char shortopts[64];
	int opt_argc = argc, err = 0, val;

	memset(common, 0, sizeof(*common));
	/* Everything after "--" is the command to launch, never options of ours. */
	for (i = 1; i < (size_t)argc; i++) {
		if (!strcmp(argv[i], "--")) {
			opt_argc = (int)i;
			break;
		}
	}
	if (opt_argc < argc) {
		if (!(accepts & PYX_OPT_TARGET))
			return pyx_usage_error(ctx, cmd,
					       "'--' (launch a command) is not supported here");
		if (opt_argc + 1 >= argc)
			return pyx_usage_error(ctx, cmd,
					       "'--' must be followed by a command to launch");
		common->launch_argv = argv + opt_argc + 1;
	}

	all = calloc(n_extra + n_common + 1, sizeof(*all));
	if (!all)
		return PYX_EXIT_FAILURE;
	memcpy(all, common_options, n_common * sizeof(*all));
	if (n_extra)
		memcpy(all + n_common, extra, n_extra * sizeof(*all));
	snprintf(shortopts, sizeof(shortopts), ":p:d:o:vh%s", extra_short ? extra_short : "");

	optind = 1;
	opterr = 0;
	while ((val = getopt_long(opt_argc, argv, shortopts, all, NULL)) != -1) {
		if (val == 'h') {
			cmd->usage(stdout, ctx->prog);
			err = -1;
			goto out_free;
		}
		if (val == '?') {
			const char *given = argv[optind - 1];
			const char *hint = given[1] == '-'
						   ? closest_option(given, all, n_common + n_extra)
						   : NULL;

			if (hint)
				err = pyx_usage_error(ctx, cmd,
						      "unknown option '%s'; did you mean '--%s'?",
						      given, hint);
			else if (given[1] == '-' || !optopt)
				err = pyx_usage_error(ctx, cmd, "unknown option '%s'", given);
			else
				err = pyx_usage_error(ctx, cmd, "unknown option '-%c'", optopt);
			goto out_free;
		}
		if (val == ':') {
			err = pyx_usage_error(ctx, cmd, "option '%s' needs a value",
					      argv[optind - 1]);
			goto out_free;
		}
		if (!common_allowed(val, accepts)) {
			err = pyx_usage_error(ctx, cmd,
					      "option '%s' does not apply to this command",
					      argv[optind - 1]);
			goto out_free;
		}
		err = handle_common(ctx, cmd, val, optarg, common);
		/* A command's own option; its handler prints the one-line error itself. */
		if (err == -ENOENT)
			err = handle && !handle(cookie, val, optarg) ? 0 : PYX_EXIT_USAGE;
		if (err)
			goto out_free;
	}
	if (optind < opt_argc) {
		err = pyx_usage_error(ctx, cmd, "unexpected argument '%s'", argv[optind]);
		goto out_free;
	}
	if (common->all &&
	    (common->pid || common->container || common->launch_argv || common->children)) {
		err = pyx_usage_error(
			ctx, cmd, "--all takes no other target (-p, --container, --children, --)");
		goto out_free;
	}
	if (common->children && !common->pid) {
		err = pyx_usage_error(ctx, cmd, "--children needs -p PID (the first process)");
		goto out_free;
	}
	if (common->container && !common->pid && !common->launch_argv &&
	    !(accepts & PYX_OPT_SCOPE)) {
		err = pyx_usage_error(ctx, cmd,
				      "--container needs -p PID (the PID inside the container)");
		goto out_free;
	}
	if (common->launch_argv && (common->pid || common->container)) {
		err = pyx_usage_error(ctx, cmd, "use either -p PID or -- CMD, not both");
		goto out_free;
	}
	/* -v is known now: libbpf's own messages follow it. */
	pyx_log_setup_libbpf(ctx);
out_free:
	free(all);
	return err;
}

int pyx_cmd_check_privileges(const struct pyx_ctx *ctx)
{
	const struct pyx_cap_need *missing = pyx_caps_first_missing();

	if (!missing)
		return 0;
	pyx_error(ctx, "missing %s (needed to %s): run pyxtrace as root, e.g. 'sudo %s ...'",
		  missing->name, missing->why, ctx->prog);
	return PYX_EXIT_FAILURE;
}

int pyx_opt_thread(const struct pyx_cmd *cmd, const char *arg, pid_t *tid)
{
	if (pyx_parse_pid(arg, tid))
		return pyx_option_error(cmd, "--thread", arg, "use a host thread id (ps -T)");
	return 0;
}

int pyx_opt_min_latency(const struct pyx_cmd *cmd, const char *arg, uint64_t *ns)
{
	if (pyx_parse_duration(arg, ns) || !*ns)
		return pyx_option_error(cmd, "--min-latency", arg, "use e.g. 100us, 5ms");
	return 0;
}

int pyx_opt_max_overhead(const struct pyx_cmd *cmd, const char *arg, double *pct)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (end != arg && *end == '%')
		end++;
	if (errno || end == arg || *end || !(v >= 0) || v > 1000000)
		return pyx_option_error(
			cmd, "--max-overhead", arg,
			"use a percentage of the target's CPU time, e.g. 5 (0: no limit)");
	*pct = v;
	return 0;
}

int pyx_opt_match(const struct pyx_cmd *cmd, const char *arg, struct pyx_match *match)
{
	if (match->pattern)
		regfree(&match->re);
	match->pattern = NULL;
	if (regcomp(&match->re, arg, REG_EXTENDED | REG_NOSUB))
		return pyx_option_error(cmd, "--match", arg,
					"not a POSIX extended regular expression");
	match->pattern = arg;
	return 0;
}

bool pyx_match_fn(const struct pyx_match *match, const char *qualname, const char *file)
{
	if (!match->pattern)
		return true;
	return (qualname && !regexec(&match->re, qualname, 0, NULL, 0)) ||
	       (file && !regexec(&match->re, file, 0, NULL, 0));
}

void pyx_match_free(struct pyx_match *match)
{
	if (match->pattern)
		regfree(&match->re);
	match->pattern = NULL;
}

int pyx_cmd_require_target(const struct pyx_ctx *ctx, const struct pyx_cmd *cmd,
			   const struct pyx_common_opts *common)
{
	if (common->pid || common->launch_argv)
		return 0;
	return pyx_usage_error(ctx, cmd,
			       "a target is required: -p PID, --container ID -p PID or -- CMD");
}

bool pyx_cmd_is_scope(const struct pyx_common_opts *common)
{
	return common->all || common->children ||
	       (common->container && !common->pid && !common->launch_argv);
}

int pyx_cmd_scope(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		  struct pyx_discovery_opts *dopts)
{
	struct pyx_process *root;

	if (pyx_cmd_check_privileges(ctx))
		return PYX_EXIT_FAILURE;
	if (common->all) {
		dopts->scope = PYX_SCOPE_ALL;
		return 0;
	}
	if (!common->children) {
		dopts->scope = PYX_SCOPE_CONTAINER;
		dopts->container = common->container;
		return 0;
	}
	/* The root as -p (in --container) names it, with the same errors. */
	if (pyx_cmd_open_target(ctx, common, &root))
		return PYX_EXIT_FAILURE;
	dopts->scope = PYX_SCOPE_CHILDREN;
	dopts->root = root->pid;
	pyx_process__close(root);
	return 0;
}

int pyx_cmd_run_each(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		     int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			       void *cookie),
		     void *cookie)
{
	struct pyx_discovery_opts dopts = {.ctx = ctx};
	struct pyx_common_opts one = *common;
	size_t nr = 0, i, done = 0;
	pid_t *pids = NULL;
	int ret = PYX_EXIT_FAILURE;

	if (pyx_cmd_scope(ctx, common, &dopts) || pyx_discovery__list(&dopts, &pids, &nr))
		return PYX_EXIT_FAILURE;
	if (pyx_cmd_open_output(ctx))
		goto out_free;
	one.container = NULL;
	one.all = one.children = false;
	for (i = 0; i < nr; i++) {
		/* Gone since it was listed: not an error. */
		if (kill(pids[i], 0) && errno == ESRCH)
			continue;
		if (done && !ctx->json)
			fputc('\n', ctx->out);
		one.pid = pids[i];
		done += fn(ctx, &one, cookie) == PYX_EXIT_OK;
	}
	if (!nr)
		pyx_warn(ctx, "no Python process found");
	ret = nr && !done ? PYX_EXIT_FAILURE : PYX_EXIT_OK;
	if (pyx_cmd_close_output(ctx) && ret == PYX_EXIT_OK)
		ret = PYX_EXIT_FAILURE;
out_free:
	free(pids);
	return ret;
}

int pyx_cmd_check_thread(const struct pyx_ctx *ctx, const struct pyx_process *proc, pid_t tid)
{
	char task[64];

	if (!tid)
		return 0;
	snprintf(task, sizeof(task), "/proc/%d/task/%d", proc->pid, tid);
	if (!access(task, F_OK))
		return 0;
	pyx_error(ctx, "thread %d is not a thread of process %d (see ps -T -p %d)", tid, proc->pid,
		  proc->pid);
	return PYX_EXIT_FAILURE;
}

static void list_containers(const struct pyx_ctx *ctx, char *buf, size_t size)
{
	size_t count = 0, i, used = 0;
	char **ids = NULL;

	buf[0] = '\0';
	if (pyx_container_list(&ids, &count) || !count) {
		snprintf(buf, size, "no containers are running");
		goto out_free;
	}
	used = (size_t)snprintf(buf, size, "containers found:");
	for (i = 0; i < count && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, " %.12s", ids[i]);
out_free:
	for (i = 0; i < count; i++)
		free(ids[i]);
	free(ids);
}

int pyx_cmd_open_target(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			struct pyx_process **proc)
{
	pid_t pid = common->pid;
	char list[512];
	int err;

	if (pyx_cmd_check_privileges(ctx))
		return PYX_EXIT_FAILURE;
	if (common->container) {
		err = pyx_container_find_pid(common->container, common->pid, &pid);
		switch (err) {
		case 0:
			break;
		case -ENOENT:
			list_containers(ctx, list, sizeof(list));
			pyx_error(ctx, "no container matches '%s' (%s)", common->container, list);
			return PYX_EXIT_FAILURE;
		case -EEXIST:
			pyx_error(ctx, "'%s' matches several containers: give more of the id",
				  common->container);
			return PYX_EXIT_FAILURE;
		case -ESRCH:
			pyx_error(
				ctx,
				"container %s has no process with PID %d (give the PID as seen inside the container)",
				common->container, common->pid);
			return PYX_EXIT_FAILURE;
		default:
			pyx_error(ctx, "cannot scan processes for container '%s': %s",
				  common->container, strerror(-err));
			return PYX_EXIT_FAILURE;
		}
	}
	err = pyx_process__open(pid, proc);
	switch (err) {
	case 0:
		return 0;
	case -ESRCH:
		pyx_error(ctx, "no process with PID %d (check it with 'ps -p %d')", pid, pid);
		break;
	case -EOWNERDEAD:
		pyx_error(ctx,
			  "process %d is a zombie: it has exited and its parent has not reaped it",
			  pid);
		break;
	case -EACCES:
	case -EPERM:
		pyx_error(ctx,
			  "cannot inspect process %d: permission denied (run pyxtrace as root)",
			  pid);
		break;
	default:
		pyx_error(ctx, "cannot inspect process %d: %s", pid, strerror(-err));
		break;
	}
	return PYX_EXIT_FAILURE;
}

int pyx_cmd_open_output(struct pyx_ctx *ctx)
{
	ctx->out = stdout;
	if (!ctx->out_path || !strcmp(ctx->out_path, "-"))
		return 0;
	ctx->out = fopen(ctx->out_path, "we");
	if (!ctx->out) {
		pyx_error(ctx, "cannot write '%s': %s", ctx->out_path, strerror(errno));
		ctx->out = stdout;
		return PYX_EXIT_FAILURE;
	}
	return 0;
}

int pyx_cmd_close_output(struct pyx_ctx *ctx)
{
	int failed = fflush(ctx->out) || ferror(ctx->out);

	if (ctx->out != stdout && fclose(ctx->out))
		failed = 1;
	ctx->out = stdout;
	/* The reader closed the pipe (`| head`): it has what it wanted. */
	if (failed && errno == EPIPE)
		return 0;
	if (failed) {
		pyx_error(ctx, "writing the results failed: %s", strerror(errno));
		return PYX_EXIT_FAILURE;
	}
	return 0;
}

int pyx_cmd_run_target(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		       int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
				 void *cookie),
		       void *cookie)
{
	int ret;

	if (pyx_cmd_open_output(ctx))
		return PYX_EXIT_FAILURE;
	if (common->launch_argv)
		ret = pyx_launch_run(ctx, common, fn, cookie);
	else
		ret = fn(ctx, common, cookie);
	if (pyx_cmd_close_output(ctx) && ret == PYX_EXIT_OK)
		ret = PYX_EXIT_FAILURE;
	return ret;
}

/* What CPython the open @proc runs and how to walk it; on failure *py is freed, @why says. */
static int inspect_python(struct pyx_process *proc, struct pyx_python **py,
			  struct pyx_python_layout *layout, char *why, size_t why_size)
{
	int err;

	*py = NULL;
	err = pyx_python__detect(proc, py, why, why_size);
	if (!err)
		err = pyx_python__layout(*py, proc, layout, why, why_size);
	if (err) {
		pyx_python__free(*py);
		*py = NULL;
	}
	return err;
}

int pyx_cmd_open_python(const struct pyx_ctx *ctx, const struct pyx_common_opts *common,
			struct pyx_process **proc, struct pyx_python **py,
			struct pyx_python_layout *layout)
{
	char why[1024];
	int err;

	*py = NULL;
	err = pyx_cmd_open_target(ctx, common, proc);
	if (err)
		return err;
	if (!inspect_python(*proc, py, layout, why, sizeof(why)))
		return 0;
	pyx_error(ctx, "%s", why);
	pyx_process__close(*proc);
	*proc = NULL;
	return PYX_EXIT_FAILURE;
}

int pyx_cmd_found_python(const struct pyx_ctx *ctx, pid_t pid, struct pyx_process **proc,
			 struct pyx_python **py, struct pyx_python_layout *layout)
{
	char why[1024];
	int err;

	*py = NULL;
	err = pyx_process__open(pid, proc);
	if (err) {
		*proc = NULL;
		return err == -EOWNERDEAD ? -ESRCH : err;
	}
	err = inspect_python(*proc, py, layout, why, sizeof(why));
	if (!err)
		return 0;
	/* Gone already is no news; a Python that cannot be traced is. */
	if (err != -ESRCH && pyx_process__alive(*proc))
		pyx_warn(ctx, "not traced: %s", why);
	else
		err = -ESRCH;
	pyx_process__close(*proc);
	*proc = NULL;
	return err;
}
