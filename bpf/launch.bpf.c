// SPDX-License-Identifier: GPL-2.0-only
/*
 * `pyxtrace CMD -- ARGS`: stop the launched command, without ptrace, at the
 * points where pyxtrace needs to look at it before it runs any Python code:
 * right after each exec (the new executable is mapped) and at the
 * executable's entry point (ld.so has mapped libpython and every other
 * DT_NEEDED library, but main() has not run). SIGSTOP is sent by the
 * kernel on our behalf; the parent sees the stop with waitpid(WUNTRACED)
 * and resumes the command with SIGCONT once its probes are attached.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/launch.h>
#include "lib/ctl.bpf.h"

#define SIGSTOP 19

const volatile struct pyx_launch_cfg pyx_cfg SEC(".rodata.cfg");

__u64 exec_stops;
__u64 entry_stops;

static __always_inline bool is_launched_command(void)
{
	return pyx_ready() && (bpf_get_current_pid_tgid() >> 32) == pyx_cfg.tgid;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!is_launched_command())
		return 0;
	__sync_fetch_and_add(&exec_stops, 1);
	bpf_send_signal(SIGSTOP);
	return 0;
}

SEC("uprobe")
int handle_entry(void *ctx)
{
	if (!is_launched_command())
		return 0;
	__sync_fetch_and_add(&entry_stops, 1);
	bpf_send_signal(SIGSTOP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
