// SPDX-License-Identifier: GPL-2.0-only
/*
 * user/elf/elf.c against real objects: the system's python3.11 and libc, and
 * small programs compiled here, with readelf and nm as the reference.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "elf/elf.h"

#define PYTHON	 "/usr/bin/python3.11"
#define WORK_DIR PYX_TEST_BUILDDIR "/elf-work"

static uint64_t capture_u64(const char *fmt, const char *arg)
{
	char *out = capture_output(fmt, arg);
	uint64_t value = out ? strtoull(out, NULL, 0) : 0;

	free(out);
	return value;
}

static void *read_whole_file(const char *path, size_t *size)
{
	struct stat st;
	void *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !(buf = malloc((size_t)st.st_size + 1)) ||
	    read(fd, buf, (size_t)st.st_size) != st.st_size) {
		close(fd);
		return NULL;
	}
	close(fd);
	*size = (size_t)st.st_size;
	return buf;
}

/* Callbacks collecting into a flat string list "a b c". */
struct name_list {
	char text[4096];
	int count;
};

static int collect_needed(void *ctx, const char *name)
{
	struct name_list *list = ctx;
	size_t len = strlen(list->text);

	snprintf(list->text + len, sizeof(list->text) - len, "%s%s", len ? " " : "", name);
	list->count++;
	return 0;
}

struct usdt_search {
	const char *provider, *name;
	struct pyx_usdt_note found;
	int matches, total;
};

static int find_usdt(void *ctx, const struct pyx_usdt_note *note)
{
	struct usdt_search *search = ctx;

	search->total++;
	if (!strcmp(note->provider, search->provider) && !strcmp(note->name, search->name)) {
		if (!search->matches++)
			search->found = *note;
	}
	return 0;
}

struct string_search {
	const struct pyx_elf *elf;
	const char *want;
	uint64_t vaddr;
	int found, total, verified, bad;
};

/* Each reported string must be what the file holds at that vaddr. */
static int find_string(void *ctx, const char *str, size_t len, uint64_t vaddr)
{
	struct string_search *search = ctx;
	char buf[256];

	search->total++;
	if (strlen(str) != len)
		search->bad++;
	if (len < sizeof(buf) && search->total % 97 == 1) {
		if (pyx_elf__read_vaddr(search->elf, vaddr, buf, len + 1) ||
		    memcmp(buf, str, len + 1))
			search->bad++;
		else
			search->verified++;
	}
	if (!strcmp(str, search->want) && !search->found++)
		search->vaddr = vaddr;
	return 0;
}

static int count_symbols(void *ctx, const struct pyx_elf_sym *sym)
{
	int *count = ctx;

	if (sym->name && *sym->name)
		(*count)++;
	return 0;
}

static int stop_at_first_symbol(void *ctx, const struct pyx_elf_sym *sym)
{
	return 42;
}

static int stop_at_first_usdt(void *ctx, const struct pyx_usdt_note *note)
{
	return 43;
}

static void test_open_errors(void)
{
	static const char not_elf[] = "#!/bin/sh\necho not an ELF\n";
	struct pyx_elf *elf;
	int fd;

	errno = 0;
	CHECK(!pyx_elf__open_fd(-1));
	CHECK_EQ(errno, EBADF);

	errno = 0;
	CHECK(!pyx_elf__open_mem(not_elf, sizeof(not_elf)));
	CHECK_EQ(errno, ENOEXEC);

	CHECK(!pyx_elf__open_mem(not_elf, 0));
	CHECK(!pyx_elf__open_mem(not_elf, 4)); /* "\x7f" is not even there */

	fd = open("/dev/null", O_RDONLY);
	errno = 0;
	elf = pyx_elf__open_fd(fd);
	CHECK(!elf);
	CHECK_EQ(errno, ENOEXEC);
	close(fd);

	pyx_elf__close(NULL);
}

/* The LOAD line of readelf -lW whose file-backed part contains @vaddr: offset, vaddr, filesz, memsz. */
static bool load_segment_of(const char *path, uint64_t vaddr, uint64_t seg[4])
{
	char *out = capture_output("readelf -lW %s | awk '$1 == \"LOAD\" {print $2, $3, $5, $6}'", path);
	char *line, *save = NULL;
	bool found = false;

	for (line = out ? strtok_r(out, "\n", &save) : NULL; line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p = line;
		int i;

		for (i = 0; i < 4; i++)
			seg[i] = strtoull(p, &p, 16);
		found = vaddr >= seg[1] && vaddr < seg[1] + seg[2];
	}
	free(out);
	return found;
}

