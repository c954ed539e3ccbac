"""`pyxtrace stack --native`: C frames and Python frames in one stack, from
registers and a copy of each thread's stack taken by BPF (no ptrace), on
every interpreter of the rig, host and runc, with and without debug files."""
import json
import os
import shutil
import subprocess
import time

import pytest

import pyx
import rig as rigmod


def frames_of(doc, ns_tid):
    for t in doc["threads"]:
        if t["ns_tid"] == ns_tid:
            return t["frames"]
    raise AssertionError(f"thread {ns_tid} not reported")


def subsequence(items, wanted):
    """Index of each wanted item, in order, within items (outermost first)."""
    at, found = 0, []
    for w in wanted:
        while at < len(items) and items[at] != w:
            at += 1
        assert at < len(items), f"{w} not found (in order) in {items}"
        found.append(at)
        at += 1
    return found


def label(f):
    if f["kind"] == "python":
        return ("py", f["function"])
    if f["kind"] == "native":
        return ("c", f["function"])
    return ("boundary", None)


@pytest.mark.interps(supported=True)
@pytest.mark.parametrize("where", ["host", "container"])
def test_native_mixed_stack(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "native.py", container=container)
    target.wait_for("ready")
    ready = target.read_json("ready")
    args = ["stack", "--native", "--json"]
    args += (["--container", target.container_id, "-p", target.ns_pid] if container
             else ["-p", target.pid])
    doc = pyx.run(pyxtrace_bin, *args, check_rc=0).json()

    # Three levels: Python -> C -> Python -> C -> Python, in this order, with the
    # fixture's C function (it has symbols: built with -g) between the Python frames.
    outer_first = [label(f) for f in reversed(frames_of(doc, ready["callbacks"]))]
    subsequence(outer_first, [("py", "callbacks"), ("py", "level1"), ("c", "pyxfixture_call"),
                              ("py", "level2"), ("c", "pyxfixture_call"), ("py", "level3"),
                              ("py", "wait")])
    # Nothing Python is lost or duplicated by the merge.
    py_only = pyx.run(pyxtrace_bin, *[a for a in args if a != "--native"], check_rc=0).json()
    for name in ("callbacks", "sleeper", "locked", "selector"):
        mixed = [f for f in frames_of(doc, ready[name]) if f["kind"] == "python"]
        plain = [f for f in frames_of(py_only, ready[name]) if f["kind"] == "python"]
        assert [(f["function"], f["line"]) for f in mixed] == \
            [(f["function"], f["line"]) for f in plain], name

    # Blocked threads: the libc syscall wrapper is the innermost frame, and the
    # C code that called it sits above (inner to) the Python frame that called it.
    def innermost_native(name):
        fs = frames_of(doc, ready[name])
        assert fs[0]["kind"] == "native", fs[:3]
        # glibc < 2.34 keeps the futex and sleep wrappers in libpthread.
        assert os.path.basename(fs[0]["object"] or "").startswith(("libc", "libpthread")), fs[0]
        assert not fs[0]["approximate"]
        return fs

    fs = innermost_native("sleeper")
    first_py = next(i for i, f in enumerate(fs) if f["kind"] == "python")
    assert fs[first_py]["function"] == "sleeper"
    assert all(f["kind"] == "native" for f in fs[:first_py])
    fs = innermost_native("locked")
    assert next(f for f in fs if f["kind"] == "python")["function"] == "locked"
    fs = innermost_native("selector")
    assert next(f for f in fs if f["kind"] == "python")["function"] == "selector"
    assert any(f["kind"] == "native" and f["function"] and "select" in f["function"]
               for f in fs[:first_py + 8]), fs[:8]


def test_native_stripped_module_without_debug_files(tmp_path, pyxtrace_bin):
    """A stripped extension without debug files: .dynsym names where it has
    them, object+offset otherwise — never a wrong name."""
    interp = rigmod.by_name("bookworm-3.11").require(fixture=True)
    so = next(p for p in os.listdir(interp.fixture) if p.startswith("pyxfixture"))
    stripped = tmp_path / "fixture"
    stripped.mkdir()
    shutil.copy(os.path.join(interp.fixture, so), stripped / so)
    subprocess.run(["strip", "--strip-all", str(stripped / so)], check=True)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(stripped), PYX_OUT=str(out))
    proc = subprocess.Popen([interp.python_host, os.path.join(rigmod.TESTS_DIR, "integration",
                                                              "targets", "native.py")], env=env)
    try:
        while not (out / "ready").exists():
            assert proc.poll() is None
            time.sleep(0.01)
        ready = json.loads((out / "ready").read_text())
        doc = pyx.run(pyxtrace_bin, "stack", "--native", "--json", "-p", proc.pid,
                      check_rc=0).json()
        fs = frames_of(doc, ready["callbacks"])
        in_fixture = [f for f in fs if f["kind"] == "native" and f["object"] and
                      os.path.basename(f["object"]) == so]
        assert len(in_fixture) >= 2, fs
        for f in in_fixture:
            # pyxfixture_call is static: not in .dynsym, so no name at all.
            assert f["function"] is None, f
            assert int(f["offset"], 16) > 0
    finally:
        proc.kill()
        proc.wait()
