/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading the kernel's log-linear latency histograms (include/pyxtrace/
 * common.h, bpf/lib/hist.bpf.h): bucket bounds, percentiles, JSON.
 */
#ifndef PYX_OUTPUT_HIST_H
#define PYX_OUTPUT_HIST_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "output/json.h"

/* Upper bound (inclusive, "le") of bucket @slot in ns; UINT64_MAX for the last one. */
uint64_t pyx_hist_le_ns(unsigned int slot);

/* The bucket bound under which a fraction @p (0..1) of the samples fall; 0 when empty. */
uint64_t pyx_hist_percentile(const __u64 *slots, size_t n, double p);

/* "hist": [{"le_ns", "count"}] for the non-empty buckets. */
void pyx_json_hist(struct pyx_json *json, const char *key, const __u64 *slots, size_t n);

/*
 * The latency fields of one function: total_ns, min_ns, max_ns, avg_ns (over
 * the @timed calls), p50_ns, p90_ns, p99_ns and "hist".
 */
void pyx_json_latency(struct pyx_json *json, uint64_t total_ns, uint64_t timed, uint64_t min_ns,
		      uint64_t max_ns, const __u64 *slots, size_t n);

#endif /* PYX_OUTPUT_HIST_H */
