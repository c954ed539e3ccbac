// SPDX-License-Identifier: GPL-2.0-only
#include <linux/types.h>
#include <pyxtrace/common.h>

#include "output/hist.h"

uint64_t pyx_hist_le_ns(unsigned int slot)
{
	unsigned int power, sub;
	uint64_t lower;

	if (slot == 0)
		return (1ull << PYX_HIST_MIN_SHIFT) - 1;
	if (slot >= PYX_HIST_SLOTS - 1)
		return UINT64_MAX;
	power = PYX_HIST_MIN_SHIFT + (slot - 1) / PYX_HIST_SUB;
	sub = (slot - 1) % PYX_HIST_SUB;
	lower = (1ull << power) + (uint64_t)sub * (1ull << (power - 2));
	return lower + (1ull << (power - 2)) - 1;
}

uint64_t pyx_hist_percentile(const __u64 *slots, size_t n, double p)
{
	uint64_t total = 0, seen = 0, want;
	size_t i;

	for (i = 0; i < n; i++)
		total += slots[i];
	if (!total)
		return 0;
	/* Nearest rank: the ceil(p * total)-th smallest sample. */
	want = (uint64_t)(p * (double)total);
	if ((double)want < p * (double)total || want < 1)
		want++;
	for (i = 0; i < n; i++) {
		seen += slots[i];
		if (seen >= want)
			return pyx_hist_le_ns((unsigned int)i);
	}
	return pyx_hist_le_ns((unsigned int)(n - 1));
}

void pyx_json_hist(struct pyx_json *json, const char *key, const __u64 *slots, size_t n)
{
	size_t i;

	pyx_json_key(json, key);
	pyx_json_array_begin(json);
	for (i = 0; i < n; i++) {
		if (!slots[i])
			continue;
		pyx_json_object_begin(json);
		if (pyx_hist_le_ns((unsigned int)i) == UINT64_MAX)
			pyx_json_kv_null(json, "le_ns");
		else
			pyx_json_kv_u64(json, "le_ns", pyx_hist_le_ns((unsigned int)i));
		pyx_json_kv_u64(json, "count", slots[i]);
		pyx_json_object_end(json);
	}
	pyx_json_array_end(json);
}

void pyx_json_latency(struct pyx_json *json, uint64_t total_ns, uint64_t timed, uint64_t min_ns,
		      uint64_t max_ns, const __u64 *slots, size_t n)
{
	pyx_json_kv_u64(json, "total_ns", total_ns);
	pyx_json_kv_u64(json, "min_ns", min_ns);
	pyx_json_kv_u64(json, "max_ns", max_ns);
	pyx_json_kv_u64(json, "avg_ns", timed ? total_ns / timed : 0);
	pyx_json_kv_u64(json, "p50_ns", pyx_hist_percentile(slots, n, 0.50));
	pyx_json_kv_u64(json, "p90_ns", pyx_hist_percentile(slots, n, 0.90));
	pyx_json_kv_u64(json, "p99_ns", pyx_hist_percentile(slots, n, 0.99));
	pyx_json_hist(json, "hist", slots, n);
}
