/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shared JSON objects of docs/schema.md, written one way for every
 * command: process, container, python, drops; and event times.
 */
#ifndef PYX_OUTPUT_OBJECTS_H
#define PYX_OUTPUT_OBJECTS_H

#include <stdint.h>
#include <stdio.h>

#include <linux/types.h>
#include <pyxtrace/common.h>

#include "output/json.h"

struct pyx_process;
struct pyx_python;

/* "process": {pid, ns_pid, comm, container} */
void pyx_out_process(struct pyx_json *json, const char *key, const struct pyx_process *proc);

/* "python": {version, debug, free_threaded, libpython, offsets_source, ...} */
void pyx_out_python(struct pyx_json *json, const char *key, const struct pyx_python *py);

/* One human line: "12345 (python3.11)" plus ", container 3f2a9c1b7d0e pid 7" when inside one. */
const char *pyx_process_label(const struct pyx_process *proc, char *buf, size_t size);

/* "drops": {reason: count}, every reason present. */
/* What a probe hit costs per class (probes/budget.h), as "key": {...}; null when NULL. */
struct pyx_probe_costs;
void pyx_out_probe_costs(struct pyx_json *json, const char *key,
			 const struct pyx_probe_costs *costs);

void pyx_out_drops(struct pyx_json *json, const uint64_t drops[PYX_DROP__MAX]);

/* One "dropped: N (reason)" line per non-zero reason, except those in @skip (1 << reason). */
void pyx_print_drops(FILE *out, const uint64_t drops[PYX_DROP__MAX], unsigned int skip);

/* CLOCK_REALTIME - CLOCK_MONOTONIC now: turns BPF timestamps (bpf_ktime_get_ns) into wall time. */
int64_t pyx_realtime_offset_ns(void);

/* "HH:MM:SS.uuuuuu" in local time, for event lines. */
const char *pyx_format_clock(int64_t realtime_ns, char *buf, size_t size);

#endif /* PYX_OUTPUT_OBJECTS_H */
