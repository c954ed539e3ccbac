"""`pyxtrace watch --module`: entry and return of every C entry point,
paired per thread, returns classified by signature class; ground truth is
the fixture's own counters and the exceptions the workload caught."""

import pytest

import pyx


def run_watch(pyxtrace_bin, target, *extra, container=False, module="pyxfixture",
              all_docs=False):
    """watch the target from before it starts working ("go") until it exits."""
    args = ["watch", "-v", "--json", "--module", module, *extra]
    args += ["--container", target.container_id, "-p", target.ns_pid] if container \
        else ["-p", target.pid]
    proc = pyx.start_attached(pyxtrace_bin, *args)
    open(target.path("go"), "w").close()
    result = pyx.finish(proc)
    return result.json_lines() if all_docs else result.json()


@pytest.mark.interps(supported=True)
@pytest.mark.parametrize("where", ["host", "container"])
def test_watch_counts_errors_bad_returns(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "watch_workload.py", container=container)
    target.wait_for("ready")
    # -i: the totals so far every 10 ms (the workload runs > 45 ms), then the final ones;
    # errors, bad returns and calls of 90 us or more reported one by one with their stacks.
    lines = run_watch(pyxtrace_bin, target, "-i", "10ms", "--errors", "--slow", "90us",
                      container=container, all_docs=True)
    docs = [d for d in lines if "functions" in d]
    events = [d for d in lines if d.get("event") == "call"]
    doc = docs[-1]
    # (reported calls are unwound in the same loop: the first one loads the interpreter's
    # DWARF, which can delay the next interval past the workload's end)
    assert len(docs) >= 2 and [d["final"] for d in docs] == [False] * (len(docs) - 1) + [True]
    for before, after in zip(docs, docs[1:]):
        assert before["stopped_by"] is None and before["duration_ns"] < after["duration_ns"]
        for b, a in zip(before["functions"], after["functions"]):
            assert b["name"] == a["name"] and b["calls"] <= a["calls"]
            assert sum(x["count"] for x in b["hist"]) <= sum(x["count"] for x in a["hist"])
    result = target.read_json("result.json")
    counts, caught = result["counts"], result["caught"]
    fn = {f["name"]: f for f in doc["functions"]}
    assert doc["final"] is True and doc["stopped_by"] == "target-exit"

    # Calls: the fixture's own counters (reset_counts zeroes itself as it runs).
    for name, counter in (("pyxfixture.burn", "burn"), ("pyxfixture.raise_error", "raise_error"),
                          ("pyxfixture.null_without_error", "null_without_error"),
                          ("pyxfixture.value_with_error", "value_with_error"),
                          ("pyxfixture.recurse", "recurse"), ("Thing.__init__", "thing_init"),
                          ("Thing.(tp_dealloc)", "thing_dealloc"),
                          ("Thing.value (set)", "thing_value_set")):
        assert fn[name]["calls"] == counts[counter], name

    # Errors and bad returns, classified by signature class.
    assert fn["pyxfixture.raise_error"]["errors"] == caught["ValueError"] == 20
    bad = 0 if result["debug"] else 20
    assert fn["pyxfixture.null_without_error"]["bad_returns"]["null_without_exception"] == bad
    assert fn["pyxfixture.value_with_error"]["bad_returns"]["value_with_exception"] == bad
    assert caught["SystemError"] == 2 * bad
    assert fn["Thing.value (set)"]["errors"] == caught["TypeError"] == 20
    for name in ("pyxfixture.burn", "Thing.__init__", "Thing.(tp_dealloc)"):
        f = fn[name]
        assert f["errors"] == 0 and f["bad_returns"]["null_without_exception"] == 0 and \
            f["bad_returns"]["value_with_exception"] == 0, f
    # Latency: burn(100) busy-loops 100 µs.
    assert 100_000 <= fn["pyxfixture.burn"]["min_ns"] <= fn["pyxfixture.burn"]["max_ns"]

    # 200-deep recursion through the fixture: the kernel keeps 64 pending returns per task;
    # the rest are reported lost, never timed wrong.
    rec = fn["pyxfixture.recurse"]
    assert rec["calls"] == result["depth"]
    assert rec["lost_returns"] == rec["calls"] - 64
    assert doc["drops"]["uretprobe_depth"] == rec["calls"] - 64
    assert all(f["return_probe"] for f in doc["functions"])

    # Histograms: every timed return is in one bucket; percentiles match the durations the
    # workload measured around each sleep() (18 x 200 us, 2 x 20 ms), to a bucket (< 25 %).
    for f in doc["functions"]:
        assert sum(b["count"] for b in f["hist"]) == f["calls"] - f["lost_returns"], f["name"]
    sleep, slept = fn["pyxfixture.sleep"], sorted(result["slept_ns"])
    assert sleep["calls"] == counts["sleep"] == 20
    assert 200_000 <= sleep["min_ns"] and sleep["max_ns"] <= slept[-1]
    assert 200_000 <= sleep["p50_ns"] and sleep["p50_ns"] * 0.8 <= slept[9]
    assert sleep["p90_ns"] < 20_000_000 <= sleep["p99_ns"]
    assert sleep["p99_ns"] * 0.8 <= slept[-1]
    # (the two long ones may straddle a bucket edge: 20.97 ms)
    long_ = [b["count"] for b in sleep["hist"] if b["le_ns"] is None or b["le_ns"] >= 20_000_000]
    assert sum(long_) == 2

    # Python callers, counted in the kernel by the walker at each entry: exactly the calling
    # function and line sys.setprofile saw (c_call) for every fixture function it profiled.
    assert doc["callers_depth"] == 1
    for name, sites in result["callers"].items():
        seen = {"%s:%s:%d" % (c["file"].rsplit("/", 1)[-1], c["function"], c["line"]): c["count"]
                for c in fn[name]["callers"]}
        assert seen == sites, name
    assert sum(c["count"] for c in fn["pyxfixture.recurse"]["callers"]) == result["depth"]

    # --errors: each error and bad return, with the calling Python frame on top of the stack.
    def reported(name, reason):
        return [e for e in events if e["function"] == name and reason in e["reasons"]]

    def innermost_python(event):
        return next(f for f in event["stack"] if f["kind"] == "python")

    assert doc["reported"] == len(events)
    expect_errors = {"pyxfixture.raise_error": ("error", 20), "Thing.value (set)": ("error", 20),
                     "pyxfixture.null_without_error": ("null_without_exception", bad),
                     "pyxfixture.value_with_error": ("value_with_exception", bad)}
    for name, (reason, count) in expect_errors.items():
        got = reported(name, reason)
        assert len(got) == count, (name, reason, len(got))
        if name.startswith("pyxfixture.") and count:
            (site,) = result["callers"][name]
            for e in got:
                top = innermost_python(e)
                assert "%s:%s:%d" % (top["file"].rsplit("/", 1)[-1], top["function"],
                                     top["line"]) == site, e["stack"]
    for e in reported("pyxfixture.null_without_error", "null_without_exception"):
        assert e["return"] == "0x0" and e["tid"] == target.pid
    # --slow: every burn(100) (a 100 us busy loop), with its mixed stack: the caller's native
    # frames (the interpreter) and the Python frame that called it.
    slow = reported("pyxfixture.burn", "slow")
    assert len(slow) == 20
    (site,) = result["callers"]["pyxfixture.burn"]
    for e in slow:
        assert e["duration_ns"] >= 100_000
        top = innermost_python(e)
        assert "%s:%s:%d" % (top["file"].rsplit("/", 1)[-1], top["function"], top["line"]) == site
        native = [f for f in e["stack"] if f["kind"] == "native"]
        assert native and e["stack"].index(native[0]) < e["stack"].index(top), e["stack"]
        assert any(f["object"] and "python" in f["object"].rsplit("/", 1)[-1] for f in native)


