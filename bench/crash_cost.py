#!/usr/bin/python3
"""What `pyxtrace crash -p PID` costs a healthy process: the same Python
workload (bench/workloads/mixed.py: calls, json, regex, allocations, file
writes) on the host's python3.11, untraced and under `crash`, side by side
in one run, best of ROUNDS each. Nothing goes wrong, so only the
signal_generate/sched_process_exit tracepoints (filtered by PID in the
kernel) and the never-hit uprobes on Py_FatalError/abort/__assert_fail are
there. Goal: < 1 %. Also prints the attach time and pyxtrace's peak RSS;
then, with `--module _json`, the cost per call of a C function with its
return probe (a loop calling _json.encode_basestring_ascii).

Run as root after tools/build.
"""
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
PYTHON = "/usr/bin/python3.11"
WORKLOAD = os.path.join(ROOT, "bench", "workloads", "mixed.py")
CFUNC_WORKLOAD = os.path.join(ROOT, "bench", "workloads", "cfunc_calls.py")
ROUNDS = 5


def run_once(traced, workload=WORKLOAD, extra=()):
    tmp = tempfile.mkdtemp(prefix="pyx-bench-")
    ready, go = os.path.join(tmp, "ready"), os.path.join(tmp, "go")
    target = subprocess.Popen([PYTHON, workload, ready, go], stdout=subprocess.PIPE, text=True)
    tracer = None
    out = {"attach_s": None, "rss_kib": None}
    try:
        while not os.path.exists(ready):
            time.sleep(0.005)
        if traced:
            start = time.monotonic()
            tracer = subprocess.Popen([PYXTRACE, "crash", "-v", "--json", *extra, "-p",
                                       str(target.pid)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_line(tracer.stderr, "attached, tracing")
            out["attach_s"] = time.monotonic() - start
        open(go, "w").close()
        out.update(json.loads(target.stdout.readline()))
        if tracer is not None:
            out["rss_kib"] = peak_rss_kib(tracer.pid)
        target.wait()
        if tracer is not None:
            summary = json.loads(tracer.communicate(timeout=60)[0].splitlines()[-1])
            assert summary["event"] == "summary" and summary["incidents"] == 0, summary
            assert summary["exit"] == {"status": 0, "signal": None, "signo": None,
                                       "core_dumped": False}, summary
    finally:
        for p in (target, tracer):
            if p is not None and p.poll() is None:
                p.kill()
        shutil.rmtree(tmp)
    return out


def main():
    if not os.path.exists(PYXTRACE):
        sys.exit(f"crash_cost: {PYXTRACE} missing: tools/build")
    runs = {False: [], True: []}
    for _ in range(ROUNDS):
        for traced in (False, True):
            runs[traced].append(run_once(traced))
    base = min(r["seconds"] for r in runs[False])
    traced = min(runs[True], key=lambda r: r["seconds"])
    print(f"{'mode':10} {'seconds':>9} {'ratio':>7}")
    print(f"{'untraced':10} {base:9.3f} {1:7.3f}")
    print(f"{'crash':10} {traced['seconds']:9.3f} {traced['seconds'] / base:7.3f}")
    print(f"\ncrash overhead: {(traced['seconds'] / base - 1) * 100:+.2f} % (goal < 1 %); "
          f"attach {traced['attach_s']:.2f} s; pyxtrace RSS {traced['rss_kib'] / 1024:.1f} MB")

    # --module: a return probe on each C entry point; the cost of one call of one.
    per = {False: [], True: []}
    for _ in range(ROUNDS):
        for traced in (False, True):
            per[traced].append(run_once(traced, CFUNC_WORKLOAD, ("--module", "_json")))
    base = min(per[False], key=lambda r: r["seconds"])
    traced = min(per[True], key=lambda r: r["seconds"])
    added = (traced["seconds"] - base["seconds"]) / base["calls"] * 1e9
    print(f"\ncrash --module _json, _json.encode_basestring_ascii called {base['calls']} times: "
          f"{base['seconds'] / base['calls'] * 1e9:.0f} ns a call untraced, "
          f"{traced['seconds'] / base['calls'] * 1e9:.0f} traced: +{added:.0f} ns a call "
          f"(its return probe); attach {traced['attach_s']:.2f} s")


if __name__ == "__main__":
    main()
