// SPDX-License-Identifier: GPL-2.0-only
/*
 * user/elf/dwarf.c on real interpreters, against gdb; and on programs built
 * here (DWARF 2 to 5, type units, compressed sections, dwz alt files)
 * against offsetof() of the very same types compiled into this test; and on
 * damaged DWARF, which must not crash.
 *
 * The interpreter tables come from gdb 13.1 (bookworm), never from the code
 * under test:
 *
 *   gdb -nx -batch -ex 'set max-value-size unlimited' -ex 'ptype/o struct _ts' FILE
 *
 * (likewise for _PyInterpreterFrame, PyCodeObject, _PyRuntimeState,
 * PyInterpreterState, PyASCIIObject, PyObject), cross-checked with
 *
 *   gdb -nx -batch -ex 'output (long)&((PyThreadState *)0)->native_thread_id' FILE
 *
 * Each table is pinned to the build-id of the file gdb read. When the file
 * found here is another build (a package upgrade, a rebuilt rig root), the
 * same gdb expressions are evaluated on it now instead, with a note: the
 * tables record what was checked, the fallback keeps the test meaningful.
 */
#include <dirent.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "elf/dwarf.h"

#define WORK_DIR PYX_TEST_BUILDDIR "/dwarf-work"
#define SID_ROOT "/var/cache/pyxtrace/rig/roots/sid"

/* ---- interpreter tables (gdb) ---- */

struct field {
	const char *type;
	const char *path; /* NULL: sizeof(type) */
	long long want;	  /* offset or size per gdb, or the -errno we must return */
};

#define F(t, p, w)      \
	{               \
		t, p, w \
	}
#define S(t, w)            \
	{                  \
		t, NULL, w \
	}

/* Debian bookworm 3.11.2-6+deb12u9: python3.11d and python3.11 share the layout. */
static const struct field py311[] = {
	F("PyThreadState", "next", 8),
	F("PyThreadState", "interp", 16),
	F("PyThreadState", "thread_id", 152),
	F("PyThreadState", "native_thread_id", 160),
	F("PyThreadState", "cframe", 56),
	F("PyThreadState", "current_frame", -ENOENT),
	F("struct _ts", "next", 8),
	F("_PyInterpreterFrame", "previous", 48),
	F("_PyInterpreterFrame", "owner", 69),
	F("PyCodeObject", "co_filename", 112),
	F("PyCodeObject", "co_firstlineno", 72),
	F("PyCodeObject", "co_code_adaptive", 184),
	F("_PyRuntimeState", "interpreters.head", 40),
	F("_PyRuntimeState", "interpreters.main", 48),
	F("PyInterpreterState", "threads.head", 16),
	F("PyASCIIObject", "ob_base.ob_type", 8),
	F("PyObject", "ob_refcnt", 0),
	F("PyObject", "ob_type", 8),
	F("PyASCIIObject", "state.kind", -EINVAL),     /* a bit field */
	F("PyThreadState", "interp.threads", -EINVAL), /* through a pointer */
	F("PyThreadState", "no_such_member", -ENOENT),
	F("No_Such_Type", "next", -ENOENT),
	S("PyASCIIObject", 48),
	S("PyThreadState", 360),
	S("struct _ts", 360),
	S("_PyInterpreterFrame", 80),
	S("PyCodeObject", 192),
	S("_PyRuntimeState", 166688),
	S("PyInterpreterState", 107752),
};

/* pyenv 3.12.1, --enable-shared. */
static const struct field py312[] = {
	F("PyThreadState", "next", 8),
	F("PyThreadState", "interp", 16),
	F("PyThreadState", "thread_id", 136),
	F("PyThreadState", "native_thread_id", 144),
	F("PyThreadState", "cframe", 56),
	F("PyThreadState", "current_frame", -ENOENT),
	F("PyThreadState", "trash.delete_later", 160),
	F("PyThreadState", "_status", 24),
	F("PyThreadState", "_status.initialized", -EINVAL), /* a bit field */
	F("struct _ts", "next", 8),
	F("_PyInterpreterFrame", "previous", 8),
	F("_PyInterpreterFrame", "owner", 70),
	F("PyCodeObject", "co_filename", 112),
	F("PyCodeObject", "co_firstlineno", 68),
	F("PyCodeObject", "co_code_adaptive", 192),
	F("_PyRuntimeState", "interpreters.head", 40),
	F("_PyRuntimeState", "interpreters.main", 48),
	F("PyInterpreterState", "threads.head", 72),
	F("PyASCIIObject", "ob_base.ob_type", 8),
	F("PyObject", "ob_refcnt", 0),	     /* in an anonymous union */
	F("PyObject", "ob_refcnt_split", 0), /* same union */
	F("PyObject", "ob_type", 8),
	F("PyThreadState", "interp.threads", -EINVAL),
	F("No_Such_Type", "next", -ENOENT),
	S("PyASCIIObject", 40),
	S("PyThreadState", 288),
	S("_PyInterpreterFrame", 80),
	S("PyCodeObject", 200),
	S("_PyRuntimeState", 459944),
	S("PyInterpreterState", 383552),
};

