"""Process discovery (--all, --container ID, --children): processes started
after pyxtrace began are traced too. Ground truth comes from the targets:
the PIDs they started, their exit statuses, the calls they made."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

import pyx

# Interpreter builds the discovery tests run on: static and shared libpython, old and new.
SCOPE_INTERPS = "bookworm-3.11,pyenv-3.9,trixie-3.13,sid-3.15"
# Those where _json is an extension module of its own (Debian's 3.13+ build it in).
JSON_INTERPS = "bookworm-3.11,pyenv-3.9,pyenv-3.13"


class Tracer:
    """pyxtrace in the background with its stderr read by a thread (so a chatty
    run never blocks on a full pipe) and its stdout in a file."""

    def __init__(self, binary, outdir, *args):
        self.out_path = os.path.join(outdir, "pyxtrace.out")
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([binary, *map(str, args)], stdout=self.out,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, text, timeout=60, also=""):
        """Until a line of stderr holds `text` (and `also`)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line and also in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"pyxtrace never said {text!r}:\n{self.stderr()}")
                self.cond.wait(min(left, 0.2))

    def stderr(self):
        with self.cond:
            return "".join(self.lines)

    def finish(self, timeout=120, stop=False):
        if stop:
            self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        self.out.close()
        with open(self.out_path) as f:
            stdout = f.read()
        assert rc == 0, f"rc={rc}\n{self.stderr()[-4000:]}\n{stdout[-4000:]}"
        return stdout

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pyx_tmp():
    import tempfile
    return tempfile.mkdtemp(prefix="pyx-discovery-")


@pytest.fixture
def tracers():
    started = []
    yield lambda *a: started.append(Tracer(*a)) or started[-1]
    for t in started:
        t.kill()


@pytest.mark.interps(SCOPE_INTERPS)
def test_crash_container_catches_a_later_process(interp, start_target, pyxtrace_bin, tracers):
    """A runc container starts a second Python process after `crash --container ID`
    began: its segfault is caught, with its host and container PIDs, its C function
    and calling Python line; the first process is traced too; pyxtrace ends with
    the container."""
    interp.require(container=True, fixture=True)
    # The child crashes a second after it started ("late"): a process is covered from its
    # attach on, which takes a few hundred milliseconds after its exec.
    target = start_target(interp, "spawner.py",
                          ["child", "crash_workload.py", "segfault", "late"], container=True)
    target.wait_for("ready")
    tracer = tracers(pyxtrace_bin, target.outdir, "crash", "-v", "--json",
                     "--container", target.container_id[:12])
    tracer.wait_for(f"tracing process {target.pid} ")
    open(target.path("go"), "w").close()
    assert target.wait(timeout=60) == 0
    child = target.read_json("child.json")
    site = target.read_json("site.json")
    assert child["status"] == -signal.SIGSEGV and site["pid"] == child["pid"]
    docs = [json.loads(line) for line in tracer.finish(timeout=60).splitlines()]
    signals = [d for d in docs if d["event"] == "signal"]
    assert len(signals) == 1, docs
    sig = signals[0]
    assert sig["signal"] == "SIGSEGV" and sig["code_name"] == "SEGV_MAPERR"
    assert sig["process"]["ns_pid"] == child["pid"] != sig["process"]["pid"]
    assert sig["process"]["container"]["id"] == target.container_id
    frames = sig["stack"]
    native = [f["function"] for f in frames if f["kind"] == "native"]
    assert native[0].split(".")[0] == "pyxfixture_segfault", native
    python = [f for f in frames if f["kind"] == "python"]
    assert (python[0]["function"], python[0]["line"]) == (site["function"], site["line"])
    # Each process's own summary, then the scope's: both processes traced, both ended.
    summaries = {d["process"]["ns_pid"]: d for d in docs if d["event"] == "summary"}
    assert summaries[child["pid"]]["exit"]["signal"] == "SIGSEGV"
    assert summaries[target.ns_pid]["exit"]["status"] == 0
    total = docs[-1]
    assert total["event"] == "scope_summary" and total["stopped_by"] == "target-exit"
    assert total["processes"] == 2 and total["exited"] == 2 and total["events"]["signal"] == 1


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def bpf_objects_of(pid):
    """BPF programs and maps the process holds (the kernel's fdinfo of its fds)."""
    progs = maps = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        progs += link == "anon_inode:bpf-prog"
        maps += link == "anon_inode:bpf-map"
    return progs, maps


