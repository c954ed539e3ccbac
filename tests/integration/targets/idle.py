"""Idle target: announce itself, then sleep until killed.

Exits with status 143 on SIGTERM, on the host and as a container's PID 1.
Writes $PYX_OUT/ready (or /pyx/out/ready inside a container) as JSON with the
pid as this process sees it and the interpreter's version, so that a test can
(1) synchronise on the file's appearance and (2) check which interpreter really
ran.  Written to run unchanged on every interpreter of the rig, Python 2.7
included, hence no f-strings and no newer stdlib.
"""
import json
import os
import signal
import sys
import time


def out_dir():
    """Where the rig wants our output: env PYX_OUT on the host, /pyx/out in a container."""
    return os.environ.get("PYX_OUT") or "/pyx/out"


def write_atomically(path, text):
    """Write then rename, so a watcher never reads a half-written file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def on_sigterm(signum, frame):
    """Exit 143 (128+SIGTERM) on SIGTERM.  Needed in containers: there this
    process is PID 1 of its namespace, and the kernel drops signals that
    PID 1 has no handler for, so without it SIGTERM would be ignored (as
    with `docker stop` on a bare python entrypoint) and stop() would have
    to wait for its SIGKILL fallback."""
    sys.exit(143)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    info = {
        "pid": os.getpid(),
        "version": sys.version,
        "version_info": list(sys.version_info)[:3],
        "minor": "%d.%d" % sys.version_info[:2],
        "executable": sys.executable,
        "debug": hasattr(sys, "gettotalrefcount"),
        "argv": sys.argv[1:],
    }
    write_atomically(os.path.join(out_dir(), "ready"), json.dumps(info))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
