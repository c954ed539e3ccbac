"""`pyxtrace info -p`: every fact compared with what the target reports about
itself (tests/integration/targets/facts.py), on every interpreter of the rig,
on the host and inside runc containers."""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import pyx
import rig as rigmod

SUPPORTED = dict(supported=True)


def expected_version(facts):
    level = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(facts["releaselevel"])
    return facts["version"] + (f"{level}{facts['serial']}" if level else "")


def check_info_against_facts(doc, facts, interp, target):
    py = doc["python"]
    assert py["version"] == expected_version(facts)
    major, minor, micro = (int(x) for x in facts["version"].split("."))
    assert (py["major"], py["minor"], py["micro"]) == (major, minor, micro)
    assert py["debug"] == facts["debug"] == interp.debug
    assert py["free_threaded"] == facts["free_threaded"]
    assert py["libpython"] == facts["libpython"]
    assert (py["libpython"] is not None) == (not interp.static)
    assert py["abi"] == facts["soabi"]
    if minor >= 11:
        assert py["version_source"] == "Py_Version"
    else:
        assert py["version_source"] == "PY_VERSION string"

    proc = doc["process"]
    assert proc["pid"] == target.pid
    assert proc["ns_pid"] == facts["pid"]
    if target.container:
        assert proc["container"]["id"] == target.container_id
        assert proc["container"]["pid_ns_differs"] and proc["container"]["mnt_ns_differs"]
    else:
        assert proc["container"] is None

    # USDT: the file's own notes, as the rig's independent ELF reader sees them.
    assert bool(doc["usdt"]) == interp.usdt
    names = {p["name"] for p in doc["usdt"]}
    if interp.usdt:
        assert {"gc__start", "gc__done"} <= names
        assert ("function__entry" in names) == (minor in (9, 10, 11) or minor >= 15)

    offsets = doc["debug_offsets"]
    assert offsets["present"] == (minor >= 13)
    if offsets["present"]:
        assert int(offsets["version"], 16) == facts["hexversion"]

    # Where the frame walker's offsets come from, and DWARF agreeing with them.
    want_source = "_Py_DebugOffsets" if minor >= 13 else "table"
    assert doc["offsets"]["source"] == py["offsets_source"] == want_source
    assert doc["offsets"]["fast_tstate"] == ("gilstate TLS variable" if minor >= 15
                                             else "gilstate TSS slot")
    if interp.has_dbg:
        assert doc["offsets"]["crosscheck"].startswith("ok ("), doc["offsets"]
    else:
        assert doc["offsets"]["crosscheck"] is None

    assert doc["dwarf"]["available"] == interp.has_dbg
    real = interp.facts()
    if real["debug_file"]:
        assert doc["dwarf"]["source"] == "build-id"
        assert real["debug_file"].endswith(doc["dwarf"]["path"])
    assert py["build_id"] == real["build_id"]

    for sym in ("_PyRuntime", "_PyEval_EvalFrameDefault", "Py_FatalError"):
        assert doc["symbols"][sym] is not None, sym
    assert (doc["symbols"]["Py_Version"] is not None) == (minor >= 11)

    # Extension modules: every shared object the target imported, by file name.
    seen = {os.path.basename(e["path"]) for e in doc["extensions"]}
    for name, path in facts["extensions"]:
        assert os.path.basename(path) in seen, (name, path, seen)
    for ext in doc["extensions"]:
        assert re.fullmatch(r"[0-9a-f]{40}", ext["build_id"] or "0" * 40)

    probe = doc["probe"]
    assert probe["attached"] and probe["function"] == "_PyEval_EvalFrameDefault"
    # facts.py calls sorted(key=lambda) from C about every millisecond.
    assert probe["hits"] > 0 and probe["threads"] >= 1
    assert set(doc["drops"]) == {"ringbuf", "overflow", "read", "uretprobe_depth", "map_full",
                                 "busy", "rate_limited", "unpaired"}


