// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/parse.h"

static const struct {
	const char *suffix;
	double ns;
} duration_units[] = {
	{"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
};

int pyx_parse_duration(const char *str, uint64_t *ns)
{
	double value, scale = 1e9;
	char *end;
	size_t i;

	if (!str || !*str || isspace((unsigned char)*str) || *str == '-' || *str == '+')
		return -EINVAL;
	errno = 0;
	value = strtod(str, &end);
	if (errno || end == str || !isfinite(value))
		return -EINVAL;
	if (*end) {
		for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
			if (!strcmp(end, duration_units[i].suffix)) {
				scale = duration_units[i].ns;
				break;
			}
		}
		if (i == sizeof(duration_units) / sizeof(duration_units[0]))
			return -EINVAL;
	}
	value *= scale;
	if (value < 0 || value > 1e19)
		return -ERANGE;
	*ns = (uint64_t)value;
	return 0;
}

int pyx_parse_count(const char *str, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!str || !isdigit((unsigned char)*str))
		return -EINVAL;
	errno = 0;
	*out = strtoul(str, &end, 10);
	if (errno || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

int pyx_parse_pid(const char *str, pid_t *pid)
{
	unsigned long value;
	char *end;

	if (!str || !isdigit((unsigned char)*str))
		return -EINVAL;
	errno = 0;
	value = strtoul(str, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (value == 0 || value > 4194304) /* PID_MAX_LIMIT */
		return -ERANGE;
	*pid = (pid_t)value;
	return 0;
}

uint64_t pyx_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *pyx_format_duration(uint64_t ns, char *buf, size_t size)
{
	if (ns < 1000)
		snprintf(buf, size, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, size, "%.3g µs", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, size, "%.3g s", ns / 1e9);
	return buf;
}

unsigned int pyx_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	unsigned int row[64], prev, tmp;

	if (lb >= sizeof(row) / sizeof(row[0]))
		return (unsigned int)(la > lb ? la : lb);
	for (j = 0; j <= lb; j++)
		row[j] = (unsigned int)j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned int)i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}
