#!/usr/bin/python3
"""Cost per call of watching a cheap C entry point (the fixture's c_to_c(0),
called 200 000 times from Python on the host's Debian python3.11), side by
side in one run: untraced; the bare entry+return probe floor on the same
site (empty programs); `pyxtrace watch --module pyxfixture` (every entry
point of the module probed) with its parts added one at a time: pairing,
latency histogram and errors by return value (watch-bare: --callers 0
--no-exception-checks), + the thread's exception at PyObject* returns (bad
returns; watch-nocallers: --callers 0), + the calling Python frame counted
by the walker (watch, the default); and bpftrace uprobe+uretprobe with a
latency histogram on the same function. Times per call are measured inside
the target; pyxtrace's peak RSS (VmHWM) is read while it runs. Goal:
watch-bare <= 1.1 x floor.

Run as root after tools/build and tests/rig/setup.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import peak_rss_kib, wait_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYXTRACE = os.path.join(ROOT, "build", "user", "pyxtrace")
WALK_COST = os.path.join(ROOT, "build", "bench", "walk-cost")
PYTHON = "/usr/bin/python3.11"
FIXTURE_DIR = "/var/cache/pyxtrace/fixtures/bookworm-3.11"
CALLS = 200_000
ROUNDS = 3


def run_once(mode):
    """One run; the target is killed if the tracer fails (it would wait for go forever)."""
    procs = []
    try:
        return run_once_in(mode, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def run_once_in(mode, procs):
    tmp = tempfile.mkdtemp(prefix="pyx-bench-")
    go, ready = os.path.join(tmp, "go"), os.path.join(tmp, "ready")
    env = dict(os.environ, PYTHONPATH=FIXTURE_DIR)
    target = subprocess.Popen([PYTHON, os.path.join(ROOT, "bench", "workloads", "depth_calls.py"),
                               "0", str(CALLS), go, ready], stdout=subprocess.PIPE, text=True,
                              env=env)
    procs.append(target)
    while not os.path.exists(ready):
        time.sleep(0.005)
    tracer = None
    so = glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so"))[0]
    if mode == "floor":
        tracer = subprocess.Popen([WALK_COST, str(target.pid), "pyxfixture", "pyxfixture_c_to_c",
                                   "empty-return"], stdout=subprocess.PIPE, text=True)
        wait_line(tracer.stdout, "attached")
    elif mode.startswith("watch"):
        extra = {"watch-bare": ["--callers", "0", "--no-exception-checks"],
                 "watch-nocallers": ["--callers", "0"]}.get(mode, [])
        tracer = subprocess.Popen([PYXTRACE, "watch", "-v", "--json", "--module", "pyxfixture",
                                   *extra, "-p", str(target.pid)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_line(tracer.stderr, "attached, tracing")
    elif mode == "bpftrace":
        prog = (f"uprobe:{so}:pyxfixture_c_to_c {{ @s[tid] = nsecs; }} "
                f"uretprobe:{so}:pyxfixture_c_to_c /@s[tid]/ "
                "{ @lat = hist(nsecs - @s[tid]); delete(@s[tid]); }")
        tracer = subprocess.Popen(["bpftrace", "-p", str(target.pid), "-e", prog],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_line(tracer.stdout, "Attaching")
        time.sleep(0.5)
    open(go, "w").close()
    result = json.loads(target.stdout.readline())
    rss_kib = None
    if tracer is not None and mode.startswith("watch"):
        rss_kib = peak_rss_kib(tracer.pid)
    target.wait()
    probe = None
    if tracer is not None:
        if mode == "bpftrace":
            tracer.terminate()
        out = tracer.communicate(timeout=60)[0]
        if mode.startswith("watch"):
            doc = json.loads(out)
            f = next(f for f in doc["functions"] if f["name"] == "pyxfixture.c_to_c")
            assert f["calls"] == CALLS, f
            probe = f["probe"]
    shutil.rmtree(tmp)
    result["probe"] = probe
    result["rss_kib"] = rss_kib
    return result


TRIXIE = "/var/cache/pyxtrace/rig/roots/trixie"  # Debian 3.13 with numpy 2.2 (tests/rig)
NUMPY_LOOPS = 100_000
NUMPY_SCRIPT = """
import json, os, sys, time
import numpy as np
a = np.ones(8)
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.005)
t = time.perf_counter_ns()
for _ in range(%d):
    np.add(a, a)