def test_crash_all_short_lived_processes(pyxtrace_bin, tmp_path, tracers):
    """100 short-lived Python processes started and ended during `crash --all`:
    every one that pyxtrace traced is dropped when it ends (its BPF object
    unloaded), pyxtrace's RSS stays bounded, and one that crashes among them is
    caught with its own PID."""
    python = "/usr/bin/python3.11"
    tracer = tracers(pyxtrace_bin, str(tmp_path), "crash", "--all", "--json", "-vv")
    tracer.wait_for("attached, tracing")
    me = tracer.proc.pid
    time.sleep(1.0)  # the Python processes already running are attached
    base_progs, base_maps = bpf_objects_of(me)
    rss = []
    for i in range(100):
        subprocess.run([python, "-c", "import time; time.sleep(0.15)"], check=True)
        if i in (19, 99):
            time.sleep(1.0)  # the last process handled: what stays is what is kept
            rss.append(min(rss_kib(me) for _ in range(3) if time.sleep(0.1) is None))
    crasher = subprocess.Popen([python, "-c", "import time, ctypes; time.sleep(1); "
                                "ctypes.string_at(0)"])
    assert crasher.wait() == -signal.SIGSEGV
    # Its event is symbolized first (DWARF read on first use), then its end handled.
    tracer.wait_for(f"process {crasher.pid} exited\n")
    # Every process gone was dropped: its BPF object and links are gone with it.
    held = bpf_objects_of(me)
    if held != (base_progs, base_maps):
        docs = [json.loads(line) for line in tracer.finish(stop=True).splitlines()]
        raise AssertionError(f"{held} != {(base_progs, base_maps)}: still traced: " + str(
            [d["process"] for d in docs if d["event"] == "summary" and d["exit"] is None]))
    # Memory: what 80 more processes add is small (no per-process leak).
    assert rss[1] - rss[0] < 16 * 1024, rss
    docs = [json.loads(line) for line in tracer.finish(stop=True).splitlines()]
    total = docs[-1]
    assert total["event"] == "scope_summary" and total["stopped_by"] == "signal"
    ended = [d for d in docs if d["event"] == "summary" and d["exit"] is not None]
    # Processes living 0.15 s, one after the other: each is traced (~0.1 s after its exec
    # here; 101 of 101). A traced process's end used to stall the loop while its probes
    # were removed (~0.5 s) and the next process went unseen: 59 of 101.
    assert len(ended) >= 85, (len(ended), total)
    assert all(d["exit"]["status"] == 0 for d in ended if d["exit"]["signal"] is None)
    signals = [d for d in docs if d["event"] == "signal"]
    assert len(signals) == 1 and signals[0]["signal"] == "SIGSEGV", signals
    killed = [d for d in ended if d["exit"]["signal"] == "SIGSEGV"]
    assert len(killed) == 1 and killed[0]["process"]["pid"] == signals[0]["process"]["pid"]


