#!/usr/bin/python3
"""`pyxtrace stack` against `gdb -p PID -batch -ex "thread apply all py-bt"`
on the same 20-thread process (host Debian python3.11 with python3.11-dbg,
which gdb's py-bt needs), in one run: wall time, peak RSS of the tool, and
the largest gap a 1 ms ticker thread inside the target saw while each tool
ran (peak RSS is VmHWM polled every millisecond while the tool runs) (a stopped process shows up as a long gap), against the untraced gap.
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


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_tool(argv):
    """Wall time and peak RSS (KiB) of one run of argv. The peak is VmHWM
    polled while it runs: wait4's ru_maxrss would include the forking
    Python's own RSS (the kernel keeps the pre-exec high-water mark)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks, peak = [], 0
    os.set_blocking(proc.stdout.fileno(), False)
    while proc.poll() is None:
        peak = max(peak, vm_hwm_kib(proc.pid))
        try:
            data = proc.stdout.read()
            if data:
                chunks.append(data)
        except BlockingIOError:
            pass
        time.sleep(0.001)
    t1 = time.monotonic()
    rest = proc.stdout.read()
    if rest:
        chunks.append(rest)
    return t0, t1, peak, b"".join(chunks), proc.returncode


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
        tools = [("pyxtrace stack", [PYXTRACE, "stack", "-p", str(target.pid)]),
                 ("pyxtrace --native", [PYXTRACE, "stack", "--native", "-p", str(target.pid)])]
        if shutil.which("gdb"):
            tools.append(("gdb py-bt", ["gdb", "-p", str(target.pid), "-batch", "-nx", "-ex",
                                        "thread apply all py-bt"]))
            tools.append(("gdb bt + py-bt", ["gdb", "-p", str(target.pid), "-batch", "-nx",
                                             "-ex", "thread apply all bt",
                                             "-ex", "thread apply all py-bt"]))
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
        by = {r[0]: r for r in rows}
        if "gdb py-bt" in by:
            print(f"\ngdb py-bt / pyxtrace stack: wall x{by['gdb py-bt'][1] / by['pyxtrace stack'][1]:.0f}, "
                  f"RSS x{by['gdb py-bt'][2] / by['pyxtrace stack'][2]:.1f}")
            print(f"gdb bt + py-bt / pyxtrace --native: wall "
                  f"x{by['gdb bt + py-bt'][1] / by['pyxtrace --native'][1]:.1f}, RSS "
                  f"x{by['gdb bt + py-bt'][2] / by['pyxtrace --native'][2]:.1f}")
        name, wall, mb, gap = rows[0]
        print(f"pyxtrace stack goals: wall <= 0.2 s: {'met' if wall <= 0.2 else 'NOT met'}; "
              f"RSS < 30 MB: {'met' if mb < 30 else 'NOT met'}; "
              f"gap vs untraced: {gap * 1000:.1f} vs {untraced * 1000:.1f} ms")
        name, wall, mb, gap = by["pyxtrace --native"]
        print(f"pyxtrace --native goal: wall <= 0.5 s: {'met' if wall <= 0.5 else 'NOT met'} "
              f"({wall * 1000 / 20:.1f} ms per thread, first symbolization included)")
    finally:
        target.kill()
        target.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
