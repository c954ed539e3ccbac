"""The interpreter rig: which real CPython interpreters the integration tests
trace, and how to start a target process under one of them, on the host or in
a real OCI container run by runc.

Why a registry instead of "whatever python3 is around": pyxtrace reads
interpreter internals whose layout differs per minor version, per build
(debug or not, static or shared libpython), and per availability of DWARF and
USDT probes.  Every one of those combinations is a distinct code path, so each
is a named entry here, with its properties *declared* (what the tests may rely
on) and checked against the real files by test_rig.py (so a declaration that
drifts from reality fails loudly instead of silently weakening a test).

Plain stdlib on purpose: this module is imported by pytest from
/usr/bin/python3 (Debian's), and also usable from a REPL for debugging.

Prerequisites are built by the scripts in tests/rig/ (see tests/rig/README.md);
when one is missing, the error says which command builds it.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import glob
import json
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterable, Optional

# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
RIG_SCRIPTS = TESTS_DIR / "rig"
CACHE = Path(os.environ.get("PYX_CACHE") or "/var/cache/pyxtrace")  # empty = unset, as in the shell scripts
RIG_CACHE = CACHE / "rig"
ROOTS_DIR = RIG_CACHE / "roots"
STRIPPED_DIR = RIG_CACHE / "pyenv-stripped"
FIXTURES_DIR = CACHE / "fixtures"
RUN_DIR = CACHE / "run"  # bundles and outdirs of running targets
PYENV_VERSIONS = Path(os.environ.get("PYX_PYENV_VERSIONS") or "/root/.pyenv/versions")

# Where the roles are seen from inside a container (or a chroot).
IN_TESTS = "/pyx/tests"
IN_FIXTURE = "/pyx/fixture"
IN_OUT = "/pyx/out"

# The root the pyenv builds and the host's own /usr run on inside containers.
PYENV_CONTAINER_ROOT = "bookworm-nodbg"

CGROUP_STYLES = ("docker", "systemd", "containerd", "podman")


class RigNotReady(RuntimeError):
    """A prerequisite of the rig is missing; the message names the command
    that builds it.  conftest.py turns this into pytest.fail (never a skip):
    a test that silently does not run is worse than one that fails."""


# --------------------------------------------------------------------------
# Tiny ELF reader (section names, build-id, DT_NEEDED)
# --------------------------------------------------------------------------
class Elf:
    """Just enough ELF64-LE parsing to verify the rig's declarations
    (static vs shared libpython, USDT notes, DWARF) without binutils."""

    def __init__(self, path: os.PathLike | str):
        self.path = str(path)
        with open(self.path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise ValueError(f"{path}: not an ELF64 little-endian file")
        (self.e_shoff,) = struct.unpack_from("<Q", d, 0x28)
        self.e_shentsize, self.e_shnum, self.e_shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        self.sections = {}
        raw = []
        for i in range(self.e_shnum):
            off = self.e_shoff + i * self.e_shentsize
            name, typ, flags, addr, offset, size, link = struct.unpack_from("<IIQQQQI", d, off)
            raw.append((name, typ, addr, offset, size, link))
        if raw:
            stroff = raw[self.e_shstrndx][3]
            for i, (name, typ, addr, offset, size, link) in enumerate(raw):
                end = d.index(b"\0", stroff + name)
                sname = d[stroff + name:end].decode()
                self.sections[sname] = (typ, addr, offset, size, link, i)
        self._raw = raw

    def has(self, name: str) -> bool:
        return name in self.sections

    @property
    def build_id(self) -> Optional[str]:
        s = self.sections.get(".note.gnu.build-id")
        if not s:
            return None
        off = s[2]
        namesz, descsz, _typ = struct.unpack_from("<III", self.data, off)
        desc = off + 12 + ((namesz + 3) & ~3)
        return self.data[desc:desc + descsz].hex()

    @property
    def needed(self) -> list[str]:
        s = self.sections.get(".dynamic")
        if not s:
            return []
        strtab = self._raw[s[4]][3]
        out = []
        for off in range(s[2], s[2] + s[3], 16):
            tag, val = struct.unpack_from("<qQ", self.data, off)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = self.data.index(b"\0", strtab + val)
                out.append(self.data[strtab + val:end].decode())
        return out


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Interp:
    """One interpreter of the rig.

    name     e.g. 'trixie-3.13d', 'pyenv-3.12-stripped'
    root     host dir of its Debian root, None for host interpreters
    python   path of the interpreter binary inside `root` (host path if None)
    minor    'X.Y' (never the patch: tests read that from the interpreter)
    debug    a --with-pydebug build (python3.Xd)
    has_dbg  DWARF for the interpreter code is available (in the binary or
             under <root>/usr/lib/debug/.build-id)
    static   interpreter linked into the executable (no libpython.so)
    usdt     the binary carries USDT (.note.stapsdt) probes
    source   'debian' | 'pyenv' | 'pyenv-stripped'
    supported  pyxtrace claims to support it (2.7 and < 3.8 are negative cases)
    fixture  host dir holding the pyxfixture extension built for it
    """

    name: str
    root: Optional[str]
    python: str
    minor: str
    debug: bool
    has_dbg: bool
    static: bool
    usdt: bool
    source: str
    supported: bool
    fixture: str
    # Not in the brief's list, but needed to build/run it:
    root_name: Optional[str] = None       # 'trixie', ... (None: host)
    libpython: Optional[str] = None       # path (same namespace as python) if shared
    pyenv_version: Optional[str] = None   # '3.12.1' for pyenv builds

    # -- paths ------------------------------------------------------------
    def host_path(self, path: str) -> str:
        """Host path of a path seen by this interpreter."""
        return self.root + path if self.root else path

    @property
    def python_host(self) -> str:
        return self.host_path(self.python)

    @property
    def libpython_host(self) -> Optional[str]:
        return self.host_path(self.libpython) if self.libpython else None

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.minor.split(".")
        return int(major), int(minor)

    # -- containers -------------------------------------------------------
    @property
    def container_root_name(self) -> str:
        """Debian root used as the container's rootfs."""
        return self.root_name or PYENV_CONTAINER_ROOT

    def container_mounts(self) -> list[tuple[str, str]]:
        """Extra read-only (host source, container destination) bind mounts.

        Host Debian interpreters run on the bookworm-nodbg root with the
        host's /usr over it (same suite, merged /usr): the container then
        runs the host's very binaries, libraries and debug files.  pyenv
        builds are mounted at their own path (their RUNPATH is absolute)."""
        if self.root_name:
            return []
        if self.source == "debian":
            return [("/usr", "/usr")]
        mounts = [(str(PYENV_VERSIONS), str(PYENV_VERSIONS))]
        if self.source == "pyenv-stripped":
            mounts.append((str(STRIPPED_DIR), str(STRIPPED_DIR)))
        return mounts

    # -- readiness --------------------------------------------------------
    def require(self, container: bool = False, fixture: bool = False) -> "Interp":
        """Raise RigNotReady (with the command to run) unless this
        interpreter can be started; returns self for chaining."""
        if self.root_name:
            require_root(self.root_name)
        if container:
            require_root(self.container_root_name)
            require_runc()
        if not os.path.exists(self.python_host):
            if self.source == "pyenv-stripped":
                raise RigNotReady(
                    f"{self.name}: {self.python_host} missing; build it with: "
                    f"{RIG_SCRIPTS}/mkstripped")
            cmd = (f"{RIG_SCRIPTS}/mkroot --refresh {self.root_name}" if self.root_name
                   else "install the interpreter on the host")
            raise RigNotReady(f"{self.name}: interpreter {self.python_host} missing; {cmd}")
        if fixture and not glob.glob(os.path.join(self.fixture, "pyxfixture*.so")):
            raise RigNotReady(
                f"{self.name}: fixture extension not built in {self.fixture}; run: "
                f"{RIG_SCRIPTS}/build-fixtures --interp {self.name}")
        return self

    def facts(self) -> dict:
        """What the files really say about static/usdt/has_dbg/debug
        (test_rig.py compares this with the declared fields)."""
        exe = Elf(self.python_host)
        code = Elf(self.libpython_host) if self.libpython else exe
        dbg_file = None
        bid = code.build_id
        if bid:
            cand = self.host_path(f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug")
            if os.path.exists(cand):
                dbg_file = cand
        return {
            "static": not any(n.startswith("libpython") for n in exe.needed),
            "usdt": code.has(".note.stapsdt"),
            "has_dbg": code.has(".debug_info") or dbg_file is not None,
            "debug_file": dbg_file,
            "build_id": bid,
        }

    def __str__(self) -> str:  # pytest ids
        return self.name


def root_dir(name: str) -> str:
    return str(ROOTS_DIR / name)


def require_root(name: str) -> str:
    d = root_dir(name)
    if not os.path.exists(os.path.join(d, ".pyxtrace-rig")):
        raise RigNotReady(f"Debian root '{name}' is not built ({d}); build it with: "
                          f"{RIG_SCRIPTS}/mkroot {name}   (or: {RIG_SCRIPTS}/mkroot all)")
    return d


def require_runc() -> str:
    path = shutil.which("runc")
    if not path:
        raise RigNotReady("runc is not installed; run: apt-get install -y runc")
    return path


# Debian roots and the minors they are declared to carry.  Declared, not
# discovered, so that a root that failed to build makes its tests fail
# instead of making them vanish.  The dbg flag says whether -dbg packages
# (and so python3.Xd and DWARF) are installed.
DEBIAN_ROOTS = {
    # name:          (minors,            with_dbg)
    "bullseye": (("3.9",), True),
    "trixie": (("3.13",), True),
    "sid": (("3.14", "3.15"), True),
    "bookworm-nodbg": (("3.11",), False),
}

# Short prefix used in interpreter names ('nodbg-3.11', not 'bookworm-nodbg-3.11').
ROOT_PREFIX = {"bookworm-nodbg": "nodbg"}

MIN_SUPPORTED = (3, 8)


def _supported(minor: str) -> bool:
    major, mi = (int(x) for x in minor.split("."))
    return (major, mi) >= MIN_SUPPORTED


def _debian_interps() -> list[Interp]:
    out = []
    # The host's own bookworm interpreters (python3.11-dbg is installed on the host).
    host = [("3.11", False), ("3.11", True)]
    for minor, debug in host:
        exe = f"/usr/bin/python{minor}{'d' if debug else ''}"
        name = f"bookworm-{minor}{'d' if debug else ''}"
        out.append(Interp(
            name=name, root=None, python=exe, minor=minor, debug=debug,
            has_dbg=True, static=True, usdt=True, source="debian",
            supported=_supported(minor), fixture=str(FIXTURES_DIR / name)))
    for rname, (minors, with_dbg) in DEBIAN_ROOTS.items():
        prefix = ROOT_PREFIX.get(rname, rname)
        for minor in minors:
            for debug in ((False, True) if with_dbg else (False,)):
                name = f"{prefix}-{minor}{'d' if debug else ''}"
                out.append(Interp(
                    name=name, root=root_dir(rname),
                    python=f"/usr/bin/python{minor}{'d' if debug else ''}",
                    minor=minor, debug=debug, has_dbg=with_dbg, static=True,
                    usdt=True, source="debian", supported=_supported(minor),
                    fixture=str(FIXTURES_DIR / name), root_name=rname))
    return out


def _pyenv_interps() -> list[Interp]:
    """pyenv builds found on the machine (by glob: no patch versions are
    hardcoded), plus their stripped copies made by tests/rig/mkstripped."""
    out = []
    for vdir in sorted(glob.glob(str(PYENV_VERSIONS / "[0-9]*.*.*")),
                       key=lambda p: tuple(int(x) for x in re.findall(r"\d+", os.path.basename(p))[:3])):
        ver = os.path.basename(vdir)
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", ver)
        if not m:
            continue  # e.g. 3.13.0t or -dev builds: not part of the rig
        minor = f"{m[1]}.{m[2]}"
        exe = f"bin/python{minor}"
        libs = sorted(glob.glob(os.path.join(vdir, "lib", f"libpython{minor}*.so.1.0")))
        if not os.path.exists(os.path.join(vdir, exe)) or not libs:
            continue  # not a --enable-shared build: not what the rig promises
        lib = os.path.basename(libs[0])
        for variant in ("pyenv", "pyenv-stripped"):
            base = vdir if variant == "pyenv" else str(STRIPPED_DIR / ver)
            name = f"pyenv-{minor}" + ("-stripped" if variant == "pyenv-stripped" else "")
            out.append(Interp(
                name=name, root=None, python=os.path.join(base, exe), minor=minor,
                debug=False, has_dbg=(variant == "pyenv"), static=False, usdt=False,
                source=variant, supported=_supported(minor),
                fixture=str(FIXTURES_DIR / name),
                libpython=os.path.join(base, "lib", lib), pyenv_version=ver))
    return out


INTERPRETERS: list[Interp] = _debian_interps() + _pyenv_interps()
_BY_NAME = {i.name: i for i in INTERPRETERS}


def by_name(name: str) -> Interp:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no interpreter named {name!r}; known: {', '.join(_BY_NAME)}") from None


def interpreters(pattern: Optional[str] = None, **filters) -> list[Interp]:
    """Interpreters matching a name glob (comma-separated globs allowed) and
    field filters, e.g. interpreters(supported=True, debug=False),
    interpreters('sid-*'), interpreters(source=('pyenv', 'pyenv-stripped')).
    A filter value that is a tuple/list/set matches any of its members; a
    callable is called with the field's value."""
    for key in filters:
        if key not in Interp.__dataclass_fields__:
            raise TypeError(f"unknown Interp field {key!r}")
    out = []
    for it in INTERPRETERS:
        if pattern and not any(fnmatch.fnmatchcase(it.name, p.strip())
                               for p in pattern.split(",") if p.strip()):
            continue
        ok = True
        for key, want in filters.items():
            have = getattr(it, key)
            if callable(want):
                ok = bool(want(have))
            elif isinstance(want, (tuple, list, set, frozenset)):
                ok = have in want
            else:
                ok = have == want
            if not ok:
                break
        if ok:
            out.append(it)
    return out


def params(pattern: Optional[str] = None, **filters):
    """pytest.param list for @pytest.mark.parametrize('interp', rig.params(...)),
    with the interpreter name as test id (so `-k sid-3.15` works)."""
    import pytest
    return [pytest.param(i, id=i.name) for i in interpreters(pattern, **filters)]


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------
def _read_status_field(pid: int, field: str) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    state = _read_status_field(pid, "State")
    return state is not None and not state.startswith("Z")


def _cgroup_path_for(style: str, cid: str) -> str:
    """cgroupsPath the way real engines lay them out (cgroupfs driver)."""
    if style == "docker":
        return f"/docker/{cid}"
    if style == "systemd":
        return f"/system.slice/docker-{cid}.scope"
    if style == "containerd":
        pod = str(uuid.uuid4()).replace("-", "_")
        return ("/kubepods.slice/kubepods-besteffort.slice/"
                f"kubepods-besteffort-pod{pod}.slice/cri-containerd-{cid}.scope")
    if style == "podman":
        return f"/machine.slice/libpod-{cid}.scope"
    raise ValueError(f"cgroup_style must be one of {CGROUP_STYLES}, not {style!r}")


def _resolve_script(script) -> Path:
    p = Path(script)
    if not p.is_absolute():
        for base in (Path.cwd(), TESTS_DIR, REPO_ROOT, TESTS_DIR / "integration" / "targets"):
            if (base / p).exists():
                p = base / p
                break
    p = p.resolve()
    if not p.exists():
        raise FileNotFoundError(f"target script {script} not found")
    return p


def _base_env(interp: Interp, tests: str, fixture: str, out: str, extra: Optional[dict]) -> dict:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "PYX_TESTS": tests,
        "PYX_FIXTURE": fixture,
        "PYX_OUT": out,
        "PYTHONPATH": fixture,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            elif k == "PYTHONPATH":
                env[k] = f"{fixture}:{v}"
            else:
                env[k] = str(v)
    return env


class Target:
    """A running target process.  Use as a context manager, or call stop()."""

    def __init__(self, interp: Interp, script: Path, args, container: bool,
                 cgroup_style: str, outdir: str):
        self.interp = interp
        self.script = script
        self.args = tuple(str(a) for a in args)
        self.container = container
        self.cgroup_style = cgroup_style
        self.outdir = outdir
        self.pid: Optional[int] = None
        self.ns_pid: Optional[int] = None
        self.container_id: Optional[str] = None
        self.cgroup: Optional[str] = None        # cgroupsPath for containers
        self.bundle: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stopped = False
        self._status: Optional[int] = None
        self._reaped = False

    # -- info ----------------------------------------------------------------
    def read_cgroup(self) -> str:
        """Current contents of /proc/<pid>/cgroup."""
        with open(f"/proc/{self.pid}/cgroup") as f:
            return f.read()

    def path(self, name: str) -> str:
        return os.path.join(self.outdir, name)

    def read_json(self, name: str):
        with open(self.path(name)) as f:
            return json.load(f)

    def logs(self) -> str:
        """stdout+stderr of the target (for failure messages)."""
        parts = []
        for n in ("stdout", "stderr"):
            try:
                with open(self.path(n), errors="replace") as f:
                    txt = f.read()
                if txt:
                    parts.append(f"--- {n} ---\n{txt[-4000:]}")
            except OSError:
                pass
        return "\n".join(parts)

    def alive(self) -> bool:
        if self.pid is None or (self.container and self._reaped):
            return False  # a reaped pid may already belong to someone else
        if self._proc is not None and not self.container:
            return self._proc.poll() is None
        return _pid_alive(self.pid)

    # -- sync ------------------------------------------------------------------
    def wait_for(self, filename: str, timeout: float = 30.0) -> str:
        """Wait until the target has written outdir/filename (the tests'
        synchronisation point); returns its host path.  Fails fast, with the
        target's stderr, if the target dies first."""
        path = self.path(filename)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if os.path.exists(path):
                return path
            if not self.alive():
                if os.path.exists(path):
                    return path
                raise RuntimeError(
                    f"{self.interp.name}: target exited before writing {filename} "
                    f"(status {self._poll_status()})\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.interp.name}: {filename} not written within "
                                   f"{timeout}s\n{self.logs()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Wait for the target to exit; returns its exit status, Popen-style
        (negative = killed by that signal).  For containers the status is
        known because the rig is the child subreaper of runc's detached
        init (see _become_subreaper); None if it was reaped elsewhere."""
        if self._proc is not None and not self.container:
            try:
                self._status = self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{self.interp.name}: still running after {timeout}s") from None
            return self._status
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._reap()
            if not self.alive():
                self._reap()
                return self._status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.interp.name}: still running after {timeout}s")
            time.sleep(0.02)

    def _reap(self) -> None:
        """Collect the container init's exit status if it is our child."""
        if not self.container or self.pid is None or self._reaped:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self._reaped = True  # not ours (or already reaped): status unknown
            return
        if pid == self.pid:
            self._reaped = True
            self._status = (-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                            else os.WEXITSTATUS(status))

    def _poll_status(self):
        if self._proc is not None and not self.container:
            return self._proc.poll()
        self._reap()
        return self._status

    # -- teardown ----------------------------------------------------------------
    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after `grace` s; for containers also
        `runc kill` + `runc delete -f`.  Idempotent.

        A container target is PID 1 of its namespace: the kernel ignores
        SIGTERM there unless the script installs a handler (idle.py does),
        so scripts without one cost `grace` seconds per stop()."""
        if self._stopped:
            return
        self._stopped = True
        if self.container:
            self._stop_container(grace)
        else:
            self._stop_host(grace)

    def _stop_host(self, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        else:
            # The leader is gone; kill stragglers of its session anyway.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._status = proc.returncode

    def _runc(self, *args, check=False, timeout=30) -> subprocess.CompletedProcess:
        return subprocess.run(["runc", *args], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def _stop_container(self, grace: float) -> None:
        cid = self.container_id
        if cid is None:
            return
        self._reap()
        if self.pid and _pid_alive(self.pid):
            self._runc("kill", cid, "TERM")
            deadline = time.monotonic() + grace
            while _pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
                self._reap()
            if _pid_alive(self.pid):
                self._runc("kill", "--all", cid, "KILL")
                deadline = time.monotonic() + 10
                while _pid_alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    self._reap()
        self._reap()
        r = self._runc("delete", "-f", cid)
        if r.returncode != 0 and "does not exist" not in (r.stderr or ""):
            # One retry: delete can race with the init's exit being noticed.
            time.sleep(0.2)
            r = self._runc("delete", "-f", cid)
            if r.returncode != 0 and "does not exist" not in (r.stderr or ""):
                raise RuntimeError(f"runc delete -f {cid} failed: {r.stderr.strip()}")
        _remove_cgroup_dirs(self.cgroup, self.cgroup_style)
        if self.bundle:
            shutil.rmtree(self.bundle, ignore_errors=True)

    def cleanup_outdir(self) -> None:
        shutil.rmtree(self.outdir, ignore_errors=True)

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"container {self.container_id[:12]}" if self.container_id else "host"
        return f"<Target {self.interp.name} pid={self.pid} ns_pid={self.ns_pid} {where}>"


def _remove_cgroup_dirs(cgroups_path: Optional[str], style: str) -> None:
    """runc removes the container's own cgroup; a containerd-style pod slice
    is per target and is removed here too (best effort, empty dirs only)."""
    if not cgroups_path or style != "containerd":
        return
    pod = os.path.dirname(cgroups_path)
    for hier in glob.glob("/sys/fs/cgroup/*") + ["/sys/fs/cgroup"]:
        d = hier + pod
        if os.path.isdir(d):
            try:
                os.rmdir(d)
            except OSError:
                pass


def _oci_config(args: list[str], env: dict, rootfs: str, mounts: list[dict],
                cgroups_path: str, hostname: str, network: bool) -> dict:
    """An OCI runtime config equivalent to `runc spec`'s defaults (mounts,
    capabilities, masked paths), non-terminal, read-only root, with our
    binds and cgroupsPath."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    base_mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if network:
        base_mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                            "options": ["nosuid", "noexec", "nodev", "ro"]})
    else:
        # sysfs cannot be mounted without a private netns: bind it instead.
        base_mounts.append({"destination": "/sys", "type": "bind", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    base_mounts += [
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]},
    ]
    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if network:
        namespaces.insert(1, {"type": "network"})
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": hostname,
        "mounts": base_mounts + mounts,
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


