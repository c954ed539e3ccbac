"""Bad input: every case gets one line on stderr that says what is wrong and
what to do, the documented exit code (1 = cannot do it, 2 = usage), and
nothing left attached."""
import os
import subprocess
import sys
import time

import pytest

import pyx
import rig as rigmod


def one_line_error(res, rc, *needles):
    assert res.rc == rc, res
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr: {res!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert res.stdout == "", res
    return lines[0]


def test_no_such_pid(pyxtrace_bin):
    # PID_MAX_LIMIT is 4194304: this PID cannot exist.
    one_line_error(pyx.run(pyxtrace_bin, "info", "-p", "4194303"), 1,
                   "no process with PID 4194303")


def test_not_cpython(pyxtrace_bin):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.1)
        one_line_error(pyx.run(pyxtrace_bin, "info", "-p", proc.pid), 1,
                       f"process {proc.pid} (sleep) is not a CPython process")
    finally:
        proc.kill()
        proc.wait()


def test_zombie(pyxtrace_bin):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    # Not waited for: it stays a zombie until we reap it.
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.02)
    try:
        one_line_error(pyx.run(pyxtrace_bin, "info", "-p", proc.pid), 1, "is a zombie")
    finally:
        proc.wait()


@pytest.mark.interps(supported=False)
def test_unsupported_version(interp, start_target, pyxtrace_bin):
    interp.require()
    target = start_target(interp, "idle.py")
    ready = target.read_json(os.path.basename(target.wait_for("ready")))
    version = ".".join(str(x) for x in ready["version_info"])
    line = one_line_error(pyx.run(pyxtrace_bin, "info", "-p", target.pid), 1,
                          f"runs Python {version}", "3.8-3.15")
    assert "does not support" in line
    assert pyx.links_on_process(target.pid) == []


def run_unprivileged(pyxtrace_bin, *args):
    return pyx.run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "--inh-caps=-all", pyxtrace_bin, *args)


def test_unprivileged_user_with_target(pyxtrace_bin):
    proc = subprocess.Popen(["/usr/bin/python3.11", "-c", "import time; time.sleep(60)"])
    try:
        res = run_unprivileged(pyxtrace_bin, "info", "-p", proc.pid)
        one_line_error(res, 1, "missing CAP_BPF", "run pyxtrace as root")
    finally:
        proc.kill()
        proc.wait()


def test_unprivileged_user_readiness(pyxtrace_bin):
    """Bare `info` still reports, says what is missing, and exits 1."""
    res = run_unprivileged(pyxtrace_bin, "info", "--json")
    assert res.rc == 1, res
    doc = res.json()
    assert doc["ready"] is False
    assert doc["privileges"]["CAP_BPF"] is False


def test_kernel_readiness(pyxtrace_bin):
    doc = pyx.run(pyxtrace_bin, "info", "--json", check_rc=0).json()
    assert doc["ready"] is True
    assert all(f["ok"] for f in doc["kernel"].values()), doc


def test_unknown_container(start_target, pyxtrace_bin):
    interp = rigmod.by_name("nodbg-3.11").require(container=True)
    target = start_target(interp, "idle.py", container=True)
    target.wait_for("ready")
    line = one_line_error(pyx.run(pyxtrace_bin, "info", "--container", "deadbeef", "-p", "1"), 1,
                          "no container matches 'deadbeef'", "containers found:")
    # The running container is listed so the operator can pick it.
    assert target.container_id[:12] in line
    one_line_error(pyx.run(pyxtrace_bin, "info", "--container", target.container_id[:12], "-p",
                           "4000"), 1, "has no process with PID 4000")


