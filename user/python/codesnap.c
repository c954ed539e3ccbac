// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <string.h>

#include "python/codesnap.h"

bool pyx_codesnap_cfg(struct pyx_codesnap_cfg *cfg, const struct pyx_code_layout *layout)
{
	cfg->code_hdr_len = pyx_code_header_len(layout);
	cfg->co_part[PYX_SNAP_NAME] = layout->co_name;
	cfg->co_part[PYX_SNAP_QUALNAME] = layout->co_qualname;
	cfg->co_part[PYX_SNAP_FILENAME] = layout->co_filename;
	cfg->co_part[PYX_SNAP_LINETABLE] = layout->co_linetable;
	if (cfg->code_hdr_len > PYX_SNAP_HDR) {
		cfg->code_hdr_len = 0;
		return false;
	}
	return true;
}

static bool copy_from(uint64_t start, const void *data, uint32_t len, uint64_t addr, void *buf,
		      size_t want)
{
	if (!start || addr < start || addr + want > start + len || addr + want < addr)
		return false;
	memcpy(buf, (const uint8_t *)data + (addr - start), want);
	return true;
}

int pyx_codesnap_read(const struct pyx_code_snap *snaps, size_t n, uint64_t addr, void *buf,
		      size_t len)
{
	size_t i, part;

	for (i = 0; i < n && snaps[i].code; i++) {
		const struct pyx_code_snap *c = &snaps[i];

		if (copy_from(c->code, c->hdr, c->hdr_len, addr, buf, len))
			return 0;
		for (part = 0; part < PYX_SNAP__PARTS; part++) {
			const void *data = part == PYX_SNAP_LINETABLE ? c->table : c->str[part];

			if (copy_from(c->addr[part], data, c->len[part], addr, buf, len))
				return 0;
		}
	}
	return -ENOENT;
}
