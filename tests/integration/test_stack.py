"""`pyxtrace stack`: every thread's Python stack, compared frame by frame
with the ground truth the target wrote about itself at a point where no
thread moves (tests/integration/targets/stacks.py), on every interpreter of
the rig, host and runc, release and debug builds, with and without DWARF."""
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


def check_stacks(doc, truth, interp, target, sub=None, lookup="auto"):
    by_ns_tid = {t["ns_tid"]: t for t in doc["threads"]}
    # Every rig build has an O(1) gilstate path (TSS slot up to 3.14, static TLS on 3.15)
    # except 3.15 with a shared libpython, which has none here.
    fast = doc["offsets"]["fast_tstate"]
    if lookup == "list":
        assert fast is None
    else:
        assert fast == ("gilstate TLS variable" if interp.version_tuple >= (3, 15)
                        else "gilstate TSS slot")
    assert doc["process"]["pid"] == target.pid
    minor = interp.version_tuple[1]
    for want in truth["threads"]:
        got = by_ns_tid.get(want["native_id"])
        assert got is not None, f"thread {want['name']} ({want['native_id']}) not reported"
        assert got["status"] in ("ok", "truncated"), got
        assert got["tstate_source"] == ("thread-list" if lookup == "list" else "gilstate"), got
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
    # Names as the program gave them: read from the Thread objects on 3.8-3.13, the
    # kernel's from 3.14 on (CPython sets it from the Thread, at most 15 bytes).
    for want in truth["threads"]:
        got = by_ns_tid[want["native_id"]]
        if want["name"] == "MainThread":
            assert got["name_source"] == "comm", got
        elif minor <= 13:
            assert (got["name"], got["name_source"]) == (want["name"], "threading"), got
        else:
            assert (got["name"], got["name_source"]) == (want["name"][:15], "comm"), got
    # The GIL: at most one holder; the spinner is the only thread that wants it.
    holders = [t for t in doc["threads"] if t["holds_gil"]]
    assert len(holders) <= 1
    if sub is not None:
        got = by_ns_tid.get(sub["native_id"])
        assert got is not None, "sub-interpreter thread not reported"
        assert python_frames(got) == [(f[0], f[1], f[2]) for f in reversed(sub["frames"])]
        assert got["interpreter"] != 0


@pytest.mark.interps(**SUPPORTED)
@pytest.mark.parametrize("where,lookup", [("host", "auto"), ("container", "auto"),
                                          ("host", "list")])
def test_stack_matches_ground_truth(interp, where, lookup, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "stacks.py", container=container)
    target.wait_for("groundtruth.json", timeout=60)
    truth = target.read_json("groundtruth.json")
    sub = None
    if interp.version_tuple >= (3, 12):
        target.wait_for("subinterp.json", timeout=30)
        sub = target.read_json("subinterp.json")
    args = ["stack", "--json", "--thread-lookup", lookup]
    args += (["--container", target.container_id, "-p", target.ns_pid] if container
             else ["-p", target.pid])
    doc = pyx.run(pyxtrace_bin, *args, check_rc=0).json()
    check_stacks(doc, truth, interp, target, sub, lookup)
    assert target.alive()
    # The human form reads like a traceback.
    text = pyx.run(pyxtrace_bin, *[a for a in args if a != "--json"], check_rc=0).stdout
    assert "Traceback (most recent call last):" in text
    assert 'in sleeper_leaf' in text


def check_snapshot_sane(doc):
    for t in doc["threads"]:
        assert t["status"] in ("ok", "truncated", "torn", "no-thread-state"), t
        for f in t["frames"]:
            assert f["kind"] in ("python", "boundary"), f
            if f["kind"] == "python" and f["file"] is not None:
                assert (f["file"].endswith(".py") or f["file"] in ("<string>", "<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>") or f["file"].startswith("<frozen ")), f
                # A frame reused while it was read may leave only the line unknown (null).
                assert f["line"] is None or f["line"] > 0, f
                assert f["function"] and f["function"].isprintable(), f


def test_stack_1000_walks_while_churning(start_target, pyxtrace_bin):
    """1000 walks inside one pyxtrace run while the target creates and ends
    threads and frames: the target finishes with its own correct result, and
    pyxtrace never fails, hangs or prints garbage."""
    interp = rigmod.by_name("bookworm-3.11")
    target = start_target(interp, "churn.py", args=["30"])
    target.wait_for("ready")
    res = pyx.run(pyxtrace_bin, "stack", "--json", "-n", "1000", "-i", "1ms", "-p", target.pid,
                  timeout=120, check_rc=0)
    docs = res.json_lines()
    assert len(docs) == 1000
    assert docs[-1]["final"] is True and not any(d["final"] for d in docs[:-1])
    for doc in docs:
        check_snapshot_sane(doc)
    walked = sum(1 for d in docs for t in d["threads"] if t["status"] == "ok" and t["frames"])
    assert walked >= 1000
    target.stop()


def test_stack_until_target_exits(start_target, pyxtrace_bin):
    """Snapshots until the target ends by itself: exit 0, the stream closes
    with a final document saying the target exited; the target's own result
    is unharmed."""
    interp = rigmod.by_name("pyenv-3.12")
    target = start_target(interp, "churn.py", args=["3"])
    target.wait_for("ready")
    res = pyx.run(pyxtrace_bin, "stack", "--json", "-n", "0", "-i", "5ms", "-p", target.pid,
                  timeout=60, check_rc=0)
    docs = res.json_lines()
    assert len(docs) > 10
    assert docs[-1]["final"] is True and docs[-1]["target_exited"] is True
    for doc in docs:
        check_snapshot_sane(doc)
    assert target.wait(30) == 0
    assert target.read_json("result.json")["ok"] is True


@pytest.mark.parametrize("interp_name", ["bookworm-3.11", "pyenv-3.13", "pyenv-3.8"])
def test_stack_fresh_launches(interp_name, pyxtrace_bin, tmp_path):
    """Processes walked while the interpreter is still starting up (50 fresh
    ones): each answer is a clean result or a one-line error, never a crash."""
    interp = rigmod.by_name(interp_name)
    outcomes = {}
    for i in range(50):
        proc = subprocess.Popen([interp.python_host, "-c",
                                 "import threading, time\n"
                                 "ts = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]\n"
                                 "[t.start() for t in ts]; [t.join() for t in ts]"])
        time.sleep(0.002 * (i % 25))
        res = pyx.run(pyxtrace_bin, "stack", "--json", "-p", proc.pid, timeout=30)
        proc.wait()
        assert proc.returncode == 0
        if res.rc == 0:
            check_snapshot_sane(res.json())
            outcomes["result"] = outcomes.get("result", 0) + 1
        else:
            assert res.rc == 1, res
            assert len(res.stderr.strip().splitlines()) == 1, res
            outcomes["error"] = outcomes.get("error", 0) + 1
    assert outcomes.get("result", 0) > 0, outcomes