static void check_python_common(struct pyx_elf *elf, const char *how)
{
	struct usdt_search usdt = {.provider = "python", .name = "function__entry"};
	struct pyx_elf_sym runtime, version;
	char hex[128], *want;
	uint32_t hexversion;

	printf("  python3.11 via %s\n", how);
	want = capture_output("readelf -n %s | awk '/Build ID/ {print $3}'", PYTHON);
	CHECK(!pyx_elf__build_id(elf, hex, sizeof(hex)));
	CHECK_STR(hex, want);
	free(want);

	if (CHECK(!pyx_elf__find_symbol(elf, "_PyRuntime", &runtime))) {
		CHECK_EQ(runtime.value, capture_u64("nm -D %s | awk '$3 == \"_PyRuntime\" "
						    "{print \"0x\" $1}'",
						    PYTHON));
		CHECK_STR(runtime.name, "_PyRuntime");
		CHECK_EQ(runtime.type, STT_OBJECT);
		CHECK_EQ(runtime.bind, STB_GLOBAL);
		CHECK(runtime.dynamic); /* Debian strips .symtab */
		CHECK(runtime.size > 0);
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "Py_Version", &version))) {
		CHECK_EQ(version.value, capture_u64("nm -D %s | awk '$3 == \"Py_Version\" "
						    "{print \"0x\" $1}'",
						    PYTHON));
		/* Py_Version is const in .rodata: the file holds PY_VERSION_HEX. */
		CHECK(!pyx_elf__read_vaddr(elf, version.value, &hexversion, sizeof(hexversion)));
		CHECK_EQ(hexversion,
			 capture_u64("%s -c 'import sys; print(sys.hexversion)'", PYTHON));
	}

	CHECK(!pyx_elf__for_each_usdt(elf, find_usdt, &usdt));
	CHECK_EQ(usdt.matches, 1);
	CHECK_EQ(usdt.total, capture_u64("readelf -n %s | grep -c 'Provider: python'", PYTHON));
	if (usdt.matches) {
		char *location = capture_output("readelf -n %s | grep -A1 'Name: function__entry$' | "
					 "sed -n 's/.*Location: \\([0-9a-fx]*\\),.*/\\1/p'",
					 PYTHON);
		char *semaphore = capture_output("readelf -n %s | grep -A1 'Name: function__entry$' | "
					  "sed -n 's/.*Semaphore: \\([0-9a-fx]*\\).*/\\1/p'",
					  PYTHON);

		CHECK_EQ(usdt.found.pc, strtoull(location ? location : "1", NULL, 0));
		CHECK_EQ(usdt.found.semaphore, strtoull(semaphore ? semaphore : "1", NULL, 0));
		CHECK(usdt.found.semaphore != 0);
		CHECK(strchr(usdt.found.args, '@') != NULL);
		free(location);
		free(semaphore);
	}
}

