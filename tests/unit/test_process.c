// SPDX-License-Identifier: GPL-2.0-only
/* Container ids from cgroup paths, and /proc parsing against this very process. */
#include <errno.h>
#include <unistd.h>

#include "check.h"
#include "target/container.h"
#include "target/process.h"

#define ID "3f2a9c1b7d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"

static void test_cgroup_forms(void)
{
	static const char *const with_id[] = {
		"/docker/" ID,
		"/system.slice/docker-" ID ".scope",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b_3c4d.slice/cri-containerd-" ID ".scope",
		"/kubepods.slice/kubepods-burstable.slice/crio-" ID ".scope",
		"/machine.slice/libpod-" ID ".scope",
		"/kubepods/besteffort/pod1a2b3c4d/" ID,
		"/docker/" ID "/init.scope",
	};
	static const char *const without_id[] = {
		"/", "/user.slice/user-0.slice/session-1.scope", "/system.slice/ssh.service",
		"/docker/3F2A9C1B7D0E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F90",
		"/docker/3f2a9c1b7d0e", "/docker-" ID ".scopeX",
	};
	struct pyx_container c;
	size_t i;

	for (i = 0; i < sizeof(with_id) / sizeof(with_id[0]); i++) {
		if (CHECK(pyx_container_from_cgroup_path(with_id[i], &c)))
			CHECK_STR(c.id, ID);
	}
	for (i = 0; i < sizeof(without_id) / sizeof(without_id[0]); i++)
		CHECK(!pyx_container_from_cgroup_path(without_id[i], &c));

	CHECK(pyx_container_id_matches(ID, "3f2a"));
	CHECK(pyx_container_id_matches(ID, ID));
	CHECK(!pyx_container_id_matches(ID, "3f2"));
	CHECK(!pyx_container_id_matches(ID, "3f2b"));
	CHECK(!pyx_container_id_matches("", "3f2a"));
}

static void test_self(void)
{
	struct pyx_process *proc;
	bool found_libc = false;
	size_t i;

	if (!CHECK_EQ(pyx_process__open(getpid(), &proc), 0))
		return;
	CHECK_EQ(proc->pid, getpid());
	CHECK_EQ(proc->ns_pid, getpid());
	CHECK(!proc->pid_ns_differs);
	CHECK(proc->nr_objects > 2);
	for (i = 0; i < proc->nr_objects; i++)
		if (strstr(pyx_basename(proc->objects[i].path), "libc.so"))
			found_libc = proc->objects[i].executable;
	CHECK(found_libc);
	CHECK(pyx_process__alive(proc));
	pyx_process__close(proc);

	CHECK_EQ(pyx_process__open(0x3ffffe, &proc), -ESRCH);
}

int main(void)
{
	test_cgroup_forms();
	test_self();
	return check_done();
}
