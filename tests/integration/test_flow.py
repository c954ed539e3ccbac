"""`pyxtrace flow`: every call event in order, from the same exact hooks as
`calls`. Ground truth: the workload's own sys.setprofile record of the same
deterministic code (call/return, c_call/c_return), its own call counts, and
`calls` run on the same target at the same time."""
import json
import os
import subprocess

import pytest

import pyx
import rig

NAMES = {"sequence", "outer", "middle", "inner", "call", "burn"}


def flow_interps():
    return rig.interpreters(supported=True)


def target_args(target, container):
    return ["--container", target.container_id, "-p", target.ns_pid] if container \
        else ["-p", target.pid]


def run_flow(pyxtrace_bin, target, *extra, container=False):
    proc = pyx.start_attached(pyxtrace_bin, "flow", "-v", "--max-overhead", "0", *extra,
                              *target_args(target, container))
    open(target.path("go"), "w").close()
    return pyx.finish(proc)


def plain_sequence(events, file):
    """The events of the first (unprofiled) run of sequence(): from its call to
    its return, on its thread."""
    start = next(i for i, e in enumerate(events)
                 if e["event"] == "call" and e["function"] == "sequence" and e["file"] == file)
    tid, depth = events[start]["tid"], events[start]["depth"]
    for end in range(start, len(events)):
        e = events[end]
        if e["tid"] == tid and e["event"] == "return" and e["depth"] == depth:
            assert e["function"] == "sequence", e
            return [e for e in events[start:end + 1] if e["tid"] == tid]
    raise AssertionError("sequence() never returned in the flow")


def as_profile_event(e):
    """A flow event as sys.setprofile names it."""
    native = e["kind"] == "native"
    kind = {"call": "c_call" if native else "call",
            "return": "c_return" if native else "return"}[e["event"]]
    return [kind, e["function"].split(".")[-1] if native else e["function"]]


@pytest.mark.parametrize("interp", [pytest.param(i, id=i.name) for i in flow_interps()])
@pytest.mark.parametrize("where", ["host", "container"])
def test_flow_nesting(interp, where, start_target, pyxtrace_bin):
    """Python -> C -> Python -> C -> Python -> C: the flow has the order and
    nesting the target's own profiler recorded; durations nest; each Python <-> C
    boundary names the caller on the other side."""
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "flow_workload.py", container=container)
    target.wait_for("ready")
    res = run_flow(pyxtrace_bin, target, "--json", "--module", "pyxfixture",
                   container=container)
    docs = res.json_lines()
    result = target.read_json("result.json")
    assert docs[0]["event"] == "start" and docs[0]["exact"] is True
    assert docs[-1]["event"] == "end" and docs[-1]["stopped_by"] == "target-exit"
    assert result["plain"] == result["profiled"] == 3 * 3
    events = docs[1:-1]
    seq = plain_sequence(events, result["file"])
    flow = [as_profile_event(e) for e in seq
            if e["event"] in ("call", "return") and as_profile_event(e)[1] in NAMES]
    assert flow == result["recorded"], (flow, result["recorded"])
    assert all(e["event"] in ("call", "return") for e in seq), seq

    # Durations nest: each call starts within its caller and ends before it.
    stack = []
    for e in seq:
        if e["event"] == "call":
            stack.append(e)
            continue
        call = stack.pop()
        assert call["function"] == e["function"], (call, e)
        assert call["time_ns"] == e["time_ns"] - e["duration_ns"], (call, e)
        assert not stack or stack[-1]["time_ns"] <= call["time_ns"]
    returns = [e for e in seq if e["event"] == "return"]
    by_depth = {}
    for e in returns:  # children return first; their parent's span covers them
        for child in by_depth.pop(e["depth"] + 1, []):
            assert child["time_ns"] <= e["time_ns"], (child, e)
            assert child["duration_ns"] <= e["duration_ns"], (child, e)
        by_depth.setdefault(e["depth"], []).append(e)
    # burn() busy-loops 5 us: its time is inside inner's.
    burns = [e for e in returns if e["function"].endswith("burn")]
    assert len(burns) == 3 and all(e["duration_ns"] >= 5000 for e in burns)

    # Boundaries: C called from Python names its Python caller, and back.
    calls = [e for e in seq if e["event"] == "call"]
    c_from_py = [e for e in calls if e["kind"] == "native"]
    py_from_c = [e for e in calls if e["kind"] == "python" and e["function"] in ("middle", "inner")]
    assert {e["caller"]["function"] for e in c_from_py} == {"outer", "middle", "inner"}
    assert all(e["caller"]["kind"] == "python" for e in c_from_py)
    assert {e["caller"]["function"] for e in py_from_c} == {"pyxfixture.call"}
    assert all(e["caller"]["kind"] == "native" for e in py_from_c)


