// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kfeatures.h"
#include "features.skel.h"
#include "util/log.h"

static const char *const feature_names[PYX_FEAT__MAX] = {
	[PYX_FEAT_BTF] = "btf",
	[PYX_FEAT_UPROBE] = "uprobe",
	[PYX_FEAT_UPROBE_MULTI] = "uprobe_multi",
	[PYX_FEAT_RINGBUF] = "ringbuf",
	[PYX_FEAT_TASK_ITER] = "task_iter",
	[PYX_FEAT_TP_BTF] = "tp_btf",
};

const char *pyx_feature_name(enum pyx_feature feature)
{
	return feature < PYX_FEAT__MAX ? feature_names[feature] : NULL;
}

/* The function the uprobe checks fire on: in our own binary, so no target is needed. */
__attribute__((noinline, used)) int pyx_feature_trigger(int value);
__attribute__((noinline, used)) int pyx_feature_trigger(int value)
{
	__asm__ volatile("" : "+r"(value));
	return value + 1;
}

struct features_bpf *pyx_features_open_only(const char *prog_name, int *err)
{
	struct features_bpf *skel;
	struct bpf_program *prog;

	skel = features_bpf__open();
	if (!skel) {
		*err = -errno;
		return NULL;
	}
	bpf_object__for_each_program (prog, skel->obj)
		bpf_program__set_autoload(prog, !strcmp(bpf_program__name(prog), prog_name));
	*err = features_bpf__load(skel);
	if (*err) {
		features_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static void check_uprobe(struct pyx_feature_result *res, bool multi)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "pyx_feature_trigger");
	LIBBPF_OPTS(bpf_uprobe_multi_opts, mopts);
	const char *syms[] = {"pyx_feature_trigger"};
	struct features_bpf *skel;
	struct bpf_link *link;
	int err;

	skel = pyx_features_open_only(multi ? "probe_uprobe_multi" : "probe_uprobe", &err);
	if (!skel) {
		snprintf(res->detail, sizeof(res->detail), "cannot load: %s", strerror(-err));
		return;
	}
	if (multi) {
		mopts.syms = syms;
		mopts.cnt = 1;
		link = bpf_program__attach_uprobe_multi(skel->progs.probe_uprobe_multi, getpid(),
							"/proc/self/exe", NULL, &mopts);
	} else {
		link = bpf_program__attach_uprobe_opts(skel->progs.probe_uprobe, getpid(),
						       "/proc/self/exe", 0, &opts);
	}
	if (!link) {
		err = -errno;
		snprintf(res->detail, sizeof(res->detail), "cannot attach: %s%s", strerror(-err),
			 multi ? " (needs kernel 6.6+ and libbpf 1.3+)" : "");
		goto out_destroy;
	}
	pyx_feature_trigger(1);
	if ((multi ? skel->bss->uprobe_multi_hits : skel->bss->uprobe_hits) == 0)
		snprintf(res->detail, sizeof(res->detail), "attached but did not fire");
	else
		res->ok = true;
	bpf_link__destroy(link);
out_destroy:
	features_bpf__destroy(skel);
}

static void check_load(struct pyx_feature_result *res, const char *prog_name, const char *hint)
{
	struct features_bpf *skel;
	int err;

	skel = pyx_features_open_only(prog_name, &err);
	if (!skel) {
		snprintf(res->detail, sizeof(res->detail), "%s (%s)", strerror(-err), hint);
		return;
	}
	res->ok = true;
	features_bpf__destroy(skel);
}

static void check_task_iter(struct pyx_feature_result *res)
{
	struct features_bpf *skel;
	struct bpf_link *link;
	char buf[64];
	int err, fd;

	skel = pyx_features_open_only("probe_task_iter", &err);
	if (!skel) {
		snprintf(res->detail, sizeof(res->detail), "%s (needs kernel 6.0+ with BTF)",
			 strerror(-err));
		return;
	}
	link = bpf_program__attach_iter(skel->progs.probe_task_iter, NULL);
	if (!link) {
		snprintf(res->detail, sizeof(res->detail), "cannot attach: %s", strerror(errno));
		goto out_destroy;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		snprintf(res->detail, sizeof(res->detail), "cannot run: %s", strerror(errno));
		goto out_link;
	}
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	res->ok = true;
out_link:
	bpf_link__destroy(link);
out_destroy:
	features_bpf__destroy(skel);
}

void pyx_features_probe(const struct pyx_ctx *ctx, struct pyx_feature_result results[PYX_FEAT__MAX])
{
	memset(results, 0, sizeof(*results) * PYX_FEAT__MAX);

	if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		results[PYX_FEAT_BTF].ok = true;
	else
		snprintf(
			results[PYX_FEAT_BTF].detail, sizeof(results[PYX_FEAT_BTF].detail),
			"no /sys/kernel/btf/vmlinux: use a kernel built with CONFIG_DEBUG_INFO_BTF=y");

	if (!results[PYX_FEAT_BTF].ok) {
		/* Every program here relies on CO-RE: without BTF nothing else can be checked. */
		unsigned int i;

		for (i = PYX_FEAT_BTF + 1; i < PYX_FEAT__MAX; i++)
			snprintf(results[i].detail, sizeof(results[i].detail),
				 "not checked: no BTF");
		return;
	}
	check_uprobe(&results[PYX_FEAT_UPROBE], false);
	check_uprobe(&results[PYX_FEAT_UPROBE_MULTI], true);
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1)
		check_load(&results[PYX_FEAT_RINGBUF], "probe_ringbuf_output", "needs kernel 5.8+");
	else
		snprintf(results[PYX_FEAT_RINGBUF].detail, sizeof(results[PYX_FEAT_RINGBUF].detail),
			 "BPF ring buffers unsupported: needs kernel 5.8+");
	check_task_iter(&results[PYX_FEAT_TASK_ITER]);
	check_load(&results[PYX_FEAT_TP_BTF], "probe_tp_btf", "needs kernel 5.5+ with BTF");
	pyx_debug(ctx, "kernel feature probe done");
}
