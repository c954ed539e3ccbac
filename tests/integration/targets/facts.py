"""Facts target: the ground truth `pyxtrace info` is compared with, written by
the interpreter about itself, then a steady stream of calls from C into
Python (sorted with a key) until killed, so a probe has something to count.

Runs on every interpreter of the rig (3.8+; 2.7 too, for the
unsupported-version test), hence no f-strings.
"""
import json
import os
import sys
import sysconfig
import time

import _json  # noqa: F401  (an extension module from lib-dynload on most builds)
import math  # noqa: F401

try:
    import pyxfixture  # noqa: F401  (the rig's fixture, when built for this interpreter)
except ImportError:
    pyxfixture = None


def out_dir():
    return os.environ.get("PYX_OUT") or "/pyx/out"


def loaded_extensions():
    """(module name, file) of every loaded module that is a shared object."""
    found = []
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None) or ""
        if path.endswith(".so"):
            found.append([name, os.path.realpath(path)])
    return sorted(found)


def mapped_libpython():
    """The libpython this process has mapped, if any: whether the interpreter
    runs from a shared library (Debian builds one but links python3.X
    statically, so sysconfig's Py_ENABLE_SHARED does not tell)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "/libpython" in path:
                return path
    return None


def main():
    facts = {
        "pid": os.getpid(),
        "version": "%d.%d.%d" % sys.version_info[:3],
        "releaselevel": sys.version_info[3],
        "serial": sys.version_info[4],
        "hexversion": sys.hexversion,
        "debug": hasattr(sys, "gettotalrefcount"),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "libpython": mapped_libpython(),
        "soabi": sysconfig.get_config_var("SOABI"),
        "executable": os.path.realpath(sys.executable),
        "extensions": loaded_extensions(),
    }
    tmp = os.path.join(out_dir(), "facts.json.tmp")
    with open(tmp, "w") as f:
        json.dump(facts, f)
    os.rename(tmp, os.path.join(out_dir(), "facts.json"))
    items = list(range(50))
    while True:
        sorted(items, key=lambda x: -x)
        time.sleep(0.001)


if __name__ == "__main__":
    main()