_pruned = False


def _bind(src: str, dst: str, ro: bool = True) -> dict:
    return {"destination": dst, "type": "bind", "source": src,
            "options": ["rbind", "ro" if ro else "rw", "nosuid", "nodev"]}


def _prune_run_dir(max_age: float = 86400.0) -> None:
    """Remove outdirs/bundles older than a day: failing tests keep theirs
    for inspection, and nothing else would ever delete them.  Younger ones
    may belong to a concurrent run and are left alone."""
    now = time.time()
    try:
        entries = list(os.scandir(RUN_DIR))
    except FileNotFoundError:
        return
    for e in entries:
        try:
            if now - e.stat().st_mtime > max_age:
                shutil.rmtree(e.path, ignore_errors=True)
        except OSError:
            pass


def _new_outdir() -> str:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    global _pruned
    if not _pruned:
        _pruned = True
        _prune_run_dir()
    d = tempfile.mkdtemp(prefix="out-", dir=RUN_DIR)
    os.chmod(d, 0o777)
    return d


def start_target(interp: Interp, script, args: Iterable = (), container: bool = False,
                 cgroup_style: str = "docker", env: Optional[dict] = None,
                 network: bool = True, outdir: Optional[str] = None) -> Target:
    """Start `script` (a .py under tests/) under `interp`, on the host or in
    a runc container.  Returns once the process exists (not once it is ready:
    use target.wait_for('ready')).

    On the host, interpreters living in a Debian root run chrooted into it
    (in a private mount namespace, root read-only, the three /pyx binds):
    host PID namespace and cgroup, but their own filesystem, as a chroot
    jail or `systemd-nspawn --as-pid2` would.  Env PYX_TESTS/PYX_FIXTURE/
    PYX_OUT give the roles' paths as the target sees them; PYTHONPATH has
    the fixture dir first."""
    script = _resolve_script(script)
    interp.require(container=container)
    fixture_host = interp.fixture
    os.makedirs(fixture_host, exist_ok=True)
    outdir = outdir or _new_outdir()
    if container:
        t = Target(interp, script, args, True, cgroup_style, outdir)
        _STARTED.append(t)
        _start_container(t, env, network)
    else:
        t = Target(interp, script, args, False, "host", outdir)
        _STARTED.append(t)
        _start_host(t, env)
    return t


