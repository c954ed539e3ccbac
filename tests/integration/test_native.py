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
    interp_object = os.path.basename(doc["python"]["interpreter"])
    frames = list(reversed(frames_of(doc, ready["callbacks"])))
    outer_first = [label(f) for f in frames]
    at = subsequence(outer_first, [("py", "callbacks"), ("py", "level1"), ("c", "pyxfixture_call"),
                                   ("py", "level2"), ("c", "pyxfixture_call"), ("py", "level3"),
                                   ("py", "wait")])
    # The interpreter's own C code (cfunction_call & co.) calls into the fixture. (The way
    # back may be a tail call straight into the eval loop, which the Python frames replace.)
    between = [f for f in frames[at[1] + 1:at[2]] + frames[at[3] + 1:at[4]]
               if f["kind"] == "native"]
    assert any(os.path.basename(f["object"] or "") == interp_object for f in between), \
        (interp_object, between)
    # Nothing Python is lost or duplicated by the merge.
    py_only = pyx.run(pyxtrace_bin, *[a for a in args if a != "--native"], check_rc=0).json()
    for name in ("callbacks", "sleeper", "locked", "selector"):
        mixed = [f for f in frames_of(doc, ready[name]) if f["kind"] == "python"]
        plain = [f for f in frames_of(py_only, ready[name]) if f["kind"] == "python"]
        assert [(f["function"], f["line"]) for f in mixed] == \
            [(f["function"], f["line"]) for f in plain], name

    # A thread running on a CPU is sampled in itself: exact registers, never approximate.
    fs = frames_of(doc, ready["spinner"])
    assert fs and not any(f.get("approximate") for f in fs if f["kind"] == "native"), fs[:4]
    first_py = next(i for i, f in enumerate(fs) if f["kind"] == "python")
    assert fs[first_py]["function"] == "spin_leaf", fs[:first_py + 1]

    # Blocked threads: the libc syscall wrapper is the innermost frame, and the
    # C code that called it sits above (inner to) the Python frame that called it.
    def innermost_native(name):
        fs = frames_of(doc, ready[name])
        assert fs[0]["kind"] == "native", fs[:3]
        # glibc < 2.34 keeps the futex and sleep wrappers in libpthread.
        assert os.path.basename(fs[0]["object"] or "").startswith(("libc", "libpthread")), fs[0]
        assert not fs[0]["approximate"]
        return fs

    # Between the wrapper and the Python caller: the module's C function (time.sleep,
    # lock.acquire, select.select), named wherever the interpreter has symbols.
    symbols = interp.has_dbg or interp.source == "pyenv"
    for name, c_name in (("sleeper", "sleep"), ("locked", "acquire"), ("selector", "select")):
        fs = innermost_native(name)
        first_py = next(i for i, f in enumerate(fs) if f["kind"] == "python")
        assert fs[first_py]["function"] == name, fs[:first_py + 1]
        assert all(f["kind"] == "native" for f in fs[:first_py])
        c_frames = [f for f in fs[1:first_py] if f["object"] and
                    not os.path.basename(f["object"]).startswith(("libc", "libpthread"))]
        assert c_frames, (name, fs[:first_py])
        if symbols:
            assert any(f["function"] and c_name in f["function"] for f in c_frames), \
                (name, [f["function"] for f in c_frames])


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