/* Debian sid 3.15.2-1 (python3.15-dbg). */
static const struct field py315[] = {
	F("PyThreadState", "next", 8),
	F("PyThreadState", "interp", 16),
	F("PyThreadState", "thread_id", 176),
	F("PyThreadState", "native_thread_id", 184),
	F("PyThreadState", "current_frame", 72),
	F("PyThreadState", "cframe", -ENOENT),
	F("PyThreadState", "_status", 32),
	F("PyThreadState", "_status.initialized", -EINVAL),
	F("struct _ts", "next", 8),
	F("_PyInterpreterFrame", "previous", 8),
	F("_PyInterpreterFrame", "owner", 74),
	F("PyCodeObject", "co_filename", 112),
	F("PyCodeObject", "co_firstlineno", 68),
	F("PyCodeObject", "co_code_adaptive", 208),
	F("_PyRuntimeState", "interpreters.head", 936),
	F("_PyRuntimeState", "interpreters.main", 944),
	F("PyInterpreterState", "threads.head", 7336),
	F("PyASCIIObject", "ob_base.ob_type", 8),
	F("PyObject", "ob_refcnt_full", 0), /* in an anonymous union */
	F("PyObject", "ob_overflow", 4),    /* in an anonymous struct in it */
	F("PyObject", "ob_flags", 6),
	F("PyObject", "ob_type", 8),
	F("PyThreadState", "interp.threads", -EINVAL),
	F("No_Such_Type", "next", -ENOENT),
	S("PyASCIIObject", 40),
	S("PyThreadState", 888),
	S("_PyInterpreterFrame", 88),
	S("PyCodeObject", 216),
	S("_PyRuntimeState", 346568),
	S("PyInterpreterState", 226240),
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* NT_GNU_BUILD_ID in hex, read with libelf here rather than with the code under test. */
static bool build_id(const char *path, char *hex, size_t size)
{
	const unsigned char *id;
	const void *raw;
	ssize_t len, i;
	Elf *elf;
	int fd;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	len = elf ? dwelf_elf_gnu_build_id(elf, &raw) : -1;
	if (len > 0 && (size_t)len * 2 < size) {
		id = raw;
		for (i = 0; i < len; i++)
			snprintf(hex + 2 * i, 3, "%02x", id[i]);
	}
	elf_end(elf);
	close(fd);
	return len > 0 && (size_t)len * 2 < size;
}

/* ROOT/usr/lib/debug/.build-id/xx/rest.debug for the object ROOT/OBJ. */
static bool debug_file_of(const char *root, const char *obj, char *out, size_t size)
{
	char path[4096], hex[129];

	snprintf(path, sizeof(path), "%s%s", root, obj);
	if (!build_id(path, hex, sizeof(hex)))
		return false;
	snprintf(out, size, "%s/usr/lib/debug/.build-id/%.2s/%s.debug", root, hex, hex + 2);
	return true;
}

/*
 * Re-derive a table's expectations with gdb for a build the table was not
 * made from. Errors we expect for other reasons than absence (bit fields,
 * pointers) stay as they are; an expression gdb cannot evaluate means the
 * member or type does not exist.
 */
static bool gdb_expectations(const char *path, const struct field *fields, size_t n,
			     long long *want)
{
	size_t cmd_size = 65536, len, i;
	char *cmd = malloc(cmd_size), line[256];
	FILE *pipe;

	if (!cmd)
		return false;
	len = (size_t)snprintf(cmd, cmd_size,
			       "gdb -nx -batch -iex 'set debuginfod enabled off' "
			       "-ex 'set max-value-size unlimited'");
	for (i = 0; i < n; i++) {
		want[i] = fields[i].want;
		if (fields[i].want < 0 && fields[i].want != -ENOENT)
			continue;
		want[i] = -ENOENT;
		if (fields[i].path)
			len += (size_t)snprintf(
				cmd + len, cmd_size - len,
				" -ex 'printf \"@%zu %%ld\\n\", (long)&((%s *)0)->%s'", i,
				fields[i].type, fields[i].path);
		else
			len += (size_t)snprintf(cmd + len, cmd_size - len,
						" -ex 'printf \"@%zu %%ld\\n\", (long)sizeof(%s)'",
						i, fields[i].type);
	}
	snprintf(cmd + len, cmd_size - len, " '%s' 2>/dev/null", path);
	pipe = popen(cmd, "r");
	free(cmd);
	if (!pipe)
		return false;
	while (fgets(line, sizeof(line), pipe)) {
		long long value;
		size_t idx;

		if (sscanf(line, "@%zu %lld", &idx, &value) == 2 && idx < n)
			want[idx] = value;
	}
	return pclose(pipe) == 0;
}

static struct pyx_dwarf *open_path(const char *path, const char *alt)
{
	struct pyx_dwarf *dw;
	int fd, alt_fd = -1, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (alt) {
		alt_fd = open(alt, O_RDONLY | O_CLOEXEC);
		if (alt_fd < 0) {
			close(fd);
			return NULL;
		}
	}
	dw = pyx_dwarf__open_fd(fd, alt_fd);
	saved = errno;
	close(fd);
	if (alt_fd >= 0)
		close(alt_fd);
	errno = saved;
	return dw;
}

static int lookup(struct pyx_dwarf *dw, const struct field *f, uint64_t *value)
{
	return f->path ? pyx_dwarf__member_offset(dw, f->type, f->path, value)
		       : pyx_dwarf__type_size(dw, f->type, value);
}

static void check_fields(struct pyx_dwarf *dw, const char *label, const struct field *fields,
			 size_t n, const long long *want)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t value = 0;
		int err = lookup(dw, &fields[i], &value);
		long long got = err ? err : (long long)value;

		if (got != want[i])
			fprintf(stderr, "%s: %s %s%s%s\n", label,
				fields[i].path ? "offsetof" : "sizeof", fields[i].type,
				fields[i].path ? " " : "", fields[i].path ? fields[i].path : "");
		CHECK_EQ(got, want[i]);
	}
}

