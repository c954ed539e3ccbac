// SPDX-License-Identifier: GPL-2.0-only
/*
 * user/elf/debuginfo.c: the system's python3.11 (DWARF from python3.11-dbg
 * by build-id), and programs compiled here and laid out in a scratch root
 * in each of the places gdb looks, with matching and mismatching debug files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "testutil.h"
#include "elf/debuginfo.h"

#define PYTHON	 "/usr/bin/python3.11"
#define WORK_DIR PYX_TEST_BUILDDIR "/debuginfo-work"
#define ROOT	 WORK_DIR "/root"

static int open_root(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Look up the debug file of the object at ROOT/@obj_path (the object's own
 * copy, opened from the host side) and compare source and path.
 */
static bool expect_lookup(const char *obj_path, enum pyx_dwarf_source source, const char *path)
{
	char host_path[4096];
	struct pyx_debuginfo info;
	struct pyx_elf *elf;
	int root_fd, err;
	bool ok;

	snprintf(host_path, sizeof(host_path), ROOT "%s%s", obj_path[0] == '/' ? "" : "/",
		 obj_path);
	elf = open_elf_path(host_path);
	root_fd = open_root(ROOT);
	if (!CHECK(elf) || !CHECK(root_fd >= 0)) {
		fprintf(stderr, "  opening %s\n", host_path);
		pyx_elf__close(elf);
		if (root_fd >= 0)
			close(root_fd);
		return false;
	}
	err = pyx_debuginfo__find(root_fd, obj_path, elf, &info);
	ok = CHECK_EQ(err, 0);
	ok &= CHECK_STR(pyx_dwarf_source_name(info.source), pyx_dwarf_source_name(source));
	ok &= CHECK_STR(info.path, path);
	ok &= CHECK_EQ(info.fd >= 0, source == PYX_DWARF_BUILD_ID || source == PYX_DWARF_DEBUGLINK);
	if (!ok)
		fprintf(stderr, "  looking up %s\n", obj_path);
	pyx_debuginfo__release(&info);
	CHECK_EQ(info.fd, -1);
	pyx_elf__close(elf);
	close(root_fd);
	return ok;
}

static void test_names_and_crc(void)
{
	static const char check_input[] = "123456789";
	uint32_t crc;
	int fd;

	CHECK_STR(pyx_dwarf_source_name(PYX_DWARF_NONE), "none");
	CHECK_STR(pyx_dwarf_source_name(PYX_DWARF_EMBEDDED), "embedded");
	CHECK_STR(pyx_dwarf_source_name(PYX_DWARF_BUILD_ID), "build-id");
	CHECK_STR(pyx_dwarf_source_name(PYX_DWARF_DEBUGLINK), "debuglink");

	/* The standard CRC-32 check value, whole and in pieces. */
	CHECK_EQ(pyx_debuglink_crc32(0, check_input, 9), 0xcbf43926);
	CHECK_EQ(pyx_debuglink_crc32(pyx_debuglink_crc32(0, check_input, 4), check_input + 4, 5),
		 0xcbf43926);
	CHECK_EQ(pyx_debuglink_crc32(0, "", 0), 0);

	fd = open("/dev/null", O_RDONLY);
	CHECK(!pyx_debuglink_crc32_fd(fd, &crc));
	CHECK_EQ(crc, 0);
	close(fd);
}

static void test_python(void)
{
	char expected[256], link[256], *build_id;
	struct pyx_debuginfo info;
	struct pyx_elf *elf;
	uint32_t link_crc, file_crc;
	int root_fd;

	elf = open_elf_path(PYTHON);
	if (!CHECK(elf))
		return;
	build_id = capture_output("readelf -n " PYTHON " | awk '/Build ID/ {print $3}'");
	root_fd = open_root("/");
	if (!CHECK(build_id && strlen(build_id) == 40) || !CHECK(root_fd >= 0))
		goto out;
	snprintf(expected, sizeof(expected), "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id,
		 build_id + 2);
	if (access(expected, R_OK))
		fprintf(stderr, "  %s missing: apt-get install python3.11-dbg\n", expected);

	CHECK(!pyx_debuginfo__find(root_fd, PYTHON, elf, &info));
	CHECK_STR(pyx_dwarf_source_name(info.source), "build-id");
	CHECK_STR(info.path, expected);
	if (CHECK(info.fd >= 0)) {
		/* Debian's debuglink names the same file, and its CRC must agree. */
		CHECK(!pyx_elf__debuglink(elf, link, sizeof(link), &link_crc));
		CHECK(!pyx_debuglink_crc32_fd(info.fd, &file_crc));
		CHECK_EQ(file_crc, link_crc);
	}
	pyx_debuginfo__release(&info);
	CHECK_EQ(info.fd, -1);
	CHECK_EQ(info.source, PYX_DWARF_NONE);
	CHECK_EQ(pyx_debuginfo__find(root_fd, NULL, elf, &info), -EINVAL);
	CHECK_EQ(info.fd, -1);
out:
	if (root_fd >= 0)
		close(root_fd);
	free(build_id);
	pyx_elf__close(elf);
}