@pytest.mark.parametrize("args,needle", [
    (["info", "--jsno"], "did you mean '--json'"),
    (["info", "--bogus"], "unknown option '--bogus'"),
    (["info", "-Z"], "unknown option '-Z'"),
    (["info", "-p"], "needs a value"),
    (["info", "-p", "abc"], "invalid PID 'abc'"),
    (["info", "-p", "0"], "invalid PID '0'"),
    (["info", "-d", "5parsecs", "-p", "1"], "invalid duration '5parsecs'"),
    (["flow", "--container", "abcd"], "--container needs -p PID"),
    (["info", "-p", "1", "--", "python3"], "either -p PID or -- CMD"),
    (["info", "--"], "must be followed by a command"),
    (["info", "stray"], "unexpected argument 'stray'"),
    (["inof"], "did you mean 'info'"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--frob"], "expected a command"),
    (["stack", "-p", "1", "-n", "x"], "invalid count 'x'"),
    (["stack", "-p", "1", "--stack-size", "1M"], "--stack-size takes"),
    (["stack", "-p", "1", "--thread-lookup", "tls"], "--thread-lookup is auto or list"),
    (["stack", "-p", "abc"], "invalid PID 'abc'"),
    (["stack"], "a target is required"),
    (["info", "--module", "x"], "--module needs a target"),
])
def test_usage_errors(args, needle, pyxtrace_bin):
    one_line_error(pyx.run(pyxtrace_bin, *args), 2, needle)


def test_no_arguments_prints_usage(pyxtrace_bin):
    res = pyx.run(pyxtrace_bin)
    assert res.rc == 2 and "Usage: pyxtrace COMMAND" in res.stderr


@pytest.mark.parametrize("args", [["--help"], ["help"], ["help", "info"], ["info", "--help"]])
def test_help(args, pyxtrace_bin):
    res = pyx.run(pyxtrace_bin, *args, check_rc=0)
    assert "Usage: pyxtrace" in res.stdout
    if "info" in args:
        assert "Examples:" in res.stdout and "--container" in res.stdout


def test_version(pyxtrace_bin):
    res = pyx.run(pyxtrace_bin, "--version", check_rc=0)
    assert res.stdout.startswith("pyxtrace ")
    assert "libbpf" in res.stdout and "kernel" in res.stdout


def test_launch_not_a_program(pyxtrace_bin):
    one_line_error(pyx.run(pyxtrace_bin, "info", "--", "/nonexistent/prog"), 1,
                   "cannot run '/nonexistent/prog'")


def test_launch_not_python(pyxtrace_bin):
    one_line_error(pyx.run(pyxtrace_bin, "info", "--", "true"), 1,
                   "'true' exited with status 0 before any Python interpreter was loaded")


def test_target_exiting_during_inspection(pyxtrace_bin):
    """Targets that die while being inspected: a clean answer each time
    (a result, or a one-line error), never a crash or garbage."""
    outcomes = set()
    for delay in [0.0, 0.005, 0.01, 0.02, 0.03, 0.05] * 3:
        proc = subprocess.Popen(["/usr/bin/python3.11", "-c",
                                 f"import time; time.sleep({delay})"])
        res = pyx.run(pyxtrace_bin, "info", "--json", "-d", "20ms", "-p", proc.pid)
        proc.wait()
        if res.rc == 0:
            doc = res.json()
            assert doc["process"]["pid"] == proc.pid
            outcomes.add("result")
        else:
            line = one_line_error(res, 1)
            assert any(s in line for s in ("exited during inspection", "no process with PID",
                                           "is a zombie", "is not a CPython process")), line
            outcomes.add("error")
    assert outcomes


@pytest.mark.parametrize("args,rc,needle", [
    (["crash", "--all", "-p", "1"], 2, "--all takes no other target"),
    (["watch", "--module", "_json", "--children"], 2, "--children needs -p PID"),
    (["calls", "--all", "--sampled"], 2, "one process at a time"),
    (["flow", "--all"], 2, "option '--all' does not apply to this command"),
    (["flow", "--container", "abcd"], 2, "--container needs -p PID"),
    (["info", "--container", "feedface"], 1, "no container matches 'feedface'"),
    (["info", "--all", "--module", "_json"], 2, "--module needs a target"),
    (["stack", "--all", "-n", "3"], 2, "one process at a time"),
    (["crash", "--container", "feedface"], 1, "no container matches 'feedface'"),
    (["calls", "--children", "-p", "4194303"], 1, "no process with PID 4194303"),
])
def test_scope_selectors(pyxtrace_bin, args, rc, needle):
    """--all, --children, --container without -p: bad combinations and targets."""
    one_line_error(pyx.run(pyxtrace_bin, *args), rc, needle)