/*
 * Open, first lookup (which builds the index), 30 more lookups: the cost of
 * deriving a frame-walker table, timed and bounded. Then the whole table.
 */
static void check_subject(const char *label, const char *path, const char *pinned_id,
			  const struct field *fields, size_t n)
{
	double t0, t1, t2, t3;
	long long want[64];
	char hex[129] = "";
	struct pyx_dwarf *dw;
	uint64_t value;
	size_t i;

	if (!CHECK(n <= ARRAY_LEN(want)))
		return;
	if (!exists(path)) {
		fprintf(stderr, "%s: %s is missing\n", label, path);
		CHECK(exists(path));
		return;
	}
	for (i = 0; i < n; i++)
		want[i] = fields[i].want;
	if (!build_id(path, hex, sizeof(hex)) || strcmp(hex, pinned_id)) {
		printf("note: %s: %s is build %s, the table is for %s: "
		       "expectations from gdb now\n",
		       label, path, hex, pinned_id);
		if (!CHECK(gdb_expectations(path, fields, n, want)))
			return;
	}

	t0 = now_ms();
	dw = open_path(path, NULL);
	if (!dw) {
		fprintf(stderr, "%s: open %s: %s\n", label, path, strerror(errno));
		CHECK(dw);
		return;
	}
	t1 = now_ms();
	lookup(dw, &fields[0], &value);
	t2 = now_ms();
	for (i = 0; i < 30; i++)
		lookup(dw, &fields[i % n], &value);
	t3 = now_ms();
	printf("%s: open %.1f ms, first lookup %.1f ms, 30 lookups %.3f ms, total %.1f ms\n", label,
	       t1 - t0, t2 - t1, t3 - t2, t3 - t0);
	CHECK(t3 - t0 < 1000.0);

	check_fields(dw, label, fields, n, want);
	pyx_dwarf__close(dw);
}