@pytest.mark.interps(JSON_INTERPS)
def test_watch_all_late_process_late_import(interp, start_target, pyxtrace_bin, tracers):
    """`watch --module _json --all` started before the target: a process started
    later that imports _json later still is watched from the import on; its calls
    equal the c_call counts of its own sys.setprofile, in its own table and in
    the scope's totals."""
    interp.require(container=False)
    tracer = tracers(pyxtrace_bin, pyx_tmp(), "watch", "--module", "_json", "--all", "--json",
                     "-v")
    tracer.wait_for("attached, tracing")
    target = start_target(interp, "json_workload.py", ["late"])
    target.wait_for("ready")
    tracer.wait_for(f"following process {target.pid}:")
    open(target.path("go"), "w").close()
    target.wait_for("imported")
    # (a fork of pytest, before its exec, may be watched first: it has _json too)
    major, minor = interp.version_tuple
    tracer.wait_for(f"watching _json in process {target.pid} ", also=f"Python {major}.{minor}.")
    open(target.path("go2"), "w").close()
    assert target.wait(timeout=60) == 0
    result = target.read_json("result.json")
    tracer.wait_for(f"process {target.pid} exited\n")
    docs = [json.loads(line) for line in tracer.finish(stop=True).splitlines()]
    mine = [d for d in docs if isinstance(d["process"], dict) and
            d["process"]["pid"] == target.pid]
    assert len(mine) == 1 and mine[0]["final"] and mine[0]["stopped_by"] == "target-exit"
    # The module's functions (types' slots, e.g. a Scanner's tp_dealloc, are no c_call).
    counted = {f["name"][len("_json."):]: f["calls"] for f in mine[0]["functions"]
               if f["calls"] and f["name"].startswith("_json.")}
    assert counted == result["c_calls"], (counted, result)
    assert counted == {"encode_basestring_ascii": 500, "scanstring": 500}
    total = docs[-1]
    assert total["process"] == "all" and total["final"]
    summed = {f["name"]: f["calls"] for f in total["functions"]}
    for name, calls in counted.items():
        assert summed["_json." + name] >= calls


@pytest.mark.interps("bookworm-3.11")
def test_watch_all_process_traced_before_its_exec(interp, start_target, pyxtrace_bin, tracers):
    """A forked Python traced by `watch --all` before it ran execve (of a new Python
    importing _json at once) is watched in its new image alone, its calls exact,
    its end seen: even when its exec is read late (pyxtrace busy attaching
    another process), the mappings the exec itself made are the new image's, not
    the old one's (else the new image is attached as the old one, then torn down
    as its exec is read, and the process lost when it ends meanwhile)."""
    interp.require(container=False)
    target = start_target(interp, "forkexec.py", ["json_workload.py", "late"])
    target.wait_for("ready")
    open(target.path("go"), "w").close()  # json_workload imports _json at once
    child = int(open(target.wait_for("forked")).read())
    tracer = tracers(pyxtrace_bin, target.outdir, "watch", "--module", "_json", "--all",
                     "--json", "-vv")
    tracer.wait_for(f"following process {child}: running")
    # Another Python process: while pyxtrace attaches it, the child runs its exec.
    other = start_target(interp, "json_workload.py", [])
    tracer.wait_for(f"process {other.pid} ran execve")
    open(target.path("exec"), "w").close()
    target.wait_for("imported")
    tracer.wait_for(f"watching _json in process {child} ")
    open(target.path("go2"), "w").close()
    assert target.wait(timeout=60) == 0
    assert open(target.wait_for("child")).read() == f"{child} 0"
    result = target.read_json("result.json")
    tracer.wait_for(f"process {child} exited\n")
    open(other.path("go"), "w").close()
    assert other.wait(timeout=60) == 0
    docs = [json.loads(line) for line in tracer.finish(stop=True).splitlines()]
    mine = [d for d in docs if isinstance(d["process"], dict) and d["process"]["pid"] == child]
    # One table: the old image never had _json, the new one is watched once.
    assert [d["stopped_by"] for d in mine] == ["target-exit"], mine
    counted = {f["name"][len("_json."):]: f["calls"] for f in mine[0]["functions"]
               if f["calls"] and f["name"].startswith("_json.")}
    assert counted == result["c_calls"] == {"encode_basestring_ascii": 500, "scanstring": 500}


