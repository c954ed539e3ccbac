"""Tests of the interpreter rig itself (select with `-k rig`).

Every other integration test trusts the rig: that 'sid-3.15d' really is a
3.15 debug build, that a "container" target really lives in its own PID
namespace under a docker-like cgroup, that stop() leaves nothing behind.
These tests check those promises against the real interpreters, roots and
runc, so a broken rig shows up here and not as a puzzling tracer failure.
"""
import json
import re
import os
import time

import pytest

import rig as rigmod

IDLE = "integration/targets/idle.py"
PROBE = "integration/targets/fixture_probe.py"

pytestmark = pytest.mark.rig


def _style_for(interp):
    """Spread the four cgroup layouts over the interpreters (each layout is
    also tested on its own below), so the per-interpreter runs stay one
    container each."""
    return rigmod.CGROUP_STYLES[rigmod.INTERPRETERS.index(interp) % len(rigmod.CGROUP_STYLES)]


def _assert_gone(t):
    """After stop(): no process, no runc container, no container cgroup."""
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{t.pid}") and time.monotonic() < deadline:
        # The pid may have been reused by then only in theory: 5 s, idle box.
        with open(f"/proc/{t.pid}/status") as f:
            if "\nState:\tZ" in f.read():
                break
        time.sleep(0.02)
    assert not t.alive(), f"{t!r} still running after stop()"
    if t.container:
        ids = [c["id"] for c in rigmod.runc_list()]
        assert t.container_id not in ids, f"runc still lists {t.container_id}"
        leftover = [d for d in (f"/sys/fs/cgroup/pids{t.cgroup}", f"/sys/fs/cgroup/unified{t.cgroup}",
                                f"/sys/fs/cgroup{t.cgroup}")
                    if os.path.isdir(d)]
        assert not leftover, f"container cgroup left behind: {leftover}"
        assert not os.path.exists(t.bundle), f"bundle {t.bundle} left behind"


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
def test_rig_registry_names():
    names = [i.name for i in rigmod.INTERPRETERS]
    assert len(names) == len(set(names)), "duplicate interpreter names"
    for want in ("bookworm-3.11", "bookworm-3.11d", "bullseye-3.9", "bullseye-3.9d",
                 "trixie-3.13", "trixie-3.13d", "sid-3.14", "sid-3.14d", "sid-3.15",
                 "sid-3.15d", "nodbg-3.11", "pyenv-2.7"):
        assert want in names, f"{want} missing from the registry"
    pyenv_minors = {i.minor for i in rigmod.interpreters(source="pyenv")}
    for m in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13"):
        assert m in pyenv_minors, f"no pyenv build of {m} found under {rigmod.PYENV_VERSIONS}"
        assert f"pyenv-{m}-stripped" in names
    assert rigmod.by_name("pyenv-2.7").supported is False
    for i in rigmod.INTERPRETERS:
        assert i.minor in i.name and i.minor.count(".") == 1
        assert i.debug == bool(re.search(r"\d\.\d+d(-|$)", i.name))
        assert i.fixture == str(rigmod.FIXTURES_DIR / i.name)


def test_rig_filters():
    assert all(i.debug for i in rigmod.interpreters(debug=True))
    assert [i.name for i in rigmod.interpreters("sid-3.15*")] == ["sid-3.15", "sid-3.15d"]
    assert {i.source for i in rigmod.interpreters(source=("pyenv", "pyenv-stripped"))} == \
        {"pyenv", "pyenv-stripped"}
    assert all(i.version_tuple >= (3, 12) for i in
               rigmod.interpreters(minor=lambda m: tuple(map(int, m.split("."))) >= (3, 12)))
    with pytest.raises(TypeError):
        rigmod.interpreters(colour="red")
    with pytest.raises(KeyError):
        rigmod.by_name("nope-1.0")


def test_rig_missing_root_fails_with_command(monkeypatch):
    """A root that is not built must raise RigNotReady naming mkroot (the
    conftest turns it into a failure, never a skip)."""
    ghost = rigmod.Interp(
        name="ghost-3.99", root="/nonexistent/ghost", python="/usr/bin/python3.99",
        minor="3.99", debug=False, has_dbg=False, static=True, usdt=True, source="debian",
        supported=True, fixture="/nonexistent/fixture", root_name="ghost")
    with pytest.raises(rigmod.RigNotReady, match=r"mkroot ghost"):
        ghost.require()


def test_rig_declared_facts(interp):
    """The declared static/usdt/has_dbg flags match the ELF files.
    (`interp` is parametrized by conftest.py over every interpreter, which
    this test also exercises.)"""
    interp.require()
    facts = interp.facts()
    for key in ("static", "usdt", "has_dbg"):
        assert facts[key] == getattr(interp, key), \
            f"{interp.name}: declared {key}={getattr(interp, key)}, files say {facts[key]} ({facts})"


