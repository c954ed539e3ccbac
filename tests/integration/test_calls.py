"""`pyxtrace calls`: exact Python calls from the eval loop's own hooks,
aggregated in the kernel. Ground truth: the workload's functions
count their own calls and raises, and sys.setprofile's 'call' events count
the phase that runs under a profiler (3.12+: the instrumented opcodes)."""

import json
import os

import pytest

import pyx
import rig

def exact_interps():
    """Every supported interpreter of the rig: with symbols for the eval loop's
    opcode table (pyenv's symtab, Debian's -dbg files) or without (stripped
    pyenv builds, Debian without -dbg: the table is found by its shape)."""
    return rig.interpreters(supported=True)


def run_calls(pyxtrace_bin, target, *extra, container=False):
    # Exactness is what is checked: no overhead budget (its own test pauses the hooks).
    args = ["calls", "-v", "--json", "--max-overhead", "0", *extra]
    args += ["--container", target.container_id, "-p", target.ns_pid] if container \
        else ["-p", target.pid]
    proc = pyx.start_attached(pyxtrace_bin, *args)
    open(target.path("go"), "w").close()
    return pyx.finish(proc)


@pytest.mark.parametrize("interp", [pytest.param(i, id=i.name) for i in exact_interps()])
@pytest.mark.parametrize("where", ["host", "container"])
def test_calls_exact(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container)
    target = start_target(interp, "calls_workload.py", container=container)
    target.wait_for("ready")
    res = run_calls(pyxtrace_bin, target, container=container)
    doc = res.json()
    result = target.read_json("result.json")
    assert doc["final"] is True and doc["stopped_by"] == "target-exit"
    assert doc["exact"] is True and doc["mode"] == "eval-hooks"
    kinds = {h["kind"] for h in doc["hooks"]}
    legacy = tuple(map(int, interp.minor.split("."))) <= (3, 10)
    assert ({"frame-enter", "return", "unwind"} if legacy else {"resume", "pop"}) <= kinds, \
        doc["hooks"]
    # 3.11+: PyTraceBack_Here found (called directly, or through the PLT of a shared libpython),
    # so only the frames an exception reached read it at their pop.
    assert legacy or "raise" in kinds, doc["hooks"]
    fn = {f["function"]: f for f in doc["functions"] if f["file"] == result["file"]}
    # Release builds: the frame register of the hot RESUME form (≤3.10: RETURN_VALUE) was
    # learned, so most starts (returns) below took their frame from it, and stay exact.
    if not interp.debug:
        learner = "return" if legacy else "resume"
        assert any(h.get("frame_register") for h in doc["hooks"] if h["kind"] == learner), \
            doc["hooks"]

    # The profiled phase: setprofile saw what the functions counted themselves.
    profiled, own = result["profiled"], result["profiled_counts"]
    for name in ("middle", "leaf", "catcher", "boom"):
        assert profiled[name] == own[name] > 0, name

    plain, raised = result["counts"], result["raised"]
    for name in set(plain) | set(own):
        if name in ("numbers", "relay"):
            continue
        want = plain.get(name, 0) + own.get(name, 0)
        assert fn[name]["calls"] == want, (name, fn[name], want)
    # Each of those calls called count() once.
    assert fn["count"]["calls"] == sum(plain.values()) + sum(own.values())
    # The second thread's calls, paired on their own shadow stack.
    assert fn["t_leaf"]["calls"] == fn["t_leaf"]["timed"] == 300

    # cProfile, in a run of its own (first phase, main thread only), agrees.
    oracle = start_target(interp, "calls_workload.py", ["cprofile"], container=container)
    assert oracle.wait(timeout=60) == 0, oracle.logs()
    cprof = oracle.read_json("cprofile.json")
    assert cprof["fib"] > 1000 and cprof["add"] == 50 and cprof["keyfn"] == 200
    for name, ncalls in cprof.items():
        if name in ("numbers", "relay", "gen_reraiser", "run_cprofile", "main"):
            continue  # cProfile counts each generator resumption as a call
        extra = own.get(name, 0)
        if name == "count":
            extra = sum(own.values()) + plain["t_task"] + plain["t_leaf"]
        assert fn[name]["calls"] == ncalls + extra, (name, ncalls, extra, fn[name])

    # A generator's call is its start; resuming it is not a call.
    assert fn["numbers"]["calls"] == plain["numbers"] == 50 + 50
    assert fn["relay"]["calls"] == plain["relay"] == 50
    assert fn["gen_reraiser"]["calls"] == plain["gen_reraiser"] == 50

    # Frames left by an exception, also when it passed through C (sorted's key).
    assert fn["boom"]["exceptions"] == raised["boom"] + profiled["boom"]
    assert fn["key_boom"]["exceptions"] == raised["key_boom"] == 50
    # Re-raised: no new traceback entry, the frame was marked when the exception first came.
    for name in ("reraiser", "finally_leaver", "with_leaver", "gen_reraiser"):
        assert fn[name]["exceptions"] == raised[name] == 50, (name, fn[name])
    for name in ("leaf", "middle", "fib", "catcher", "through_c", "numbers", "relay", "leavers",
                 "__enter__", "__exit__"):
        assert fn[name]["exceptions"] == 0, name

    # Timing: every call paired within the per-thread depth; deeper ones counted only.
    for name in ("leaf", "middle", "fib", "descend", "boom", "key_boom", "numbers", "relay",
                 "napper", "sleepy", "reraiser", "gen_reraiser", "leavers"):
        assert fn[name]["timed"] == fn[name]["calls"], name
    # plunge(300) runs past the 256 frames a thread's shadow stack pairs.
    assert fn["plunge"]["timed"] < fn["plunge"]["calls"] == 301
    assert doc["drops"]["overflow"] >= 301 - fn["plunge"]["timed"]
    assert doc["drops"]["unpaired"] == 0
    for f in fn.values():
        assert f["self_ns"] <= f["total_ns"] and f["min_ns"] <= f["avg_ns"] <= f["max_ns"], f
        assert sum(b["count"] for b in f["hist"]) == f["timed"], f
    # napper sleeps 2 ms; sleepy calls it 3 times and does little itself.
    assert fn["napper"]["min_ns"] >= 2_000_000
    assert fn["sleepy"]["min_ns"] >= 6_000_000
    assert fn["sleepy"]["self_ns"] < fn["sleepy"]["total_ns"] / 10
    assert fn["napper"]["self_ns"] > fn["napper"]["total_ns"] * 0.9  # time.sleep is C
    # The outermost fib(18) call: as long as the target measured it.
    fib_max, fib_wall = fn["fib"]["max_ns"], result["fib18_ns"]
    assert abs(fib_max - fib_wall) <= fib_wall * 0.1 + 200_000, (fib_max, fib_wall)
    # Self times: no more than two threads' worth of the traced time.
    assert sum(f["self_ns"] for f in doc["functions"]) <= 2 * doc["duration_ns"]
    # Methods and closures by qualified name.
    minor = tuple(map(int, interp.minor.split(".")))
    if minor >= (3, 11):  # co_qualname
        assert fn["bump"]["qualname"] == "Counter.bump"
        assert fn["add"]["qualname"] == "make_adder.<locals>.add"
    # Lines are the functions' first lines.
    assert fn["leaf"]["line"] < fn["middle"]["line"] < fn["fib"]["line"]


