// SPDX-License-Identifier: GPL-2.0-only
/*
 * user/unwind/unwind.c against live programs compiled here in several ways
 * (frame pointers, CFI only, no CFI at all, stripped with a debuglink,
 * stripped to .dynsym, C++, dwz), and against a sleeping python3.11.
 *
 * Without BPF to capture a thread, each test program captures itself: in
 * leaf(), inline asm stores rsp, rbp, rbx, r12-r15 and the address of a
 * label, the stack above rsp is copied, all of it goes to a file, and the
 * program blocks. The stack above the capture point does not change while
 * it blocks, so unwinding the copy and reading the live process agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <elfutils/version.h>

#include "check.h"
#include "testutil.h"
#include "target/process.h"
#include "unwind/unwind.h"

#define WORK_DIR   PYX_TEST_BUILDDIR "/unwind-work"
#define PYTHON	   "/usr/bin/python3.11"
#define MAX_FRAMES 64
#define STACK_MAX  (256 * 1024)

/* What leaf() writes, followed by stack_len bytes of stack from sp up. */
struct capture {
	uint64_t magic;
	uint64_t ip, sp, bp, bx, r12, r13, r14, r15;
	uint64_t tid;
	uint64_t stack_len;
};

#define CAPTURE_MAGIC 0x7079786361707475ull

static const char capture_source[] =
	"#define _GNU_SOURCE\n"
	"#include <stdint.h>\n"
	"#include <stdio.h>\n"
	"#include <string.h>\n"
	"#include <sys/syscall.h>\n"
	"#include <unistd.h>\n"
	"struct capture {\n"
	"	uint64_t magic;\n"
	"	uint64_t ip, sp, bp, bx, r12, r13, r14, r15;\n"
	"	uint64_t tid;\n"
	"	uint64_t stack_len;\n"
	"};\n"
	"const char *capture_path;\n"
	"volatile int capture_done;\n"
	"static struct capture cap;\n"
	"static unsigned char stack_copy[256 * 1024];\n"
	"__attribute__((noipa)) static uint64_t stack_end(uint64_t sp)\n"
	"{\n"
	"	unsigned long long lo, hi, end = 0;\n"
	"	FILE *f = fopen(\"/proc/self/maps\", \"r\");\n"
	"	char line[512];\n"
	"	while (f && fgets(line, sizeof(line), f))\n"
	"		if (sscanf(line, \"%llx-%llx\", &lo, &hi) == 2 && sp >= lo && sp < hi)\n"
	"			end = hi;\n"
	"	if (f)\n"
	"		fclose(f);\n"
	"	return end;\n"
	"}\n"
	"__attribute__((noipa)) int leaf(int x)\n"
	"{\n"
	"	char tmp[4096];\n"
	"	uint64_t len;\n"
	"	FILE *f;\n"
	/* A call first: the prologue cannot be shrink-wrapped past the capture. */
	"	cap.tid = (uint64_t)syscall(SYS_gettid);\n"
	"	__asm__ volatile(\"lea 1f(%%rip), %%rax\\n\\t\"\n"
	"			 \"mov %%rax, 8(%0)\\n\\t\"\n"
	"			 \"mov %%rsp, 16(%0)\\n\\t\"\n"
	"			 \"mov %%rbp, 24(%0)\\n\\t\"\n"
	"			 \"mov %%rbx, 32(%0)\\n\\t\"\n"
	"			 \"mov %%r12, 40(%0)\\n\\t\"\n"
	"			 \"mov %%r13, 48(%0)\\n\\t\"\n"
	"			 \"mov %%r14, 56(%0)\\n\\t\"\n"
	"			 \"mov %%r15, 64(%0)\\n\"\n"
	"			 \"1:\\n\\t\"\n"
	"			 : : \"r\"(&cap) : \"rax\", \"memory\");\n"
	"	len = stack_end(cap.sp) - cap.sp;\n"
	"	if (len > sizeof(stack_copy))\n"
	"		len = sizeof(stack_copy);\n"
	"	memcpy(stack_copy, (void *)cap.sp, len);\n"
	"	cap.stack_len = len;\n"
	"	cap.magic = 0x7079786361707475ull;\n"
	"	snprintf(tmp, sizeof(tmp), \"%s.tmp\", capture_path);\n"
	"	f = fopen(tmp, \"w\");\n"
	"	fwrite(&cap, sizeof(cap), 1, f);\n"
	"	fwrite(stack_copy, 1, len, f);\n"
	"	fclose(f);\n"
	"	rename(tmp, capture_path);\n"
	"	while (!capture_done)\n"
	"		pause();\n"
	"	return x + 1;\n"
	"}\n";