static void test_python(void)
{
	struct string_search strings = {.want = "__main__"};
	struct name_list needed = {0};
	uint64_t offset, seg[4], memsz, align, vaddr;
	struct pyx_elf_sym version;
	int symbols = 0;
	struct pyx_elf *elf, *mem;
	char *want, link[256];
	unsigned char byte[2];
	uint32_t crc;
	size_t size;
	void *image;

	if (!CHECK(access(PYTHON, R_OK) == 0)) {
		fprintf(stderr, "  %s missing: apt-get install python3.11\n", PYTHON);
		return;
	}
	elf = open_elf_path(PYTHON);
	if (!CHECK(elf))
		return;
	check_python_common(elf, "fd");

	CHECK_EQ(pyx_elf__type(elf), ET_EXEC);
	CHECK_EQ(pyx_elf__entry(elf),
		 capture_u64("readelf -h %s | awk '/Entry point/ {print $4}'", PYTHON));
	CHECK_EQ(pyx_elf__build_id(elf, link, 40), -ENOSPC); /* 40 hex digits need 41 bytes */

	/* Debian names the debuglink after the build-id. */
	CHECK(!pyx_elf__debuglink(elf, link, sizeof(link), &crc));
	want = capture_output("readelf --string-dump=.gnu_debuglink %s | awk '$1 == \"[\" && $2 == "
		       "\"0]\" {print $3}'",
		       PYTHON);
	CHECK_STR(link, want);
	free(want);
	CHECK_EQ(pyx_elf__debuglink(elf, link, 4, &crc), -ENOSPC);

	CHECK(!pyx_elf__has_section(elf, ".symtab"));
	CHECK(!pyx_elf__has_section(elf, ".debug_info"));
	CHECK(pyx_elf__has_section(elf, ".dynsym"));
	CHECK(pyx_elf__has_section(elf, ".bss"));
	CHECK(!pyx_elf__has_section_data(elf, ".bss"));
	CHECK(pyx_elf__has_section_data(elf, ".rodata"));

	/* bookworm's 3.11 keeps its thread state in pthread TSS, not in ELF TLS. */
	CHECK_EQ(pyx_elf__tls(elf, &memsz, &align, &vaddr), -ENOENT);
	CHECK_EQ(capture_u64("readelf -lW %s | grep -c ' TLS '", PYTHON), 0);

	CHECK(!pyx_elf__for_each_needed(elf, collect_needed, &needed));
	want = capture_output(
		"readelf -dW %s | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p' | paste -sd ' '",
		PYTHON);
	CHECK_STR(needed.text, want);
	CHECK(needed.count >= 3);
	free(want);
	CHECK(!pyx_elf__soname(elf));
	CHECK(!pyx_elf__runpath(elf));

	CHECK(!pyx_elf__for_each_symbol(elf, count_symbols, &symbols));
	CHECK_EQ(symbols, capture_u64("readelf -W --dyn-syms %s | awk '$1 ~ /^[0-9]+:$/ && $7 != "
				      "\"UND\" && $8 != \"\"' | wc -l",
				      PYTHON));
	CHECK_EQ(pyx_elf__for_each_symbol(elf, stop_at_first_symbol, NULL), 42);
	CHECK_EQ(pyx_elf__find_symbol(elf, "_PyRuntim", &version), -ENOENT);
	CHECK_EQ(pyx_elf__find_symbol(elf, "PyObject_GetAttrString_", &version), -ENOENT);
	CHECK_EQ(pyx_elf__for_each_usdt(elf, stop_at_first_usdt, NULL), 43);

	strings.elf = elf;
	CHECK(!pyx_elf__for_each_string(elf, ".rodata", 4, find_string, &strings));
	CHECK(strings.found >= 1);
	if (strings.found) {
		char main_name[9];

		CHECK(!pyx_elf__read_vaddr(elf, strings.vaddr, main_name, sizeof(main_name)));
		CHECK(!memcmp(main_name, "__main__", sizeof(main_name)));
	}
	CHECK(strings.total > 1000);
	CHECK(strings.verified > 10);
	CHECK_EQ(strings.bad, 0);
	CHECK_EQ(pyx_elf__for_each_string(elf, ".no-such-section", 4, find_string, &strings),
		 -ENOENT);

	if (CHECK(!pyx_elf__find_symbol(elf, "Py_Version", &version)) &&
	    CHECK(load_segment_of(PYTHON, version.value, seg))) {
		CHECK(!pyx_elf__vaddr_to_offset(elf, version.value, &offset));
		CHECK_EQ(offset, seg[0] + (version.value - seg[1]));
	}
	/* The writable segment: its end in the file, then its .bss tail, then unmapped. */
	want = capture_output("readelf -lW %s | awk '$1 == \"LOAD\" {v = $3; f = $5; m = $6} END "
		       "{printf \"%%s %%s %%s\", v, f, m}'",
		       PYTHON);
	if (CHECK(want)) {
		char *p = want;
		uint64_t seg_vaddr = strtoull(p, &p, 16), filesz = strtoull(p, &p, 16),
			 memsz_last = strtoull(p, &p, 16);

		CHECK(!pyx_elf__read_vaddr(elf, seg_vaddr + filesz - 2, byte, 2));
		CHECK_EQ(pyx_elf__read_vaddr(elf, seg_vaddr + filesz - 1, byte, 2), -ERANGE);
		CHECK_EQ(pyx_elf__read_vaddr(elf, seg_vaddr + filesz, byte, 1), -ENOENT);
		CHECK_EQ(pyx_elf__vaddr_to_offset(elf, seg_vaddr + filesz, &offset), -ENOENT);
		CHECK(memsz_last > filesz);
		CHECK_EQ(pyx_elf__read_vaddr(elf, seg_vaddr + memsz_last + 0x100000, byte, 1),
			 -ENOENT);
		free(want);
	}
	CHECK_EQ(pyx_elf__read_vaddr(elf, 0x10, byte, 1), -ENOENT);
	CHECK_EQ(pyx_elf__read_vaddr(elf, UINT64_MAX, byte, 1), -ENOENT);

	/* The same answers from a memory image. */
	image = read_whole_file(PYTHON, &size);
	if (CHECK(image)) {
		mem = pyx_elf__open_mem(image, size);
		/* open_mem copies: the caller's buffer may go at once. */
		memset(image, 0, size);
		free(image);
		if (CHECK(mem)) {
			check_python_common(mem, "memory");
			pyx_elf__close(mem);
		}
	}
	pyx_elf__close(elf);
}