@pytest.mark.interps(**SUPPORTED)
@pytest.mark.parametrize("where", ["host", "container"])
def test_info_matches_target(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container)
    target = start_target(interp, "facts.py", container=container)
    target.wait_for("facts.json")
    facts = target.read_json("facts.json")
    if container:
        res = pyx.run(pyxtrace_bin, "info", "--json", "-d", "300ms", "--container",
                      target.container_id[:12], "-p", target.ns_pid, check_rc=0)
    else:
        res = pyx.run(pyxtrace_bin, "info", "--json", "-d", "300ms", "-p", target.pid,
                      check_rc=0)
    check_info_against_facts(res.json(), facts, interp, target)
    assert target.alive(), "the target must survive inspection"


@pytest.mark.parametrize("style", rigmod.CGROUP_STYLES)
def test_container_cgroup_forms(style, start_target, pyxtrace_bin):
    """Every cgroup layout real engines use resolves to the container id."""
    interp = rigmod.by_name("nodbg-3.11").require(container=True)
    target = start_target(interp, "facts.py", container=True, cgroup_style=style)
    target.wait_for("facts.json")
    doc = pyx.run(pyxtrace_bin, "info", "--json", "-d", "50ms", "--container",
                  target.container_id, "-p", target.ns_pid, check_rc=0).json()
    assert doc["process"]["pid"] == target.pid
    assert doc["process"]["container"]["id"] == target.container_id
    assert target.container_id in doc["process"]["container"]["cgroup"]