@pytest.mark.interps("bookworm-3.11,pyenv-3.9,trixie-3.13,sid-3.14")
def test_flow_chrome_trace(interp, start_target, pyxtrace_bin, tmp_path):
    """-o FILE --format chrome: valid JSON with the documented fields; one slice
    per call: as many as `calls`, attached at the same time, counts, and as the
    target made."""
    interp.require(fixture=True)
    target = start_target(interp, "flow_workload.py", ["1000"])
    target.wait_for("ready")
    out = tmp_path / "trace.json"
    flow = pyx.start_attached(pyxtrace_bin, "flow", "-v", "--max-overhead", "0", "--format",
                              "chrome", "-o", out,
                              "-p", target.pid)
    calls = pyx.start_attached(pyxtrace_bin, "calls", "-v", "--json", "--max-overhead", "0",
                               "-p", target.pid)
    open(target.path("go"), "w").close()
    calls_doc = pyx.finish(calls).json()
    pyx.finish(flow)
    result = target.read_json("result.json")
    trace = json.loads(out.read_text())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert slices and trace["otherData"]["slices"] == len(slices)
    for e in slices:
        assert {"name", "cat", "ts", "dur", "pid", "tid", "args"} <= e.keys(), e
        assert e["cat"] == "python" and e["pid"] == int(target.pid) and e["dur"] >= 0
        assert {"file", "line", "qualname"} <= e["args"].keys(), e
    mine = [e for e in slices if e["args"]["file"] == result["file"]]
    made = {}
    for e in mine:
        if not e["args"].get("resumed"):
            made[e["name"]] = made.get(e["name"], 0) + 1
    assert made["tiny"] == result["burst"] == 1000
    assert made["outer"] == 6 and made["inner"] == 6
    counted = {f["qualname"]: f["calls"] for f in calls_doc["functions"]
               if f["file"] == result["file"]}
    # `calls` attached a moment later: both saw every call of the workload after go.
    for name, n in counted.items():
        if name != "main":
            assert made.get(name) == n, (name, made.get(name), n)
    assert sum(made.values()) == sum(n for name, n in counted.items() if name != "main")


@pytest.mark.interps("bookworm-3.11,sid-3.15")
def test_flow_burst(interp, start_target, pyxtrace_bin):
    """2 M calls as fast as the target makes them: every call and return event
    arrives, or the drop counter says how many did not; the target's results
    are unchanged."""
    interp.require()
    n = 2_000_000
    target = start_target(interp, "flow_workload.py", [str(n)])
    target.wait_for("ready")
    proc = subprocess.Popen([pyxtrace_bin, "flow", "-v", "--json", "--max-overhead", "0", "--match",
                             "^tiny$", "-p",
                             str(target.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = ""
    while "attached, tracing" not in seen:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, seen
        seen += line
    open(target.path("go"), "w").close()
    got = {"call": 0, "return": 0}
    end = None
    for line in proc.stdout:  # read as it comes: 800 MB of JSON would not fit a buffer
        if line.startswith('{"event":"call"'):
            got["call"] += 1
        elif line.startswith('{"event":"return"'):
            got["return"] += 1
        elif line.startswith('{"event":"end"'):
            end = json.loads(line)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    result = target.read_json("result.json")
    assert result["burst"] == n and result["plain"] == result["profiled"] == 9
    lost = end["drops"]["ringbuf"]
    assert got["call"] <= n and got["return"] <= n
    # Every event of tiny arrived or was counted lost (the count holds other events too).
    assert got["call"] + got["return"] + lost >= 2 * n, (got, end)
    assert lost <= 2 * n + 10_000, end
    if not lost:
        assert got == {"call": n, "return": n}


@pytest.mark.interps("bookworm-3.11,sid-3.14")
def test_flow_overhead_budget(interp, start_target, pyxtrace_bin):
    """--max-overhead (default 5 %) on a target spinning on calls: the trace says
    where it paused, no event comes from the pause, and it holds fewer calls than
    the target made."""
    interp.require()
    target = start_target(interp, "budget_workload.py", ["heavy"])
    target.wait_for("ready")
    proc = pyx.start_attached(pyxtrace_bin, "flow", "-v", "--json", "-p", target.pid)
    open(target.path("go"), "w").close()
    docs = pyx.finish(proc).json_lines()
    made = target.read_json("result.json")["calls"]["fib"]
    paused = [i for i, d in enumerate(docs) if d["event"] == "paused"]
    assert paused and docs[paused[0]]["overhead_pct"] > 5, docs[-1]
    resumed = [i for i, d in enumerate(docs) if d["event"] == "resumed"]
    # Nothing between a pause and the next resumption.
    end = resumed[0] if resumed else len(docs) - 1
    assert all(d["event"] in ("paused", "end") for d in docs[paused[0]:end]), docs[paused[0]:end][:5]
    calls = sum(1 for d in docs if d["event"] == "call" and d["function"] == "fib")
    assert 0 < calls < made
    assert docs[-1]["overhead"]["pauses"] >= 1


def test_flow_usage(pyxtrace_bin):
    res = pyx.run(pyxtrace_bin, "flow")
    assert res.rc == 2 and "a target is required" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "flow", "-p", "1", "--format", "svg")
    assert res.rc == 2 and "--format" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "flow", "-p", "1", "--depth", "0")
    assert res.rc == 2 and "--depth" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "flow", "-p", "1", "--json", "--format", "chrome")
    assert res.rc == 2 and "choose one" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "flow", "-p", "1", "--max-overhead", "-3")
    assert res.rc == 2 and "--max-overhead" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "flow", "-p", "4194303")
    assert res.rc == 1 and res.stderr.count("\n") == 1, res