static void test_libc(void)
{
	char *path = capture_output("cc -print-file-name=libc.so.6");
	uint64_t memsz, align, vaddr;
	struct pyx_elf_sym sym;
	struct pyx_elf *elf;

	elf = path ? open_elf_path(path) : NULL;
	if (!CHECK(elf)) {
		free(path);
		return;
	}
	printf("  %s\n", path);
	CHECK_EQ(pyx_elf__type(elf), ET_DYN);
	CHECK_STR(pyx_elf__soname(elf), "libc.so.6");
	if (CHECK(!pyx_elf__tls(elf, &memsz, &align, &vaddr))) {
		CHECK_EQ(memsz,
			 capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $6}'", path));
		CHECK_EQ(align,
			 capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $8}'", path));
		CHECK_EQ(vaddr,
			 capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $3}'", path));
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "malloc", &sym))) {
		CHECK_EQ(sym.type, STT_FUNC);
		CHECK_EQ(sym.value, capture_u64("nm -D --defined-only %s | awk '$3 ~ /^malloc@@/ "
						"{print \"0x\" $1}'",
						path));
	}
	pyx_elf__close(elf);
	free(path);
}

static const char prog_source[] =
	"#include <math.h>\n"
	"#include <stdio.h>\n"
	"#include <sys/sdt.h>\n"
	"__thread int pyx_tls_counter = 7;\n"
	"__thread char pyx_tls_buffer[100];\n"
	"const char pyx_marker[] = \"pyx-marker-string\";\n"
	"int pyx_data_value = 0x12345678;\n"
	"int pyx_bss_array[1024];\n"
	"static int pyx_local_twice(int x) { return x * 2; }\n"
	"void pyx_with_sema(int argc);\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"	pyx_tls_counter += argc + pyx_tls_buffer[argc];\n"
	"	STAP_PROBE2(pyxtest, plain, argc, pyx_tls_counter);\n"
	"	pyx_with_sema(argc);\n"
	"	printf(\"%s %f\\n\", pyx_marker, sqrt(argc + pyx_data_value + pyx_bss_array[argc]));\n"
	"	return pyx_local_twice(argc);\n"
	"}\n";

/* A separate unit: with _SDT_HAS_SEMAPHORES every probe in it needs one. */
static const char sema_source[] = "#define _SDT_HAS_SEMAPHORES 1\n"
				  "#include <sys/sdt.h>\n"
				  "unsigned short pyxtest_with_sema_semaphore\n"
				  "	__attribute__((section(\".probes\")));\n"
				  "void pyx_with_sema(int argc);\n"
				  "void pyx_with_sema(int argc)\n"
				  "{\n"
				  "	if (pyxtest_with_sema_semaphore)\n"
				  "		STAP_PROBE1(pyxtest, with_sema, argc);\n"
				  "}\n";

static const char versioned_source[] = "int foo_v1(void) { return 1; }\n"
				       "int foo_v2(void) { return 2; }\n"
				       "__asm__(\".symver foo_v1, pyx_versioned@VERS_1\");\n"
				       "__asm__(\".symver foo_v2, pyx_versioned@@VERS_2\");\n";