@pytest.mark.interps(SCOPE_INTERPS)
def test_calls_children_prefork_server(interp, start_target, pyxtrace_bin, tracers):
    """A pre-fork server (a parent forking 4 workers, one killed and replaced):
    `calls --children -p PARENT` counts every worker's calls of work(), the
    replacement's too, exactly as each worker made them, in a table per process
    and in the scope's total; it ends with the last process."""
    interp.require(container=False)
    target = start_target(interp, "spawner.py", ["prefork", "4"])
    target.wait_for("ready")
    tracer = tracers(pyxtrace_bin, target.outdir, "calls", "--children", "-p", target.pid,
                     "--json", "-v", "--max-overhead", "0", "--match", "spawner")
    tracer.wait_for(f"following process {target.pid}:")
    open(target.path("go"), "w").close()
    released = set()
    deadline = time.monotonic() + 120
    while not os.path.exists(target.path("workers.json")):
        assert time.monotonic() < deadline and target.alive(), target.logs()
        for name in os.listdir(target.outdir):
            if name.startswith("worker-") and name.endswith(".ready"):
                pid = int(name[len("worker-"):-len(".ready")])
                if pid not in released:
                    # Each worker makes its calls once pyxtrace follows it.
                    tracer.wait_for(f"following process {pid}:")
                    open(target.path(f"worker-{pid}.go"), "w").close()
                    released.add(pid)
        time.sleep(0.01)
    assert target.wait(timeout=60) == 0
    workers = target.read_json("workers.json")
    assert len(workers) == 5 and set(workers) == released
    made = {pid: target.read_json(f"worker-{pid}.json")["calls"] for pid in workers}
    docs = [json.loads(line) for line in tracer.finish(timeout=60).splitlines()]
    tables = {d["process"]["pid"]: d for d in docs if isinstance(d["process"], dict)}
    assert set(tables) == set(workers) | {target.pid}, sorted(tables)

    def work_calls(doc):
        return sum(f["calls"] for f in doc["functions"]
                   if f["function"] == "work" and f["file"].endswith("spawner.py"))

    for pid in workers:
        assert tables[pid]["final"] and tables[pid]["stopped_by"] == "target-exit"
        assert work_calls(tables[pid]) == made[pid], (pid, tables[pid]["functions"])
    assert work_calls(tables[target.pid]) == 0
    total = docs[-1]
    assert total["process"] == "all" and total["stopped_by"] == "target-exit"
    assert total["processes"] == 6 and total["exited"] == 6
    assert work_calls(total) == sum(made.values()) == 5 * 3000


def test_stack_children(pyxtrace_bin, tmp_path):
    """`stack --children -p PARENT`: one snapshot of the parent and of the child
    it started, each with its own innermost function (what each wrote it runs)."""
    script = tmp_path / "tree.py"
    script.write_text(
        "import os, subprocess, sys, time\n"
        "def child_sleeps():\n"
        "    open(sys.argv[2], 'w').close()\n"
        "    time.sleep(60)\n"
        "def parent_waits():\n"
        "    subprocess.Popen([sys.executable, __file__, 'child', sys.argv[1] + '.child'])\n"
        "    open(sys.argv[1], 'w').close()\n"
        "    time.sleep(60)\n"
        "child_sleeps() if sys.argv[1] == 'child' else parent_waits()\n")
    ready = tmp_path / "ready"
    parent = subprocess.Popen(["/usr/bin/python3.11", str(script), str(ready)])
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and (tmp_path / "ready.child").exists()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        res = pyx.run(pyxtrace_bin, "stack", "--children", "-p", parent.pid, "--json",
                      check_rc=0)
        docs = res.json_lines()
        innermost = {d["process"]["pid"]: d["threads"][0]["frames"][0]["function"]
                     for d in docs}
        assert innermost[parent.pid] == "parent_waits", docs
        others = [fn for pid, fn in innermost.items() if pid != parent.pid]
        assert others == ["child_sleeps"], innermost
    finally:
        parent.kill()
        parent.wait()
        subprocess.run(["pkill", "-f", str(script)])
