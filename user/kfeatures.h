/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the running kernel can do for pyxtrace, found by trying it (loading
 * and attaching tiny programs), not by reading version numbers.
 */
#ifndef PYX_KFEATURES_H
#define PYX_KFEATURES_H

#include <stdbool.h>

#include "pyx.h"

enum pyx_feature {
	PYX_FEAT_BTF = 0,      /* /sys/kernel/btf/vmlinux: CO-RE and tp_btf */
	PYX_FEAT_UPROBE,       /* uprobe attach by file offset, and hits counted */
	PYX_FEAT_UPROBE_MULTI, /* BPF_TRACE_UPROBE_MULTI links (6.6+) */
	PYX_FEAT_RINGBUF,      /* BPF_MAP_TYPE_RINGBUF (5.8+) */
	PYX_FEAT_TASK_ITER,    /* sleepable task iterator + bpf_copy_from_user_task (6.0+) */
	PYX_FEAT_TP_BTF,       /* typed tracepoints (signal_generate) */
	PYX_FEAT__MAX,
};

struct pyx_feature_result {
	bool ok;
	char detail[160]; /* why not, and what to do */
};

const char *pyx_feature_name(enum pyx_feature feature);

/* Probe every feature; results[i] for enum pyx_feature i. */
/*
 * The features object (bpf/features.bpf.c) loaded with only @prog_name:
 * its tiny programs serve calibrations too. NULL and *err (-errno).
 */
struct features_bpf;
struct features_bpf *pyx_features_open_only(const char *prog_name, int *err);

void pyx_features_probe(const struct pyx_ctx *ctx,
			struct pyx_feature_result results[PYX_FEAT__MAX]);

#endif /* PYX_KFEATURES_H */