def _start_host(t: Target, env: Optional[dict]) -> None:
    interp = t.interp
    stdout = open(t.path("stdout"), "wb")
    stderr = open(t.path("stderr"), "wb")
    try:
        if interp.root is None:
            e = _base_env(interp, str(TESTS_DIR), interp.fixture, t.outdir, env)
            cmd = [interp.python, str(t.script), *t.args]
        else:
            rel = t.script.relative_to(TESTS_DIR)
            e = _base_env(interp, IN_TESTS, IN_FIXTURE, IN_OUT, env)
            cmd = chroot_argv(interp.root, [interp.python, f"{IN_TESTS}/{rel}", *t.args],
                              binds=[(str(TESTS_DIR), IN_TESTS, True),
                                     (interp.fixture, IN_FIXTURE, True),
                                     (t.outdir, IN_OUT, False)])
        t._proc = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=stderr, start_new_session=True, cwd="/")
    finally:
        stdout.close()
        stderr.close()
    t.pid = t._proc.pid
    t.ns_pid = t.pid
    t.container_id = None
    t.cgroup = _own_cgroup(t.pid)


def chroot_argv(root: str, argv: list[str], binds: Iterable[tuple[str, str, bool]] = (),
                proc: bool = True) -> list[str]:
    """argv that runs `argv` chrooted into `root` in a private mount
    namespace: root bound read-only (the cached roots are shared by every
    target and must never be written), /proc and a tmpfs /tmp mounted,
    `binds` = (host, inside, read_only) mounted on top.  unshare, sh and
    chroot each exec the next, so the pid Popen reports is argv's pid."""
    import shlex
    q = shlex.quote
    r = root.rstrip("/")
    steps = ["set -e", f"mount --bind {q(r)} {q(r)}", f"mount -o remount,bind,ro {q(r)}"]
    if proc:
        steps.append(f"mount -t proc proc {q(r + '/proc')}")
    steps.append(f"mount -t tmpfs -o mode=1777 tmpfs {q(r + '/tmp')}")
    for host, inside, ro in binds:
        dst = r + inside
        steps.append(f"mount --bind {q(host)} {q(dst)}")
        if ro:
            steps.append(f"mount -o remount,bind,ro {q(dst)}")
    steps.append(f'exec chroot {q(r)} "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", "; ".join(steps), "pyx-chroot", *argv]


def _own_cgroup(pid: int) -> Optional[str]:
    """The unified (or name=systemd) cgroup path of pid, for host runs."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for want in ("0::", ":name=systemd:"):
        for line in lines:
            if want in line:
                return line.split(":", 2)[2]
    return lines[0].split(":", 2)[2] if lines else None


_subreaper = False


def _become_subreaper() -> None:
    """Make this process the child subreaper, once: `runc run --detach`
    leaves the container's init orphaned, and as subreaper we inherit it,
    so Target.wait() can report its real exit status (and no zombie is
    left to the machine's init)."""
    global _subreaper
    if _subreaper:
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    _subreaper = True


def _start_container(t: Target, env: Optional[dict], network: bool) -> None:
    interp = t.interp
    runc = require_runc()
    _become_subreaper()
    rootfs = require_root(interp.container_root_name)
    try:
        rel = t.script.relative_to(TESTS_DIR)
    except ValueError:
        raise ValueError(f"container targets must live under {TESTS_DIR}: {t.script}") from None
    cid = secrets.token_hex(32)
    t.container_id = cid
    t.cgroup = _cgroup_path_for(t.cgroup_style, cid)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    t.bundle = tempfile.mkdtemp(prefix="bundle-", dir=RUN_DIR)
    mounts = [_bind(str(TESTS_DIR), IN_TESTS), _bind(interp.fixture, IN_FIXTURE),
              _bind(t.outdir, IN_OUT, ro=False)]
    mounts += [_bind(src, dst) for src, dst in interp.container_mounts()]
    e = _base_env(interp, IN_TESTS, IN_FIXTURE, IN_OUT, env)
    cfg = _oci_config([interp.python, f"{IN_TESTS}/{rel}", *t.args], e, rootfs, mounts,
                      t.cgroup, hostname=cid[:12], network=network)
    with open(os.path.join(t.bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    pidfile = os.path.join(t.bundle, "pid")
    with open(t.path("stdout"), "wb") as so, open(t.path("stderr"), "wb") as se:
        r = subprocess.run([runc, "run", "--detach", "--pid-file", pidfile,
                            "--bundle", t.bundle, cid],
                           stdin=subprocess.DEVNULL, stdout=so, stderr=se, timeout=60)
    if r.returncode != 0:
        t._stopped = False
        logs = t.logs()
        try:
            t.stop()
        finally:
            raise RuntimeError(f"{interp.name}: runc run failed ({r.returncode})\n{logs}")
    with open(pidfile) as f:
        t.pid = int(f.read().strip())
    nspid = _read_status_field(t.pid, "NSpid")
    t.ns_pid = int(nspid.split()[-1]) if nspid else None


# Every target this process started, for leftovers() (other sessions may
# run targets concurrently: only our own are checked).
_STARTED: list["Target"] = []


def leftovers() -> list[str]:
    """Targets started by this process that are not fully cleaned up: a
    process still alive, a container runc still lists, or a bundle dir."""
    known = {c["id"] for c in runc_list()}
    bad = []
    for t in _STARTED:
        if t.alive():
            bad.append(f"{t!r}: process alive")
        if t.container_id and t.container_id in known:
            bad.append(f"{t!r}: runc still lists {t.container_id}")
        if t.bundle and os.path.exists(t.bundle):
            bad.append(f"{t!r}: bundle {t.bundle} left")
    return bad


def runc_list() -> list[dict]:
    """Containers runc knows about (its default state dir)."""
    r = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"runc list failed: {r.stderr}")
    return json.loads(r.stdout or "null") or []


def pid_namespace(pid) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")