# --------------------------------------------------------------------------
# Targets: one idle target per interpreter, on the host and in a container
# --------------------------------------------------------------------------
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
@pytest.mark.parametrize("interp", rigmod.params())
def test_rig_idle_target(interp, container, start_target):
    style = _style_for(interp)
    t = start_target(interp, IDLE, args=["--hello"], container=container, cgroup_style=style)
    t.wait_for("ready", timeout=30)
    info = t.read_json("ready")
    assert info["minor"] == interp.minor, info["version"]
    assert info["debug"] == interp.debug
    assert info["executable"] == interp.python
    assert info["argv"] == ["--hello"]
    assert info["pid"] == t.ns_pid
    assert t.alive()
    with open(f"/proc/{t.pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0].decode() == interp.python
    if container:
        assert t.container_id and len(t.container_id) == 64
        assert t.ns_pid == 1 and t.pid != 1
        assert rigmod.pid_namespace(t.pid) != rigmod.pid_namespace("self")
        cg = t.read_cgroup()
        assert t.container_id in cg, cg
        assert t.cgroup in cg, cg
        assert t.container_id in [c["id"] for c in rigmod.runc_list()]
    else:
        assert t.container_id is None and t.ns_pid == t.pid
        assert rigmod.pid_namespace(t.pid) == rigmod.pid_namespace("self")
        if interp.root:  # chrooted into its Debian root
            assert os.readlink(f"/proc/{t.pid}/root") == interp.root
        else:
            assert os.readlink(f"/proc/{t.pid}/exe") == os.path.realpath(interp.python)
    t.stop()
    assert t.wait(5) == 143  # idle.py exits 143 on SIGTERM, even as PID 1
    _assert_gone(t)
    t.stop()  # idempotent


@pytest.mark.parametrize("style", rigmod.CGROUP_STYLES)
def test_rig_cgroup_styles(style, start_target):
    """Each engine's cgroup layout, as the tracer will see it in /proc/<pid>/cgroup."""
    interp = rigmod.by_name("nodbg-3.11")
    t = start_target(interp, IDLE, container=True, cgroup_style=style)
    t.wait_for("ready", timeout=30)
    cid = t.container_id
    expect = {
        "docker": f"/docker/{cid}",
        "systemd": f"/system.slice/docker-{cid}.scope",
        "podman": f"/machine.slice/libpod-{cid}.scope",
    }
    lines = t.read_cgroup().splitlines()
    paths = {line.split(":", 2)[2] for line in lines}
    if style == "containerd":
        (path,) = {p for p in paths if p != "/"}
        parts = path.split("/")
        assert parts[1:3] == ["kubepods.slice", "kubepods-besteffort.slice"]
        assert parts[3].startswith("kubepods-besteffort-pod") and parts[3].endswith(".slice")
        assert "-" not in parts[3][len("kubepods-besteffort-pod"):-len(".slice")]
        assert parts[4] == f"cri-containerd-{cid}.scope"
    else:
        assert expect[style] in paths, lines
    t.stop()
    _assert_gone(t)


def test_rig_exit_status_and_outdir(start_target):
    """wait() reports a container's real exit status (the rig is the
    subreaper of runc's detached init) and the outdir is shared rw."""
    interp = rigmod.by_name("nodbg-3.11")
    t = start_target(interp, PROBE, container=True)
    assert t.wait(30) == 0
    assert json.loads(open(t.path("ready")).read())["minor"] == "3.11"
    t.stop()
    _assert_gone(t)


def test_rig_context_manager():
    interp = rigmod.by_name("bookworm-3.11")
    with rigmod.start_target(interp, IDLE, container=True) as t:
        t.wait_for("ready", timeout=30)
        assert t.alive()
    _assert_gone(t)
    t.cleanup_outdir()


def test_rig_target_death_is_reported(start_target, tmp_path):
    """wait_for fails fast, with stderr, when the target dies before writing."""
    interp = rigmod.by_name("bookworm-3.11")
    t = start_target(interp, IDLE, container=True, env={"PYTHONPATH": "/nonexistent",
                                                         "PYX_OUT": "/nonexistent/out"})
    with pytest.raises(RuntimeError, match="exited before writing ready"):
        t.wait_for("ready", timeout=30)
    assert t.wait(5) == 1


# --------------------------------------------------------------------------
# The fixture extension, as targets import it
# --------------------------------------------------------------------------
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
@pytest.mark.parametrize("interp", rigmod.params(supported=True))
def test_rig_fixture_importable(interp, container, start_target):
    interp.require(fixture=True)
    t = start_target(interp, PROBE, container=container)
    assert t.wait(30) == 0, t.logs()
    info = t.read_json("ready")
    assert info["ok"], info
    where = rigmod.IN_FIXTURE if (container or interp.root) else interp.fixture
    assert info["file"].startswith(where + "/pyxfixture"), info


def test_rig_nothing_left_behind():
    """Run last (file order): every target this session started is gone:
    no process, no container known to runc, no bundle.  (Only our own:
    other runs may share the machine and the run dir.)"""
    if not rigmod._STARTED:
        return  # selected alone: nothing of ours to check
    bad = rigmod.leftovers()
    assert not bad, "\n".join(bad)
