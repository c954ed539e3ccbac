#!/usr/bin/python3
"""Cost per Python call of `pyxtrace calls` (exact mode, eval-loop hooks),
side by side in one run per interpreter: untraced; the bare floor (empty
programs on the very sites calls probes: bench/walk_cost.c eval-hooks);
`pyxtrace calls`; and, where the interpreter has USDT function probes
(Debian 3.9 and 3.15), bpftrace doing the same job (entry + return, count
and latency histogram per function, like BCC's ucalls). The workload is
fib(22) (57 313 calls), timed from inside the target; best of ROUNDS.
Also prints the probe class of each hook site and pyxtrace's peak RSS.

Run as root after tools/build and tests/rig/setup. INTERPS="3.11,3.13" in
the environment runs those whose label holds one of the words.
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
WALK_COST = os.path.join(ROOT, "build", "bench", "walk-cost")
WORKLOAD = os.path.join(ROOT, "bench", "workloads", "fib_calls.py")
RIG = "/var/cache/pyxtrace/rig/roots"
N = 22
ROUNDS = 3

# (label, root or None, interpreter path inside it, USDT function probes)
INTERPRETERS = [
    ("bullseye 3.9", RIG + "/bullseye", "/usr/bin/python3.9", True),
    ("pyenv 3.10", None, "/root/.pyenv/versions/3.10.13/bin/python3.10", False),
    ("bookworm 3.11", None, "/usr/bin/python3.11", False),
    ("pyenv 3.12", None, "/root/.pyenv/versions/3.12.1/bin/python3.12", False),
    ("trixie 3.13", RIG + "/trixie", "/usr/bin/python3.13", False),
    ("sid 3.14", RIG + "/sid", "/usr/bin/python3.14", False),
    ("sid 3.15", RIG + "/sid", "/usr/bin/python3.15", True),
]

# Entry and return paired per thread by depth, count and latency per function name.
BPFTRACE = """
usdt:{path}:python:function__entry {{ @d[tid]++; @t[tid, @d[tid]] = nsecs; }}
usdt:{path}:python:function__return /@d[tid]/ {{
    @calls[str(arg1)] = count(); @lat[str(arg1)] = hist(nsecs - @t[tid, @d[tid]]);
    delete(@t[tid, @d[tid]]); @d[tid]--;
}}
"""


# Entry and return printed per event, like BCC's uflow: the peer of `pyxtrace flow`.
BPFTRACE_FLOW = """
usdt:{path}:python:function__entry {{ printf("%d -> %s %s:%d\\n", tid, str(arg1), str(arg0), arg2); }}
usdt:{path}:python:function__return {{ printf("%d <- %s\\n", tid, str(arg1)); }}
"""


def wait_file(path, needle, timeout=30):
    """Wait until the file @path holds @needle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and needle in open(path, errors="replace").read(4096):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path} never said {needle!r}")


def tracer_argv(mode, pid, root, python, tmp):
    """(argv, the stream (or file) to wait on, the line that says it is live) of @mode's
    tracer."""
    if mode == "floor":
        return [WALK_COST, str(pid), "-", "-", "eval-hooks"], "stdout", "attached"
    if mode == "calls":
        # The cost of every call is measured: no overhead budget pausing the hooks.
        return ([PYXTRACE, "calls", "-v", "--json", "--max-overhead", "0", "-p", str(pid)],
                "stderr", "attached, tracing")
    if mode == "calls-budget":
        return ([PYXTRACE, "calls", "-v", "--json", "-p", str(pid)], "stderr",
                "attached, tracing")
    if mode == "flow":
        return ([PYXTRACE, "flow", "-v", "--json", "--max-overhead", "0", "-o",
                 os.path.join(tmp, "flow.jsonl"), "-p", str(pid)], "stderr", "attached, tracing")
    script = BPFTRACE if mode == "bpftrace" else BPFTRACE_FLOW
    argv = ["bpftrace", "--usdt-file-activation", "-e", script.format(path=(root or "") + python)]
    if mode == "bpftrace-flow":
        # Its output, "Attaching" included, goes to the file (the pipe would be the bottleneck).
        argv[1:1] = ["-o", os.path.join(tmp, "bpftrace.out")]
        return argv, os.path.join(tmp, "bpftrace.out"), "Attaching"
    return argv, "stdout", "Attaching"


