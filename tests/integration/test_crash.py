"""`pyxtrace crash -p PID`: a target that crashes in the fixture's C code
while traced. Ground truth: the target's own exit status (what it does
without pyxtrace), the fixture's source (address, message, assertion) and
the site the workload recorded just before the call."""
import os
import signal
import subprocess

import pytest

import pyx

KINDS = ["segfault", "abort", "fatal", "assert_fail"]


def crash(pyxtrace_bin, target, container=False, extra=()):
    args = ["crash", "-v", "--json", *extra]
    args += ["--container", target.container_id, "-p", target.ns_pid] if container \
        else ["-p", target.pid]
    proc = pyx.start_attached(pyxtrace_bin, *args)
    open(target.path("go"), "w").close()
    status = target.wait(timeout=60)
    docs = pyx.finish(proc).json_lines()
    return status, [d for d in docs if d["event"] != "summary"], docs[-1]


def native_functions(event):
    """Native function names, innermost first; a compiler's split-off part ("f.cold") as f."""
    return [f["function"] and f["function"].split(".")[0] for f in event["stack"]
            if f["kind"] == "native"]


@pytest.mark.interps(supported=True)
@pytest.mark.parametrize("where", ["host", "container"])
@pytest.mark.parametrize("kind", KINDS)
def test_crash_events(interp, kind, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "crash_workload.py", [kind], container=container)
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target, container=container)
    fixture_fn = "pyxfixture_" + kind
    # As a container's init (PID 1 of its namespace) the target ignores SIGABRT, so glibc's
    # abort() raises it twice in vain, then ends on its last resort, a privileged
    # instruction: SIGSEGV from the kernel. Everywhere else abort() ends in SIGABRT.
    init_abort = container and kind != "segfault"
    expect_signal = signal.SIGSEGV if kind == "segfault" or init_abort else signal.SIGABRT
    # The target ends as its exit status says (the rig's own wait): killed by the fault or by
    # abort(); pyxtrace reports the same.
    assert status == -expect_signal
    assert summary["exit"]["signal"] == expect_signal.name and \
        summary["exit"]["signo"] == expect_signal
    assert summary["stopped_by"] == "target-exit" and summary["not_probed"] == []
    kinds = [e["event"] for e in events]
    expected = {"segfault": ["signal"], "abort": ["abort", "signal"],
                "fatal": ["fatal_error", "abort", "signal"],
                "assert_fail": ["assert", "abort", "signal"]}[kind]
    if init_abort:
        # (whether the kernel calls the ignored ones delivered depends on glibc's sequence)
        expected += ["signal", "signal"]
        assert [e["signal"] for e in events[-3:]] == ["SIGABRT", "SIGABRT", "SIGSEGV"]
        assert events[-1]["code_name"] == "SI_KERNEL" and events[-1]["delivered"]
    assert kinds == expected, kinds
    # One thread within a second: one incident.
    assert {e["incident"] for e in events} == {1} and summary["incidents"] == 1
    for e in events:
        assert e["thread"]["tid"] == target.pid and e["process"]["pid"] == target.pid
        if container:
            assert e["thread"]["ns_tid"] == int(target.ns_pid) != target.pid
    sig = events[-1]
    assert sig["signal"] == expect_signal.name
    if init_abort:
        pass
    elif kind == "segfault":
        # SEGFAULT_ADDRESS in the fixture, a kernel-generated fault, at the faulting store.
        assert sig["code_name"] == "SEGV_MAPERR" and sig["addr"] == "0x10"
        assert native_functions(sig)[0] == fixture_fn, sig["stack"]
    else:
        assert sig["code_name"] == "SI_TKILL" and sig["sender_tid"] == target.pid
    first = events[0]
    # The C function that crashed is on the stack of the first event, under libc/CPython's.
    assert fixture_fn in native_functions(first), first["stack"]
    # Every event's innermost Python frame is where the workload said it called the fixture,
    # named from the code objects copied with the event (the process is gone when it is read).
    site = target.read_json("site.json")
    for e in events:
        top = next(f for f in e["stack"] if f["kind"] == "python")
        assert (top["function"], top["line"]) == (site["function"], site["line"]), e["stack"]
        assert top["file"].endswith("crash_workload.py")
    if kind == "fatal":
        assert "crash_workload says goodbye" in first["message"]
        if interp.minor != "3.8":
            assert first["function"] == fixture_fn  # _Py_FatalErrorFunc(__func__, msg)
    if kind == "assert_fail":
        assert first["message"] == "pyxfixture_expected_state == 1"
        assert first["file"].endswith("pyxfixture.c") and first["line"] > 0
        assert first["function"].startswith(fixture_fn)


