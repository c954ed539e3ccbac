// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for user/elf/elf.c: any bytes, opened both from memory
 * and through an fd (memfd), then every accessor. Callbacks read every
 * string they are handed to the end, so an unterminated or out-of-bounds
 * string is caught by ASan, and feed addresses they see back into the
 * address-based accessors.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the compiler from dropping the reads. */
static volatile size_t sink;

/* Reads through a few addresses: file-backed, past its end, and across it. */
static void probe_address(const struct pyx_elf *elf, uint64_t vaddr)
{
	unsigned char buf[64];
	uint64_t offset;

	if (!pyx_elf__vaddr_to_offset(elf, vaddr, &offset))
		sink += offset;
	if (!pyx_elf__read_vaddr(elf, vaddr, buf, sizeof(buf)))
		sink += buf[0] + buf[sizeof(buf) - 1];
	if (!pyx_elf__read_vaddr(elf, vaddr, buf, 1))
		sink += buf[0];
	pyx_elf__read_vaddr(elf, vaddr - 1, buf, 2);
	pyx_elf__read_vaddr(elf, vaddr, buf, 0);
}

struct visit {
	const struct pyx_elf *elf;
	unsigned int count;
};

static int visit_symbol(void *ctx, const struct pyx_elf_sym *sym)
{
	struct visit *visit = ctx;
	struct pyx_elf_sym again;

	sink += strlen(sym->name) + sym->size + sym->type + sym->bind;
	/* Look a few back up by name: the versioned-name matching runs on fuzzed names. */
	if (visit->count++ < 4) {
		pyx_elf__find_symbol(visit->elf, sym->name, &again);
		probe_address(visit->elf, sym->value);
	}
	return 0;
}

static int visit_usdt(void *ctx, const struct pyx_usdt_note *note)
{
	struct visit *visit = ctx;

	sink += strlen(note->provider) + strlen(note->name) + strlen(note->args);
	if (visit->count++ < 4) {
		probe_address(visit->elf, note->pc);
		probe_address(visit->elf, note->semaphore);
	}
	return 0;
}

static int visit_string(void *ctx, const char *str, size_t len, uint64_t vaddr)
{
	struct visit *visit = ctx;

	sink += strlen(str) + len;
	if (visit->count++ < 2)
		probe_address(visit->elf, vaddr);
	/* Stop early sometimes: the stop value must come back. */
	return len == 13 ? 7 : 0;
}

static int visit_needed(void *ctx, const char *name)
{
	sink += strlen(name);
	return 0;
}

static void exercise(const struct pyx_elf *elf)
{
	static const char *const sections[] = {".rodata", ".data",     ".comment",	".dynstr",
					       ".strtab", ".shstrtab", ".note.stapsdt", ""};
	char hex[129], small[8], name[256];
	uint64_t memsz, align, vaddr, addr, size, offset;
	struct visit visit = {.elf = elf};
	struct pyx_elf_sym sym;
	const char *text;
	uint32_t crc;
	size_t i;

	sink += (size_t)pyx_elf__type(elf) + pyx_elf__entry(elf);
	probe_address(elf, pyx_elf__entry(elf));
	if (!pyx_elf__build_id(elf, hex, sizeof(hex)))
		sink += strlen(hex);
	pyx_elf__build_id(elf, small, sizeof(small));
	if (!pyx_elf__debuglink(elf, name, sizeof(name), &crc))
		sink += strlen(name) + crc;
	pyx_elf__debuglink(elf, small, sizeof(small), NULL);

	sink += pyx_elf__has_section(elf, ".debug_info") + pyx_elf__has_section(elf, ".symtab") +
		pyx_elf__has_section_data(elf, ".debug_info") + pyx_elf__has_section(elf, "");
	if (!pyx_elf__section(elf, ".text", &addr, &size, &offset)) {
		sink += size + offset;
		probe_address(elf, addr);
	}
	pyx_elf__section(elf, ".bss", NULL, NULL, NULL);

	if (!pyx_elf__find_symbol(elf, "main", &sym))
		probe_address(elf, sym.value);
	pyx_elf__find_symbol(elf, "_PyRuntime", &sym);
	pyx_elf__find_symbol(elf, "foo@@V2", &sym);
	pyx_elf__for_each_symbol(elf, visit_symbol, &visit);

	visit.count = 0;
	pyx_elf__for_each_usdt(elf, visit_usdt, &visit);

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		visit.count = 0;
		pyx_elf__for_each_string(elf, sections[i], i % 5, visit_string, &visit);
	}

	if (!pyx_elf__tls(elf, &memsz, &align, &vaddr)) {
		sink += memsz + align;
		probe_address(elf, vaddr);
	}
	pyx_elf__for_each_needed(elf, visit_needed, NULL);
	text = pyx_elf__soname(elf);
	if (text)
		sink += strlen(text);
	text = pyx_elf__runpath(elf);
	if (text)
		sink += strlen(text);

	probe_address(elf, 0);
	probe_address(elf, UINT64_MAX - 8);
	probe_address(elf, 0x400000);
}

/* The fd path reads lazily with pread rather than from one buffer: fuzz it too. */
static void exercise_fd(const uint8_t *data, size_t size)
{
	struct pyx_elf *elf;
	size_t done = 0;
	int fd;

	fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	if (fd < 0)
		return;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done == size) {
		elf = pyx_elf__open_fd(fd);
		close(fd);
		if (elf) {
			exercise(elf);
			pyx_elf__close(elf);
		}
		return;
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pyx_elf *elf = pyx_elf__open_mem(data, size);

	if (elf) {
		exercise(elf);
		pyx_elf__close(elf);
		exercise_fd(data, size);
	}
	return 0;
}
