// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf/elf.h"
#include <linux/types.h>
#include <pyxtrace/launch.h>

#include "launch.skel.h"
#include "python/detect.h"
#include "session.h"
#include "target/launch.h"
#include "target/process.h"
#include "util/log.h"

PYX_SKEL_OPS(launch_bpf);

/* A shell wrapper, env and the interpreter: a few execs at most before Python shows up. */
#define LAUNCH_MAX_STOPS 16

struct launch {
	struct pyx_ctx *ctx;
	pid_t child;
	struct pyx_session *session;
	struct bpf_link *entry_link;
};

static int launch_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct launch_bpf *skel = skel_ptr;
	struct bpf_link *link;

	link = bpf_program__attach(skel->progs.handle_exec);
	if (!link) {
		int err = -errno;

		pyx_error(((struct launch *)cookie)->ctx, "cannot attach the exec hook: %s",
			  strerror(-err));
		return err;
	}
	return pyx_session__add_link(session, link);
}

/* The child: wait for the go byte, exec, report exec failure through the CLOEXEC pipe. */
static void __attribute__((noreturn)) run_child(char **argv, int go_fd, int status_fd)
{
	sigset_t empty;
	char go;
	int err;

	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (read(go_fd, &go, 1) != 1)
		_exit(127); /* pyxtrace gave up before attaching: never run untraced */
	execvp(argv[0], argv);
	err = errno;
	if (write(status_fd, &err, sizeof(err)) != sizeof(err))
		_exit(126);
	_exit(127);
}

/* Put the entry-point stop on the program now mapped as /proc/CHILD/exe. */
static int arm_entry_stop(struct launch *l)
{
	struct launch_bpf *skel = pyx_session__skel(l->session);
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct pyx_elf *elf;
	uint64_t offset;
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/exe", l->child);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = pyx_elf__open_fd(fd);
	close(fd);
	if (!elf)
		return -errno;
	err = pyx_elf__vaddr_to_offset(elf, pyx_elf__entry(elf), &offset);
	pyx_elf__close(elf);
	if (err)
		return err;
	bpf_link__destroy(l->entry_link);
	l->entry_link = bpf_program__attach_uprobe_opts(skel->progs.handle_entry, l->child, path,
							(size_t)offset, &opts);
	return l->entry_link ? 0 : -errno;
}

static bool python_is_mapped(pid_t pid)
{
	struct pyx_process *proc;
	bool mapped;

	if (pyx_process__open(pid, &proc))
		return false;
	mapped = pyx_python__mapped(proc);
	pyx_process__close(proc);
	return mapped;
}

static void describe_exit(const struct pyx_ctx *ctx, const char *prog, int status)
{
	if (WIFEXITED(status))
		pyx_error(ctx, "'%s' exited with status %d before any Python interpreter was loaded (is it a Python program?)",
			  prog, WEXITSTATUS(status));
	else
		pyx_error(ctx, "'%s' was killed by signal %d before any Python interpreter was loaded",
			  prog, WTERMSIG(status));
}

/* Let the child run from stop to stop until it sits at an entry point with Python mapped. */
static int hold_at_python(struct launch *l, const char *prog)
{
	struct launch_bpf *skel = pyx_session__skel(l->session);
	uint64_t entries_seen = 0;
	unsigned int stops;
	int status, err;

	for (stops = 0; stops < LAUNCH_MAX_STOPS; stops++) {
		if (waitpid(l->child, &status, WUNTRACED) < 0)
			return -errno;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			describe_exit(l->ctx, prog, status);
			l->child = 0;
			return -ESRCH;
		}
		if (!WIFSTOPPED(status))
			continue;
		if (skel->bss->entry_stops > entries_seen) {
			entries_seen = skel->bss->entry_stops;
			if (python_is_mapped(l->child))
				return 0;
		} else {
			/* An exec stop: hold the new program again at its entry point. */
			err = arm_entry_stop(l);
			if (err) {
				pyx_error(l->ctx, "cannot hold '%s' at its entry point: %s", prog,
					  strerror(-err));
				return err;
			}
		}
		if (kill(l->child, SIGCONT))
			return -errno;
	}
	pyx_error(l->ctx, "'%s' did not start a Python interpreter after %d execs", prog,
		  LAUNCH_MAX_STOPS);
	return -ELOOP;
}

int pyx_launch_run(struct pyx_ctx *ctx, const struct pyx_common_opts *common,
		   int (*fn)(struct pyx_ctx *ctx, const struct pyx_common_opts *common, void *cookie),
		   void *cookie)
{
	struct pyx_common_opts held = *common;
	struct launch l = { .ctx = ctx };
	struct pyx_launch_cfg cfg = {};
	struct pyx_session_opts opts = {
		.ctx = ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.cookie = &l,
		.attach = launch_attach,
	};
	const char *prog = common->launch_argv[0];
	int go[2], status[2], exec_errno, ret = PYX_EXIT_FAILURE, err;
	ssize_t n;

	if (pyx_cmd_check_privileges(ctx))
		return PYX_EXIT_FAILURE;
	if (pipe2(go, O_CLOEXEC))
		return PYX_EXIT_FAILURE;
	if (pipe2(status, O_CLOEXEC)) {
		close(go[0]);
		close(go[1]);
		return PYX_EXIT_FAILURE;
	}
	fflush(NULL);
	l.child = fork();
	if (l.child < 0) {
		pyx_error(ctx, "cannot fork: %s", strerror(errno));
		goto out_close_pipes;
	}
	if (l.child == 0)
		run_child(common->launch_argv, go[0], status[1]);
	close(go[0]);
	go[0] = -1;
	close(status[1]);
	status[1] = -1;

	cfg.tgid = (__u32)l.child;
	err = pyx_session__start(&l.session, &launch_bpf_ops, &opts);
	if (err)
		goto out_kill; /* closing the go pipe makes the child exit without exec */
	if (write(go[1], "g", 1) != 1) {
		pyx_error(ctx, "cannot start '%s': %s", prog, strerror(errno));
		goto out_kill;
	}
	n = read(status[0], &exec_errno, sizeof(exec_errno));
	if (n == sizeof(exec_errno)) {
		pyx_error(ctx, "cannot run '%s': %s", prog, strerror(exec_errno));
		goto out_kill;
	}
	err = hold_at_python(&l, prog);
	bpf_link__destroy(l.entry_link);
	l.entry_link = NULL;
	pyx_session__destroy(l.session);
	l.session = NULL;
	if (err)
		goto out_kill;

	held.pid = l.child;
	held.resume_pid = l.child;
	held.launch_argv = NULL;
	ret = fn(ctx, &held, cookie);
	if (ret != PYX_EXIT_OK)
		goto out_kill;
	/* Reap it if it is done; a program still running keeps running untraced. */
	waitpid(l.child, NULL, WNOHANG);
	goto out_close_pipes;

out_kill:
	bpf_link__destroy(l.entry_link);
	pyx_session__destroy(l.session);
	if (l.child > 0) {
		kill(l.child, SIGKILL);
		waitpid(l.child, NULL, 0);
	}
out_close_pipes:
	if (go[0] >= 0)
		close(go[0]);
	close(go[1]);
	close(status[0]);
	if (status[1] >= 0)
		close(status[1]);
	return ret;
}