@pytest.mark.interps(supported=True)
def test_crash_thread_name(interp, start_target, pyxtrace_bin):
    """A segfault in a threading.Thread names the thread as the program did: read from
    its Thread object ahead of the crash on 3.8-3.13, the kernel's name on 3.14+ (which
    CPython sets from it); the stack is that thread's."""
    interp.require(container=False, fixture=True)
    target = start_target(interp, "crash_workload.py", ["thread_segfault"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target)
    assert status == -signal.SIGSEGV
    site = target.read_json("site.json")
    assert site["thread"] == "worker-alpha"
    (sig,) = events
    assert sig["signal"] == "SIGSEGV" and sig["thread"]["tid"] != target.pid
    source = "threading" if interp.version_tuple < (3, 14) else "comm"
    assert sig["thread"] == {**sig["thread"], "name": site["thread"], "name_source": source}
    assert native_functions(sig)[0] == "pyxfixture_segfault", sig["stack"]
    top = next(f for f in sig["stack"] if f["kind"] == "python")
    assert (top["function"], top["line"]) == (site["function"], site["line"])


@pytest.mark.interps("bullseye-3.9,bookworm-3.11,pyenv-3.12,sid-3.15")
def test_crash_module_loaded_after_attach(interp, start_target, pyxtrace_bin):
    """The fixture is imported after crash attached: the new executable mapping is seen
    (fexit/vm_mmap_pgoff) and unwinding learns the module before the crash."""
    interp.require(fixture=True)
    target = start_target(interp, "crash_workload.py", ["segfault", "late"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target)
    assert status == -signal.SIGSEGV
    (sig,) = events
    assert sig["addr"] == "0x10" and native_functions(sig)[0] == "pyxfixture_segfault", \
        sig["stack"]


@pytest.mark.interps(supported=True)
def test_crash_bad_returns(interp, start_target, pyxtrace_bin):
    """--module pyxfixture: NULL without an exception and a value with one, each an event
    with the fixture's function and the calling Python line on its stack. A release build
    turns them into SystemErrors (caught: the process ends normally); a debug build
    aborts at the first, which follows in the same incident."""
    interp.require(fixture=True)
    target = start_target(interp, "crash_workload.py", ["bad_return"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target, extra=("--module", "pyxfixture"))
    site = target.read_json("site.json")
    bad = [e for e in events if e["event"] == "bad_return"]
    want = [("pyxfixture.null_without_error", "null_without_exception", site["line"])]
    if interp.debug:
        assert status == -signal.SIGABRT
        assert {"abort", "signal"} <= {e["event"] for e in events}
        assert len({e["incident"] for e in events}) == 1
    else:
        assert status == 0
        want.append(("pyxfixture.value_with_error", "value_with_exception", site["line2"]))
    assert [(e["function"], e["why"]) for e in bad] == [w[:2] for w in want], events
    for e, w in zip(bad, want):
        top = next(f for f in e["stack"] if f["kind"] == "python")
        assert (top["function"], top["line"]) == (site["function"], w[2]), e["stack"]
    assert summary["events"]["bad_return"] == len(want)


@pytest.mark.interps(supported=True)
def test_crash_memory_error_rate_limited(interp, start_target, pyxtrace_bin):
    """A MemoryError raised by the fixture (PyErr_NoMemory), caught, 30 times in a loop:
    the first 10 are events with the raising C function and calling Python line on the
    stack, the rest are counted as rate-limited; the process then exits normally."""
    interp.require(fixture=True)
    target = start_target(interp, "crash_workload.py", ["memory_error"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target)
    site = target.read_json("site.json")
    assert status == 0 and summary["exit"]["status"] == 0 and summary["exit"]["signal"] is None
    assert [e["event"] for e in events] == ["memory_error"] * 10
    assert summary["drops"]["rate_limited"] == site["raises"] - 10
    assert summary["events"]["memory_error"] == 10 and summary["not_probed"] == []
    for e in events:
        # (the fixture tail-calls PyErr_NoMemory: its own frame is gone, as gdb would show)
        assert native_functions(e)[0] in ("PyErr_NoMemory", "_PyErr_NoMemory"), e["stack"]
        top = next(f for f in e["stack"] if f["kind"] == "python")
        assert (top["function"], top["line"]) == (site["function"], site["line"]), e["stack"]


@pytest.mark.interps(supported=True)
def test_crash_recursion_error_rate_limited(interp, start_target, pyxtrace_bin):
    """Python recursion past the limit, caught, 30 times: the first 10 RecursionErrors
    are events whose stack is the recursing function (the innermost frames all
    `down`, then the loop that called it), the rest rate-limited; a normal exit."""
    interp.require(fixture=True)
    target = start_target(interp, "crash_workload.py", ["recursion_error"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target)
    site = target.read_json("site.json")
    assert status == 0 and summary["exit"]["status"] == 0
    assert [e["event"] for e in events] == ["recursion_error"] * 10
    assert summary["drops"]["rate_limited"] == site["raises"] - 10
    assert summary["events"]["recursion_error"] == 10 and summary["not_probed"] == []
    for e in events:
        # (the format string; empty when its page was never read before the raise)
        assert e["message"] is None or \
            e["message"].startswith("maximum recursion depth exceeded"), e["message"]
        py = [f for f in e["stack"] if f["kind"] == "python"]
        assert len(py) >= 20 and all((f["function"], f["line"]) == ("down", site["line"])
                                     for f in py[:20]), py[:3]


@pytest.mark.interps(supported=True, debug=True)
def test_crash_negative_refcount(interp, start_target, pyxtrace_bin):
    """A debug interpreter's Py_DECREF finding a refcount below zero (the fixture drops
    one reference too many): _Py_NegativeRefcount with the C file and line of the
    Py_DECREF, then the fatal error, abort() and SIGABRT it leads to: one incident."""
    interp.require(fixture=True)
    target = start_target(interp, "crash_workload.py", ["negative_refcount"])
    target.wait_for("ready")
    status, events, summary = crash(pyxtrace_bin, target)
    assert status == -signal.SIGABRT and summary["not_probed"] == []
    assert [e["event"] for e in events] == ["negative_refcount", "fatal_error", "abort",
                                            "signal"], events
    assert {e["incident"] for e in events} == {1}
    first, site = events[0], target.read_json("site.json")
    assert first["file"].endswith("pyxfixture.c") and first["line"] > 0, first
    assert "pyxfixture_negative_refcount" in native_functions(first), first["stack"]
    top = next(f for f in first["stack"] if f["kind"] == "python")
    assert (top["function"], top["line"]) == (site["function"], site["line"]), first["stack"]
    assert events[1]["message"] == "_PyObject_AssertFailed", events[1]  # its fatal error


def memory_cgroup(name, limit):
    """A memory cgroup capped at @limit bytes (v2, else v1's memory hierarchy)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path, knob = f"/sys/fs/cgroup/{name}", "memory.max"
    else:
        path, knob = f"/sys/fs/cgroup/memory/{name}", "memory.limit_in_bytes"
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, knob), "w") as f:
        f.write(str(limit))
    return path


@pytest.mark.interps("bookworm-3.11,pyenv-3.12")
def test_crash_oom_kill(interp, start_target, pyxtrace_bin):
    """The target allocates past its memory cgroup's 64 MiB: the OOM killer's choice
    is an event (no stack: it happens in the allocating task's context, the kernel's),
    with the victim's TID, resident memory and cgroup; the process dies of SIGKILL."""
    interp.require(fixture=True)
    name = f"pyx-oom-{os.getpid()}"
    cgroup = memory_cgroup(name, 64 << 20)
    try:
        target = start_target(interp, "crash_workload.py", ["oom"])
        target.wait_for("ready")
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(target.pid))
        status, events, summary = crash(pyxtrace_bin, target)
    finally:
        subprocess.run(["rmdir", cgroup], check=False)
    assert status == -signal.SIGKILL and summary["exit"]["signal"] == "SIGKILL"
    (oom,) = [e for e in events if e["event"] == "oom_kill"]
    assert oom["thread"]["tid"] == target.pid and oom["stack"] is None
    assert oom["cgroup"] == name and 32 << 20 < oom["rss_bytes"] < 256 << 20, oom
    assert summary["events"]["oom_kill"] == 1


def test_crash_usage(pyxtrace_bin):
    # No target: every Python process (--all), here for a moment; a summary of the scope.
    res = pyx.run(pyxtrace_bin, "crash", "--json", "-d", "300ms", check_rc=0)
    total = res.json_lines()[-1]
    assert total["event"] == "scope_summary" and total["scope"] == "every Python process"
    assert total["stopped_by"] == "duration"
    res = pyx.run(pyxtrace_bin, "crash", "-p", "3999999")
    assert res.rc == 1 and res.stderr.count("\n") == 1, res