def test_watch_usage(pyxtrace_bin):
    res = pyx.run(pyxtrace_bin, "watch", "-p", "1")
    assert res.rc == 2 and "--module NAME is required" in res.stderr
    res = pyx.run(pyxtrace_bin, "watch", "--module", "x")
    assert res.rc == 2 and "a target is required" in res.stderr
    for bad in ("0", "-1s", "soon"):
        res = pyx.run(pyxtrace_bin, "watch", "--module", "x", "-p", "1", "-i", bad)
        assert res.rc == 2 and f"invalid interval '{bad}'" in res.stderr, res
    for opt, bad in (("--callers", "9"), ("--callers", "-1"), ("--callers", "x"),
                     ("--slow", "0"), ("--slow", "fast"), ("--sort", "name"), ("--top", "0")):
        res = pyx.run(pyxtrace_bin, "watch", "--module", "x", "-p", "1", opt, bad)
        assert res.rc == 2 and f"invalid {opt} '{bad}'" in res.stderr, res


@pytest.mark.interps("bullseye-3.9,bookworm-3.11,pyenv-3.12,sid-3.14")
def test_watch_args_sort_top(interp, start_target, pyxtrace_bin):
    """--args: burn(100)'s module and argument are the objects whose id() the
    workload recorded, its return value is None; --callers 0 counts no callers;
    --sort/--top order and cut the text table."""
    interp.require(fixture=True)
    target = start_target(interp, "watch_workload.py")
    target.wait_for("ready")
    lines = run_watch(pyxtrace_bin, target, "--args", "--callers", "0", all_docs=True)
    result = target.read_json("result.json")
    doc, events = lines[-1], [d for d in lines if d.get("event") == "call"]
    ids = {k: hex(v) for k, v in result["ids"].items()}
    burn = [e for e in events if e["function"] == "pyxfixture.burn"]
    assert len(burn) == 20 and all(e["reasons"] == ["call"] for e in burn)
    for e in burn:
        assert e["args"][:2] == [ids["module"], ids["usec"]] and e["return"] == ids["none"]
        assert e["duration_ns"] >= 100_000 and "stack" not in e
    # Every call whose return was seen is reported (the recursion's lost ones cannot be).
    fn = {f["name"]: f for f in doc["functions"]}
    assert len(events) == doc["reported"] == sum(f["calls"] - f["lost_returns"]
                                                 for f in fn.values())
    assert doc["callers_depth"] is None and all("callers" not in f for f in fn.values())

    target2 = start_target(interp, "watch_workload.py")
    target2.wait_for("ready")
    proc = pyx.start_attached(pyxtrace_bin, "watch", "-v", "--module", "pyxfixture", "--sort", "max",
                              "--top", "2", "-p", target2.pid)
    open(target2.path("go"), "w").close()
    res = pyx.finish(proc)
    rows = res.stdout.splitlines()
    header = next(i for i, line in enumerate(rows) if line.startswith("FUNCTION"))
    # The two slowest: sleep (20 ms) first, then the outer recurse or burn; callers under each.
    table = [r for r in rows[header + 1:] if r and not r.startswith(" ")]
    assert table[0].split()[0] == "pyxfixture.sleep", res.stdout
    assert table[2].startswith("(") and "more entry points called; --top" in table[2], res.stdout
    assert rows[header + 2].lstrip().split()[1] == "from", res.stdout


