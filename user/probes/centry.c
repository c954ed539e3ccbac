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
		const struct pyx_entry_point *e = &mod->entries[i];
		uint64_t off;

		/*
		 * The plan's place serves the return probe too: nothing before it
		 * moved the stack pointer, so the return address is still on top.
		 */
		if (!e->probe_class ||
		    pyx_elf__vaddr_to_offset(mod->object->elf, e->offset + e->probe_delta, &off))
			continue;
		offsets[n] = (unsigned long)off;
		cookies[n] = mod->cookie_base + i;
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

/* The function's code up to the next entry point (or 4 KiB): where its branches are. */
static size_t function_span(const struct pyx_module *mod, uint64_t start)
{
	uint64_t end = start + 4096;
	size_t i;

	for (i = 0; i < mod->nr_entries; i++)
		if (mod->entries[i].offset > start && mod->entries[i].offset < end)
			end = mod->entries[i].offset;
	return (size_t)(end - start);
}

size_t pyx_centry_plan(struct pyx_module *mod)
{
	size_t i, single_stepped = 0;
	uint8_t *body = malloc(4096);

	for (i = 0; i < mod->nr_entries; i++) {
		struct pyx_entry_point *e = &mod->entries[i];
		struct pyx_x86_entry_plan plan;
		size_t span = function_span(mod, e->offset);

		e->probe_delta = 0;
		e->probe_class = 0;
		e->entry_class = 0;
		if (!body)
			break;
		/* Near the end of the text segment the function is shorter than the span. */
		while (span > 16 && pyx_elf__read_vaddr(mod->object->elf, e->offset, body, span))
			span /= 2;
		if (span <= 16 && pyx_elf__read_vaddr(mod->object->elf, e->offset, body, span))
			continue;
		if (pyx_x86_plan_entry(body, span, e->offset, &plan))
			continue; /* nothing the kernel will probe: leave it out */
		e->entry_class = plan.entry_cls;
		if (plan.delta && plan.entry_cls != PYX_PROBE_REFUSED &&
		    pyx_x86_branches_into(body, span, e->offset, e->offset,
					  e->offset + plan.delta)) {
			/* Something jumps into the prologue: only the entry sees every call. */
			plan.delta = 0;
			plan.cls = plan.entry_cls;
		}
		e->probe_delta = plan.delta;
		e->probe_class = plan.cls;
		single_stepped += plan.cls == PYX_PROBE_SINGLESTEP;
	}
	free(body);
	return single_stepped;
}

__u32 pyx_centry_bpf_signature(enum pyx_signature sig)
{
	switch (sig) {
	case PYX_SIG_OBJECT:
		return PYX_CENTRY_SIG_OBJECT;
	case PYX_SIG_INT:
		return PYX_CENTRY_SIG_INT;
	case PYX_SIG_SSIZE:
		return PYX_CENTRY_SIG_SSIZE;
	default:
		return PYX_CENTRY_SIG_VOID;
	}
}
