// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>

#include "check.h"
#include "util/parse.h"

static void test_durations(void)
{
	static const struct {
		const char *text;
		uint64_t ns;
	} good[] = {
		{"250ms", 250000000ull}, {"5s", 5000000000ull},	   {"1.5s", 1500000000ull},
		{"2m", 120000000000ull}, {"1h", 3600000000000ull}, {"100us", 100000ull},
		{"10ns", 10ull},	 {"3", 3000000000ull},	   {"0.25", 250000000ull},
	};
	static const char *const bad[] = {"",	 "s",	 "5x",	"-1s", "+1s",  " 5s",
					  "5 s", "5sec", "inf", "nan", "1e30s"};
	uint64_t ns;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (CHECK_EQ(pyx_parse_duration(good[i].text, &ns), 0))
			CHECK_EQ(ns, good[i].ns);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pyx_parse_duration(bad[i], &ns) < 0);
}

static void test_pids(void)
{
	pid_t pid;

	CHECK_EQ(pyx_parse_pid("1", &pid), 0);
	CHECK_EQ(pid, 1);
	CHECK_EQ(pyx_parse_pid("4194304", &pid), 0);
	CHECK_EQ(pyx_parse_pid("0", &pid), -ERANGE);
	CHECK_EQ(pyx_parse_pid("4194305", &pid), -ERANGE);
	CHECK_EQ(pyx_parse_pid("-5", &pid), -EINVAL);
	CHECK_EQ(pyx_parse_pid("12ab", &pid), -EINVAL);
	CHECK_EQ(pyx_parse_pid("", &pid), -EINVAL);
	CHECK_EQ(pyx_parse_pid("99999999999999999999", &pid), -EINVAL);
}

static void test_counts(void)
{
	unsigned long n;

	CHECK_EQ(pyx_parse_count("0", 0, 8, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(pyx_parse_count("8", 0, 8, &n), 0);
	CHECK_EQ(n, 8);
	CHECK_EQ(pyx_parse_count("9", 0, 8, &n), -EINVAL);
	CHECK_EQ(pyx_parse_count("0", 1, 8, &n), -EINVAL);
	CHECK_EQ(pyx_parse_count("-1", 0, 8, &n), -EINVAL);
	CHECK_EQ(pyx_parse_count("+1", 0, 8, &n), -EINVAL);
	CHECK_EQ(pyx_parse_count("3x", 0, 8, &n), -EINVAL);
	CHECK_EQ(pyx_parse_count("", 0, 8, &n), -EINVAL);
}

static void test_format_and_distance(void)
{
	char buf[32];

	CHECK_STR(pyx_format_duration(812, buf, sizeof(buf)), "812 ns");
	CHECK_STR(pyx_format_duration(12300, buf, sizeof(buf)), "12.3 µs");
	CHECK_STR(pyx_format_duration(4560000, buf, sizeof(buf)), "4.56 ms");
	CHECK_STR(pyx_format_duration(1230000000, buf, sizeof(buf)), "1.23 s");
	CHECK_EQ(pyx_edit_distance("info", "info"), 0);
	CHECK_EQ(pyx_edit_distance("inof", "info"), 2);
	CHECK_EQ(pyx_edit_distance("calls", "call"), 1);
	CHECK_EQ(pyx_edit_distance("", "abc"), 3);
}

int main(void)
{
	test_durations();
	test_pids();
	test_counts();
	test_format_and_distance();
	return check_done();
}
