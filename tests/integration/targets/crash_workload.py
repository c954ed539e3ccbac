"""Crash workload: imports the fixture, writes $PYX_OUT/ready, waits for
$PYX_OUT/go, records where it is about to call the fixture's crashing
function (site.json: function and line, from its own frame), then calls
it: segfault, abort, fatal (Py_FatalError) or assert_fail. With "late" as
the second argument the fixture is imported only after go, just before."""
import json
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"


def trigger(what):
    import pyxfixture

    if sys.argv[2:] == ["late"]:
        time.sleep(0.2)  # the tracer learns the new module (it would race a crash right away)
    frame = sys._getframe()
    with open(os.path.join(OUT, "site.json"), "w") as f:
        json.dump({"function": frame.f_code.co_name, "line": frame.f_lineno + 3,
                   "pid": os.getpid()}, f)
    fn = getattr(pyxfixture, what)
    fn("crash_workload says goodbye") if what == "fatal" else fn()


def main():
    if sys.argv[2:] != ["late"]:
        import pyxfixture  # noqa: F401 (loaded before the tracer attaches)
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    trigger(sys.argv[1])


if __name__ == "__main__":
    main()