print(json.dumps({"ns_per_loop": (time.perf_counter_ns() - t) / %d}), flush=True)
""" % (NUMPY_LOOPS, NUMPY_LOOPS)


def numpy_once(watch):
    """np.add on 8 doubles in a loop, in the rig's trixie root; optionally
    watched (every entry point of numpy's core module): attach time, RSS,
    ns per loop."""
    tmp = tempfile.mkdtemp(prefix="pyx-bench-", dir=os.path.join(TRIXIE, "tmp"))
    inside = "/tmp/" + os.path.basename(tmp)
    target = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                               "chroot", TRIXIE, "python3", "-c", NUMPY_SCRIPT,
                               inside + "/ready", inside + "/go"], stdout=subprocess.PIPE,
                              text=True)
    while not os.path.exists(os.path.join(tmp, "ready")):
        time.sleep(0.005)
    out = {"attach_s": None, "rss_kib": None, "entries": None}
    tracer = None
    if watch:
        start = time.monotonic()
        tracer = subprocess.Popen([PYXTRACE, "watch", "-v", "--json", "--module",
                                   "_multiarray_umath", "-p", str(target.pid)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_line(tracer.stderr, "attached, tracing")
        out["attach_s"] = time.monotonic() - start
    open(os.path.join(tmp, "go"), "w").close()
    out.update(json.loads(target.stdout.readline()))
    if tracer is not None:
        out["rss_kib"] = peak_rss_kib(tracer.pid)
    target.wait()
    if tracer is not None:
        doc = json.loads(tracer.communicate(timeout=120)[0])
        out["entries"] = len(doc["functions"])
        out["calls"] = sum(f["calls"] for f in doc["functions"])
    shutil.rmtree(tmp)
    return out


def numpy_scale():
    if not os.path.exists(os.path.join(TRIXIE, "usr/lib/python3/dist-packages/numpy")):
        print("\nnumpy: the rig's trixie root is missing (tests/rig/setup): skipped")
        return
    base = min((numpy_once(False) for _ in range(ROUNDS)), key=lambda r: r["ns_per_loop"])
    watched = min((numpy_once(True) for _ in range(ROUNDS)), key=lambda r: r["ns_per_loop"])
    per_call = (watched["ns_per_loop"] - base["ns_per_loop"]) * NUMPY_LOOPS / watched["calls"]
    print(f"\nnumpy 2.2 core module (Debian 3.13, np.add on 8 doubles x {NUMPY_LOOPS}):")
    print(f"  entry points {watched['entries']}, attach {watched['attach_s']:.2f} s, "
          f"pyxtrace RSS {watched['rss_kib'] / 1024:.1f} MB")
    print(f"  untraced {base['ns_per_loop']:.0f} ns/loop, watched {watched['ns_per_loop']:.0f} "
          f"ns/loop ({watched['ns_per_loop'] / base['ns_per_loop']:.2f}x); "
          f"{watched['calls'] / NUMPY_LOOPS:.1f} entry-point calls per loop, "
          f"{per_call:.0f} ns added per call")


def main():
    for path, fix in ((PYXTRACE, "tools/build"), (WALK_COST, "tools/build")):
        if not os.path.exists(path):
            sys.exit(f"centry_cost: {path} missing: {fix}")
    if not glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so")):
        sys.exit("centry_cost: fixture missing: tests/rig/setup")
    modes = ["untraced", "floor", "watch-bare", "watch-nocallers", "watch"] + \
        (["bpftrace"] if shutil.which("bpftrace") else [])
    best = {}
    for _ in range(ROUNDS):
        for mode in modes:
            r = run_once(mode)
            if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                best[mode] = r
    base = best["untraced"]["ns_per_call"]
    floor = best["floor"]["ns_per_call"] - base
    print(f"{'mode':16} {'ns/call':>9} {'added':>9} {'x floor':>8} {'RSS':>8}")
    for mode in modes:
        ns = best[mode]["ns_per_call"]
        added = ns - base
        rss = best[mode]["rss_kib"]
        print(f"{mode:16} {ns:9.0f} {added:9.0f} {added / floor if mode != 'untraced' else 0:8.2f}"
              f" {f'{rss / 1024:.1f} MB' if rss else '':>8}")
    watch_added = best["watch"]["ns_per_call"] - base
    nocallers_added = best["watch-nocallers"]["ns_per_call"] - base
    bare_added = best["watch-bare"]["ns_per_call"] - base
    print(f"\nwatch probe class on c_to_c: {best['watch']['probe']}")
    print(f"watch without exception checks (pairing + latency) over the floor: "
          f"{bare_added - floor:.0f} ns; goal <= 1.1 x floor: "
          f"{'met' if bare_added <= 1.1 * floor else 'NOT met'} ({bare_added / floor:.2f})")
    print(f"exception checks (bad returns) add: {nocallers_added - bare_added:.0f} ns per call")
    print(f"Python callers (walker, 1 frame) add: {watch_added - nocallers_added:.0f} ns per call")
    if "bpftrace" in best:
        bt = best["bpftrace"]["ns_per_call"] - base
        print(f"watch / bpftrace uprobe+uretprobe+hist: {watch_added / bt:.2f}")
    numpy_scale()


if __name__ == "__main__":
    main()