static bool build_programs(void)
{
	return run("rm -rf " WORK_DIR " && mkdir -p " WORK_DIR) &&
	       write_file(WORK_DIR "/prog.c", prog_source) &&
	       write_file(WORK_DIR "/sema.c", sema_source) &&
	       write_file(WORK_DIR "/versioned.c", versioned_source) &&
	       run("cd " WORK_DIR " && cc -g -O1 -Wl,--build-id=sha1 -Wl,--enable-new-dtags "
		   "-Wl,-rpath,/opt/pyxtest prog.c sema.c -Wl,--no-as-needed -lm -o prog") &&
	       run("cd " WORK_DIR " && objcopy --only-keep-debug prog prog.debug && "
		   "objcopy --strip-debug --add-gnu-debuglink=prog.debug prog prog.stripped") &&
	       run("cd " WORK_DIR " && cc -c versioned.c -o versioned.o");
}

static int read_c_string(const struct pyx_elf *elf, uint64_t vaddr, char *buf, size_t size)
{
	int err = pyx_elf__read_vaddr(elf, vaddr, buf, size - 1);

	buf[size - 1] = '\0';
	return err;
}

/* Every note of .note.stapsdt gets its base field moved by @delta, as prelink would leave it. */
static bool shift_stapsdt_bases(const struct pyx_elf *elf, unsigned char *image, size_t size,
				int64_t delta)
{
	uint64_t offset, len, pos = 0;

	if (pyx_elf__section(elf, ".note.stapsdt", NULL, &len, &offset) || offset + len > size)
		return false;
	while (pos + 12 <= len) {
		uint32_t namesz, descsz;
		uint64_t desc, base;

		memcpy(&namesz, image + offset + pos, 4);
		memcpy(&descsz, image + offset + pos + 4, 4);
		desc = pos + 12 + ((namesz + 3) & ~3u);
		if (desc + 24 > len)
			return false;
		memcpy(&base, image + offset + desc + 8, 8);
		base = delta == INT64_MIN ? 0 : base + (uint64_t)delta;
		memcpy(image + offset + desc + 8, &base, 8);
		pos = desc + ((descsz + 3) & ~3u);
	}
	return true;
}

static void check_prog_usdt(const struct pyx_elf *elf, uint64_t expected_shift)
{
	struct usdt_search plain = {.provider = "pyxtest", .name = "plain"};
	struct usdt_search sema = {.provider = "pyxtest", .name = "with_sema"};
	uint64_t location;

	CHECK(!pyx_elf__for_each_usdt(elf, find_usdt, &plain));
	CHECK(!pyx_elf__for_each_usdt(elf, find_usdt, &sema));
	CHECK_EQ(plain.total, 2);
	if (CHECK_EQ(plain.matches, 1)) {
		location = capture_u64("readelf -n %s | grep -A1 'Name: plain$' | "
				       "sed -n 's/.*Location: \\([0-9a-fx]*\\),.*/\\1/p'",
				       WORK_DIR "/prog");
		CHECK_EQ(plain.found.pc, location + expected_shift);
		CHECK_EQ(plain.found.semaphore, 0);
		CHECK_STR(plain.found.provider, "pyxtest");
		CHECK(strchr(plain.found.args, '@') && strchr(plain.found.args, ' '));
	}
	if (CHECK_EQ(sema.matches, 1)) {
		location = capture_u64("readelf -n %s | grep -A1 'Name: with_sema$' | "
				       "sed -n 's/.*Location: \\([0-9a-fx]*\\),.*/\\1/p'",
				       WORK_DIR "/prog");
		CHECK_EQ(sema.found.pc, location + expected_shift);
		/* Never adjusted: it is a link-time vaddr of .probes. */
		CHECK_EQ(sema.found.semaphore,
			 capture_u64("nm %s | awk '$3 == \"pyxtest_with_sema_semaphore\" "
				     "{print \"0x\" $1}'",
				     WORK_DIR "/prog"));
	}
}

