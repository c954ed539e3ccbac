/* SPDX-License-Identifier: GPL-2.0-only */
/* The capabilities pyxtrace needs, read from the kernel (capget), not guessed from the uid. */
#ifndef PYX_UTIL_CAPS_H
#define PYX_UTIL_CAPS_H

#include <stdbool.h>

struct pyx_cap_need {
	int cap;	    /* CAP_* number */
	const char *name;   /* "CAP_BPF" */
	const char *why;    /* what it is needed for */
};

extern const struct pyx_cap_need pyx_cap_needs[];
extern const unsigned int pyx_cap_needs_count;

/* Whether the calling thread has @cap in its effective set. */
bool pyx_cap_effective(int cap);

/*
 * The first needed capability that is missing, or NULL when all are there.
 * Commands call this before touching BPF so an unprivileged user gets one
 * clear line instead of a verifier or EPERM message.
 */
const struct pyx_cap_need *pyx_caps_first_missing(void);

#endif /* PYX_UTIL_CAPS_H */
