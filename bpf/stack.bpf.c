// SPDX-License-Identifier: GPL-2.0-only
/*
 * `pyxtrace stack`: the Python stack of every thread of one process, read
 * by a sleepable task iterator with bpf_copy_from_user_task. No ptrace, no
 * signal, no stop: threads blocked in syscalls and threads running on other
 * CPUs are read as they are. Each thread's record is written to the
 * iterator's seq_file, so user space gets them all, in order, with no ring
 * buffer to overflow.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <pyxtrace/stack.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_stack_cfg pyx_cfg SEC(".rodata.cfg");

#define PYX_WALK_LAYOUT (&pyx_cfg.layout)
#define PYX_WALK_SLEEPABLE 1
#include "lib/pywalk.bpf.h"


struct scratch {
	struct pyx_rec_pystack rec;
	struct pywalk_frames walk;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

SEC("iter.s/task")
int dump_thread(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct pyx_rec_pystack *rec;
	struct scratch *scratch;
	__u64 tstate = 0, interp = 0, size;
	__u32 zero = 0, nr = 0;

	if (!task || !pyx_ready() || task->tgid != pyx_cfg.tgid)
		return 0;
	scratch = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!scratch)
		return 0;
	rec = &scratch->rec;
	rec->hdr.type = PYX_REC_PYSTACK;
	rec->tid = task->pid;
	rec->tstate = 0;
	rec->interp_id = 0;
	rec->thread_id = pywalk_thread_pointer(task);
	rec->holds_gil = 2;
	rec->nr_frames = 0;
	bpf_probe_read_kernel_str(rec->comm, sizeof(rec->comm), task->comm);

	rec->__pad = 0;
	rec->status = pywalk_find_tstate(task, rec->thread_id, &tstate, &interp, &rec->tstate_source);
	if (rec->status == PYX_WALK_OK) {
		rec->tstate = tstate;
		if (pywalk_read_u64(task, interp + pyx_cfg.layout.interp_id, &rec->interp_id))
			rec->interp_id = 0;
		rec->holds_gil = pywalk_holds_gil(task, tstate, interp);
		rec->status = pywalk_frames(task, tstate, &scratch->walk, &nr);
		rec->nr_frames = nr;
		/* The walk's scratch holds the frames; the record carries them. */
		bpf_probe_read_kernel(rec->frames, sizeof(rec->frames), scratch->walk.frames);
	}
	size = sizeof(*rec) - sizeof(rec->frames) + (__u64)(nr & (PYX_MAX_FRAMES * 2 - 1)) *
							   sizeof(rec->frames[0]);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	rec->hdr.size = (__u32)size;
	bpf_seq_write(ctx->meta->seq, rec, size);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