static void check_interpreters(void)
{
	char path[4096] = "";
	glob_t g;

	check_subject("bookworm python3.11d (embedded)", "/usr/bin/python3.11d",
		      "5c771a4c12922957af14eed671bebe0179a75f44", py311, ARRAY_LEN(py311));

	/* python3.11-dbg installs it as /usr/lib/debug/.build-id/c5/61f3....debug */
	if (CHECK(debug_file_of("", "/usr/bin/python3.11", path, sizeof(path))))
		check_subject("bookworm python3.11 (python3.11-dbg)", path,
			      "c561f3aa7232f2bd6ac6d56bd475f1c154a00486", py311, ARRAY_LEN(py311));
	if (!exists(path))
		fprintf(stderr, "  install python3.11-dbg: tools/install-deps\n");

	if (glob("/root/.pyenv/versions/3.12.*/lib/libpython3.12.so.1.0", 0, NULL, &g) == 0) {
		check_subject("pyenv 3.12 libpython (embedded)", g.gl_pathv[0],
			      "f9d5c82f5f2c22df68c1d49c944ef3dee5103dcc", py312, ARRAY_LEN(py312));
		globfree(&g);
	} else {
		fprintf(stderr, "no /root/.pyenv/versions/3.12.*: tools/install-deps builds it\n");
		CHECK(!"pyenv 3.12 present");
	}

	if (!exists(SID_ROOT)) {
		fprintf(stderr, "rig root %s missing: run tests/rig/setup\n", SID_ROOT);
		CHECK(!"sid rig root present");
		return;
	}
	if (!debug_file_of(SID_ROOT, "/usr/bin/python3.15", path, sizeof(path))) {
		fprintf(stderr, "%s/usr/bin/python3.15 unreadable: run tests/rig/setup\n",
			SID_ROOT);
		CHECK(!"sid python3.15 present");
		return;
	}
	check_subject("sid python3.15 (python3.15-dbg)", path,
		      "d41ac9e28ff414f10df5da23fb051683a7b4adcf", py315, ARRAY_LEN(py315));
}

/* ---- programs built here: offsetof() is the truth ---- */

/* Compiled into the scratch programs as text and into this test as code. */
#define DZ_SHARED                                  \
	struct dz_inner {                          \
		int a;                             \
		char b[3];                         \
		long c;                            \
	};                                         \
	typedef struct dz_outer {                  \
		void *p;                           \
		struct dz_inner in;                \
		union {                            \
			int u1;                    \
			struct {                   \
				short s1;          \
				short s2;          \
			};                         \
		};                                 \
		const volatile struct dz_inner cv; \
		unsigned int bits : 3;             \
		unsigned int more : 5;             \
		int arr[4][3];                     \
		struct dz_inner *ptr;              \
		struct dz_outer *next;             \
	} dz_outer_t;                              \
	typedef const dz_outer_t dz_const_t;       \
	typedef volatile dz_const_t dz_chain_t;    \
	typedef int dz_vec_t[5][2];                \
	struct dz_flex {                           \
		long n;                            \
		char data[];                       \
	};
/* Two layouts under one tag, each shared by two programs: dwz puts both in the alt file. */
#define DZ_CONF_A(tag)          \
	struct tag {            \
		int a;          \
		char pad_a[24]; \
		long b;         \
		short c;        \
	};
#define DZ_CONF_B(tag)        \
	struct tag {          \
		long b;       \
		char pad[40]; \
		int a;        \
	};
#define DZ_OWN                \
	struct dz_own1 {      \
		char own_c;   \
		double own_d; \
	};
/* Only in p1 and the plain programs: a type of the program's own. */
#define DZ_OWN_USE struct dz_own1 g_own;
#define DZ_USES                 \
	dz_outer_t g_outer;     \
	dz_chain_t *g_chain;    \
	dz_vec_t g_vec;         \
	struct dz_flex *g_flex; \
	struct dz_conf g_conf;  \
	int main(void)          \
	{                       \
		return 0;       \
	}

#define STR(...)  #__VA_ARGS__
#define XSTR(...) STR(__VA_ARGS__)

DZ_SHARED
DZ_CONF_A(dz_conf_a)
DZ_CONF_B(dz_conf_b)
DZ_OWN

