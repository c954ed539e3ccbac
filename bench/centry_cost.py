#!/usr/bin/python3
"""Cost per call of watching a cheap C entry point (the fixture's c_to_c(0),
called 200 000 times from Python on the host's Debian python3.11), side by
side in one run: untraced; the bare entry+return probe floor on the same
site (empty programs); `pyxtrace watch --module pyxfixture` (every entry
point of the module probed: pairing, latency, error and bad-return checks);
and bpftrace uprobe+uretprobe with a latency histogram on the same function.
Times per call are measured inside the target. Goal: watch <= 1.1 x floor.

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYXTRACE = os.path.join(ROOT, "build", "user", "pyxtrace")
WALK_COST = os.path.join(ROOT, "build", "bench", "walk-cost")
PYTHON = "/usr/bin/python3.11"
FIXTURE_DIR = "/var/cache/pyxtrace/fixtures/bookworm-3.11"
CALLS = 200_000
ROUNDS = 3


def wait_line(stream, needle):
    seen = ""
    while needle not in seen:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"never saw {needle!r}: {seen}")
        seen += line


def run_once(mode):
    tmp = tempfile.mkdtemp(prefix="pyx-bench-")
    go, ready = os.path.join(tmp, "go"), os.path.join(tmp, "ready")
    env = dict(os.environ, PYTHONPATH=FIXTURE_DIR)
    target = subprocess.Popen([PYTHON, os.path.join(ROOT, "bench", "workloads", "depth_calls.py"),
                               "0", str(CALLS), go, ready], stdout=subprocess.PIPE, text=True,
                              env=env)
    while not os.path.exists(ready):
        time.sleep(0.005)
    tracer = None
    so = glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so"))[0]
    if mode == "floor":
        tracer = subprocess.Popen([WALK_COST, str(target.pid), "pyxfixture", "pyxfixture_c_to_c",
                                   "empty-return"], stdout=subprocess.PIPE, text=True)
        wait_line(tracer.stdout, "attached")
    elif mode.startswith("watch"):
        extra = ["--no-exception-checks"] if mode == "watch-bare" else []
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
    return result


def main():
    for path, fix in ((PYXTRACE, "tools/build"), (WALK_COST, "tools/build")):
        if not os.path.exists(path):
            sys.exit(f"centry_cost: {path} missing: {fix}")
    if not glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so")):
        sys.exit("centry_cost: fixture missing: tests/rig/setup")
    modes = ["untraced", "floor", "watch-bare", "watch"] + \
        (["bpftrace"] if shutil.which("bpftrace") else [])
    best = {}
    for _ in range(ROUNDS):
        for mode in modes:
            r = run_once(mode)
            if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                best[mode] = r
    base = best["untraced"]["ns_per_call"]
    floor = best["floor"]["ns_per_call"] - base
    print(f"{'mode':10} {'ns/call':>9} {'added':>9} {'x floor':>8}")
    for mode in modes:
        ns = best[mode]["ns_per_call"]
        added = ns - base
        print(f"{mode:10} {ns:9.0f} {added:9.0f} {added / floor if mode != 'untraced' else 0:8.2f}")
    watch_added = best["watch"]["ns_per_call"] - base
    bare_added = best["watch-bare"]["ns_per_call"] - base
    print(f"\nwatch probe class on c_to_c: {best['watch']['probe']}")
    print(f"watch without exception checks (pairing + latency) over the floor: "
          f"{bare_added - floor:.0f} ns; goal <= 1.1 x floor: "
          f"{'met' if bare_added <= 1.1 * floor else 'NOT met'} ({bare_added / floor:.2f})")
    print(f"exception checks (bad returns) add: {watch_added - bare_added:.0f} ns per call")
    if "bpftrace" in best:
        bt = best["bpftrace"]["ns_per_call"] - base
        print(f"watch / bpftrace uprobe+uretprobe+hist: {watch_added / bt:.2f}")


if __name__ == "__main__":
    main()