/* The marker comments give the test the line of each call. */
static const char c_source[] = "#include <signal.h>\n"
			       "extern const char *capture_path;\n"
			       "int leaf(int x);\n"
			       "int level_a(int x);\n"
			       "volatile int sink;\n"
			       "static inline __attribute__((always_inline)) int helper(int x)\n"
			       "{\n"
			       "	int r = leaf(x * 3); /* @CALL_LEAF */\n"
			       "	return r + 7;\n"
			       "}\n"
			       "__attribute__((noipa)) int level_c(int x)\n"
			       "{\n"
			       "	int r = helper(x + 1); /* @CALL_HELPER */\n"
			       "	return r * 2;\n"
			       "}\n"
			       "static __attribute__((noipa)) int level_b(int x)\n"
			       "{\n"
			       "	return level_c(x + 2) + 3; /* @CALL_C */\n"
			       "}\n"
			       "__attribute__((noipa)) int level_a(int x)\n"
			       "{\n"
			       "	return level_b(x + 3) + 4; /* @CALL_B */\n"
			       "}\n"
			       "static __attribute__((noipa)) void on_signal(int sig)\n"
			       "{\n"
			       "	sink = level_a(sig);\n"
			       "}\n"
			       "int main(int argc, char **argv)\n"
			       "{\n"
			       "	capture_path = argv[1];\n"
			       "	if (argc > 2) {\n"
			       "		signal(SIGUSR1, on_signal);\n"
			       "		raise(SIGUSR1);\n"
			       "		return 0;\n"
			       "	}\n"
			       "	return level_a(argc) - 1; /* @CALL_A */\n"
			       "}\n";

static const char cxx_source[] = "extern \"C\" {\n"
				 "extern const char *capture_path;\n"
				 "int leaf(int x);\n"
				 "}\n"
				 "namespace ns {\n"
				 "static inline __attribute__((always_inline)) int helper(int x)\n"
				 "{\n"
				 "	return leaf(x * 3) + 7;\n"
				 "}\n"
				 "template <typename T> __attribute__((noipa)) T twice(T x)\n"
				 "{\n"
				 "	return helper((int)x) * 2;\n"
				 "}\n"
				 "struct Klass {\n"
				 "	__attribute__((noipa)) int method(int x);\n"
				 "};\n"
				 "int Klass::method(int x)\n"
				 "{\n"
				 "	return twice<int>(x + 1) + 1;\n"
				 "}\n"
				 "} // namespace ns\n"
				 "int main(int argc, char **argv)\n"
				 "{\n"
				 "	ns::Klass k;\n"
				 "	capture_path = argv[1];\n"
				 "	return k.method(argc) - 1;\n"
				 "}\n";

#define CFI_FLAGS "-O2 -g -fomit-frame-pointer -fasynchronous-unwind-tables"
#define FP_FLAGS  "-O2 -g -fno-omit-frame-pointer"

static bool build_programs(void)
{
	return run("rm -rf " WORK_DIR " && mkdir -p " WORK_DIR) &&
	       write_file(WORK_DIR "/capture.c", capture_source) &&
	       write_file(WORK_DIR "/target.c", c_source) &&
	       write_file(WORK_DIR "/target.cc", cxx_source) &&
	       run("cd " WORK_DIR " && cc " FP_FLAGS " target.c capture.c -o prog-fp") &&
	       run("cd " WORK_DIR " && cc " CFI_FLAGS " target.c capture.c -o prog-cfi") &&
	       /* No CFI at all (no -g either: it would bring .debug_frame). */
	       run("cd " WORK_DIR
		   " && cc -O2 -fno-omit-frame-pointer -fno-asynchronous-unwind-tables "
		   "-fno-unwind-tables target.c capture.c -o prog-nocfi") &&
	       run("cd " WORK_DIR " && cp prog-cfi prog-dl && "
		   "objcopy --only-keep-debug prog-dl prog-dl.debug && strip --strip-all prog-dl && "
		   "objcopy --add-gnu-debuglink=prog-dl.debug prog-dl") &&
	       run("cd " WORK_DIR " && cc " CFI_FLAGS
		   " -rdynamic target.c capture.c -o prog-dyn-full && "
		   "cp prog-dyn-full prog-dyn && strip --strip-all prog-dyn") &&
	       run("cd " WORK_DIR " && cc " CFI_FLAGS " -c capture.c -o capture.o && "
		   "g++ " CFI_FLAGS " target.cc capture.o -o prog-cxx");
}

/*
 * Two builds sharing their DWARF, moved by dwz into a common alt file, then
 * split and stripped as distributions do. Optional: dwz may be missing.
 */