def run_once(interp, mode, n=N):
    """One run of fib(@n) under @mode; the target's own timing, plus what the
    tracer reported (RSS, hooks; flow: its end document)."""
    label, root, python, _ = interp
    tmp = tempfile.mkdtemp(prefix="pyx-bench-", dir=(root + "/tmp") if root else None)
    inside = "/tmp/" + os.path.basename(tmp) if root else tmp
    shutil.copy(WORKLOAD, tmp)
    argv = [python, os.path.join(inside, "fib_calls.py"), str(n), inside + "/go",
            inside + "/ready"]
    if root:
        argv = ["unshare", "--mount", "--propagation", "private", "--", "chroot", root] + argv
    procs = []
    try:
        target = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        procs.append(target)
        while not os.path.exists(os.path.join(tmp, "ready")):
            time.sleep(0.005)
        tracer, out = None, {"rss_kib": None, "hooks": None, "flow_end": None}
        if mode != "untraced":
            targv, stream, live = tracer_argv(mode, target.pid, root, python, tmp)
            tracer = subprocess.Popen(targv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            if stream.startswith("/"):
                wait_file(stream, live)
            else:
                wait_line(getattr(tracer, stream), live)
            if mode.startswith("bpftrace"):
                time.sleep(0.5)
        procs.append(tracer)
        open(os.path.join(tmp, "go"), "w").close()
        result = json.loads(target.stdout.readline())
        if mode in ("calls", "flow", "calls-budget"):
            out["rss_kib"] = peak_rss_kib(tracer.pid)
        target.wait()
        if tracer is not None:
            if mode.startswith("bpftrace"):
                tracer.terminate()
            text = tracer.communicate(timeout=60)[0]
            if mode == "calls-budget":
                out["overhead"] = json.loads(text)["overhead"]
            elif mode == "calls":
                doc = json.loads(text)
                fib = next(f for f in doc["functions"] if f["function"] == "fib")
                assert fib["calls"] >= result["calls"], fib
                out["hooks"] = ", ".join(f"{h['at']}: {h['probe']}" for h in doc["hooks"])
            elif mode == "flow":
                with open(os.path.join(tmp, "flow.jsonl"), "rb") as f:
                    f.seek(-4096, os.SEEK_END)
                    out["flow_end"] = json.loads(f.read().splitlines()[-1])
        result.update(out)
        return result
    finally:
        for p in procs:
            if p is not None and p.poll() is None:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    for path in (PYXTRACE, WALK_COST):
        if not os.path.exists(path):
            sys.exit(f"calls_cost: {path} missing: tools/build")
    have_bpftrace = shutil.which("bpftrace") is not None
    print(f"{'interpreter':14} {'untraced':>9} {'floor +':>8} {'calls +':>8} {'x floor':>8} "
          f"{'bpftrace +':>10} {'x bpftrace':>10} {'RSS':>8}")
    notes = []
    only = [w for w in os.environ.get("INTERPS", "").split(",") if w]
    for interp in INTERPRETERS:
        label, root, python, usdt = interp
        if only and not any(w in label for w in only):
            continue
        if not os.path.exists((root or "") + python):
            print(f"{label:14} missing (tests/rig/setup)")
            continue
        modes = ["untraced", "floor", "calls"] + (["bpftrace"] if usdt and have_bpftrace else [])
        best = {}
        for _ in range(ROUNDS):
            for mode in modes:
                r = run_once(interp, mode)
                if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                    best[mode] = r
        base = best["untraced"]["ns_per_call"]
        floor = best["floor"]["ns_per_call"] - base
        calls = best["calls"]["ns_per_call"] - base
        bt = best["bpftrace"]["ns_per_call"] - base if "bpftrace" in best else None
        print(f"{label:14} {base:9.0f} {floor:8.0f} {calls:8.0f} {calls / floor:8.2f} "
              f"{f'{bt:.0f}' if bt else '-':>10} {f'{calls / bt:.2f}' if bt else '-':>10} "
              f"{best['calls']['rss_kib'] / 1024:7.1f}M")
        notes.append(f"  {label}: {best['calls']['hooks']}")
    print("\nns per call (added: over untraced); hook sites and the kernel's probe class:")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
