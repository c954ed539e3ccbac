// SPDX-License-Identifier: GPL-2.0-only
/*
 * walk-cost: attach bpf/walkbench.bpf.c's empty or walking program to one
 * function of a live Python process and report how many hits, walks and
 * frames it saw when the target exits. Driven by bench/walk_cost.py, which
 * measures the time per call from inside the target.
 *
 *   walk-cost PID OBJECT-SUBSTRING SYMBOL empty|empty-return|walk|walk-guard
 *   walk-cost PID - - eval-hooks
 *
 * eval-hooks: empty programs on every site `pyxtrace calls` probes
 * (python/evalhooks.c), return probes where it uses them: its bare floor.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include <pyxtrace/walkbench.h>

#include "walkbench.skel.h"
#include "elf/elf.h"
#include "python/detect.h"
#include "python/evalhooks.h"
#include "python/layout.h"
#include "session.h"
#include "target/process.h"
#include "util/log.h"

PYX_SKEL_OPS(walkbench_bpf);

struct bench {
	struct pyx_process *proc;
	struct pyx_object *obj;
	uint64_t offset;
	bool walk;
	bool with_return;
	struct pyx_eval_hooks *hooks; /* eval-hooks mode */
	uint64_t hits, walks_ok, frames, fast;
};

/* Every site of `calls`, as it places them, with an empty program. */
static int attach_eval_hooks(struct bench *b, struct pyx_session *session,
			     struct walkbench_bpf *skel, const char *path)
{
	size_t i;

	for (i = 0; i < b->hooks->nr_hooks; i++) {
		const struct pyx_eval_hook *h = &b->hooks->hooks[i];
		bool ret = h->kind == PYX_HOOK_EVAL_RETURN;
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
		struct bpf_link *link;
		uint64_t off;

		if (pyx_elf__vaddr_to_offset(b->obj->elf, h->vaddr + h->delta, &off))
			return -ENOENT;
		link = bpf_program__attach_uprobe_opts(ret ? skel->progs.probe_empty_return
							   : skel->progs.probe_empty,
						       b->proc->pid, path, (size_t)off, &opts);
		if (!link)
			return -errno;
		if (pyx_session__add_link(session, link))
			return -ENOMEM;
	}
	return 0;
}

static int bench_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct bench *b = cookie;
	struct walkbench_bpf *skel = skel_ptr;
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct bpf_link *link;
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, b->proc->pid,
		 b->obj->map_start, b->obj->map_end);
	if (b->hooks)
		return attach_eval_hooks(b, session, skel, path);
	link = bpf_program__attach_uprobe_opts(b->walk ? skel->progs.probe_walk
						       : skel->progs.probe_empty,
					       b->proc->pid, path, (size_t)b->offset, &opts);
	if (!link)
		return -errno;
	if (pyx_session__add_link(session, link))
		return -ENOMEM;
	if (!b->with_return)
		return 0;
	/* The bare entry+return floor: the same site with an empty return probe. */
	opts.retprobe = true;
	link = bpf_program__attach_uprobe_opts(skel->progs.probe_empty_return, b->proc->pid, path,
					       (size_t)b->offset, &opts);
	if (!link)
		return -errno;
	return pyx_session__add_link(session, link);
}

static int bench_done(void *cookie, struct pyx_session *session, bool final)
{
	struct bench *b = cookie;
	struct walkbench_bpf *skel = pyx_session__skel(session);

	if (final) {
		b->hits = skel->bss->hits;
		b->walks_ok = skel->bss->walks_ok;
		b->frames = skel->bss->frames_walked;
		b->fast = skel->bss->fast_lookups;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pyx_ctx ctx = {.prog = "walk-cost", .out = stdout};
	struct pyx_walkbench_cfg cfg = {};
	struct pyx_python_layout layout;
	struct pyx_session *session;
	struct pyx_python *py = NULL;
	struct bench b = {};
	struct pyx_elf_sym sym;
	struct pyx_elf *elf;
	char why[256];
	size_t i;
	int err;

	if (argc != 5) {
		fprintf(stderr,
			"usage: walk-cost PID OBJECT-SUBSTRING SYMBOL empty|empty-return|walk|walk-guard\n");
		return 2;
	}
	pyx_log_setup_libbpf(&ctx);
	b.walk = !strncmp(argv[4], "walk", 4);
	b.with_return = !strcmp(argv[4], "empty-return");
	err = pyx_process__open(atoi(argv[1]), &b.proc);
	if (err) {
		fprintf(stderr, "walk-cost: cannot open process %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	if (pyx_python__detect(b.proc, &py, why, sizeof(why)) ||
	    pyx_python__layout(py, b.proc, &layout, why, sizeof(why))) {
		fprintf(stderr, "walk-cost: %s\n", why);
		return 1;
	}
	if (!strcmp(argv[4], "eval-hooks")) {
		static struct pyx_eval_hooks hooks;

		if (pyx_eval_hooks__find(b.proc, py, &hooks, why, sizeof(why))) {
			fprintf(stderr, "walk-cost: %s\n", why);
			return 1;
		}
		b.hooks = &hooks;
		b.obj = hooks.object;
		goto attach;
	}
	for (i = 0; i < b.proc->nr_objects && !b.obj; i++)
		if (strstr(b.proc->objects[i].path, argv[2]))
			b.obj = &b.proc->objects[i];
	elf = b.obj ? pyx_process__object_elf(b.proc, b.obj) : NULL;
	if (!elf || pyx_elf__find_symbol(elf, argv[3], &sym) ||
	    pyx_elf__vaddr_to_offset(elf, sym.value, &b.offset)) {
		fprintf(stderr, "walk-cost: %s not found in an object matching %s\n", argv[3],
			argv[2]);
		return 1;
	}
attach:
	cfg.tgid = (__u32)b.proc->pid;
	cfg.layout = layout.walk;
	if (!strcmp(argv[4], "walk-guard"))
		cfg.layout.walk_flags |= PYX_WALK_READ_GUARD;
	struct pyx_session_opts opts = {
		.ctx = &ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.target_pid = b.proc->pid,
		.cookie = &b,
		.attach = bench_attach,
		.on_interval = bench_done,
	};
	err = pyx_session__start(&session, &walkbench_bpf_ops, &opts);
	if (err)
		return 1;
	printf("attached\n");
	fflush(stdout);
	err = pyx_session__run(session);
	pyx_session__destroy(session);
	printf("{\"hits\": %" PRIu64 ", \"walks_ok\": %" PRIu64 ", \"frames\": %" PRIu64
	       ", \"fast_lookups\": %" PRIu64 "}\n",
	       b.hits, b.walks_ok, b.frames, b.fast);
	pyx_python__free(py);
	pyx_process__close(b.proc);
	return err ? 1 : 0;
}