static const char prog_source[] = "#include <stdio.h>\n"
				  "int pyx_counter = VARIANT;\n"
				  "int main(void)\n"
				  "{\n"
				  "	printf(\"%d\\n\", pyx_counter);\n"
				  "	return 0;\n"
				  "}\n";

/*
 * prog: -g, build-id; prog.stripped + prog.debug split from it; other.debug
 * the debug file of a different build; and the same without build-ids.
 */
static bool build_programs(void)
{
	return run("rm -rf " WORK_DIR " && mkdir -p " WORK_DIR) &&
	       write_file(WORK_DIR "/prog.c", prog_source) &&
	       run("cd " WORK_DIR " && cc -g -O1 -DVARIANT=1 -Wl,--build-id=sha1 prog.c -o prog && "
		   "objcopy --only-keep-debug prog prog.debug && "
		   "objcopy --strip-debug --add-gnu-debuglink=prog.debug prog prog.stripped && "
		   "cc -g -O1 -DVARIANT=2 -Wl,--build-id=sha1 prog.c -o other && "
		   "objcopy --only-keep-debug other other.debug && "
		   "cc -g -O1 -DVARIANT=3 -Wl,--build-id=none prog.c -o noid && "
		   "objcopy --only-keep-debug noid noid.debug && "
		   "objcopy --strip-debug --add-gnu-debuglink=noid.debug noid noid.stripped");
}

/* An empty scratch root with the stripped objects in /usr/bin. */
static bool fresh_root(void)
{
	return run("rm -rf " ROOT " && mkdir -p " ROOT "/usr/bin && cp " WORK_DIR
		   "/prog.stripped " ROOT "/usr/bin/prog && cp " WORK_DIR "/noid.stripped " ROOT
		   "/usr/bin/noid");
}

static void test_embedded(void)
{
	if (!CHECK(run("mkdir -p " ROOT "/usr/bin && cp " WORK_DIR "/prog " ROOT
		       "/usr/bin/prog-g")))
		return;
	expect_lookup("/usr/bin/prog-g", PYX_DWARF_EMBEDDED, "");
}

static void test_debuglink_places(void)
{
	if (!CHECK(fresh_root()))
		return;
	expect_lookup("/usr/bin/prog", PYX_DWARF_NONE, "");

	/* Each of gdb's three places, from the last to the first (the first wins). */
	CHECK(run("mkdir -p " ROOT "/usr/lib/debug/usr/bin && cp " WORK_DIR "/prog.debug " ROOT
		  "/usr/lib/debug/usr/bin/prog.debug"));
	expect_lookup("/usr/bin/prog", PYX_DWARF_DEBUGLINK, "/usr/lib/debug/usr/bin/prog.debug");
	CHECK(run("mkdir -p " ROOT "/usr/bin/.debug && cp " WORK_DIR "/prog.debug " ROOT
		  "/usr/bin/.debug/prog.debug"));
	expect_lookup("/usr/bin/prog", PYX_DWARF_DEBUGLINK, "/usr/bin/.debug/prog.debug");
	CHECK(run("cp " WORK_DIR "/prog.debug " ROOT "/usr/bin/prog.debug"));
	expect_lookup("/usr/bin/prog", PYX_DWARF_DEBUGLINK, "/usr/bin/prog.debug");
	/* A path relative to the root means the same. */
	expect_lookup("usr/bin/prog", PYX_DWARF_DEBUGLINK, "/usr/bin/prog.debug");
}