@pytest.mark.parametrize("interp", [pytest.param(i, id=i.name) for i in rig.interpreters(
    supported=True, source="pyenv-stripped")])
def test_calls_table_without_symbols(interp, start_target, pyxtrace_bin):
    """A stripped build's opcode table, found by its shape, is the one its
    unstripped twin names by symbol; its hooks sit at the same places."""
    twin = rig.by_name(interp.name.replace("-stripped", ""))
    hooks = {}
    for it in (interp, twin):
        target = start_target(it, "calls_workload.py")
        target.wait_for("ready")
        doc = pyx.run(pyxtrace_bin, "calls", "--json", "--max-overhead", "0", "-p", target.pid, "-d", "0.2s",
                      check_rc=0).json()
        hooks[it.source] = doc
    stripped, named = hooks["pyenv-stripped"], hooks["pyenv"]
    assert stripped["opcode_table"]["from"] == "shape"
    assert named["opcode_table"]["from"] == "symtab"
    assert stripped["opcode_table"]["address"] == named["opcode_table"]["address"]
    assert sorted((h["kind"], h["address"], h["probe_offset"]) for h in stripped["hooks"]) == \
        sorted((h["kind"], h["address"], h["probe_offset"]) for h in named["hooks"])


@pytest.mark.interps("bookworm-3.11,pyenv-3.8,pyenv-3.10,pyenv-3.12,pyenv-3.13")
def test_calls_launch(interp, tmp_path, pyxtrace_bin):
    """`calls -- CMD` holds the program before any Python runs: a short
    program is counted from its first call."""
    interp.require()
    script = os.path.join(os.path.dirname(__file__), "targets", "calls_workload.py")
    res = pyx.run(pyxtrace_bin, "calls", "--json", "--max-overhead", "0", "--", interp.python_host, script, "launch",
                  check_rc=0, env={**os.environ, "PYX_OUT": str(tmp_path)})
    doc = res.json()
    result = json.loads((tmp_path / "result.json").read_text())
    assert doc["stopped_by"] == "target-exit"
    fn = {f["function"]: f for f in doc["functions"] if f["file"] == result["file"]}
    plain, own = result["counts"], result["profiled_counts"]
    for name in ("leaf", "middle", "fib", "bump", "add", "keyfn", "t_leaf", "count"):
        want = plain.get(name, 0) + own.get(name, 0)
        if name == "count":
            want = sum(plain.values()) + sum(own.values())
        assert fn[name]["calls"] == want, (name, fn[name], want)
    # main() itself ran once, and the script's own module frame, from its first line on.
    assert fn["main"]["calls"] == 1 and fn["<module>"]["calls"] == 1


