// SPDX-License-Identifier: GPL-2.0-only
/*
 * Process discovery: the processes in scope, followed in the kernel so no
 * fork is missed between two looks at /proc. The tracked map holds every
 * process of interest (user space seeds it with those found at start); a
 * fork of a tracked process tracks the child before it runs, an exec in
 * scope tracks the new image, an exit drops it, and each is told on the
 * ring with a new executable mapping (a module imported) of a tracked one.
 * Whether a process runs CPython is user space's call (user/discovery.c).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <pyxtrace/discovery.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_discovery_cfg pyx_cfg SEC(".rodata.cfg");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* Tracked processes by host PID; sized by user space (--all follows every process). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pyx_discovery_proc);
} tracked SEC(".maps");

/*
 * PYX_SCOPE_CONTAINER: the PID namespace @task lives in. A container is its
 * PID namespace whatever the cgroup layout (v1, v2, hybrid), and `docker
 * exec` enters it too.
 */
static __always_inline __u32 pid_ns_of(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level & 31]);
	return BPF_CORE_READ(upid.ns, ns.inum);
}

static __always_inline void tell(__u32 event, __u32 pid, __u32 parent, __u32 exit_code, __u32 flags)
{
	struct pyx_rec_discovery *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return;
	}
	rec->hdr.type = PYX_REC_DISCOVERY;
	rec->hdr.size = sizeof(*rec);
	rec->event = event;
	rec->pid = pid;
	rec->parent = parent;
	rec->exit_code = exit_code;
	rec->time_ns = bpf_ktime_get_ns();
	rec->flags = flags;
	rec->__pad = 0;
	/*
	 * No wakeup: user space reads this ring at its 10 ms tick, so a busy
	 * host's spawns (four records each) do not wake pyxtrace one by one.
	 */
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
}

static __always_inline bool track(__u32 pid, struct mm_struct *mm)
{
	struct pyx_discovery_proc proc = {.exec_vm = mm ? BPF_CORE_READ(mm, exec_vm) : 0};

	if (bpf_map_update_elem(&tracked, &pid, &proc, BPF_ANY)) {
		pyx_count_drop(PYX_DROP_MAP_FULL);
		return false;
	}
	return true;
}

/* A new image: in scope if the process was tracked, is in the container, or everything is. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = (__u32)task->tgid;
	bool in_scope;

	if (!pyx_ready() || pid == pyx_cfg.self_tgid)
		return 0;
	in_scope = pyx_cfg.scope == PYX_SCOPE_ALL || bpf_map_lookup_elem(&tracked, &pid);
	if (!in_scope && pyx_cfg.scope == PYX_SCOPE_CONTAINER)
		in_scope = pid_ns_of(task) == pyx_cfg.pid_ns;
	if (in_scope && track(pid, task->mm))
		tell(PYX_DISCOVERY_EXEC, pid, 0, 0, 0);
	return 0;
}

/* A tracked process forked: the child is tracked before it runs a single instruction. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = (__u32)parent->tgid, pid = (__u32)child->tgid;

	/* A new thread is not a new process. */
	if (!pyx_ready() || pid == ppid || child->pid != child->tgid)
		return 0;
	if (!bpf_map_lookup_elem(&tracked, &ppid))
		return 0;
	if (track(pid, child->mm))
		tell(PYX_DISCOVERY_FORK, pid, ppid, 0,
		     child->mm == parent->mm ? PYX_DISCOVERY_SHARED_MM : 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task, bool group_dead)
{
	__u32 pid = (__u32)task->tgid;

	if (!pyx_ready() || !group_dead)
		return 0;
	if (bpf_map_delete_elem(&tracked, &pid))
		return 0;
	tell(PYX_DISCOVERY_EXIT, pid, 0, (__u32)task->exit_code, 0);
	return 0;
}

/*
 * A tracked process changed its mappings (mmap, munmap, mprotect release
 * the lock taken for writing): if its executable pages changed, code was
 * mapped (a module imported, libpython loaded by the dynamic loader). The
 * typed tracepoint, as in crash.bpf.c: fentry is not on every kernel.
 */
SEC("tp_btf/mmap_lock_released")
int BPF_PROG(on_mm_write, struct mm_struct *mm, bool write)
{
	__u32 pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	struct pyx_discovery_proc *proc;
	__u64 exec_vm, last;

	struct task_struct *current = bpf_get_current_task_btf();

	if (!write || !pyx_ready())
		return 0;
	/*
	 * An execve building its new memory: the exec event, which follows,
	 * tells of that image. Told here, the new image's mappings would
	 * reach user space before its exec, as if the old image had mapped
	 * them. (The mm is not the task's yet while it is built, and a vfork
	 * child shares its parent's until then.) An exiting process tearing
	 * its memory down: its exit event follows.
	 */
	if (current->mm != mm || BPF_CORE_READ_BITFIELD(current, in_execve) ||
	    (current->flags & PYX_PF_EXITING))
		return 0;
	proc = bpf_map_lookup_elem(&tracked, &pid);
	if (!proc)
		return 0;
	exec_vm = BPF_CORE_READ(mm, exec_vm);
	last = proc->exec_vm;
	if (exec_vm == last || __sync_val_compare_and_swap(&proc->exec_vm, last, exec_vm) != last)
		return 0;
	tell(PYX_DISCOVERY_MAPPED, pid, 0, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
