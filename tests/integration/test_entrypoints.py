"""C entry points of extension modules, discovered from their data without
symbols (`pyxtrace info --module`), compared with what the modules expose
to Python (dir() inside the target)."""
import os
import shutil
import subprocess
import time

import pytest

import pyx
import rig as rigmod

FIXTURE_FUNCTIONS = {
    "burn", "sleep", "call", "call_n", "recurse", "raise_error", "null_without_error",
    "value_with_error", "segfault", "abort", "fatal", "assert_fail", "memory_error",
    "negative_refcount", "counts", "reset_counts", "c_to_c",
}
FIXTURE_OTHERS = {
    ("Thing.get", "PyObject*", "method"), ("Thing.add", "PyObject*", "method"),
    ("Thing.value (get)", "PyObject*", "getter"), ("Thing.value (set)", "int", "setter"),
    ("Thing.__init__", "int", "slot"), ("Thing.(tp_dealloc)", "void", "slot"),
    ("Thing.__repr__", "PyObject*", "slot"), ("Thing.__len__", "Py_ssize_t", "slot"),
}


def discover(pyxtrace_bin, pid, module, container=None):
    args = ["info", "--json", "-d", "10ms", "--module", module]
    args += ["--container", container, "-p", pid] if container else ["-p", pid]
    return pyx.run(pyxtrace_bin, *args, check_rc=0).json()["module"]


def check_fixture(mod, with_symbols):
    got = {(e["name"], e["signature"], e["kind"]) for e in mod["entry_points"]}
    want = {(f"pyxfixture.{f}", "PyObject*", "function") for f in FIXTURE_FUNCTIONS}
    want |= FIXTURE_OTHERS
    assert got == want
    for e in mod["entry_points"]:
        if with_symbols:
            # The fixture names every C function pyxfixture_<python name> (see pyxfixture.c).
            assert e["symbol"] and e["symbol"].startswith("pyxfixture_"), e
        else:
            assert e["symbol"] is None, e


@pytest.mark.interps(supported=True)
@pytest.mark.parametrize("where", ["host", "container"])
def test_fixture_entry_points(interp, where, start_target, pyxtrace_bin):
    container = where == "container"
    interp.require(container=container, fixture=True)
    target = start_target(interp, "modules.py", args=["pyxfixture"], container=container)
    target.wait_for("modules.json")
    mod = discover(pyxtrace_bin, target.ns_pid if container else target.pid, "pyxfixture",
                   target.container_id if container else None)
    assert mod["name"] == "pyxfixture"
    check_fixture(mod, with_symbols=True)
    truth = target.read_json("modules.json")["pyxfixture"]
    assert set(truth["functions"]) == FIXTURE_FUNCTIONS
    assert {"get", "add"} <= set(truth["types"]["Thing"])


def test_stripped_fixture_entry_points(tmp_path, pyxtrace_bin):
    """strip --strip-all: no symbol left for any entry point, all still found."""
    interp = rigmod.by_name("bookworm-3.11").require(fixture=True)
    so = next(p for p in os.listdir(interp.fixture) if p.startswith("pyxfixture"))
    (tmp_path / "fx").mkdir()
    shutil.copy(os.path.join(interp.fixture, so), tmp_path / "fx" / so)
    subprocess.run(["strip", "--strip-all", str(tmp_path / "fx" / so)], check=True)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fx"), PYX_OUT=str(tmp_path))
    proc = subprocess.Popen([interp.python_host, os.path.join(rigmod.TESTS_DIR, "integration",
                                                              "targets", "modules.py"),
                             "pyxfixture"], env=env)
    try:
        while not (tmp_path / "modules.json").exists():
            assert proc.poll() is None
            time.sleep(0.01)
        check_fixture(discover(pyxtrace_bin, proc.pid, "pyxfixture"), with_symbols=False)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.interps("trixie-3.13,sid-3.14,sid-3.15")