static void test_prog(void)
{
	struct string_search strings = {.want = "pyx-marker-string"};
	struct name_list needed = {0};
	uint64_t memsz, align, vaddr, size64;
	struct pyx_elf_sym sym;
	struct pyx_elf *elf, *mem;
	char buf[64], *want;
	unsigned char *image;
	size_t size;
	int32_t value;

	elf = open_elf_path(WORK_DIR "/prog");
	if (!CHECK(elf))
		return;
	CHECK_EQ(pyx_elf__type(elf), ET_DYN);
	CHECK(pyx_elf__has_section(elf, ".debug_info"));
	CHECK(pyx_elf__has_section_data(elf, ".debug_info"));
	CHECK(pyx_elf__has_section(elf, ".symtab"));
	CHECK(pyx_elf__has_section(elf, ".stapsdt.base"));
	CHECK_EQ(pyx_elf__debuglink(elf, buf, sizeof(buf), NULL), -ENOENT);

	want = capture_output("readelf -n %s | awk '/Build ID/ {print $3}'", WORK_DIR "/prog");
	CHECK(!pyx_elf__build_id(elf, buf, sizeof(buf)));
	CHECK_STR(buf, want);
	CHECK_EQ(strlen(buf), 40);
	free(want);

	if (CHECK(!pyx_elf__tls(elf, &memsz, &align, &vaddr))) {
		CHECK_EQ(memsz, capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $6}'",
					    WORK_DIR "/prog"));
		CHECK(memsz >= 104);
		CHECK_EQ(align, capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $8}'",
					    WORK_DIR "/prog"));
		CHECK_EQ(vaddr, capture_u64("readelf -lW %s | awk '$1 == \"TLS\" {print $3}'",
					    WORK_DIR "/prog"));
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_tls_counter", &sym))) {
		CHECK_EQ(sym.type, STT_TLS);
		/* A TLS symbol's value is its offset in the template; the template holds 7. */
		CHECK(!pyx_elf__read_vaddr(elf, vaddr + sym.value, &value, sizeof(value)));
		CHECK_EQ(value, 7);
	}

	CHECK(!pyx_elf__for_each_needed(elf, collect_needed, &needed));
	want = capture_output(
		"readelf -dW %s | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p' | paste -sd ' '",
		WORK_DIR "/prog");
	CHECK_STR(needed.text, want);
	CHECK(strstr(needed.text, "libm.so.6") != NULL);
	free(want);
	CHECK_STR(pyx_elf__runpath(elf), "/opt/pyxtest");
	CHECK(!pyx_elf__soname(elf));

	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_marker", &sym))) {
		CHECK(!sym.dynamic);
		CHECK_EQ(sym.value, capture_u64("nm %s | awk '$3 == \"pyx_marker\" "
						"{print \"0x\" $1}'",
						WORK_DIR "/prog"));
		CHECK_EQ(sym.size, 18);
		CHECK(!read_c_string(elf, sym.value, buf, 18));
		CHECK_STR(buf, "pyx-marker-string");
		strings.elf = elf;
		CHECK(!pyx_elf__for_each_string(elf, ".rodata", 8, find_string, &strings));
		CHECK_EQ(strings.found, 1);
		CHECK_EQ(strings.vaddr, sym.value);
		CHECK_EQ(strings.bad, 0);
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_data_value", &sym)))
		CHECK(!pyx_elf__read_vaddr(elf, sym.value, &value, sizeof(value)) &&
		      CHECK_EQ(value, 0x12345678));
	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_bss_array", &sym)))
		CHECK_EQ(pyx_elf__read_vaddr(elf, sym.value, &value, sizeof(value)), -ENOENT);
	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_local_twice", &sym) ||
		  !pyx_elf__find_symbol(elf, "main", &sym)))
		CHECK_EQ(sym.type, STT_FUNC);
	CHECK_EQ(pyx_elf__find_symbol(elf, "pyx_marke", &sym), -ENOENT);
	CHECK_EQ(pyx_elf__find_symbol(elf, "pyx_marker_", &sym), -ENOENT);
	/* Undefined in this object: only its PLT import exists. */
	CHECK_EQ(pyx_elf__find_symbol(elf, "sqrt", &sym), -ENOENT);

	check_prog_usdt(elf, 0);

	/* Pretend prelink moved .stapsdt.base by 0x1000 after the notes were written. */
	image = read_whole_file(WORK_DIR "/prog", &size);
	if (CHECK(image) && CHECK(shift_stapsdt_bases(elf, image, size, -0x1000))) {
		mem = pyx_elf__open_mem(image, size);
		if (CHECK(mem)) {
			printf("  prelinked copy\n");
			check_prog_usdt(mem, 0x1000);
			pyx_elf__close(mem);
		}
		/* A zero base in the note means "no base recorded": no adjustment. */
		CHECK(shift_stapsdt_bases(elf, image, size, INT64_MIN));
		mem = pyx_elf__open_mem(image, size);
		if (CHECK(mem)) {
			check_prog_usdt(mem, 0);
			pyx_elf__close(mem);
		}
	}

	/*
	 * Without section headers (as after sstrip): the build-id from PT_NOTE
	 * and the dynamic table from PT_DYNAMIC must still be found.
	 */
	if (image) {
		Elf64_Ehdr *ehdr = (Elf64_Ehdr *)image;
		struct name_list needed_again = {0};
		struct pyx_elf_sym unused;
		char expected[64];

		CHECK(!memcmp(image, ELFMAG, SELFMAG));
		ehdr->e_shoff = 0;
		ehdr->e_shnum = 0;
		ehdr->e_shstrndx = 0;
		mem = pyx_elf__open_mem(image, size);
		if (CHECK(mem)) {
			printf("  copy without section headers\n");
			CHECK(!pyx_elf__build_id(mem, buf, sizeof(buf)));
			CHECK(!pyx_elf__build_id(elf, expected, sizeof(expected)));
			CHECK_STR(buf, expected);
			CHECK(!pyx_elf__for_each_needed(mem, collect_needed, &needed_again));
			CHECK_STR(needed_again.text, needed.text);
			CHECK_STR(pyx_elf__runpath(mem), "/opt/pyxtest");
			CHECK(!pyx_elf__tls(mem, &memsz, NULL, NULL));
			CHECK_EQ(pyx_elf__find_symbol(mem, "pyx_marker", &unused), -ENOENT);
			CHECK_EQ(pyx_elf__section(mem, ".rodata", NULL, &size64, NULL), -ENOENT);
			pyx_elf__close(mem);
		}
	}
	free(image);
	pyx_elf__close(elf);
}