static const struct field dz_fields[] = {
	F("dz_outer_t", "p", offsetof(dz_outer_t, p)),
	F("dz_outer_t", "in.c", offsetof(dz_outer_t, in.c)),
	F("dz_outer_t", "in.b", offsetof(dz_outer_t, in.b)),
	F("dz_outer_t", "u1", offsetof(dz_outer_t, u1)),     /* anonymous union */
	F("dz_outer_t", "s2", offsetof(dz_outer_t, s2)),     /* anonymous struct in it */
	F("dz_outer_t", "cv.c", offsetof(dz_outer_t, cv.c)), /* through const volatile */
	F("dz_outer_t", "arr", offsetof(dz_outer_t, arr)),
	F("dz_outer_t", "next", offsetof(dz_outer_t, next)),
	F("struct dz_outer", "ptr", offsetof(dz_outer_t, ptr)),
	F("dz_inner", "c", offsetof(struct dz_inner, c)),    /* a bare tag */
	F("dz_chain_t", "in.c", offsetof(dz_outer_t, in.c)), /* typedef/cv chain */
	F("dz_outer_t", "bits", -EINVAL),
	F("dz_outer_t", "more", -EINVAL),
	F("dz_outer_t", "ptr.a", -EINVAL), /* through a pointer */
	F("dz_outer_t", "p.x", -EINVAL),
	F("dz_outer_t", "in.nope", -ENOENT),
	F("dz_outer_t", "nope", -ENOENT),
	F("dz_outer_t", "in..c", -EINVAL),
	F("dz_outer_t", "in.", -EINVAL),
	F("dz_outer_t", ".in", -EINVAL),
	F("dz_outer_t", "", -EINVAL),
	F("struct dz_outer_t", "p", -ENOENT), /* a typedef, not a tag */
	F("dz_nope_t", "p", -ENOENT),
	F("dz_vec_t", "x", -EINVAL), /* not a struct */
	F("dz_flex", "data", offsetof(struct dz_flex, data)),
	S("dz_outer_t", sizeof(dz_outer_t)),
	S("struct dz_inner", sizeof(struct dz_inner)),
	S("dz_chain_t", sizeof(dz_chain_t)),
	S("dz_vec_t", sizeof(dz_vec_t)),
	S("dz_flex", sizeof(struct dz_flex)),
	S("dz_nope_t", -ENOENT),
};

/*
 * The types go to headers, as in real programs: dwz only merges type entries
 * that are equal down to their DW_AT_decl_file.
 */
static bool write_headers(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/shared.h", dir);
	if (!write_file(path, XSTR(DZ_SHARED) "\n"))
		return false;
	snprintf(path, sizeof(path), "%s/conf_a.h", dir);
	if (!write_file(path, XSTR(DZ_CONF_A(dz_conf)) "\n"))
		return false;
	snprintf(path, sizeof(path), "%s/conf_b.h", dir);
	return write_file(path, XSTR(DZ_CONF_B(dz_conf)) "\n");
}

/* DIR/NAME.c: the shared types, struct dz_conf from @conf_header, dz_own1 if @own. */
static bool write_program(const char *dir, const char *name, const char *conf_header, bool own)
{
	char path[4096], text[8192];

	snprintf(path, sizeof(path), "%s/%s.c", dir, name);
	snprintf(text, sizeof(text), "#include \"shared.h\"\n#include \"%s\"\n%s\n%s\n%s\n",
		 conf_header, own ? XSTR(DZ_OWN) : "", own ? XSTR(DZ_OWN_USE) : "", XSTR(DZ_USES));
	return write_file(path, text);
}

static void check_conf(struct pyx_dwarf *dw, size_t b_offset, size_t size)
{
	uint64_t value = 0;

	CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_conf", "b", &value), 0);
	CHECK_EQ(value, b_offset);
	CHECK_EQ(pyx_dwarf__type_size(dw, "struct dz_conf", &value), 0);
	CHECK_EQ(value, size);
}