static bool build_dwz(void)
{
	return run(
		"cd " WORK_DIR " && cc " FP_FLAGS " target.c capture.c -o prog-dwz1 && "
		"cc " CFI_FLAGS " target.c capture.c -o prog-dwz2 && "
		"dwz -m " WORK_DIR "/common.debug -M " WORK_DIR "/common.debug "
		"prog-dwz1 prog-dwz2 2>/dev/null && "
		"readelf -S prog-dwz1 | grep -q gnu_debugaltlink && "
		"objcopy --only-keep-debug prog-dwz1 prog-dwz1.debug && strip --strip-all prog-dwz1 && "
		"objcopy --add-gnu-debuglink=prog-dwz1.debug prog-dwz1");
}

/* Line of the source line holding @marker, 0 when absent. */
static int line_of(const char *source, const char *marker)
{
	const char *at = strstr(source, marker), *p;
	int line = 1;

	if (!at)
		return 0;
	for (p = source; p < at; p++)
		line += *p == '\n';
	return line;
}

/* Link-time address and size of a function, from nm on an unstripped file. */
static bool nm_function(const char *path, const char *name, uint64_t *addr, uint64_t *size)
{
	char *out = capture_output("nm -S %s | awk '$4 == \"%s\" {print $1, $2}'", path, name);
	unsigned long long a, s;
	bool ok = out && sscanf(out, "%llx %llx", &a, &s) == 2;

	free(out);
	if (ok) {
		*addr = a;
		*size = s;
	}
	return ok;
}

struct target {
	pid_t pid;
	struct capture cap;
	uint8_t *stack;
	char exe[256];
};

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void target_stop(struct target *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
	}
	t->pid = 0;
	free(t->stack);
	t->stack = NULL;
}