static void test_split_debug(void)
{
	struct pyx_elf *stripped, *debug;
	char link[64], *crc_text;
	uint32_t crc;

	stripped = open_elf_path(WORK_DIR "/prog.stripped");
	debug = open_elf_path(WORK_DIR "/prog.debug");
	if (!CHECK(stripped) || !CHECK(debug))
		goto out;
	CHECK(!pyx_elf__has_section(stripped, ".debug_info"));
	CHECK(pyx_elf__has_section(stripped, ".symtab"));
	if (CHECK(!pyx_elf__debuglink(stripped, link, sizeof(link), &crc))) {
		CHECK_STR(link, "prog.debug");
		crc_text = capture_output("python3 -c 'import sys, zlib; "
				   "print(zlib.crc32(open(sys.argv[1], \"rb\").read()))' %s",
				   WORK_DIR "/prog.debug");
		CHECK_EQ(crc, strtoull(crc_text ? crc_text : "0", NULL, 0));
		free(crc_text);
	}
	/* The debug file keeps every section header but only debug bytes. */
	CHECK(pyx_elf__has_section_data(debug, ".debug_info"));
	CHECK(pyx_elf__has_section(debug, ".text"));
	CHECK(!pyx_elf__has_section_data(debug, ".text"));
out:
	pyx_elf__close(stripped);
	pyx_elf__close(debug);
}

static void test_versioned(void)
{
	struct pyx_elf_sym sym;
	struct pyx_elf *elf = open_elf_path(WORK_DIR "/versioned.o");

	if (!CHECK(elf))
		return;
	CHECK_EQ(pyx_elf__type(elf), ET_REL);
	/* Both "pyx_versioned@VERS_1" and "@@VERS_2" are defined; the default one wins. */
	if (CHECK(!pyx_elf__find_symbol(elf, "pyx_versioned", &sym))) {
		CHECK_STR(sym.name, "pyx_versioned@@VERS_2");
		CHECK_EQ(sym.value, capture_u64("nm %s | awk '$3 == \"foo_v2\" {print \"0x\" $1}'",
						WORK_DIR "/versioned.o"));
	}
	CHECK(!pyx_elf__find_symbol(elf, "pyx_versioned@VERS_1", &sym));
	CHECK_EQ(pyx_elf__find_symbol(elf, "pyx_versioned@", &sym), -ENOENT);
	CHECK_EQ(pyx_elf__find_symbol(elf, "pyx_version", &sym), -ENOENT);
	pyx_elf__close(elf);
}

#define CORPUS PYX_TEST_SRCDIR "/../fuzz/corpus"