@pytest.mark.interps("sid-3.14")
def test_calls_jit_falls_back_to_sampling(interp, start_target, pyxtrace_bin):
    """PYTHON_JIT=1 (Debian's 3.14 has the JIT): hot loops become JIT traces whose
    calls pass no hook (28 672 of 200 000 seen when tried). pyxtrace samples instead
    and says so: mode sampled, not exact, time shares of the loop's functions."""
    interp.require()
    target = start_target(interp, "hot_loop.py", env={"PYTHON_JIT": "1"})
    target.wait_for("ready")
    doc = run_calls(pyxtrace_bin, target).json()
    result = target.read_json("result.json")
    assert doc["mode"] == "sampled" and doc["exact"] is False
    assert "PYTHON_JIT" in doc["sampled_because"]
    fn = {f["qualname"]: f for f in doc["functions"] if f["file"] == result["file"]}
    assert doc["samples"] > 0 and fn["main"]["total_share"] > 50, fn


@pytest.mark.interps("bookworm-3.11,pyenv-3.9,pyenv-3.12,sid-3.15")
@pytest.mark.parametrize("where", ["host", "container"])
def test_calls_sampled_shares(interp, where, start_target, pyxtrace_bin, tmp_path):
    """--sampled: time shares from stacks sampled while the target runs; heavy() and
    light() take 3:1 of the thread's CPU time as the workload measures it, and the
    samples agree within 10 points. --folded writes the stacks they came from."""
    container = where == "container"
    interp.require(container=container)
    target = start_target(interp, "spin_workload.py", container=container)
    target.wait_for("ready")
    folded = tmp_path / "stacks.folded"
    doc = run_calls(pyxtrace_bin, target, "--folded", folded, container=container).json()
    result = target.read_json("result.json")
    spent = result["spent"]
    want = 100 * spent["heavy"] / (spent["heavy"] + spent["light"])
    fn = {f["qualname"]: f for f in doc["functions"] if f["file"] == result["file"]}
    assert doc["mode"] == "sampled" and doc["exact"] is False and doc["samples"] >= 100
    got = 100 * fn["heavy"]["total_samples"] / (fn["heavy"]["total_samples"] +
                                                 fn["light"]["total_samples"])
    assert abs(got - want) < 10, (got, want, fn)
    lines = folded.read_text().splitlines()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == doc["samples"]
    assert any("heavy (" in line and line.startswith("<module>") or "main (" in line
               for line in lines), lines[:5]


@pytest.mark.interps("sid-3.14,bookworm-3.11,pyenv-3.9")
def test_calls_thread_and_min_latency(interp, start_target, pyxtrace_bin):
    """--thread keeps one thread's calls (here the main thread: the second
    thread's functions are gone, the main thread's counts unchanged);
    --min-latency keeps only functions with a call at least that slow."""
    interp.require()
    target = start_target(interp, "calls_workload.py")
    target.wait_for("ready")
    res = pyx.run(pyxtrace_bin, "calls", "-p", target.pid, "--thread", "1")
    assert res.rc == 1 and "not a thread of process" in res.stderr, res
    doc = run_calls(pyxtrace_bin, target, "--thread", target.pid, "--min-latency", "1ms").json()
    # (the workload's main thread is the process's first: its TID is the PID)
    result = target.read_json("result.json")
    fn = {f["function"]: f for f in doc["functions"] if f["file"] == result["file"]}
    assert "t_leaf" not in fn and "t_task" not in fn
    # leaf, count, keyfn... never take 1 ms: fewer functions than the workload ran.
    assert len(fn) < len(result["counts"])
    assert fn["napper"]["calls"] == result["counts"]["napper"] == 12
    assert fn["sleepy"]["calls"] == 4 and fn["work"]["calls"] == 1
    assert all(f["max_ns"] >= 1_000_000 for f in doc["functions"])