def test_real_modules_nobody_here_wrote(interp, start_target, pyxtrace_bin):
    """Pillow's _imaging and numpy's core module, stripped Debian builds: the
    module functions and ImagingCore methods discovered are exactly those
    dir() shows (numpy: nearly all; some of its functions are not PyMethodDef)."""
    interp.require()
    target = start_target(interp, "modules.py", args=["pil", "numpy", "json"])
    target.wait_for("modules.json", timeout=60)
    truth = target.read_json("modules.json")

    mod = discover(pyxtrace_bin, target.pid, "_imaging")
    assert mod["name"] == "PIL._imaging"
    names = {e["name"] for e in mod["entry_points"]}
    functions = {n.split(".", 2)[2] for n in names if n.startswith("PIL._imaging.")}
    assert functions == set(truth["PIL._imaging"]["functions"])
    for type_name, methods in truth["PIL._imaging"]["types"].items():
        found = {n.split(".", 1)[1] for n in names if n.startswith(type_name + ".")}
        assert set(methods) <= found, set(methods) - found
    assert {"PIL._imaging.fill", "ImagingCore.getpixel", "ImagingCore.resize"} <= names

    numpy_name = next(n for n in truth if n.startswith("numpy"))
    mod = discover(pyxtrace_bin, target.pid, numpy_name)
    found = {e["name"].rsplit(".", 1)[1] for e in mod["entry_points"]
             if e["kind"] == "function"}
    want = set(truth[numpy_name]["functions"])
    assert want and len(found & want) >= 0.9 * len(want), sorted(want - found)[:20]
    # The other spelling of numpy's package resolves to the same module.
    other = "numpy.core._multiarray_umath" if "_core" in numpy_name else \
        "numpy._core._multiarray_umath"
    assert discover(pyxtrace_bin, target.pid, other)["name"] == numpy_name

    if truth["_json"]["builtin"]:
        # Linked into the interpreter (Debian 3.13+): not an extension module to attach to.
        res = pyx.run(pyxtrace_bin, "info", "-p", target.pid, "--module", "_json")
        assert res.rc == 1 and "no loaded extension module matches '_json'" in res.stderr
    else:
        mod = discover(pyxtrace_bin, target.pid, "_json")
        functions = {e["name"].split(".", 1)[1] for e in mod["entry_points"]
                     if e["kind"] == "function"}
        assert functions == set(truth["_json"]["functions"])


def test_unknown_module(start_target, pyxtrace_bin):
    interp = rigmod.by_name("bookworm-3.11").require(fixture=True)
    target = start_target(interp, "modules.py", args=["pyxfixture", "json"])
    target.wait_for("modules.json")
    res = pyx.run(pyxtrace_bin, "info", "-p", target.pid, "--module", "pyxfixtur")
    assert res.rc == 1 and res.stdout == ""
    line = res.stderr.strip()
    assert "no loaded extension module matches 'pyxfixtur'" in line
    assert line.index("pyxfixture") < line.index("_json")  # closest names first


# Fixture counter name (pyxfixture.counts()) for each discovered entry point name.
COUNTER_OF = {
    "Thing.__init__": "thing_init", "Thing.(tp_dealloc)": "thing_dealloc",
    "Thing.__repr__": "thing_repr", "Thing.__len__": "thing_len", "Thing.get": "thing_get",
    "Thing.add": "thing_add", "Thing.value (get)": "thing_value_get",
    "Thing.value (set)": "thing_value_set",
}


@pytest.mark.interps("bookworm-3.11,bookworm-3.11d,pyenv-3.8,pyenv-3.12-stripped,trixie-3.13,sid-3.15")
def test_entry_point_calls_equal_fixture_counters(interp, start_target, pyxtrace_bin):
    """One uprobe_multi link on every entry point: the calls it counts equal
    the fixture's own counters, for functions, methods, getters, setters and
    slots."""
    interp.require(fixture=True)
    target = start_target(interp, "fixture_calls.py")
    target.wait_for("ready")
    proc = pyx.start_attached(pyxtrace_bin, "info", "-v", "--json", "-d", "60s", "--module",
                              "pyxfixture", "-p", target.pid)
    open(target.path("go"), "w").close()
    mod = pyx.finish(proc).json()["module"]
    counters = target.read_json("calls.json")
    assert mod["error"] is None
    checked = 0
    for e in mod["entry_points"]:
        short = e["name"].split(".", 1)[1] if e["name"].startswith("pyxfixture.") else None
        counter = short if short in counters else COUNTER_OF.get(e["name"])
        # reset_counts() zeroes its own counter as it runs; we counted that call.
        if counter is None or counter == "reset_counts":
            continue
        assert e["calls"] == counters[counter], (e["name"], e["calls"], counters[counter])
        checked += 1
    assert checked >= 15
    # A few that must really have been called.
    by_name = {e["name"]: e["calls"] for e in mod["entry_points"]}
    assert by_name["pyxfixture.burn"] == 50 and by_name["Thing.__init__"] == 50
