// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "elf/elf.h"
#include "elf/x86.h"
#include "probes/centry.h"

struct bpf_link *pyx_centry_attach(struct bpf_program *prog, struct pyx_process *proc,
				   const struct pyx_module *mod, bool retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .retprobe = retprobe);
	struct bpf_link *link = NULL;
	unsigned long *offsets;
	__u64 *cookies;
	char path[96];
	size_t i, n = 0;
	int err = 0;

	if (!mod->nr_entries) {
		errno = ENOENT;
		return NULL;
	}
	offsets = calloc(mod->nr_entries, sizeof(*offsets));
	cookies = calloc(mod->nr_entries, sizeof(*cookies));
	if (!offsets || !cookies) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < mod->nr_entries; i++) {
		uint64_t vaddr = mod->entries[i].offset, off;
		unsigned int delta = 0;
		uint8_t code[32];

		/*
		 * The kernel cannot probe some first instructions (LOCK-prefixed
		 * counters); the next one runs on every call too. The return side
		 * must stay at the entry, where the return address is on top.
		 */
		if (!pyx_elf__read_vaddr(mod->object->elf, vaddr, code, sizeof(code)) &&
		    pyx_x86_entry_probe_delta(code, sizeof(code), vaddr, &delta))
			continue; /* nowhere safe: leave it out rather than fail the link */
		/* A return probe is planted at the entry itself: impossible when it moved. */
		if (retprobe && delta)
			continue;
		if (pyx_elf__vaddr_to_offset(mod->object->elf, vaddr + delta, &off))
			continue;
		offsets[n] = (unsigned long)off;
		cookies[n] = i;
		n++;
	}
	opts.offsets = offsets;
	opts.cookies = cookies;
	opts.cnt = n;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, proc->pid,
		 mod->object->map_start, mod->object->map_end);
	link = bpf_program__attach_uprobe_multi(prog, proc->pid, path, NULL, &opts);
	if (!link)
		err = -errno;
out_free:
	free(offsets);
	free(cookies);
	if (err)
		errno = -err;
	return link;
}

bool pyx_centry_has_return(const struct pyx_module *mod, size_t index)
{
	uint64_t vaddr = mod->entries[index].offset;
	unsigned int delta = 1;
	uint8_t code[32];

	return !pyx_elf__read_vaddr(mod->object->elf, vaddr, code, sizeof(code)) &&
	       !pyx_x86_entry_probe_delta(code, sizeof(code), vaddr, &delta) && delta == 0;
}