/* The DWARF flavours gcc writes, each must give the same layout. */
static void check_variants(void)
{
	static const struct {
		const char *name, *flags;
	} variants[] = {
		{"dwarf5", "-gdwarf-5"},
		{"dwarf4", "-gdwarf-4"},
		{"dwarf3", "-gdwarf-3"},
		{"dwarf2-strict", "-gdwarf-2 -gstrict-dwarf"}, /* DW_OP_plus_uconst locations */
		{"dwarf4-types", "-gdwarf-4 -fdebug-types-section"}, /* .debug_types */
		{"dwarf5-types", "-gdwarf-5 -fdebug-types-section"}, /* DW_UT_type units */
		{"dwarf5-zlib", "-gdwarf-5 -gz=zlib"},		     /* compressed sections */
		{"dwarf5-O2", "-gdwarf-5 -O2"},
	};
	long long want[ARRAY_LEN(dz_fields)];
	char path[4096];
	size_t i, j;

	for (j = 0; j < ARRAY_LEN(dz_fields); j++)
		want[j] = dz_fields[j].want;
	if (!CHECK(write_headers(WORK_DIR)) ||
	    !CHECK(write_program(WORK_DIR, "plain", "conf_a.h", true)))
		return;
	for (i = 0; i < ARRAY_LEN(variants); i++) {
		struct pyx_dwarf *dw;
		uint64_t value = 0;

		snprintf(path, sizeof(path), WORK_DIR "/plain-%s", variants[i].name);
		if (!CHECK(run("gcc %s -o %s " WORK_DIR "/plain.c", variants[i].flags, path)))
			continue;
		dw = open_path(path, NULL);
		if (!CHECK(dw)) {
			fprintf(stderr, "  %s: %s\n", variants[i].name, strerror(errno));
			continue;
		}
		check_fields(dw, variants[i].name, dz_fields, ARRAY_LEN(dz_fields), want);
		check_conf(dw, offsetof(struct dz_conf_a, b), sizeof(struct dz_conf_a));
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_own1", "own_d", &value), 0);
		CHECK_EQ(value, offsetof(struct dz_own1, own_d));
		pyx_dwarf__close(dw);
	}
}

static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

/*
 * dwz: four programs, all sharing dz_outer_t, two pairs sharing a different
 * struct dz_conf each, one with a struct of its own. dwz -m moves what two or
 * more programs share into one alt file, which then holds both dz_conf.
 */
static void check_dwz(void)
{
	const char *dir = WORK_DIR "/dwz";
	long long want[ARRAY_LEN(dz_fields)];
	struct pyx_dwarf *dw;
	char name[256];
	uint64_t value;
	int fd, before;
	size_t j;

	if (!run("command -v dwz >/dev/null 2>&1")) {
		printf("note: dwz is not installed, the alt-file path is untested "
		       "(apt-get install dwz)\n");
		return;
	}
	for (j = 0; j < ARRAY_LEN(dz_fields); j++)
		want[j] = dz_fields[j].want;
	if (!CHECK(run("mkdir -p %s", dir)) || !CHECK(write_headers(dir)) ||
	    !CHECK(write_program(dir, "p1", "conf_a.h", true)) ||
	    !CHECK(write_program(dir, "p2", "conf_a.h", false)) ||
	    !CHECK(write_program(dir, "p3", "conf_b.h", false)) ||
	    !CHECK(write_program(dir, "p4", "conf_b.h", false)) ||
	    !CHECK(run("cd %s && for p in p1 p2 p3 p4; do gcc -g -o $p $p.c || exit 1; done && "
		       "dwz -m common.debug -M common.debug p1 p2 p3 p4",
		       dir)))
		return;

	fd = open(WORK_DIR "/dwz/p1", O_RDONLY | O_CLOEXEC);
	if (CHECK(fd >= 0)) {
		CHECK_EQ(pyx_dwarf__altlink(fd, name, sizeof(name)), 0);
		CHECK_STR(name, "common.debug");
		CHECK_EQ(pyx_dwarf__altlink(fd, name, 5), -ENOSPC);
		close(fd);
	}
	fd = open("/usr/bin/python3.11d", O_RDONLY | O_CLOEXEC);
	if (CHECK(fd >= 0)) {
		CHECK_EQ(pyx_dwarf__altlink(fd, name, sizeof(name)), -ENOENT);
		close(fd);
	}

	dw = open_path(WORK_DIR "/dwz/p1", WORK_DIR "/dwz/common.debug");
	if (CHECK(dw)) {
		check_fields(dw, "dwz p1", dz_fields, ARRAY_LEN(dz_fields), want);
		check_conf(dw, offsetof(struct dz_conf_a, b), sizeof(struct dz_conf_a));
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_own1", "own_d", &value), 0);
		CHECK_EQ(value, offsetof(struct dz_own1, own_d));
		pyx_dwarf__close(dw);
	}
	/* The alt file's other dz_conf: only the units p3 imports count. */
	dw = open_path(WORK_DIR "/dwz/p3", WORK_DIR "/dwz/common.debug");
	if (CHECK(dw)) {
		check_conf(dw, offsetof(struct dz_conf_b, b), sizeof(struct dz_conf_b));
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_own1", "own_d", &value), -ENOENT);
		pyx_dwarf__close(dw);
	}

	/*
	 * Without the alt file, shared types are absent, and libdw must not
	 * have gone looking for it (it is right there, "common.debug" next to
	 * p1): the only new fd is our own dup.
	 */
	before = count_fds();
	dw = open_path(WORK_DIR "/dwz/p1", NULL);
	if (CHECK(dw)) {
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_outer_t", "in.c", &value), -ENOENT);
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_conf", "b", &value), -ENOENT);
		CHECK_EQ(pyx_dwarf__type_size(dw, "dz_outer_t", &value), -ENOENT);
		/* Its own struct is in p1 itself; its member types are not needed. */
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_own1", "own_d", &value), 0);
		CHECK_EQ(value, offsetof(struct dz_own1, own_d));
		CHECK_EQ(count_fds(), before + 1);
		pyx_dwarf__close(dw);
	}
	CHECK_EQ(count_fds(), before);

	/* Another file as the alt file: refused, not read as if it were. */
	errno = 0;
	dw = open_path(WORK_DIR "/dwz/p1", WORK_DIR "/dwz/p2");
	CHECK(!dw);
	CHECK_EQ(errno, ESTALE);
	pyx_dwarf__close(dw);
	errno = 0;
	dw = open_path(WORK_DIR "/dwz/p1", "/usr/bin/true");
	CHECK(!dw);
	CHECK_EQ(errno, ESTALE);
	pyx_dwarf__close(dw);

	/* An alt file for a file without an altlink is ignored. */
	dw = open_path(WORK_DIR "/plain-dwarf5", WORK_DIR "/dwz/common.debug");
	if (CHECK(dw)) {
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_outer_t", "in.c", &value), 0);
		CHECK_EQ(value, offsetof(dz_outer_t, in.c));
		pyx_dwarf__close(dw);
	}
}

