/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Minimal assertions for unit tests, returning bool so the guard and the
 * assertion are one statement: if (!CHECK_EQ(a, b)) return;
 */
#ifndef PYX_TEST_CHECK_H
#define PYX_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

static inline bool check_report(bool ok, const char *file, int line, const char *what)
{
	check_count++;
	if (!ok) {
		check_failures++;
		fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	}
	return ok;
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond)

#define CHECK_EQ(a, b)                                                                       \
	({                                                                                   \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);              \
		if (check_a_ != check_b_)                                                    \
			fprintf(stderr, "  %s = %lld, %s = %lld\n", #a, check_a_, #b, check_b_); \
		check_report(check_a_ == check_b_, __FILE__, __LINE__, #a " == " #b);        \
	})

#define CHECK_STR(a, b)                                                                      \
	({                                                                                   \
		const char *check_a_ = (a), *check_b_ = (b);                                 \
		bool check_ok_ = check_a_ && check_b_ && !strcmp(check_a_, check_b_);        \
		if (!check_ok_)                                                              \
			fprintf(stderr, "  %s = \"%s\", %s = \"%s\"\n", #a,                  \
				check_a_ ? check_a_ : "(null)", #b, check_b_ ? check_b_ : "(null)"); \
		check_report(check_ok_, __FILE__, __LINE__, #a " equals " #b);               \
	})

/* End of main(): summary line in the plain "N passed, N failed" form. */
static inline int check_done(void)
{
	printf("%d passed, %d failed\n", check_count - check_failures, check_failures);
	return check_failures ? 1 : 0;
}

#endif /* PYX_TEST_CHECK_H */
