#!/usr/bin/python3
"""What following processes (`--all`, `--children`, `--container`) costs,
side by side in one run:

1. The host: SPAWNS fork+exec of /bin/true (a shell's pattern, no Python)
   untraced, under `pyxtrace crash --all` (the discovery tracepoints on
   every exec/fork/exit and mmap-lock release, plus the Python processes
   already running being traced), and under bpftrace doing the bare job
   (the same three sched tracepoints keeping a map of PIDs). Microseconds
   added per spawn, the ratio to bpftrace, and pyxtrace's own CPU time per
   spawn (/proc/PID/stat: clock ticks, so 0 below ~10 ms in all).
2. New Python processes: PYTHONS runs of python3.11 living 0.5 s, their
   wall time untraced and under `crash --all` (attaching never stops them),
   how long after its exec each was followed (pyxtrace -v says it), and
   pyxtrace's RSS after all of them (no per-process leak).

SPAWNS and PYTHONS may be set in the environment (a shorter run).
Run as root after tools/build, on an otherwise quiet machine: `--all`
attaches to every Python process of the host. bpftrace's tracepoints need
tracefs: mounted at /sys/kernel/tracing for the run if it is not.
"""
import os
import re
import statistics
import subprocess
import sys
import threading
import time

from benchlib import wait_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYXTRACE = os.path.join(ROOT, "build", "user", "pyxtrace")
PYTHON = "/usr/bin/python3.11"
SPAWNS = int(os.environ.get("SPAWNS", 2000))
PYTHONS = int(os.environ.get("PYTHONS", 30))
ROUNDS = 3

BPFTRACE = """
tracepoint:sched:sched_process_fork /@tracked[args->parent_pid]/ { @tracked[args->child_pid] = 1; }
tracepoint:sched:sched_process_exec { @tracked[pid] = 1; }
tracepoint:sched:sched_process_exit { delete(@tracked[pid]); }
"""


def spawn_time():
    """Seconds for SPAWNS fork+exec+wait of /bin/true, best of ROUNDS."""
    best = None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(SPAWNS):
            pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
            os.waitpid(pid, 0)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best


def start_pyxtrace():
    proc = subprocess.Popen([PYXTRACE, "crash", "--all", "-v", "--json", "-o", os.devnull],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_line(proc.stderr, "attached, tracing")
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    time.sleep(1.0)  # the Python processes already running are attached
    return proc, lines, reader


def stop(proc, reader=None):
    proc.send_signal(2)
    proc.wait(timeout=60)
    if reader:
        reader.join(timeout=10)


def tracefs():
    """Mount tracefs if needed; True when this run mounted it (to unmount)."""
    if os.path.exists("/sys/kernel/tracing/events"):
        return False
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)
    return True


def start_bpftrace():
    proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    wait_line(proc.stdout, "Attaching")
    time.sleep(1.0)
    return proc


def cpu_s(pid):
    """User+system CPU seconds process pid has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pythons():
    """Wall seconds of each of PYTHONS short Python processes."""
    times = []
    for _ in range(PYTHONS):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "import time; time.sleep(0.5)"], check=True)
        times.append(time.perf_counter() - start)
    return times


def main():
    if os.geteuid():
        sys.exit("run as root")
    base = spawn_time()
    tracer, lines, reader = start_pyxtrace()
    cpu = cpu_s(tracer.pid)
    traced = spawn_time()
    cpu = cpu_s(tracer.pid) - cpu
    stop(tracer, reader)
    mounted = tracefs()
    try:
        bt = start_bpftrace()
        bpftrace = spawn_time()
        stop(bt)
    finally:
        if mounted:
            subprocess.run(["umount", "/sys/kernel/tracing"])
    per = lambda t: (t - base) / SPAWNS * 1e6  # noqa: E731
    print(f"fork+exec of /bin/true, best of {ROUNDS} x {SPAWNS}:")
    print(f"  untraced             {base / SPAWNS * 1e6:8.1f} us per spawn")
    print(f"  pyxtrace crash --all {traced / SPAWNS * 1e6:8.1f} us  (+{per(traced):.1f} us)")
    print(f"  bpftrace same job    {bpftrace / SPAWNS * 1e6:8.1f} us  (+{per(bpftrace):.1f} us)")
    print(f"  pyxtrace's own CPU   {cpu / (ROUNDS * SPAWNS) * 1e6:8.1f} us per spawn")
    if per(bpftrace) > 0:
        print(f"  ratio pyxtrace/bpftrace (added time): {per(traced) / per(bpftrace):.2f}")

    untraced = pythons()
    tracer, lines, reader = start_pyxtrace()
    rss_before = rss_kib(tracer.pid)
    under = pythons()
    time.sleep(1.0)
    rss_after = rss_kib(tracer.pid)
    stop(tracer, reader)
    delays = [float(m.group(1)) for line in lines
              for m in [re.search(r"following process \d+: started ([0-9.]+) ms ago", line)] if m]
    print(f"\n{PYTHONS} python3.11 processes living 0.5 s:")
    print(f"  wall untraced        median {statistics.median(untraced) * 1e3:7.1f} ms")
    print(f"  wall under --all     median {statistics.median(under) * 1e3:7.1f} ms  "
          f"(ratio {statistics.median(under) / statistics.median(untraced):.3f})")
    if delays:
        print(f"  followed after exec  median {statistics.median(delays):7.1f} ms, "
              f"max {max(delays):.1f} ms ({len(delays)} followed)")
    print(f"  pyxtrace RSS         {rss_before} KiB before, {rss_after} KiB after")


if __name__ == "__main__":
    main()