static void test_build_id_first(void)
{
	char *build_id = capture_output("readelf -n " WORK_DIR "/prog | awk '/Build ID/ {print $3}'");

	if (!CHECK(build_id && strlen(build_id) == 40) || !CHECK(fresh_root()))
		goto out;
	CHECK(run("cp " WORK_DIR "/prog.debug " ROOT "/usr/bin/prog.debug"));
	CHECK(run("mkdir -p " ROOT "/usr/lib/debug/.build-id/%.2s && cp " WORK_DIR
		  "/prog.debug " ROOT "/usr/lib/debug/.build-id/%.2s/%s.debug",
		  build_id, build_id, build_id + 2));
	{
		char expected[256];

		snprintf(expected, sizeof(expected), "/usr/lib/debug/.build-id/%.2s/%s.debug",
			 build_id, build_id + 2);
		expect_lookup("/usr/bin/prog", PYX_DWARF_BUILD_ID, expected);

		/* A stripped object with the right build-id has no DWARF to give. */
		CHECK(run("cp " WORK_DIR "/prog.stripped " ROOT "%s", expected));
		expect_lookup("/usr/bin/prog", PYX_DWARF_DEBUGLINK, "/usr/bin/prog.debug");

		/*
		 * An absolute symlink resolves inside the root: this one reaches
		 * /store/prog.debug of the root, not of the host.
		 */
		CHECK(run("rm -f " ROOT "%s && ln -s /store/prog.debug " ROOT "%s && mkdir -p " ROOT
			  "/store && cp " WORK_DIR "/prog.debug " ROOT "/store/",
			  expected, expected));
		expect_lookup("/usr/bin/prog", PYX_DWARF_BUILD_ID, expected);
	}
out:
	free(build_id);
}

static void test_mismatches(void)
{
	if (!CHECK(fresh_root()))
		return;
	/* Another build's debug file under the right name: build-ids differ. */
	CHECK(run("cp " WORK_DIR "/other.debug " ROOT "/usr/bin/prog.debug"));
	expect_lookup("/usr/bin/prog", PYX_DWARF_NONE, "");

	/* Without build-ids the CRC decides. */
	expect_lookup("/usr/bin/noid", PYX_DWARF_NONE, "");
	CHECK(run("cp " WORK_DIR "/noid.debug " ROOT "/usr/bin/noid.debug"));
	expect_lookup("/usr/bin/noid", PYX_DWARF_DEBUGLINK, "/usr/bin/noid.debug");
	CHECK(run("printf x >> " ROOT "/usr/bin/noid.debug"));
	expect_lookup("/usr/bin/noid", PYX_DWARF_NONE, "");

	/* Not ELF at all, a directory and a FIFO (which must not block us) under the expected names. */
	CHECK(run("echo not-elf > " ROOT "/usr/bin/prog.debug && mkdir -p " ROOT
		  "/usr/bin/.debug/prog.debug " ROOT "/usr/lib/debug/usr/bin && mkfifo " ROOT
		  "/usr/lib/debug/usr/bin/prog.debug"));
	expect_lookup("/usr/bin/prog", PYX_DWARF_NONE, "");
}

/* Symlinks that would reach the host's python3.11 debug file stay inside the scratch root. */
static void test_confinement(void)
{
	char *build_id = capture_output("readelf -n " PYTHON " | awk '/Build ID/ {print $3}'");
	char link_path[512], target[512];

	if (!CHECK(build_id && strlen(build_id) == 40) || !CHECK(fresh_root()))
		goto out;
	snprintf(link_path, sizeof(link_path), ROOT "/usr/lib/debug/.build-id/%.2s/%s.debug",
		 build_id, build_id + 2);
	snprintf(target, sizeof(target), "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id,
		 build_id + 2);
	CHECK(run("cp " PYTHON " " ROOT "/usr/bin/python3.11 && mkdir -p " ROOT
		  "/usr/lib/debug/.build-id/%.2s && ln -s %s %s",
		  build_id, target, link_path));
	expect_lookup("/usr/bin/python3.11", PYX_DWARF_NONE, "");

	/* Enough ".." to leave any root on the host: clamped at the scratch root. */
	CHECK(run("rm -f %s && ln -s ../../../../../../../../../../../../../..%s %s", link_path,
		  target, link_path));
	expect_lookup("/usr/bin/python3.11", PYX_DWARF_NONE, "");
out:
	free(build_id);
}

int main(void)
{
	printf("names and crc\n");
	test_names_and_crc();
	printf("python3.11\n");
	test_python();
	printf("scratch root\n");
	if (CHECK(build_programs())) {
		test_embedded();
		test_debuglink_places();
		test_build_id_first();
		test_mismatches();
		test_confinement();
	}
	run("rm -rf " ROOT);
	return check_done();
}