def test_renamed_executable(tmp_path, start_target, pyxtrace_bin):
    """The version comes from the interpreter's contents, not its file name."""
    exe = tmp_path / "definitely-not-python"
    shutil.copy("/usr/bin/python3.11", exe)
    proc = subprocess.Popen([str(exe), "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        doc = pyx.run(pyxtrace_bin, "info", "--json", "-d", "50ms", "-p", proc.pid,
                      check_rc=0).json()
        want = subprocess.run(["/usr/bin/python3.11", "-c",
                               "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert doc["python"]["version"] == want
        assert doc["python"]["interpreter"] == str(exe)
    finally:
        proc.kill()
        proc.wait()


def test_deleted_interpreter_still_works(tmp_path, pyxtrace_bin):
    """After a package upgrade the mapped file is deleted: map_files still reaches it."""
    exe = tmp_path / "python-deleted"
    shutil.copy("/usr/bin/python3.11", exe)
    proc = subprocess.Popen([str(exe), "-c", "import time\nwhile True: sorted([3, 1, 2], key=lambda x: -x); time.sleep(0.001)"])
    try:
        time.sleep(0.3)
        exe.unlink()
        doc = pyx.run(pyxtrace_bin, "info", "--json", "-d", "100ms", "-p", proc.pid,
                      check_rc=0).json()
        assert doc["python"]["minor"] == 11
        assert doc["probe"]["attached"] and doc["probe"]["hits"] > 0
    finally:
        proc.kill()
        proc.wait()


LAUNCH_SCRIPT = "import sys; print(len(sorted(range(2000), key=lambda x: -x)), file=sys.stderr)"


@pytest.mark.interps("bookworm-3.11,pyenv-3.8,pyenv-3.10,pyenv-3.13,bullseye-3.9,sid-3.15")
def test_launch_mode_counts_from_first_call(interp, tmp_path, pyxtrace_bin):
    """`info -- CMD` holds the program before any Python runs: the 2000 key
    callbacks made from C are all seen, and the program's output is intact."""
    interp.require()
    out = tmp_path / "info.json"
    argv = [interp.python_host, "-c", LAUNCH_SCRIPT]
    if interp.root:
        argv = rigmod.chroot_argv(interp.root, [interp.python, "-c", LAUNCH_SCRIPT])
    res = pyx.run(pyxtrace_bin, "info", "--json", "-o", out, "-d", "30s", "--", *argv,
                  check_rc=0)
    assert res.stderr.strip().endswith("2000"), res
    doc = pyx.Result(subprocess.CompletedProcess([], 0, out.read_text(), "")).json()
    assert doc["probe"]["stopped_by"] == "target-exit"
    assert doc["probe"]["hits"] >= 2000


def test_launch_through_env_wrapper(tmp_path, pyxtrace_bin):
    """A wrapper that execs Python (env) is followed to the interpreter."""
    out = tmp_path / "info.json"
    pyx.run(pyxtrace_bin, "info", "--json", "-o", out, "--", "/usr/bin/env",
                  "python3.11", "-c", LAUNCH_SCRIPT, check_rc=0,
                  env={**os.environ, "PATH": "/usr/bin:/bin"})
    doc = pyx.Result(subprocess.CompletedProcess([], 0, out.read_text(), "")).json()
    assert doc["python"]["interpreter"] == "/usr/bin/python3.11"
    assert doc["probe"]["hits"] >= 2000


def start_long_info(pyxtrace_bin, pid):
    """`info -v --json -d 60s -p PID` in the background, returned once its probes are live."""
    return pyx.start_attached(pyxtrace_bin, "info", "-v", "--json", "-d", "60s", "-p", pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_clean_detach(sig, start_target, pyxtrace_bin):
    """After SIGTERM/Ctrl-C pyxtrace flushes its result and exits 0; after
    SIGKILL it cannot, but the kernel still holds nothing of ours."""
    interp = rigmod.by_name("bookworm-3.11")
    target = start_target(interp, "facts.py")
    target.wait_for("facts.json")
    proc = start_long_info(pyxtrace_bin, target.pid)
    try:
        held = pyx.link_ids_held(proc.pid)
        assert held and held <= pyx.all_link_ids(), "the kernel shows no link while attached"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 0, stderr
        doc = pyx.Result(subprocess.CompletedProcess([], 0, stdout, stderr)).json()
        assert doc["probe"]["stopped_by"] == "signal"
        assert doc["probe"]["hits"] > 0
    # The kernel releases links when their last fd closes; give it a moment.
    deadline = time.monotonic() + 5
    while held & pyx.all_link_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not held & pyx.all_link_ids(), "links left attached after pyxtrace exited"
    assert pyx.links_on_process(target.pid) == []
    assert target.alive()


def test_target_exit_while_probing_is_not_an_error(start_target, pyxtrace_bin):
    interp = rigmod.by_name("bookworm-3.11")
    target = start_target(interp, "facts.py")
    target.wait_for("facts.json")
    proc = start_long_info(pyxtrace_bin, target.pid)
    target.stop()
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    doc = pyx.Result(subprocess.CompletedProcess([], 0, stdout, stderr)).json()
    assert doc["probe"]["stopped_by"] == "target-exit"


def test_info_kernel_probe_costs(pyxtrace_bin):
    """`info` without a target measures what a probe hit costs here, per class (what
    --max-overhead weighs hits with): each a positive number of ns, in text too."""
    doc = pyx.run(pyxtrace_bin, "info", "--json", check_rc=0).json()
    costs = doc["probe_costs_ns"]
    assert set(costs) == {"optimized", "emulated", "single_step", "return"}, costs
    assert all(isinstance(v, int) and v > 0 for v in costs.values()), costs
    text = pyx.run(pyxtrace_bin, "info", check_rc=0).stdout
    assert "Probe hit cost" in text and "single-stepped" in text, text


@pytest.mark.interps("bookworm-3.11,pyenv-3.9")
def test_info_children_one_report_each(interp, start_target, pyxtrace_bin):
    """`info --children -p PARENT`: one report per CPython process of the family now
    (a pre-fork parent and its two waiting workers), each with its own PID and the
    interpreter the target runs."""
    interp.require(container=False)
    target = start_target(interp, "spawner.py", ["prefork", "2"])
    target.wait_for("ready")
    open(target.path("go"), "w").close()
    deadline = time.monotonic() + 30
    while len([n for n in os.listdir(target.outdir) if n.endswith(".ready")]) < 2:
        assert time.monotonic() < deadline and target.alive(), target.logs()
        time.sleep(0.01)
    workers = {int(n[len("worker-"):-len(".ready")]) for n in os.listdir(target.outdir)
               if n.startswith("worker-") and n.endswith(".ready")}
    try:
        res = pyx.run(pyxtrace_bin, "info", "--children", "-p", target.pid, "-d", "50ms",
                      "--json", check_rc=0)
    finally:
        for pid in workers:  # (they wait for a go that never comes)
            os.kill(pid, signal.SIGKILL)
    docs = res.json_lines()
    assert sorted(d["process"]["pid"] for d in docs) == sorted({target.pid} | workers), res
    major, minor = interp.version_tuple
    assert all((d["python"]["major"], d["python"]["minor"]) == (major, minor) for d in docs)
    assert all(d["probe"]["attached"] for d in docs), res