/* Start @name from WORK_DIR (@arg: a second argument or NULL), wait for its capture and block. */
static bool target_start_arg(struct target *t, const char *name, const char *arg)
{
	char out[256];
	int i, fd;

	memset(t, 0, sizeof(*t));
	snprintf(t->exe, sizeof(t->exe), WORK_DIR "/%s", name);
	snprintf(out, sizeof(out), WORK_DIR "/%s.capture", name);
	unlink(out);
	t->pid = fork();
	if (t->pid < 0)
		return false;
	if (t->pid == 0) {
		execl(t->exe, t->exe, out, arg, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 1000 && access(out, F_OK); i++)
		sleep_ms(10);
	fd = open(out, O_RDONLY);
	if (fd < 0)
		goto fail;
	if (read(fd, &t->cap, sizeof(t->cap)) != sizeof(t->cap) || t->cap.magic != CAPTURE_MAGIC ||
	    t->cap.stack_len > STACK_MAX || !(t->stack = malloc(t->cap.stack_len + 1)) ||
	    read(fd, t->stack, t->cap.stack_len) != (ssize_t)t->cap.stack_len) {
		close(fd);
		goto fail;
	}
	close(fd);
	/* Blocked in pause(): its stack above the capture point stays as copied. */
	for (i = 0; i < 500 && pyx_task_state(t->pid) != 'S'; i++)
		sleep_ms(10);
	if (pyx_task_state(t->pid) == 'S')
		return true;
fail:
	target_stop(t);
	return false;
}

static bool target_start(struct target *t, const char *name)
{
	return target_start_arg(t, name, NULL);
}

static void target_regs(const struct target *t, struct pyx_regs *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->ip = t->cap.ip;
	regs->sp = t->cap.sp;
	regs->bp = t->cap.bp;
	regs->bx = t->cap.bx;
	regs->r12 = t->cap.r12;
	regs->r13 = t->cap.r13;
	regs->r14 = t->cap.r14;
	regs->r15 = t->cap.r15;
}

static int target_unwind(const struct target *t, struct pyx_unwinder *u, size_t stack_len,
			 bool stack_only, struct pyx_native_frame *frames, size_t max, size_t *n)
{
	struct pyx_stack_copy stack = {
		.start = t->cap.sp,
		.data = t->stack,
		.len = stack_len < t->cap.stack_len ? stack_len : t->cap.stack_len,
	};
	struct pyx_regs regs;

	target_regs(t, &regs);
	return pyx_unwinder__unwind(u, (pid_t)t->cap.tid, &regs, &stack, stack_only, frames, max,
				    n);
}

static void print_frames(const char *title, const struct pyx_native_frame *f, size_t n)
{
	size_t i;

	printf("  %s: %zu frames\n", title, n);
	for (i = 0; i < n; i++) {
		const char *file = f[i].file ? strrchr(f[i].file, '/') : NULL;

		printf("    #%-2zu %#014" PRIx64 " %s+%#" PRIx64 " %s%s", i, f[i].pc,
		       f[i].object ? pyx_basename(f[i].object) : "?", f[i].object_offset,
		       f[i].symbol ? f[i].symbol : "??", f[i].inlined ? " [inlined]" : "");
		if (f[i].symbol)
			printf("+%#" PRIx64, f[i].symbol_offset);
		if (f[i].file)
			printf(" at %s:%d", file ? file + 1 : f[i].file, f[i].line);
		printf("\n");
	}
}

struct expect {
	const char *symbol; /* NULL: expect no symbol */
	bool inlined;
	const char *file; /* base name, NULL: do not check */
	int line;	  /* 0: do not check */
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = s ? strlen(s) : 0, b = strlen(suffix);

	return s && a >= b && !strcmp(s + a - b, suffix);
}

/* The frames start with @want, in @exe, and go on into libc. */
static void check_chain(const struct pyx_native_frame *f, size_t n, const struct expect *want,
			size_t nwant, const char *exe)
{
	size_t i;

	if (!CHECK(n > nwant))
		return;
	for (i = 0; i < nwant; i++) {
		if (want[i].symbol)
			CHECK_STR(f[i].symbol, want[i].symbol);
		else
			CHECK(!f[i].symbol);
		CHECK_EQ(f[i].inlined, want[i].inlined);
		CHECK_STR(f[i].object, exe);
		if (want[i].file && CHECK(ends_with(f[i].file, want[i].file)) && want[i].line)
			CHECK_EQ(f[i].line, want[i].line);
		if (!want[i].file)
			CHECK(!f[i].file);
		if (f[i].symbol)
			CHECK_EQ(f[i].symbol_start + f[i].symbol_offset, f[i].lookup_pc);
		/* Return addresses are looked up inside the call. */
		CHECK_EQ(f[i].lookup_pc, i == 0 ? f[i].pc : f[i].pc - 1);
	}
	/* main's caller: __libc_start_call_main in libc. */
	CHECK(f[nwant].object && strstr(pyx_basename(f[nwant].object), "libc.so"));
	if (f[nwant].symbol)
		CHECK_STR(f[nwant].symbol, "__libc_start_call_main");
}

static int call_leaf_line, call_helper_line, call_c_line, call_b_line, call_a_line;

/* The C program with DWARF: inlined helper expanded, lines from DWARF. */
static void expect_full_c(struct expect want[7])
{
	const struct expect full[7] = {
		{"leaf", false, "capture.c", 0},
		{"helper", true, "target.c", call_leaf_line},
		{"level_c", false, "target.c", call_helper_line},
		{"level_b", false, "target.c", call_c_line},
		{"level_a", false, "target.c", call_b_line},
		{"main", false, "target.c", call_a_line},
	};

	memcpy(want, full, sizeof(full));
}

static struct pyx_unwinder *open_unwinder(pid_t pid, struct pyx_process **proc)
{
	struct pyx_unwinder *u;

	*proc = NULL;
	if (!CHECK_EQ(pyx_process__open(pid, proc), 0))
		return NULL;
	u = pyx_unwinder__new(*proc);
	CHECK(u);
	return u;
}

/* Unwind @name with its capture (live reads allowed) and compare to @want. */
static void test_variant(const char *name, const struct expect *want, size_t nwant,
			 struct pyx_unwind_stats *stats_out)
{
	struct pyx_native_frame frames[MAX_FRAMES];
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	struct target t;
	size_t n = 0;

	printf("%s\n", name);
	if (!CHECK(target_start(&t, name)))
		return;
	u = open_unwinder(t.pid, &proc);
	if (u && CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0)) {
		print_frames(name, frames, n);
		check_chain(frames, n, want, nwant, t.exe);
		if (stats_out)
			pyx_unwinder__stats(u, stats_out);
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

static void test_fp_and_cfi(void)
{
	struct pyx_unwind_stats stats;
	struct expect want[7];

	expect_full_c(want);
	test_variant("prog-fp", want, 6, NULL);
	test_variant("prog-cfi", want, 6, &stats);
	/* Everything here has CFI: no frame-pointer guesses. */
	CHECK_EQ(stats.fp_frames, 0);
	CHECK(stats.frames >= 7);
	CHECK(stats.stack_reads > 0);
}

/* Stripped, with the split debug file next to it through .gnu_debuglink. */
static void test_debuglink(void)
{
	struct pyx_unwind_stats stats;
	struct expect want[7];

	expect_full_c(want);
	test_variant("prog-dl", want, 6, &stats);
	CHECK(stats.debug_files >= 1);
}

/*
 * Stripped to .dynsym (exported with -rdynamic), no debug file: exported
 * functions keep their names, static level_b has none (its code follows
 * level_c's, which must not be given its name), no inlined frames, no lines.
 */
static void test_dynsym_only(void)
{
	const struct expect want[] = {
		{"leaf", false, NULL, 0},    {"level_c", false, NULL, 0}, {NULL, false, NULL, 0},
		{"level_a", false, NULL, 0}, {"main", false, NULL, 0},
	};
	struct pyx_native_frame frames[MAX_FRAMES];
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	uint64_t addr, size;
	struct target t;
	size_t n = 0;

	printf("prog-dyn\n");
	if (!CHECK(target_start(&t, "prog-dyn")))
		return;
	u = open_unwinder(t.pid, &proc);
	if (u && CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0)) {
		print_frames("prog-dyn", frames, n);
		check_chain(frames, n, want, sizeof(want) / sizeof(want[0]), t.exe);
		/* object_offset is the link-time address: nm's, on the unstripped twin. */
		if (n > 2 &&
		    CHECK(nm_function(WORK_DIR "/prog-dyn-full", "level_b", &addr, &size))) {
			CHECK(frames[2].object_offset >= addr);
			CHECK(frames[2].object_offset < addr + size);
		}
		if (n > 1 && CHECK(nm_function(WORK_DIR "/prog-dyn-full", "level_c", &addr, &size)))
			CHECK_EQ(frames[1].symbol_start - frames[1].lookup_pc +
					 frames[1].object_offset,
				 addr);
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

/* No CFI in the program: libdwfl's x86-64 backend follows rbp. */
static void test_frame_pointers_only(void)
{
	const struct expect want[] = {
		{"leaf", false, NULL, 0},    {"level_c", false, NULL, 0},
		{"level_b", false, NULL, 0}, {"level_a", false, NULL, 0},
		{"main", false, NULL, 0},
	};
	struct pyx_native_frame frames[MAX_FRAMES], loop[4];
	struct pyx_unwind_stats stats;
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	struct target t;
	size_t n = 0, m = 0;

	printf("prog-nocfi\n");
	if (!CHECK(target_start(&t, "prog-nocfi")))
		return;
	u = open_unwinder(t.pid, &proc);
	if (u && CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0)) {
		print_frames("prog-nocfi", frames, n);
		check_chain(frames, n, want, sizeof(want) / sizeof(want[0]), t.exe);
		pyx_unwinder__stats(u, &stats);
		printf("  frames unwound by frame pointer: %" PRIu64 " of %" PRIu64 "\n",
		       stats.fp_frames, stats.frames);
#if _ELFUTILS_VERSION >= 192
		/* level_c, level_b, level_a, main and main's caller. */
		CHECK(stats.fp_frames >= 5);
#endif
	}
	/*
	 * A frame-pointer chain that loops (saved rbp pointing at itself) must
	 * end rather than repeat: level_b -> level_c -> stop.
	 */
	if (u && n > 3) {
		uint64_t fake[4], base = t.cap.sp - 4096;
		struct pyx_stack_copy stack = {
			.start = base, .data = (uint8_t *)fake, .len = sizeof(fake)};
		struct pyx_regs regs = {.ip = frames[3].pc, .sp = base, .bp = base};

		fake[0] = base;
		fake[1] = frames[2].pc;
		fake[2] = fake[3] = 0;
		CHECK_EQ(
			pyx_unwinder__unwind(u, (pid_t)t.cap.tid, &regs, &stack, true, loop, 4, &m),
			0);
		print_frames("looping frame pointers", loop, m);
		CHECK_EQ(m, 2);
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

static void test_cxx(void)
{
	const struct expect want[] = {
		{"leaf", false, "capture.c", 0},
		{"ns::helper", true, "target.cc", 0},
		{"int ns::twice<int>(int)", false, "target.cc", 0},
		{"ns::Klass::method(int)", false, "target.cc", 0},
		{"main", false, "target.cc", 0},
	};
	struct pyx_native_frame frames[MAX_FRAMES];
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	struct target t;
	size_t n = 0;

	printf("prog-cxx\n");
	if (!CHECK(target_start(&t, "prog-cxx")))
		return;
	u = open_unwinder(t.pid, &proc);
	if (u && CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0)) {
		print_frames("prog-cxx", frames, n);
		check_chain(frames, n, want, sizeof(want) / sizeof(want[0]), t.exe);
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

static void test_dwz(void)
{
	struct pyx_unwind_stats stats;
	struct expect want[7];

	if (!build_dwz()) {
		printf("prog-dwz1: skipped (dwz missing or nothing to share)\n");
		return;
	}
	expect_full_c(want);
	test_variant("prog-dwz1", want, 6, &stats);
	CHECK_EQ(stats.alt_files, 1);
}

/*
 * leaf() called from a signal handler: through the kernel's signal frame
 * (libc's __restore_rt, described by its CFI) into the interrupted code,
 * whose pc is where it was stopped, not a return address: no "- 1".
 */
static void test_signal_frame(void)
{
	struct pyx_native_frame frames[MAX_FRAMES];
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	size_t n = 0, i, restore = 0, main_at = 0;
	struct target t;

	printf("prog-cfi, in a signal handler\n");
	if (!CHECK(target_start_arg(&t, "prog-cfi", "signal")))
		return;
	u = open_unwinder(t.pid, &proc);
	if (u && CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0)) {
		print_frames("prog-cfi signal", frames, n);
		for (i = 0; i < n; i++) {
			if (!frames[i].symbol)
				continue;
			if (!restore && !strcmp(frames[i].symbol, "__restore_rt"))
				restore = i;
			if (!main_at && !strcmp(frames[i].symbol, "main"))
				main_at = i;
		}
		CHECK(n > 5 && frames[5].symbol && !strcmp(frames[5].symbol, "on_signal"));
		if (CHECK(restore > 5 && restore + 1 < n)) {
			/* __restore_rt is entered, not called; the interrupted pc is exact. */
			CHECK_EQ(frames[restore].lookup_pc, frames[restore].pc);
			CHECK_EQ(frames[restore + 1].lookup_pc, frames[restore + 1].pc);
		}
		CHECK(main_at > restore);
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

/* A pc in [vdso], which is no file: reported from the target's memory. */
static void test_vdso(void)
{
	uint64_t self_lo = 0, self_hi = 0, lo = 0, hi = 0;
	struct pyx_native_frame frames[4];
	struct pyx_elf_sym sym = {0};
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	struct pyx_elf *vdso;
	struct pyx_regs regs;
	struct target t;
	char *line;
	size_t n = 0;

	printf("[vdso]\n");
	line = capture_output("grep '\\[vdso\\]' /proc/%d/maps", (int)getpid());
	if (!CHECK(line && sscanf(line, "%" SCNx64 "-%" SCNx64, &self_lo, &self_hi) == 2)) {
		free(line);
		return;
	}
	free(line);
	/* The kernel maps the same image into every process: ours gives the symbol. */
	vdso = pyx_elf__open_mem((const void *)(uintptr_t)self_lo, self_hi - self_lo);
	if (!CHECK(vdso) || !CHECK(!pyx_elf__find_symbol(vdso, "__vdso_clock_gettime", &sym))) {
		pyx_elf__close(vdso);
		return;
	}
	pyx_elf__close(vdso);
	if (!CHECK(target_start(&t, "prog-cfi")))
		return;
	line = capture_output("grep '\\[vdso\\]' /proc/%d/maps", (int)t.pid);
	CHECK(line && sscanf(line, "%" SCNx64 "-%" SCNx64, &lo, &hi) == 2);
	free(line);
	u = open_unwinder(t.pid, &proc);
	if (u && lo) {
		target_regs(&t, &regs);
		regs.ip = lo + sym.value + 4;
		CHECK_EQ(
			pyx_unwinder__unwind(u, (pid_t)t.cap.tid, &regs, NULL, true, frames, 4, &n),
			0);
		print_frames("pc in __vdso_clock_gettime", frames, n > 1 ? 1 : n);
		if (CHECK(n >= 1)) {
			CHECK_STR(frames[0].object, "[vdso]");
			CHECK(ends_with(frames[0].symbol, "clock_gettime"));
			CHECK_EQ(frames[0].symbol_start, lo + sym.value);
			CHECK_EQ(frames[0].symbol_offset, 4);
		}
	}
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

/*
 * @stack_only: nothing is read from the process, a truncated copy just ends
 * the unwind early; and the unwinder still symbolizes after the process is
 * gone.
 */
static void test_stack_only(void)
{
	struct pyx_native_frame frames[MAX_FRAMES], again[MAX_FRAMES];
	struct pyx_unwind_stats before, after;
	struct pyx_process *proc;
	struct pyx_unwinder *u;
	struct pyx_regs regs;
	struct target t;
	size_t n = 0, m = 0, i;

	printf("stack_only\n");
	if (!CHECK(target_start(&t, "prog-cfi")))
		return;
	u = open_unwinder(t.pid, &proc);
	if (!u)
		goto out;

	/* 16 bytes hold no return address: leaf only, and no live read tried. */
	pyx_unwinder__stats(u, &before);
	CHECK_EQ(target_unwind(&t, u, 16, true, frames, MAX_FRAMES, &n), 0);
	pyx_unwinder__stats(u, &after);
	print_frames("16-byte copy, stack_only", frames, n);
	CHECK(n >= 1 && n <= 2);
	if (n)
		CHECK_STR(frames[0].symbol, "leaf");
	CHECK_EQ(after.live_reads, before.live_reads);
	CHECK(after.failed_reads > before.failed_reads);

	/* The same truncated copy with live reads: the process supplies the rest. */
	CHECK_EQ(target_unwind(&t, u, 16, false, frames, MAX_FRAMES, &n), 0);
	pyx_unwinder__stats(u, &before);
	CHECK(before.live_reads > after.live_reads);
	CHECK(n > 6);

	/* The whole copy: the full stack without a single live read. */
	pyx_unwinder__stats(u, &before);
	CHECK_EQ(target_unwind(&t, u, STACK_MAX, true, frames, MAX_FRAMES, &n), 0);
	pyx_unwinder__stats(u, &after);
	CHECK_EQ(after.live_reads, before.live_reads);
	CHECK(n > 6);
	CHECK(after.cache_hits > before.cache_hits);

	/* At most @max frames, an inlined one included. */
	CHECK_EQ(target_unwind(&t, u, STACK_MAX, true, again, 3, &m), 0);
	if (CHECK_EQ(m, 3)) {
		CHECK_STR(again[1].symbol, "helper");
		CHECK_STR(again[2].symbol, "level_c");
	}

	/* Gone: the reported modules, their DWARF and the cache outlive it. */
	kill(t.pid, SIGKILL);
	waitpid(t.pid, NULL, 0);
	t.pid = 0;
	CHECK_EQ(target_unwind(&t, u, STACK_MAX, true, again, MAX_FRAMES, &m), 0);
	if (CHECK_EQ(m, n)) {
		for (i = 0; i < n; i++) {
			CHECK_EQ(again[i].pc, frames[i].pc);
			CHECK(again[i].symbol == frames[i].symbol);
			CHECK_EQ(again[i].line, frames[i].line);
		}
	}
	/* Live reads of a dead process fail: the unwind ends, no error. */
	CHECK_EQ(target_unwind(&t, u, 16, false, again, MAX_FRAMES, &m), 0);
	CHECK(m >= 1 && m <= 2);

	/* A pc outside every object: that one frame, unnamed; pc 0: none. */
	target_regs(&t, &regs);
	regs.ip = 0x1000;
	CHECK_EQ(
		pyx_unwinder__unwind(u, (pid_t)t.cap.tid, &regs, NULL, true, again, MAX_FRAMES, &m),
		0);
	if (CHECK_EQ(m, 1)) {
		CHECK(!again[0].object);
		CHECK(!again[0].symbol);
		CHECK_EQ(again[0].pc, 0x1000);
	}
	regs.ip = 0;
	CHECK_EQ(
		pyx_unwinder__unwind(u, (pid_t)t.cap.tid, &regs, NULL, true, again, MAX_FRAMES, &m),
		0);
	CHECK_EQ(m, 0);
	CHECK_EQ(pyx_unwinder__unwind(u, (pid_t)t.cap.tid, NULL, NULL, true, again, MAX_FRAMES, &m),
		 -EINVAL);
	CHECK_EQ(pyx_unwinder__unwind(u, 0, &regs, NULL, true, again, MAX_FRAMES, &m), -EINVAL);
out:
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * A sleeping python3.11, captured without ptrace: /proc/PID/syscall gives sp
 * and pc of a thread blocked in a system call, process_vm_readv its stack.
 * The other registers are unknown (0): CFI does not need them here.
 */
static bool capture_blocked(pid_t pid, struct pyx_regs *regs, uint8_t *stack, size_t *len)
{
	char path[64], buf[512], *last, *prev;
	unsigned long long lo, hi, sp = 0, pc = 0;
	struct iovec local, remote;
	ssize_t got;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0 || buf[0] < '0' || buf[0] > '9')
		return false;
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	last = strrchr(buf, ' ');
	if (!last)
		return false;
	*last = '\0';
	prev = strrchr(buf, ' ');
	if (!prev || sscanf(prev + 1, "%llx", &sp) != 1 || sscanf(last + 1, "%llx", &pc) != 1)
		return false;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	hi = 0;
	while (f && fgets(buf, sizeof(buf), f)) {
		unsigned long long a, b;

		if (sscanf(buf, "%llx-%llx", &a, &b) == 2 && sp >= a && sp < b)
			hi = b;
	}
	if (f)
		fclose(f);
	lo = sp;
	if (!hi)
		return false;
	*len = hi - lo < STACK_MAX ? hi - lo : STACK_MAX;
	local = (struct iovec){.iov_base = stack, .iov_len = *len};
	remote = (struct iovec){.iov_base = (void *)(uintptr_t)lo, .iov_len = *len};
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)*len)
		return false;
	memset(regs, 0, sizeof(*regs));
	regs->sp = sp;
	regs->ip = pc;
	return true;
}

/* Resident set of this process, in KiB. */
static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_python(void)
{
	struct pyx_native_frame frames[MAX_FRAMES];
	double t0, t_new, t_first = 0, t_rest = 0;
	struct pyx_unwind_stats stats;
	long rss_before, rss_after;
	struct pyx_process *proc = NULL;
	struct pyx_unwinder *u = NULL;
	bool eval = false, main_seen = false;
	struct pyx_stack_copy stack;
	struct pyx_regs regs;
	uint8_t *copy = malloc(STACK_MAX);
	size_t n = 0, len = 0, i;
	pid_t pid;
	int round;

	printf("python3.11\n");
	if (access(PYTHON, X_OK) || !copy) {
		printf("  skipped: no " PYTHON "\n");
		free(copy);
		return;
	}
	pid = fork();
	if (pid == 0) {
		execl(PYTHON, PYTHON, "-c", "import time\ndef f():\n    time.sleep(1000)\nf()\n",
		      (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && !capture_blocked(pid, &regs, copy, &len); i++)
		sleep_ms(10);
	if (!CHECK(i < 500))
		goto out;
	stack = (struct pyx_stack_copy){.start = regs.sp, .data = copy, .len = len};

	rss_before = rss_kib();
	t0 = now_us();
	if (!CHECK_EQ(pyx_process__open(pid, &proc), 0))
		goto out;
	u = pyx_unwinder__new(proc);
	t_new = now_us() - t0;
	if (!CHECK(u))
		goto out;
	for (round = 0; round < 20; round++) {
		t0 = now_us();
		CHECK_EQ(pyx_unwinder__unwind(u, pid, &regs, &stack, false, frames, MAX_FRAMES, &n),
			 0);
		if (round == 0)
			t_first = now_us() - t0;
		else
			t_rest += now_us() - t0;
	}
	rss_after = rss_kib();
	print_frames("python3.11 in time.sleep()", frames, n);
	for (i = 0; i < n; i++) {
		eval |= frames[i].symbol && !strcmp(frames[i].symbol, "_PyEval_EvalFrameDefault");
		/* main tail-calls Py_BytesMain: no frame of its own. */
		main_seen |= frames[i].symbol && !strcmp(frames[i].symbol, "Py_BytesMain");
	}
	CHECK(eval);
	CHECK(main_seen);
	pyx_unwinder__stats(u, &stats);
	printf("  %zu modules, %zu debug files; new (incl. process open) %.0f us, "
	       "first unwind %.0f us, then %.1f us per unwind (%" PRIu64 " cache hits, %" PRIu64
	       " misses); RSS +%ld KiB\n",
	       stats.modules, stats.debug_files, t_new, t_first, t_rest / 19, stats.cache_hits,
	       stats.cache_misses, rss_after - rss_before);
out:
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(copy);
}

/* The same timing on the small C program. */
static void test_timing_c(void)
{
	struct pyx_native_frame frames[MAX_FRAMES];
	struct pyx_process *proc = NULL;
	struct pyx_unwinder *u = NULL;
	double t0, t_new, t_first = 0, t_rest = 0;
	struct target t;
	size_t n;
	int round;

	printf("timing prog-fp\n");
	if (!CHECK(target_start(&t, "prog-fp")))
		return;
	t0 = now_us();
	if (CHECK_EQ(pyx_process__open(t.pid, &proc), 0))
		u = pyx_unwinder__new(proc);
	t_new = now_us() - t0;
	for (round = 0; u && round < 20; round++) {
		t0 = now_us();
		CHECK_EQ(target_unwind(&t, u, STACK_MAX, false, frames, MAX_FRAMES, &n), 0);
		if (round == 0)
			t_first = now_us() - t0;
		else
			t_rest += now_us() - t0;
	}
	printf("  new (incl. process open) %.0f us, first unwind %.0f us, then %.1f us per unwind\n",
	       t_new, t_first, t_rest / 19);
	pyx_unwinder__free(u);
	pyx_process__close(proc);
	target_stop(&t);
}

int main(void)
{
	call_leaf_line = line_of(c_source, "@CALL_LEAF");
	call_helper_line = line_of(c_source, "@CALL_HELPER");
	call_c_line = line_of(c_source, "@CALL_C");
	call_b_line = line_of(c_source, "@CALL_B");
	call_a_line = line_of(c_source, "@CALL_A");

	if (!CHECK(build_programs())) {
		fprintf(stderr, "  building test programs failed\n");
		return check_done();
	}
	test_fp_and_cfi();
	test_debuglink();
	test_dynsym_only();
	test_frame_pointers_only();
	test_cxx();
	test_dwz();
	test_signal_frame();
	test_vdso();
	test_stack_only();
	test_timing_c();
	test_python();
	return check_done();
}