static void check_errors(void)
{
	struct pyx_dwarf *dw;
	uint64_t value;
	char name[64];
	int fd;

	errno = 0;
	dw = open_path("/usr/bin/true", NULL);
	CHECK(!dw);
	CHECK_EQ(errno, ENODATA);

	errno = 0;
	dw = open_path(PYX_TEST_SRCDIR "/test_dwarf.c", NULL);
	CHECK(!dw);
	CHECK_EQ(errno, ENOEXEC);

	errno = 0;
	CHECK(!pyx_dwarf__open_fd(-1, -1));
	CHECK_EQ(errno, EBADF);

	fd = open(PYX_TEST_SRCDIR "/test_dwarf.c", O_RDONLY | O_CLOEXEC);
	if (CHECK(fd >= 0)) {
		CHECK_EQ(pyx_dwarf__altlink(fd, name, sizeof(name)), -ENOEXEC);
		close(fd);
	}
	CHECK_EQ(pyx_dwarf__altlink(-1, name, sizeof(name)), -EINVAL);

	dw = open_path(WORK_DIR "/plain-dwarf5", NULL);
	if (!CHECK(dw))
		return;
	CHECK_EQ(pyx_dwarf__member_offset(dw, NULL, "p", &value), -EINVAL);
	CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_outer_t", NULL, &value), -EINVAL);
	CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_outer_t", "p", NULL), -EINVAL);
	CHECK_EQ(pyx_dwarf__member_offset(dw, "", "p", &value), -EINVAL);
	CHECK_EQ(pyx_dwarf__member_offset(dw, "struct ", "p", &value), -EINVAL);
	CHECK_EQ(pyx_dwarf__type_size(dw, NULL, &value), -EINVAL);
	CHECK_EQ(pyx_dwarf__type_size(dw, "dz_outer_t", NULL), -EINVAL);
	CHECK_EQ(pyx_dwarf__member_offset(NULL, "dz_outer_t", "p", &value), -EINVAL);
	/* A path longer than any real one, and an overlong component. */
	CHECK_EQ(pyx_dwarf__member_offset(
			 dw, "dz_outer_t",
			 "in.in.in.in.in.in.in.in.in.in.in.in.in.in.in.in.in.in.in.in."
			 "in.in.in.in.in.in.in.in.in.in.in.in.in.in.in",
			 &value),
		 -EINVAL);
	{
		char long_name[400];

		memset(long_name, 'x', sizeof(long_name) - 1);
		long_name[sizeof(long_name) - 1] = '\0';
		CHECK_EQ(pyx_dwarf__member_offset(dw, "dz_outer_t", long_name, &value), -EINVAL);
	}
	pyx_dwarf__close(dw);
	pyx_dwarf__close(NULL);
}

