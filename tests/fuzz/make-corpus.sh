#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Regenerate the seed corpus of tests/fuzz/corpus: small ELF objects (each
# under 20 KB) covering what user/elf/elf.c parses. The outputs are committed;
# rerun only to change the seeds. Needs gcc, binutils, python3 and
# systemtap-sdt-dev.
#
# The corpus' found-* files are not made here: they are inputs tools/fuzz
# discovered, kept because they reach error paths (oversized build-id,
# malformed debuglink, a segment past the end of the file, a hidden symbol
# version) that the built seeds and their replay variants do not.
set -eu

out=$(cd "$(dirname "$0")" && pwd)/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Keep the files small: no page-aligned separate code segment, no DWARF.
small='-Os -fno-asynchronous-unwind-tables -Wl,-z,noseparate-code -Wl,--hash-style=gnu'

cat > usdt.c <<'SRC'
#include <sys/sdt.h>
__thread int tls_counter = 3;
const char marker[] = "pyx-corpus-marker";
int data_value = 42;
int main(int argc, char **argv)
{
	tls_counter += argc;
	STAP_PROBE3(pyxtest, entry, argc, argv, tls_counter);
	return marker[argc] + data_value;
}
SRC
cat > sema.c <<'SRC'
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
unsigned short pyxtest_sema_semaphore __attribute__((section(".probes")));
void fire(int x);
void fire(int x)
{
	if (pyxtest_sema_semaphore)
		STAP_PROBE1(pyxtest, sema, x);
}
SRC
# A PIE with build-id, stapsdt notes (with and without semaphore), TLS,
# DT_NEEDED and DT_RUNPATH; .symtab kept.
gcc $small -Wl,--build-id=sha1 -Wl,--enable-new-dtags -Wl,-rpath,/opt/pyx usdt.c sema.c \
	-o usdt-pie
strip --strip-debug usdt-pie
cp usdt-pie "$out/usdt-pie.elf"

# The same with the section headers cut off: PT_NOTE and PT_DYNAMIC only.
cp usdt-pie noshdr
printf '\0\0\0\0\0\0\0\0' | dd of=noshdr bs=1 seek=40 conv=notrunc status=none
printf '\0\0\0\0' | dd of=noshdr bs=1 seek=60 conv=notrunc status=none
cp noshdr "$out/usdt-noshdr.elf"

# A shared library with a soname, versioned symbols and a debuglink, and its debug file.
cat > lib.c <<'SRC'
int foo_v1(void) { return 1; }
int foo_v2(void) { return 2; }
__asm__(".symver foo_v1, pyx_versioned@VERS_1");
__asm__(".symver foo_v2, pyx_versioned@@VERS_2");
static const char text[] = "library string\twith tab";
const char *lib_text(void) { return text; }
SRC
printf 'VERS_1 { global: pyx_versioned; lib_text; local: *; };\nVERS_2 { global: pyx_versioned; } VERS_1;\n' > lib.map
gcc $small -g -shared -fPIC -Wl,-soname,libpyxcorpus.so.1 -Wl,--version-script=lib.map \
	-Wl,--build-id=md5 lib.c -o lib.so
objcopy --only-keep-debug lib.so lib.debug
objcopy --strip-debug --add-gnu-debuglink=lib.debug lib.so lib-stripped.so
cp lib-stripped.so "$out/lib-debuglink.so"
cp lib.debug "$out/lib.debug"

# A relocatable object: notes and versioned names before linking.
gcc -Os -fno-asynchronous-unwind-tables -c usdt.c -o usdt.o
cp usdt.o "$out/usdt-rel.o"

# 32-bit, big-endian-ish: a hand-written i386 executable with a build-id and
# a stapsdt note of 4-byte addresses, and a byte-swapped generic copy.
cat > tiny32.s <<'SRC'
	.text
	.globl _start
_start:
	nop
	movl $1, %eax
	int $0x80
	.section .stapsdt.base,"aG",@progbits,.stapsdt.base,comdat
	.weak _.stapsdt.base
_.stapsdt.base: .space 1
	.section .note.stapsdt,"?","note"
	.balign 4
	.4byte 992f-991f, 994f-993f, 3
991:	.asciz "stapsdt"
992:	.balign 4
993:	.4byte _start, _.stapsdt.base, 0
	.asciz "pyx32"
	.asciz "probe"
	.asciz "-4@%eax"
994:	.balign 4
	.data
	.asciz "thirty-two bit data"
SRC
as --32 tiny32.s -o tiny32.o
ld -m elf_i386 --build-id=sha1 tiny32.o -o tiny32
cp tiny32 "$out/tiny32.elf"

# binutils here cannot write big-endian objects, so build a small ELF64 MSB
# executable by hand. tests/unit/test_elf.c checks the values written here.
python3 - "$out/big-endian.elf" <<'PY'
import struct, sys

BASE = 0x10000000
def align(b, n):
    return b + b'\0' * (-len(b) % n)

def note(owner, ntype, desc):
    name = owner + b'\0'
    return struct.pack('>III', len(name), len(desc), ntype) + align(name, 4) + align(desc, 4)

