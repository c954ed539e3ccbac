/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Copy a code object in the kernel (include/pyxtrace/codesnap.h). The
 * includer defines PYX_SNAP_CFG: a pointer to its struct pyx_codesnap_cfg.
 */
#ifndef __PYX_CODESNAP_BPF_H
#define __PYX_CODESNAP_BPF_H

#include <pyxtrace/codesnap.h>

/* Read @max bytes at @addr into @dst, halving down to 64 when it runs off a mapping. */
static __always_inline __u32 read_window(void *dst, __u32 max, __u64 addr)
{
	__u32 len = max;
	int i;

	if (!addr)
		return 0;
	for (i = 0; i < 6 && len >= 64; i++) {
		if (!bpf_probe_read_user(dst, len, (void *)addr))
			return len;
		len /= 2;
	}
	return 0;
}

/* One object a code object points to (@part: constant), from the copied header. */
static __always_inline void snap_part(struct pyx_code_snap *snap, int part, void *dst, __u32 max)
{
	__u32 off = PYX_SNAP_CFG->co_part[part];
	__u64 addr;

	if (off > PYX_SNAP_HDR - 8 || off + 8 > snap->hdr_len)
		return;
	addr = *(__u64 *)(snap->hdr + off);
	snap->addr[part] = addr;
	snap->len[part] = read_window(dst, max, addr);
}

/* Copy code object @code into @snap: its header, then each part's window. */
static __always_inline void snap_code(struct pyx_code_snap *snap, __u64 code)
{
	__u32 hdr_len = PYX_SNAP_CFG->code_hdr_len;

	snap->code = code;
	if (hdr_len > PYX_SNAP_HDR)
		hdr_len = PYX_SNAP_HDR;
	snap->hdr_len = 0;
	if (!hdr_len || bpf_probe_read_user(snap->hdr, hdr_len, (void *)code))
		return;
	snap->hdr_len = hdr_len;
	snap_part(snap, PYX_SNAP_NAME, snap->str[0], PYX_SNAP_STR);
	snap_part(snap, PYX_SNAP_QUALNAME, snap->str[1], PYX_SNAP_STR);
	snap_part(snap, PYX_SNAP_FILENAME, snap->str[2], PYX_SNAP_STR);
	snap_part(snap, PYX_SNAP_LINETABLE, snap->table, PYX_SNAP_TABLE);
}

#endif /* __PYX_CODESNAP_BPF_H */
