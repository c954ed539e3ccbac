/* SPDX-License-Identifier: GPL-2.0-only */
/* Parsing of command-line values, strict: trailing garbage is an error. */
#ifndef PYX_UTIL_PARSE_H
#define PYX_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * "250ms", "5s", "1.5s", "2m", "1h", "100us", "10ns"; a bare number means
 * seconds. Returns 0 or -EINVAL / -ERANGE.
 */
int pyx_parse_duration(const char *str, uint64_t *ns);

/* A positive decimal PID. Returns 0 or -EINVAL / -ERANGE. */
int pyx_parse_pid(const char *str, pid_t *pid);

/* A decimal count in [min, max]. Returns 0 or -EINVAL. */
int pyx_parse_count(const char *str, unsigned long min, unsigned long max, unsigned long *out);

/* Format @ns for humans: "812 ns", "12.3 µs", "4.56 ms", "1.23 s". */
/* CLOCK_MONOTONIC in ns: the clock BPF's bpf_ktime_get_ns() reads too. */
uint64_t pyx_monotonic_ns(void);

const char *pyx_format_duration(uint64_t ns, char *buf, size_t size);

/* Levenshtein distance, for "did you mean" suggestions. */
unsigned int pyx_edit_distance(const char *a, const char *b);

#endif /* PYX_UTIL_PARSE_H */
