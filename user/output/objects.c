// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
#include <time.h>

#include "output/objects.h"
#include "probes/budget.h"
#include "session.h"
#include "python/detect.h"
#include "target/process.h"

void pyx_out_process(struct pyx_json *json, const char *key, const struct pyx_process *proc)
{
	const struct pyx_container *c = &proc->container;

	pyx_json_key(json, key);
	pyx_json_object_begin(json);
	pyx_json_kv_i64(json, "pid", proc->pid);
	pyx_json_kv_i64(json, "ns_pid", proc->ns_pid);
	pyx_json_kv_string(json, "comm", proc->comm);
	if (c->id[0]) {
		pyx_json_key(json, "container");
		pyx_json_object_begin(json);
		pyx_json_kv_string(json, "id", c->id);
		pyx_json_kv_string(json, "cgroup", c->cgroup);
		pyx_json_kv_bool(json, "pid_ns_differs", proc->pid_ns_differs);
		pyx_json_kv_bool(json, "mnt_ns_differs", proc->mnt_ns_differs);
		pyx_json_object_end(json);
	} else {
		pyx_json_kv_null(json, "container");
	}
	pyx_json_object_end(json);
}

void pyx_out_python(struct pyx_json *json, const char *key, const struct pyx_python *py)
{
	pyx_json_key(json, key);
	pyx_json_object_begin(json);
	pyx_json_kv_string(json, "version", py->version);
	pyx_json_kv_u64(json, "major", py->major);
	pyx_json_kv_u64(json, "minor", py->minor);
	pyx_json_kv_u64(json, "micro", py->micro);
	pyx_json_kv_string(json, "version_source", py->version_source);
	pyx_json_kv_string(json, "abi", py->soabi);
	pyx_json_kv_bool(json, "debug", py->debug);
	pyx_json_kv_bool(json, "free_threaded", py->free_threaded);
	pyx_json_kv_string(json, "libpython", py->shared ? py->interp->path : NULL);
	pyx_json_kv_string(json, "interpreter", py->interp->path);
	pyx_json_kv_string(json, "build_id", py->build_id[0] ? py->build_id : NULL);
	/* Where the frame walker's offsets come from; null when it cannot walk this build. */
	pyx_json_kv_string(json, "offsets_source", py->offsets_source);
	pyx_json_object_end(json);
}

const char *pyx_process_label(const struct pyx_process *proc, char *buf, size_t size)
{
	if (proc->container.id[0])
		snprintf(buf, size, "%d (%s), container %.12s pid %d", proc->pid, proc->comm,
			 proc->container.id, proc->ns_pid);
	else
		snprintf(buf, size, "%d (%s)", proc->pid, proc->comm);
	return buf;
}

int64_t pyx_realtime_offset_ns(void)
{
	struct timespec mono, real;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	return ((int64_t)real.tv_sec - mono.tv_sec) * 1000000000ll +
	       ((int64_t)real.tv_nsec - mono.tv_nsec);
}

const char *pyx_format_clock(int64_t realtime_ns, char *buf, size_t size)
{
	time_t sec = (time_t)(realtime_ns / 1000000000);
	struct tm tm;

	localtime_r(&sec, &tm);
	snprintf(buf, size, "%02d:%02d:%02d.%06lld", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (long long)(realtime_ns % 1000000000) / 1000);
	return buf;
}

void pyx_out_drops(struct pyx_json *json, const uint64_t drops[PYX_DROP__MAX])
{
	unsigned int i;

	pyx_json_key(json, "drops");
	pyx_json_object_begin(json);
	for (i = 0; i < PYX_DROP__MAX; i++)
		if (pyx_drop_reason_name(i))
			pyx_json_kv_u64(json, pyx_drop_reason_name(i), drops[i]);
	pyx_json_object_end(json);
}

void pyx_print_drops(FILE *out, const uint64_t drops[PYX_DROP__MAX], unsigned int skip)
{
	unsigned int i;

	for (i = 0; i < PYX_DROP__MAX; i++)
		if (drops[i] && pyx_drop_reason_name(i) && !(skip & (1u << i)))
			fprintf(out, "dropped: %llu (%s)\n", (unsigned long long)drops[i],
				pyx_drop_reason_name(i));
}

void pyx_out_probe_costs(struct pyx_json *json, const char *key,
			 const struct pyx_probe_costs *costs)
{
	pyx_json_key(json, key);
	if (!costs) {
		pyx_json_null(json);
		return;
	}
	pyx_json_object_begin(json);
	pyx_json_kv_u64(json, "optimized", costs->trap_ns[PYX_PROBE_OPTIMIZED]);
	pyx_json_kv_u64(json, "emulated", costs->trap_ns[PYX_PROBE_EMULATED]);
	pyx_json_kv_u64(json, "single_step", costs->trap_ns[PYX_PROBE_SINGLESTEP]);
	pyx_json_kv_u64(json, "return", costs->return_ns);
	pyx_json_object_end(json);
}