@pytest.mark.interps("trixie-3.13,sid-3.14,sid-3.15")
def test_watch_pillow_matches_setprofile(interp, start_target, pyxtrace_bin):
    """Pillow's stripped _imaging, probes moved to cheap prologue instructions
    where possible: calls of every entry point called from bytecode equal the
    c_call counts sys.setprofile saw inside the target."""
    interp.require()
    target = start_target(interp, "pillow_workload.py")
    target.wait_for("ready", timeout=60)
    doc = run_watch(pyxtrace_bin, target, module="_imaging")
    truth = target.read_json("result.json")
    profiled = truth["calls"]
    fn = {f["name"]: f for f in doc["functions"]}
    assert {"PIL._imaging.fill", "ImagingCore.getpixel"} <= set(profiled)
    for name, count in profiled.items():
        assert name in fn, name
        # C code of the module may call its own entry points too: never fewer.
        assert fn[name]["calls"] >= count, (name, fn[name]["calls"], count)
    assert fn["ImagingCore.getpixel"]["calls"] == profiled["ImagingCore.getpixel"]
    assert fn["PIL._imaging.fill"]["calls"] == profiled["PIL._imaging.fill"]
    # Their Python callers, counted in the kernel, are the frames sys.setprofile saw.
    for name in ("ImagingCore.getpixel", "PIL._imaging.fill"):
        seen = {"%s:%s:%d" % (c["file"].rsplit("/", 1)[-1], c["function"], c["line"]): c["count"]
                for c in fn[name]["callers"]}
        assert seen == truth["callers"][name], name
    moved = [f for f in doc["functions"] if f["probe_offset"]]
    assert moved, "no probe moved off a single-stepped entry"
    assert doc["single_stepped"] < len(doc["functions"])


@pytest.mark.interps("bookworm-3.11,pyenv-3.13,sid-3.15")
def test_watch_all_symbols_counts_c_to_c(interp, start_target, pyxtrace_bin):
    """--all-symbols adds the module's other functions: C->C calls of the
    fixture's static helpers equal its own counters."""
    interp.require(fixture=True)
    target = start_target(interp, "fixture_calls.py")
    target.wait_for("ready")
    doc = run_watch(pyxtrace_bin, target, "--all-symbols")
    counters = target.read_json("calls.json")
    fn = {f["name"]: f for f in doc["functions"]}
    assert fn["pyxfixture_leaf"]["calls"] == counters["leaf"] == 150
    assert fn["pyxfixture_leaf"]["signature"] == "unknown"
    assert fn["pyxfixture.c_to_c"]["calls"] == counters["c_to_c"]