@pytest.mark.interps("bookworm-3.11,bullseye-3.9,pyenv-3.8,pyenv-3.12,pyenv-3.13")
def test_calls_module_native_rows(interp, start_target, pyxtrace_bin):
    """--module _json: its C entry points in the same table (kind native), counted
    like setprofile's c_call events; their time leaves their Python callers' self
    time (the shadow stack holds both)."""
    interp.require()
    target = start_target(interp, "json_workload.py")
    target.wait_for("ready")
    doc = run_calls(pyxtrace_bin, target, "--module", "_json").json()
    result = target.read_json("result.json")
    native = {f["function"]: f for f in doc["functions"] if f["kind"] == "native"}
    python = {f["function"]: f for f in doc["functions"] if f["file"] == result["file"]}
    # (_json is built into Debian's 3.13+ executables: not a module to probe there)
    assert result["c_calls"]["encode_basestring_ascii"] == result["rounds"]
    for name, count in result["c_calls"].items():
        assert native["_json." + name]["calls"] == count, (name, native.get("_json." + name))
    assert all(f["file"].endswith(".so") and f["timed"] == f["calls"] for f in native.values())
    assert python["roundtrip"]["calls"] == result["rounds"]
    # Self time of every Python function excludes the C entry points it called.
    for f in doc["functions"]:
        assert f["self_ns"] <= f["total_ns"]


@pytest.mark.interps("bookworm-3.11,pyenv-3.9,sid-3.15")
def test_calls_cfunc(interp, start_target, pyxtrace_bin):
    """--cfunc GLOB: C functions by symbol, here the fixture's burn(), counted as the
    fixture counts its own calls."""
    interp.require(fixture=True)
    target = start_target(interp, "watch_workload.py")
    target.wait_for("ready")
    res = pyx.run(pyxtrace_bin, "calls", "-p", target.pid, "--cfunc", "no_such_fn*")
    assert res.rc == 1 and "matches no function" in res.stderr, res
    doc = run_calls(pyxtrace_bin, target, "--cfunc", "pyxfixture_bu*").json()
    result = target.read_json("result.json")
    native = {f["function"]: f for f in doc["functions"] if f["kind"] == "native"}
    assert native["pyxfixture_burn"]["calls"] == result["counts"]["burn"] == 20
    assert native["pyxfixture_burn"]["min_ns"] >= 100_000  # burn(100) busy-loops 100 us


def test_calls_usage(pyxtrace_bin):
    res = pyx.run(pyxtrace_bin, "calls")
    assert res.rc == 2 and "a target is required" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "calls", "-p", "1", "--sort", "bogus")
    assert res.rc == 2 and "--sort" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "calls", "-p", "1", "--match", "(")
    assert res.rc == 2 and "--match" in res.stderr, res
    res = pyx.run(pyxtrace_bin, "calls", "-p", "1", "--min-latency", "soon")
    assert res.rc == 2 and "--min-latency" in res.stderr, res


@pytest.mark.interps("bookworm-3.11,pyenv-3.9,sid-3.14")
def test_calls_overhead_budget(interp, start_target, pyxtrace_bin):
    """--max-overhead (default 5 %): a target spinning on Python calls pays far
    more than that while the hooks are on, so they are paused after their first
    window and the counts cover that window only (fewer than the target made);
    a light target stays within budget and is counted exactly."""
    interp.require()
    heavy = start_target(interp, "budget_workload.py", ["heavy"])
    heavy.wait_for("ready")
    proc = pyx.start_attached(pyxtrace_bin, "calls", "-v", "--json", "-p", heavy.pid)
    open(heavy.path("go"), "w").close()
    doc = pyx.finish(proc).json()
    made = heavy.read_json("result.json")["calls"]["fib"]
    over = doc["overhead"]
    assert over["max_pct"] == 5 and over["pauses"] >= 1, over
    assert over["max_window_pct"] > 5 and over["traced_fraction"] < 0.5, over
    costs = over["probe_costs_ns"]
    assert 0 < costs["optimized"] and 0 < costs["emulated"] and 0 < costs["single_step"], costs
    fib = next(f for f in doc["functions"] if f["function"] == "fib")
    assert 0 < fib["calls"] < made, (fib["calls"], made)
    assert doc["drops"]["overflow"] == 0 and doc["drops"]["unpaired"] == 0, doc["drops"]

    light = start_target(interp, "budget_workload.py", ["light"])
    light.wait_for("ready")
    proc = pyx.start_attached(pyxtrace_bin, "calls", "-v", "--json", "-p", light.pid)
    open(light.path("go"), "w").close()
    doc = pyx.finish(proc).json()
    assert doc["overhead"]["pauses"] == 0 and doc["overhead"]["traced_fraction"] == 1, doc
    tick = next(f for f in doc["functions"] if f["function"] == "tick")
    assert tick["calls"] == light.read_json("result.json")["calls"]["tick"] == 40

    res = pyx.run(pyxtrace_bin, "calls", "-p", "1", "--max-overhead", "lots")
    assert res.rc == 2 and "--max-overhead" in res.stderr, res