sections = []  # name, type, flags, data, link, info, align, entsize
shstr = b'\0'
def add(name, stype, flags, data, link=0, info=0, salign=1, entsize=0):
    sections.append([name, stype, flags, data, link, info, salign, entsize])
    return len(sections)  # index, null section is 0

build_id = bytes(range(0xb0, 0xb0 + 20))
add(b'.note.gnu.build-id', 7, 2, note(b'GNU', 3, build_id), salign=4)
stapsdt_index = add(b'.note.stapsdt', 7, 0, b'', salign=4)  # filled once addresses are known
base_index = add(b'.stapsdt.base', 1, 2, b'\0')
rodata_index = add(b'.rodata', 1, 2, b'big-endian rodata string\0\x01\x02tail text\0')
dynstr = b'\0libbig.so.1\0libbigself.so\0/big/rpath\0'
dynstr_index = add(b'.dynstr', 3, 2, dynstr)
dynamic_index = add(b'.dynamic', 6, 3, b'', link=dynstr_index, salign=8, entsize=16)
strtab = b'\0big_local\0big_symbol\0'
symtab_index = add(b'.symtab', 2, 0, b'', salign=8, entsize=24)
strtab_index = add(b'.strtab', 3, 0, strtab)
sections[symtab_index - 1][4] = strtab_index
sections[symtab_index - 1][5] = 2  # first global
add(b'.gnu_debuglink', 1, 0, align(b'big.debug\0', 4) + struct.pack('>I', 0x11223344), salign=4)
tdata_index = add(b'.tdata', 1, 0x403, b'TLS!', salign=4)
shstrtab_index = add(b'.shstrtab', 3, 0, b'')

names = {}
for s in sections:
    names[s[0]] = len(shstr)
    shstr += s[0] + b'\0'
sections[shstrtab_index - 1][3] = shstr

PHNUM = 4
def layout():
    off = 64 + 56 * PHNUM
    offs = []
    for s in sections:
        off += -off % max(s[6], 1)
        offs.append(off)
        off += len(s[3])
    return offs, off

# Sizes are fixed before addresses are known: reserve the variable sections.
sections[stapsdt_index - 1][3] = b'\0' * len(note(b'stapsdt', 3, b'\0' * 24 + b'bigprov\0bigprobe\08@%r3\0'))
sections[dynamic_index - 1][3] = b'\0' * 16 * 6
sections[symtab_index - 1][3] = b'\0' * 24 * 3
offs, end = layout()
addr = lambda i: BASE + offs[i - 1]

base_addr = addr(base_index)
sections[stapsdt_index - 1][3] = note(b'stapsdt', 3,
    struct.pack('>QQQ', BASE + 0x100, base_addr - 0x10, BASE + 0x200) +
    b'bigprov\0bigprobe\08@%r3\0')
d = lambda tag, val: struct.pack('>qQ', tag, val)
sections[dynamic_index - 1][3] = (d(1, 1) + d(14, 13) + d(15, 27) + d(5, addr(dynstr_index)) +
                                  d(10, len(dynstr)) + d(0, 0))
sym = lambda name, info, shndx, value, size: struct.pack('>IBBHQQ', name, info, 0, shndx, value, size)
sections[symtab_index - 1][3] = (b'\0' * 24 + sym(1, 0x01, rodata_index, addr(rodata_index) + 4, 4) +
                                 sym(11, 0x11, rodata_index, addr(rodata_index), 25))
offs, end = layout()
assert addr(base_index) == base_addr

shoff = end + (-end % 8)
body = bytearray(shoff + 64 * (len(sections) + 1))
ehdr = b'\x7fELF' + bytes([2, 2, 1, 0]) + b'\0' * 8
ehdr += struct.pack('>HHIQQQIHHHHHH', 2, 21, 1, BASE + 0x100, 64, shoff, 0, 64, 56, PHNUM, 64,
                    len(sections) + 1, shstrtab_index)
body[0:64] = ehdr
ph = lambda t, fl, off, filesz, memsz, al: struct.pack('>IIQQQQQQ', t, fl, off, BASE + off, BASE + off,
                                                      filesz, memsz, al)
phdrs = (ph(1, 5, 0, end, end + 0x100, 0x10000) +
         ph(4, 4, offs[0], len(sections[0][3]), len(sections[0][3]), 4) +
         ph(2, 6, offs[dynamic_index - 1], 16 * 6, 16 * 6, 8) +
         ph(7, 4, offs[tdata_index - 1], 4, 16, 4))
body[64:64 + len(phdrs)] = phdrs
for i, s in enumerate(sections):
    body[offs[i]:offs[i] + len(s[3])] = s[3]
    shdr = struct.pack('>IIQQQQIIQQ', names[s[0]], s[1], s[2],
                       addr(i + 1) if s[2] & 2 else 0, offs[i], len(s[3]), s[4], s[5], s[6], s[7])
    body[shoff + 64 * (i + 1):shoff + 64 * (i + 2)] = shdr
open(sys.argv[1], 'wb').write(body)
PY

chmod 644 "$out"/*
ls -l "$out"
