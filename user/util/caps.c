// SPDX-License-Identifier: GPL-2.0-only
#include <linux/capability.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pyx.h"
#include "util/caps.h"

/* Older uapi headers lack the capabilities split out of CAP_SYS_ADMIN in 5.8/5.9. */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

const struct pyx_cap_need pyx_cap_needs[] = {
	{ CAP_BPF, "CAP_BPF", "load BPF programs and maps" },
	{ CAP_PERFMON, "CAP_PERFMON", "attach uprobes and perf events" },
	{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "uprobe_multi links and reading /proc of other namespaces" },
	{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "read the target's memory and /proc/PID/mem (no stop)" },
	{ CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE", "open /proc/PID/map_files" },
};
const unsigned int pyx_cap_needs_count = PYX_ARRAY_SIZE(pyx_cap_needs);

bool pyx_cap_effective(int cap)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

	if (syscall(SYS_capget, &header, data))
		return false;
	if (cap < 0 || cap >= 32 * _LINUX_CAPABILITY_U32S_3)
		return false;
	return data[cap / 32].effective & (UINT32_C(1) << (cap % 32));
}

const struct pyx_cap_need *pyx_caps_first_missing(void)
{
	unsigned int i;

	for (i = 0; i < pyx_cap_needs_count; i++)
		if (!pyx_cap_effective(pyx_cap_needs[i].cap))
			return &pyx_cap_needs[i];
	return NULL;
}