/* ---- damaged DWARF ---- */

struct span {
	uint64_t offset, size;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t debug_spans(const char *path, struct span *spans, size_t max)
{
	size_t n = 0, shstrndx;
	Elf_Scn *scn = NULL;
	Elf *elf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
		while (n < max && (scn = elf_nextscn(elf, scn))) {
			GElf_Shdr shdr;
			const char *name;

			if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
				continue;
			name = elf_strptr(elf, shstrndx, shdr.sh_name);
			if (name && !strncmp(name, ".debug_", 7) && shdr.sh_size)
				spans[n++] = (struct span){shdr.sh_offset, shdr.sh_size};
		}
	}
	elf_end(elf);
	close(fd);
	return n;
}

/*
 * Flip bytes in the DWARF sections (or cut the file short) of @src, or of
 * its @alt file if @damage_alt, and look things up: any result is fine, a
 * crash or a hang is not. The results must still be one of the documented
 * ones.
 */
static void check_damaged(const char *src, const char *alt, bool damage_alt, int rounds)
{
	static const struct field probes[] = {
		F("dz_outer_t", "s2", 0), F("dz_chain_t", "cv.c", 0), F("dz_conf", "b", 0),
		F("dz_own1", "own_d", 0), S("dz_vec_t", 0),	      F("struct dz_inner", "c", 0),
		S("dz_outer_t", 0),	  F("dz_outer_t", "in.b", 0),
	};
	const char *out = WORK_DIR "/damaged", *victim = damage_alt ? alt : src;
	struct span spans[32];
	unsigned char *image, *copy;
	size_t nspans, size, i;
	int round, bad = 0;
	struct stat st;
	FILE *f;

	nspans = debug_spans(victim, spans, ARRAY_LEN(spans));
	f = fopen(victim, "rb");
	if (!CHECK(nspans && f && !fstat(fileno(f), &st))) {
		if (f)
			fclose(f);
		return;
	}
	size = (size_t)st.st_size;
	image = malloc(size);
	copy = malloc(size);
	if (!CHECK(image && copy && fread(image, 1, size, f) == size)) {
		fclose(f);
		free(image);
		free(copy);
		return;
	}
	fclose(f);

	for (round = 0; round < rounds; round++) {
		size_t len = size, flips = 1 + rng() % 16;
		struct pyx_dwarf *dw;

		memcpy(copy, image, size);
		for (i = 0; i < flips; i++) {
			const struct span *s = &spans[rng() % nspans];

			copy[s->offset + rng() % s->size] = (unsigned char)rng();
		}
		if (round % 16 == 15)
			len = rng() % size;
		f = fopen(out, "wb");
		if (!f || fwrite(copy, 1, len, f) != len || fclose(f)) {
			CHECK(!"write damaged copy");
			break;
		}
		dw = damage_alt ? open_path(src, out) : open_path(out, alt);
		if (!dw)
			continue;
		for (i = 0; i < ARRAY_LEN(probes); i++) {
			uint64_t value;
			int err = lookup(dw, &probes[i], &value);

			bad += err && err != -ENOENT && err != -EINVAL;
		}
		pyx_dwarf__close(dw);
	}
	CHECK_EQ(bad, 0);
	free(image);
	free(copy);
}

int main(void)
{
	if (!CHECK(run("rm -rf " WORK_DIR " && mkdir -p " WORK_DIR)))
		return check_done();

	check_interpreters();
	check_variants();
	check_errors();
	check_dwz();
	check_damaged(WORK_DIR "/plain-dwarf5", NULL, false, 400);
	check_damaged(WORK_DIR "/plain-dwarf4-types", NULL, false, 200);
	check_damaged(WORK_DIR "/plain-dwarf2-strict", NULL, false, 200);
	if (exists(WORK_DIR "/dwz/common.debug")) {
		check_damaged(WORK_DIR "/dwz/p1", WORK_DIR "/dwz/common.debug", false, 200);
		check_damaged(WORK_DIR "/dwz/p1", WORK_DIR "/dwz/common.debug", true, 200);
	}
	return check_done();
}
