#!/usr/bin/python3
"""Cost of one in-BPF walk of a 30-frame Python stack at a uprobe.

Side by side, in one run, on the same probe site (the fixture's
pyxfixture_c_to_c, called from 30 Python frames deep on the host's Debian
python3.11): untraced; the bare probe floor (an empty program); pyxtrace's
walker (find the PyThreadState, walk every frame); and bpftrace capturing
a native stack (ustack) at the same probe, the nearest thing a peer does.
Times per call are measured inside the target. Target: walk - floor <= 3 us.

Run as root after `tools/build` and `tests/rig/setup` (for the fixture).
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
WALK_COST = os.path.join(ROOT, "build", "bench", "walk-cost")
PYTHON = "/usr/bin/python3.11"
FIXTURE_DIR = "/var/cache/pyxtrace/fixtures/bookworm-3.11"
DEPTH = 28          # + level(0) + <module> = 30 frames at the probe
CALLS = 200_000
ROUNDS = 3


def run_once(mode):
    tmp = tempfile.mkdtemp(prefix="pyx-bench-")
    go, ready = os.path.join(tmp, "go"), os.path.join(tmp, "ready")
    env = dict(os.environ, PYTHONPATH=FIXTURE_DIR)
    target = subprocess.Popen([PYTHON, os.path.join(ROOT, "bench", "workloads", "depth_calls.py"),
                               str(DEPTH), str(CALLS), go, ready],
                              stdout=subprocess.PIPE, text=True, env=env)
    while not os.path.exists(ready):
        time.sleep(0.005)
    tracer = None
    if mode in ("floor", "walk", "walk-guard"):
        tracer = subprocess.Popen([WALK_COST, str(target.pid), "pyxfixture",
                                   "pyxfixture_c_to_c", "empty" if mode == "floor" else mode],
                                  stdout=subprocess.PIPE, text=True)
        assert tracer.stdout.readline().strip() == "attached"
    elif mode == "bpftrace-ustack":
        so = glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so"))[0]
        tracer = subprocess.Popen(["bpftrace", "-p", str(target.pid), "-e",
                                   f'uprobe:{so}:pyxfixture_c_to_c {{ @[ustack] = count(); }}'],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = ""
        while "Attaching" not in seen:   # after an RLIMIT_MEMLOCK warning it still works
            line = tracer.stdout.readline()
            assert line, seen
            seen += line
        time.sleep(0.5)
    open(go, "w").close()
    result = json.loads(target.stdout.readline())
    target.wait()
    if tracer is not None:
        if mode == "bpftrace-ustack":
            tracer.terminate()
        out = tracer.communicate(timeout=30)[0]
        if mode in ("floor", "walk", "walk-guard"):
            result["bpf"] = json.loads(out.strip().splitlines()[-1])
    shutil.rmtree(tmp)
    return result


def main():
    if not os.path.exists(WALK_COST):
        sys.exit(f"walk_cost: build first ({WALK_COST} missing): tools/build")
    if not glob.glob(os.path.join(FIXTURE_DIR, "pyxfixture*.so")):
        sys.exit("walk_cost: fixture missing: tests/rig/setup")
    modes = ["untraced", "floor", "walk", "walk-guard"]
    if shutil.which("bpftrace"):
        modes.append("bpftrace-ustack")
    best = {}
    for _ in range(ROUNDS):          # interleaved rounds, best of each: less noise
        for mode in modes:
            r = run_once(mode)
            if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                best[mode] = r
    base = best["untraced"]["ns_per_call"]
    floor = best["floor"]["ns_per_call"]
    print(f"{'mode':18} {'ns/call':>9} {'added':>9} {'x untraced':>11}")
    for mode in modes:
        ns = best[mode]["ns_per_call"]
        print(f"{mode:18} {ns:9.0f} {ns - base:9.0f} {ns / base:11.1f}")
    walk = best["walk"]
    frames = walk["bpf"]["frames"] / max(walk["bpf"]["hits"], 1)
    walk_cost = walk["ns_per_call"] - floor
    print(f"\nframes per walk: {frames:.1f} (target saw {walk['python_frames']} Python frames); "
          f"walks ok {walk['bpf']['walks_ok']} of {walk['bpf']['hits']} hits, "
          f"thread state from the gilstate slot in {walk['bpf']['fast_lookups']}")
    print(f"one walk over the empty probe: {walk_cost:.0f} ns  (goal <= 3000 ns: "
          f"{'met' if walk_cost <= 3000 else 'NOT met'})")
    guard_cost = best["walk-guard"]["ns_per_call"] - floor
    print(f"one walk reading each code object's guard too (aggregating commands): "
          f"{guard_cost:.0f} ns")
    if "bpftrace-ustack" in best:
        print(f"bpftrace ustack over the floor: {best['bpftrace-ustack']['ns_per_call'] - floor:.0f} ns "
              f"(ratio walk/bpftrace-ustack: "
              f"{walk_cost / max(best['bpftrace-ustack']['ns_per_call'] - floor, 1):.2f})")


if __name__ == "__main__":
    main()
