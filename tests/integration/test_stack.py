"""`pyxtrace stack`: every thread's Python stack, compared frame by frame
with the ground truth the target wrote about itself at a point where no
thread moves (tests/integration/targets/stacks.py), on every interpreter of
the rig, host and runc, release and debug builds, with and without DWARF."""
import os
import subprocess
import time

import pytest

import pyx
import rig as rigmod

SUPPORTED = dict(supported=True)


def python_frames(thread):
    """(file, line, function) innermost first, boundaries dropped."""
    return [(f["file"], f["line"], f["function"]) for f in thread["frames"]
            if f["kind"] == "python"]


def expected_frames(truth_thread, limit=128):
    frames = [(f[0], f[1], f[2]) for f in reversed(truth_thread["frames"])]
    return frames[:limit]


def check_stacks(doc, truth, interp, target, sub=None):
    by_ns_tid = {t["ns_tid"]: t for t in doc["threads"]}
    assert doc["process"]["pid"] == target.pid
    minor = interp.version_tuple[1]
    for want in truth["threads"]:
        got = by_ns_tid.get(want["native_id"])
        assert got is not None, f"thread {want['name']} ({want['native_id']}) not reported"
        assert got["status"] in ("ok", "truncated"), got
        expect = expected_frames(want)
        assert python_frames(got) == expect, want["name"]
        assert got["truncated"] == (len(want["frames"]) > 128), want["name"]
        if minor >= 11:
            quals = [f["qualname"] for f in got["frames"] if f["kind"] == "python"]
            assert quals == [f[3] for f in reversed(want["frames"])][:128], want["name"]
        assert got["interpreter"] == 0
    names = {t["name"]: by_ns_tid[t["native_id"]] for t in truth["threads"]}
    # Where C code sits between Python frames (3.11+ marks it).
    if minor >= 11:
        for name, caller in (("sorted_callback", "sorted_callback"),
                             ("fixture_callback", "fixture_callback")):
            if name not in names:
                continue
            kinds = [(f["kind"], f.get("function")) for f in names[name]["frames"]]
            i = kinds.index(("python", caller))
            assert kinds[i - 1] == ("boundary", None), kinds
    # The GIL: at most one holder; the spinner is the only thread that wants it.
    holders = [t for t in doc["threads"] if t["holds_gil"]]
    assert len(holders) <= 1
    if sub is not None:
        got = by_ns_tid.get(sub["native_id"])
        assert got is not None, "sub-interpreter thread not reported"
        assert python_frames(got) == [(f[0], f[1], f[2]) for f in reversed(sub["frames"])]
        assert got["interpreter"] != 0


@pytest.mark.interps(**SUPPORTED)
@pytest.mark.parametrize("where", ["host", "container"])
def test_stack_matches_ground_truth(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "stacks.py", container=container)
    target.wait_for("groundtruth.json", timeout=60)
    truth = target.read_json("groundtruth.json")
    sub = None
    if interp.version_tuple >= (3, 12):
        target.wait_for("subinterp.json", timeout=30)
        sub = target.read_json("subinterp.json")
    args = ["stack", "--json"]
    args += (["--container", target.container_id, "-p", target.ns_pid] if container
             else ["-p", target.pid])
    doc = pyx.run(pyxtrace_bin, *args, check_rc=0).json()
    check_stacks(doc, truth, interp, target, sub)
    assert target.alive()
    # The human form reads like a traceback.
    text = pyx.run(pyxtrace_bin, *[a for a in args if a != "--json"], check_rc=0).stdout
    assert "Traceback (most recent call last):" in text
    assert 'in sleeper_leaf' in text


def test_stack_repeated_walks_while_churning(start_target, pyxtrace_bin):
    """Many walks while the target creates and ends threads and frames: the
    target finishes with its own correct result; pyxtrace never fails or
    prints garbage."""
    interp = rigmod.by_name("bookworm-3.11")
    target = start_target(interp, "churn.py", args=["20"])
    target.wait_for("ready")
    walks = 0
    deadline = time.monotonic() + 15
    while target.alive() and time.monotonic() < deadline:
        res = pyx.run(pyxtrace_bin, "stack", "--json", "-p", target.pid)
        if res.rc != 0:
            assert not target.alive(), res
            break
        doc = res.json()
        for t in doc["threads"]:
            assert t["status"] in ("ok", "truncated", "torn", "no-thread-state"), t
            for f in t["frames"]:
                if f["kind"] == "python" and f["file"] is not None:
                    assert f["file"].endswith(".py") and f["line"] and f["line"] > 0, f
        walks += 1
    assert walks >= 20
    assert target.wait(30) == 0
    assert target.read_json("result.json")["ok"] is True
