// SPDX-License-Identifier: GPL-2.0-only
/*
 * The kernel buckets latencies with bpf/lib/hist.bpf.h and user space reads
 * the bounds with output/hist.c: both must agree on every bucket edge.
 */
#include <linux/types.h>
#include <stdint.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "../../bpf/lib/hist.bpf.h"

#include "check.h"
#include "output/hist.h"

/* Every ns lands in the bucket whose bounds hold it, at every edge. */
static void test_bounds_agree(void)
{
	uint64_t probes[] = {0,		 1,	    63,	    64,		65,
			     79,	 80,	    95,	    96,		127,
			     128,	 1000,	    999999, 1ull << 35, (1ull << 36) - 1,
			     1ull << 36, UINT64_MAX};
	unsigned int slot;
	size_t i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		slot = pyx_hist_slot(probes[i]);
		if (!CHECK(slot < PYX_HIST_SLOTS))
			continue;
		CHECK(probes[i] <= pyx_hist_le_ns(slot));
		if (slot)
			CHECK(probes[i] > pyx_hist_le_ns(slot - 1));
	}
	/* Each bucket's bounds map back to it, and buckets tile the line. */
	for (slot = 0; slot + 1 < PYX_HIST_SLOTS; slot++) {
		CHECK_EQ(pyx_hist_slot(pyx_hist_le_ns(slot)), slot);
		CHECK_EQ(pyx_hist_slot(pyx_hist_le_ns(slot) + 1), slot + 1);
	}
	CHECK_EQ(pyx_hist_le_ns(PYX_HIST_SLOTS - 1), UINT64_MAX);
}

static void test_percentiles(void)
{
	__u64 slots[PYX_HIST_SLOTS] = {0};

	CHECK_EQ(pyx_hist_percentile(slots, PYX_HIST_SLOTS, 0.5), 0);
	/* 90 calls near 100 us, 10 near 10 ms. */
	slots[pyx_hist_slot(100000)] = 90;
	slots[pyx_hist_slot(10000000)] = 10;
	CHECK_EQ(pyx_hist_percentile(slots, PYX_HIST_SLOTS, 0.5),
		 pyx_hist_le_ns(pyx_hist_slot(100000)));
	CHECK_EQ(pyx_hist_percentile(slots, PYX_HIST_SLOTS, 0.9),
		 pyx_hist_le_ns(pyx_hist_slot(100000)));
	CHECK_EQ(pyx_hist_percentile(slots, PYX_HIST_SLOTS, 0.99),
		 pyx_hist_le_ns(pyx_hist_slot(10000000)));
	/* Buckets are within 25% of their lower bound. */
	CHECK(pyx_hist_le_ns(pyx_hist_slot(100000)) < 125000);
}

int main(void)
{
	test_bounds_agree();
	test_percentiles();
	return check_done();
}
