// SPDX-License-Identifier: GPL-2.0-only
/*
 * `pyxtrace info -p`: a counting uprobe on the target, the smallest program
 * that goes through the whole session lifecycle (config, ready flag, ring
 * buffer, drops) against a live process.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <pyxtrace/info.h>
#include "lib/ctl.bpf.h"

const volatile struct pyx_info_cfg pyx_cfg SEC(".rodata.cfg");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* Threads already announced, so each sends one record only. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} seen_threads SEC(".maps");

__u64 hits;

/*
 * `--module`: calls of each C entry point of the module. One uprobe_multi
 * link covers them all (a link is all-entry or all-return); the cookie is
 * the entry point's index in user space's table. Per-CPU counters: threads
 * calling the same function do not contend.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYX_INFO_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} entry_calls SEC(".maps");

SEC("uprobe.multi")
int count_entry_point(struct pt_regs *ctx)
{
	__u32 index = (__u32)bpf_get_attach_cookie(ctx);
	__u64 *count;

	if (!pyx_ready() || (bpf_get_current_pid_tgid() >> 32) != pyx_cfg.tgid)
		return 0;
	count = bpf_map_lookup_elem(&entry_calls, &index);
	if (count)
		*count += 1; /* this CPU's own slot */
	return 0;
}

SEC("uprobe")
int handle_probe_hit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct pyx_info_hit *rec;
	__u8 one = 1;

	if (!pyx_ready() || (pid_tgid >> 32) != pyx_cfg.tgid)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	if (bpf_map_update_elem(&seen_threads, &tid, &one, BPF_NOEXIST))
		return 0;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		pyx_count_drop(PYX_DROP_RINGBUF);
		return 0;
	}
	rec->hdr.type = PYX_REC_INFO_HIT;
	rec->hdr.size = sizeof(*rec);
	rec->tid = tid;
	rec->__pad = 0;
	rec->time_ns = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
