/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ABI of bpf/lib/codesnap.bpf.h: copies of code objects taken in the kernel,
 * read back by user/python/codesnap.c. Used by crash (frames of a process
 * that died) and calls (short-lived code objects: module and class bodies).
 */
#ifndef __PYXTRACE_CODESNAP_H
#define __PYXTRACE_CODESNAP_H

/*
 * A code object copied in the kernel when it is seen: the process (or the
 * code object) is often gone before user space could read it. Its header
 * and the objects naming a frame needs (name, qualname, file name, line
 * table), each a window of fixed size from its start.
 */
#define PYX_SNAP_HDR   512  /* >= the code object bytes user/python/code.c reads */
#define PYX_SNAP_STR   384  /* a str object's header and up to ~300 ASCII characters */
#define PYX_SNAP_TABLE 2048 /* a bytes object's header and a line table of up to ~2000 bytes */

enum pyx_snap_part {
	PYX_SNAP_NAME = 0,
	PYX_SNAP_QUALNAME = 1,
	PYX_SNAP_FILENAME = 2,
	PYX_SNAP_LINETABLE = 3,
	PYX_SNAP__PARTS = 4,
};

struct pyx_code_snap {
	__u64 code;		     /* the code object; 0: slot unused */
	__u64 addr[PYX_SNAP__PARTS]; /* where each part was read from; 0: not read */
	__u32 hdr_len;		     /* bytes of hdr that were read */
	__u32 len[PYX_SNAP__PARTS];  /* bytes of each part that were read */
	__u32 __pad;
	__u8 hdr[PYX_SNAP_HDR];
	__u8 str[3][PYX_SNAP_STR];
	__u8 table[PYX_SNAP_TABLE];
};

/* What to copy, from user/python/code.c's layout. */
struct pyx_codesnap_cfg {
	__u32 code_hdr_len;		/* <= PYX_SNAP_HDR; 0: no code snapshots */
	__u32 co_part[PYX_SNAP__PARTS]; /* offsets of the parts' pointers in a code object */
};

#endif /* __PYXTRACE_CODESNAP_H */
