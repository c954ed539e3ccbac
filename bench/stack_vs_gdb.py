#!/usr/bin/python3
"""`pyxtrace stack` against `gdb -p PID -batch -ex "thread apply all py-bt"`
on the same 20-thread process (host Debian python3.11 with python3.11-dbg,
which gdb's py-bt needs), in one run: wall time, peak RSS of the tool, and
the largest gap a 1 ms ticker thread inside the target saw while each tool
ran (a stopped process shows up as a long gap), against the untraced gap.
Goals: pyxtrace <= 0.2 s and < 30 MB, and no added stop.

Run as root after tools/build.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYXTRACE = os.path.join(ROOT, "build", "user", "pyxtrace")
PYTHON = "/usr/bin/python3.11"
RUNS = 5


def run_tool(argv):
    """Wall time and peak RSS (KiB) of one run of argv, from wait4's rusage."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    t1 = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return t0, t1, usage.ru_maxrss, out, proc.returncode


def max_gap(log, t0, t1):
    worst = 0.0
    with open(log) as f:
        for line in f:
            when, gap = (float(x) for x in line.split())
            # A gap is caused by what ran while it was open: [when - gap, when].
            if when >= t0 and when - gap <= t1:
                worst = max(worst, gap)
    return worst


def main():
    if not os.path.exists(PYXTRACE):
        sys.exit("stack_vs_gdb: build first: tools/build")
    tmp = tempfile.mkdtemp(prefix="pyx-bench-")
    target = subprocess.Popen([PYTHON, os.path.join(ROOT, "bench", "workloads", "threads20.py"),
                               tmp])
    try:
        while not os.path.exists(os.path.join(tmp, "ready")):
            time.sleep(0.01)
        time.sleep(0.5)
        log = os.path.join(tmp, "gaps.log")
        t0 = time.monotonic()
        time.sleep(2)
        untraced = max_gap(log, t0, time.monotonic())

        rows = []
        tools = [("pyxtrace stack", [PYXTRACE, "stack", "-p", str(target.pid)])]
        if shutil.which("gdb"):
            tools.append(("gdb py-bt", ["gdb", "-p", str(target.pid), "-batch", "-nx", "-ex",
                                        "thread apply all py-bt"]))
        for name, argv in tools:
            walls, rss, gaps, threads = [], 0, [], 0
            for _ in range(RUNS):
                t0, t1, maxrss, out, rc = run_tool(argv)
                assert rc == 0, (name, rc)
                time.sleep(0.1)
                walls.append(t1 - t0)
                rss = max(rss, maxrss)
                gaps.append(max_gap(log, t0, t1))
                text = out.decode(errors="replace")
                threads = text.count("Traceback (most recent call last)") or \
                    text.count("Thread ") // 2
            rows.append((name, min(walls), rss / 1024, max(gaps)))
        print(f"target: 20 threads, {PYTHON}; {RUNS} runs each (best wall, worst gap)")
        print(f"{'tool':16} {'wall s':>8} {'RSS MB':>8} {'max gap ms':>11}")
        print(f"{'(untraced)':16} {'':>8} {'':>8} {untraced * 1000:11.1f}")
        for name, wall, mb, gap in rows:
            print(f"{name:16} {wall:8.3f} {mb:8.1f} {gap * 1000:11.1f}")
        if len(rows) == 2:
            print(f"\ngdb / pyxtrace: wall x{rows[1][1] / rows[0][1]:.0f}, "
                  f"RSS x{rows[1][2] / rows[0][2]:.1f}")
        name, wall, mb, gap = rows[0]
        print(f"pyxtrace goals: wall <= 0.2 s: {'met' if wall <= 0.2 else 'NOT met'}; "
              f"RSS < 30 MB: {'met' if mb < 30 else 'NOT met'}; "
              f"gap vs untraced: {gap * 1000:.1f} vs {untraced * 1000:.1f} ms")
    finally:
        target.kill()
        target.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