/* Hand-made ELF64 MSB (tests/fuzz/make-corpus.sh): every multi-byte field we decode ourselves. */
static void test_big_endian(void)
{
	struct usdt_search usdt = {.provider = "bigprov", .name = "bigprobe"};
	struct string_search strings = {.want = "big-endian rodata string"};
	struct name_list needed = {0};
	uint64_t memsz, align, vaddr;
	struct pyx_elf_sym sym;
	struct pyx_elf *elf;
	char buf[64];
	uint32_t crc;

	elf = open_elf_path(CORPUS "/big-endian.elf");
	if (!CHECK(elf))
		return;
	CHECK_EQ(pyx_elf__type(elf), ET_EXEC);
	CHECK_EQ(pyx_elf__entry(elf), 0x10000100);
	CHECK(!pyx_elf__build_id(elf, buf, sizeof(buf)));
	CHECK_STR(buf, "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3");
	CHECK(!pyx_elf__debuglink(elf, buf, sizeof(buf), &crc));
	CHECK_STR(buf, "big.debug");
	CHECK_EQ(crc, 0x11223344);

	CHECK(!pyx_elf__for_each_usdt(elf, find_usdt, &usdt));
	if (CHECK_EQ(usdt.matches, 1)) {
		/* The note's base is 0x10 below .stapsdt.base: moved by "prelink". */
		CHECK_EQ(usdt.found.pc, 0x10000110);
		CHECK_EQ(usdt.found.semaphore, 0x10000200);
		CHECK_STR(usdt.found.args, "8@%r3");
	}
	CHECK(!pyx_elf__for_each_needed(elf, collect_needed, &needed));
	CHECK_STR(needed.text, "libbig.so.1");
	CHECK_STR(pyx_elf__soname(elf), "libbigself.so");
	CHECK_STR(pyx_elf__runpath(elf), "/big/rpath");
	if (CHECK(!pyx_elf__tls(elf, &memsz, &align, &vaddr))) {
		CHECK_EQ(memsz, 16);
		CHECK_EQ(align, 4);
		CHECK(!pyx_elf__read_vaddr(elf, vaddr, buf, 4) && !memcmp(buf, "TLS!", 4));
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "big_symbol", &sym))) {
		CHECK_EQ(sym.bind, STB_GLOBAL);
		CHECK_EQ(sym.type, STT_OBJECT);
		CHECK_EQ(sym.size, 25);
		CHECK(!read_c_string(elf, sym.value, buf, 25));
		CHECK_STR(buf, "big-endian rodata string");
	}
	if (CHECK(!pyx_elf__find_symbol(elf, "big_local", &sym)))
		CHECK_EQ(sym.bind, STB_LOCAL);
	strings.elf = elf;
	CHECK(!pyx_elf__for_each_string(elf, ".rodata", 1, find_string, &strings));
	/* "\x01\x02tail text": the control bytes break the run, "tail text" remains. */
	CHECK_EQ(strings.total, 2);
	CHECK_EQ(strings.found, 1);
	CHECK_EQ(strings.bad, 0);
	pyx_elf__close(elf);
}

/* Hand-written i386 executable: 4-byte stapsdt addresses. */
static void test_elf32(void)
{
	struct usdt_search usdt = {.provider = "pyx32", .name = "probe"};
	struct pyx_elf *elf;
	char buf[64], *want;

	elf = open_elf_path(CORPUS "/tiny32.elf");
	if (!CHECK(elf))
		return;
	want = capture_output("readelf -n %s | awk '/Build ID/ {print $3}'", CORPUS "/tiny32.elf");
	CHECK(!pyx_elf__build_id(elf, buf, sizeof(buf)));
	CHECK_STR(buf, want);
	free(want);
	CHECK(!pyx_elf__for_each_usdt(elf, find_usdt, &usdt));
	if (CHECK_EQ(usdt.matches, 1)) {
		CHECK_EQ(usdt.found.pc, pyx_elf__entry(elf));
		CHECK_EQ(usdt.found.semaphore, 0);
		CHECK_STR(usdt.found.args, "-4@%eax");
	}
	pyx_elf__close(elf);
}

int main(void)
{
	printf("open errors\n");
	test_open_errors();
	printf("python3.11\n");
	test_python();
	printf("libc\n");
	test_libc();
	printf("corpus objects\n");
	test_big_endian();
	test_elf32();
	printf("compiled programs\n");
	if (CHECK(build_programs())) {
		test_prog();
		test_split_debug();
		test_versioned();
	} else {
		fprintf(stderr, "  building test programs failed (sys/sdt.h is in "
				"systemtap-sdt-dev)\n");
	}
	return check_done();
}
