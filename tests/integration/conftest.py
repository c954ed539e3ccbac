"""pytest glue for the integration tests: the rig (tests/integration/rig.py)
as fixtures, interpreter parametrization, and loud failures for missing
prerequisites.

Run with Debian's pytest:  /usr/bin/python3 -m pytest tests/integration
Select interpreters:        --interp 'sid-*,pyenv-3.12*'   (or env PYX_INTERP)

A test that takes an `interp` argument and does not parametrize it itself
runs once per rig interpreter; narrow the set with a marker whose keyword
arguments are rig.interpreters() filters:

    @pytest.mark.interps(supported=True, debug=False)
    def test_something(interp, start_target): ...

Missing prerequisites (a root not built, fixtures not compiled, no pyxtrace
binary) FAIL with the command that fixes them; they are never skipped, so a
green run means the tests really ran.
"""
import fnmatch
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rig as rigmod  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--interp", action="store", default=os.environ.get("PYX_INTERP"),
        help="only interpreters whose rig name matches these globs "
             "(comma-separated), e.g. 'sid-*,pyenv-3.12'; env PYX_INTERP")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "interps(pattern=None, **filters): interpreters an `interp` test runs "
                   "on (rig.interpreters() arguments)")
    config.addinivalue_line("markers", "rig: tests of the interpreter rig itself")


def _interp_globs(config):
    pat = config.getoption("--interp")
    return [p.strip() for p in pat.split(",") if p.strip()] if pat else None


def _selected(config, interp):
    globs = _interp_globs(config)
    return globs is None or any(fnmatch.fnmatchcase(interp.name, g) for g in globs)


def pytest_generate_tests(metafunc):
    """Parametrize `interp` over the rig unless the test did it itself."""
    if "interp" not in metafunc.fixturenames:
        return
    if any(m.name == "parametrize" and "interp" in str(m.args[0]).replace(" ", "").split(",")
           for m in metafunc.definition.iter_markers()):
        return
    marker = metafunc.definition.get_closest_marker("interps")
    args = marker.args if marker else ()
    kwargs = dict(marker.kwargs) if marker else {}
    chosen = [i for i in rigmod.interpreters(*args, **kwargs) if _selected(metafunc.config, i)]
    metafunc.parametrize("interp", chosen, ids=[i.name for i in chosen])


def pytest_collection_modifyitems(config, items):
    """--interp also narrows tests that parametrized `interp` themselves."""
    if _interp_globs(config) is None:
        return
    keep, drop = [], []
    for item in items:
        cs = getattr(item, "callspec", None)
        it = cs.params.get("interp") if cs else None
        (drop if isinstance(it, rigmod.Interp) and not _selected(config, it) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show RigNotReady as a one-paragraph failure with the fix, not a
    traceback (raised in setup it would otherwise read as an 'error')."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)  # lets fixtures see the outcome
    if call.excinfo is not None and call.excinfo.errisinstance(rigmod.RigNotReady):
        rep.outcome = "failed"
        rep.longrepr = f"RIG NOT READY: {call.excinfo.value}"


def fail_missing(what, command):
    """Fail (never skip) for a missing prerequisite, naming the fix."""
    pytest.fail(f"{what} is missing; run: {command}", pytrace=False)


@pytest.fixture(scope="session")
def repo_root():
    return rigmod.REPO_ROOT


@pytest.fixture(scope="session")
def pyxtrace_bin():
    """The pyxtrace binary under test: env PYXTRACE, else build/user/pyxtrace."""
    path = os.environ.get("PYXTRACE") or str(rigmod.REPO_ROOT / "build" / "user" / "pyxtrace")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        fail_missing(f"pyxtrace binary {path}",
                     f"cd {rigmod.REPO_ROOT} && meson setup build && meson compile -C build "
                     "(or set PYXTRACE=/path/to/pyxtrace)")
    return path


@pytest.fixture(scope="session")
def rig():
    """The rig module (INTERPRETERS, interpreters(), by_name(), Elf, ...);
    prefer the start_target fixture to rig.start_target (it cleans up)."""
    return rigmod


@pytest.fixture
def start_target(request):
    """Factory: start_target(interp, script, ...) like rig.start_target, but
    every target it started is stopped (and its container deleted) when the
    test ends, pass or fail.  Outdirs of passing tests are removed; a
    failing test's outdir is kept for inspection (its path is in the report)."""
    started = []

    def _start(interp, script, *args, **kwargs):
        t = rigmod.start_target(interp, script, *args, **kwargs)
        started.append(t)
        return t

    yield _start
    errors = []
    for t in started:
        try:
            t.stop()
        except Exception as e:  # keep stopping the others
            errors.append(f"{t!r}: {e}")
    failed = getattr(request.node, "rep_call", None)
    for t in started:
        if failed is None or not failed.failed:
            t.cleanup_outdir()
    if errors:
        pytest.fail("target cleanup failed:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def rig_interp(interp):
    """`interp`, after checking it can run (root built, binary present)."""
    return interp.require()
