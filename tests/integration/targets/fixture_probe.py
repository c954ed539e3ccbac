"""Fixture probe: import the pyxfixture extension and report where it came from.

Proves the rig's plumbing for the extension (PYTHONPATH with the fixture dir
first, /pyx/fixture bind mount in containers) before a test relies on it.
Writes $PYX_OUT/ready (or /pyx/out/ready) as JSON, then exits 0.
"""
import json
import os
import sys


def main():
    out = os.environ.get("PYX_OUT") or "/pyx/out"
    info = {"pid": os.getpid(), "minor": "%d.%d" % sys.version_info[:2]}
    try:
        import pyxfixture
        info["file"] = pyxfixture.__file__
        info["ok"] = True
    except Exception as e:  # reported, the test decides
        info["ok"] = False
        info["error"] = "%s: %s" % (type(e).__name__, e)
        info["path"] = sys.path
    tmp = os.path.join(out, "ready.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(info))
    os.rename(tmp, os.path.join(out, "ready"))


if __name__ == "__main__":
    main()
