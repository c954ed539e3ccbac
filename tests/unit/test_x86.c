// SPDX-License-Identifier: GPL-2.0-only
/*
 * Probe placement and code following (user/elf/x86.c) on hand-assembled
 * x86-64: where a probe goes on a handler or a function entry, and the
 * first call of a fall-through path with its argument registers.
 */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "elf/x86.h"

#define ADDR 0x1000

static void test_plan_straight(void)
{
	/* mov (%rbx),%rax; add $1,%eax; je +2; nop; nop: the je, 6 bytes in. */
	static const uint8_t handler[] = {0x48, 0x8b, 0x03, 0x83, 0xc0,
					  0x01, 0x74, 0x02, 0x90, 0x90};
	/* mov (%rbx),%rax; jmp *%rax: nothing cheap before the indirect jump. */
	static const uint8_t dispatch[] = {0x48, 0x8b, 0x03, 0xff, 0xe0, 0x90};
	struct pyx_x86_entry_plan plan;

	if (CHECK_EQ(pyx_x86_plan_straight(handler, sizeof(handler), ADDR, &plan), 0)) {
		CHECK_EQ(plan.delta, 6);
		CHECK_EQ(plan.cls, PYX_PROBE_EMULATED);
		CHECK_EQ(plan.entry_cls, PYX_PROBE_SINGLESTEP);
	}
	if (CHECK_EQ(pyx_x86_plan_straight(dispatch, sizeof(dispatch), ADDR, &plan), 0)) {
		CHECK_EQ(plan.delta, 0);
		CHECK_EQ(plan.cls, PYX_PROBE_SINGLESTEP);
	}
}

static void test_plan_entry(void)
{
	/* endbr64; push %rbp: past the endbr64. */
	static const uint8_t plain[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0xc3};
	/* endbr64; mov %rdi,%rsi; push %rbp: the push would see a changed argument. */
	static const uint8_t clobbers[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x89, 0xfe, 0x55, 0xc3};
	struct pyx_x86_entry_plan plan;

	if (CHECK_EQ(pyx_x86_plan_entry(plain, sizeof(plain), ADDR, &plan), 0)) {
		CHECK_EQ(plan.delta, 4);
		CHECK_EQ(plan.cls, PYX_PROBE_EMULATED);
	}
	if (CHECK_EQ(pyx_x86_plan_entry(clobbers, sizeof(clobbers), ADDR, &plan), 0)) {
		CHECK_EQ(plan.delta, 0);
		CHECK_EQ(plan.cls, PYX_PROBE_SINGLESTEP);
	}
}

static void test_first_call(void)
{
	/* mov %rbp,%rdi; call +0x10: f(frame). */
	static const uint8_t one_arg[] = {0x48, 0x89, 0xef, 0xe8, 0x10, 0x00, 0x00, 0x00, 0x90};
	/* mov %rbx,%rsi; test %eax,%eax; jne +5; call -0x20: f(tstate, frame), past a jcc. */
	static const uint8_t two_args[] = {0x48, 0x89, 0xde, 0x85, 0xc0, 0x75, 0x05,
					   0xe8, 0xe0, 0xff, 0xff, 0xff, 0x90};
	/* jmp +0x30: continue there. */
	static const uint8_t jumps[] = {0x48, 0x89, 0xef, 0xeb, 0x30, 0x90};
	/* ret: no call on this path. */
	static const uint8_t returns[] = {0x48, 0x89, 0xef, 0xc3, 0xe8, 0, 0, 0, 0};
	uint64_t target = 0;
	bool sets_arg2 = false;

	if (CHECK_EQ(pyx_x86_first_call(one_arg, sizeof(one_arg), ADDR, &target, &sets_arg2), 0)) {
		CHECK_EQ(target, ADDR + 8 + 0x10);
		CHECK(!sets_arg2);
	}
	sets_arg2 = false;
	if (CHECK_EQ(pyx_x86_first_call(two_args, sizeof(two_args), ADDR, &target, &sets_arg2),
		     0)) {
		CHECK_EQ(target, ADDR + 12 - 0x20);
		CHECK(sets_arg2);
	}
	if (CHECK_EQ(pyx_x86_first_call(jumps, sizeof(jumps), ADDR, &target, &sets_arg2), 1))
		CHECK_EQ(target, ADDR + 5 + 0x30);
	CHECK_EQ(pyx_x86_first_call(returns, sizeof(returns), ADDR, &target, &sets_arg2), -ENOENT);
}

static void test_branches_into(void)
{
	/* je +2 at 0x1000 lands at 0x1004; a cut-off last instruction is not "unknown code". */
	static const uint8_t code[] = {0x74, 0x02, 0x90, 0x90, 0x90, 0xe8, 0x00};

	CHECK(pyx_x86_branches_into(code, sizeof(code), ADDR, ADDR, ADDR + 4));
	CHECK(!pyx_x86_branches_into(code, sizeof(code), ADDR, ADDR + 4, ADDR + 6));
}

int main(void)
{
	test_plan_straight();
	test_plan_entry();
	test_first_call();
	test_branches_into();
	return check_done();
}
