"""Crash workload: imports the fixture, writes $PYX_OUT/ready, waits for
$PYX_OUT/go, records where it is about to call the fixture's crashing
function (site.json: function and line, from its own frame), then calls
it: segfault, abort, fatal (Py_FatalError), assert_fail, bad_return (two
bad returns, caught; a debug build aborts), or memory_error
(caught, RAISES times, then a normal exit); or recursion_error: Python
recursion past the limit, caught, RAISES times (site.json: the recursing
function's one line); or oom: allocate until killed; or thread_segfault:
a threading.Thread named worker-alpha segfaults half a second after it
started (site.json as for segfault, with "thread": its name). With "late" as
the second argument the fixture is imported only after go, just before."""
import json
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
RAISES = 30


def down(): return down()  # noqa: E704 (def, call and body on one line)


def recurse():
    frame = sys._getframe()
    with open(os.path.join(OUT, "site.json"), "w") as f:
        json.dump({"function": "down", "line": down.__code__.co_firstlineno,
                   "caller_line": frame.f_lineno + 5, "pid": os.getpid(), "raises": RAISES},
                  f)
    for _ in range(RAISES):
        try:
            down()
        except RecursionError:
            pass


def exhaust():
    """Allocate until the OOM killer ends the process (the test caps its memory cgroup)."""
    hoard = []
    while True:
        hoard.append(bytearray(8 << 20))


def bad_returns():
    """The fixture's two bad returns, each caught as the SystemError a release build
    makes of it (a debug build aborts at the first)."""
    import pyxfixture

    here = sys._getframe().f_lineno
    with open(os.path.join(OUT, "site.json"), "w") as f:
        json.dump({"function": "bad_returns", "line": here + 5,
                   "line2": here + 9, "pid": os.getpid()}, f)
    try:
        pyxfixture.null_without_error()
    except SystemError:
        pass
    try:
        pyxfixture.value_with_error()
    except SystemError:
        pass


def crash_in_thread():
    import threading

    import pyxfixture

    def site():
        with open(os.path.join(OUT, "site.json"), "w") as f:
            json.dump({"function": "run", "line": run.__code__.co_firstlineno + 3,
                       "pid": os.getpid(), "thread": threading.current_thread().name}, f)

    def run():
        time.sleep(0.5)  # (a tracer names a new thread within a few tens of ms)
        site()
        pyxfixture.segfault()

    worker = threading.Thread(target=run, name="worker-alpha")
    worker.start()
    worker.join()


def trigger(what):
    if what == "thread_segfault":
        return crash_in_thread()
    if what == "bad_return":
        return bad_returns()
    if what == "recursion_error":
        return recurse()
    if what == "oom":
        return exhaust()
    import pyxfixture

    if sys.argv[2:] == ["late"]:
        time.sleep(1.0)  # the tracer learns the new module (it would race a crash right away)
    fn = getattr(pyxfixture, what)
    # memory_error() raises a MemoryError, caught here, RAISES times; the others end the process.
    frame = sys._getframe()
    with open(os.path.join(OUT, "site.json"), "w") as f:
        json.dump({"function": frame.f_code.co_name, "line": frame.f_lineno + 4,
                   "pid": os.getpid(), "raises": RAISES}, f)
    for _ in range(RAISES if what == "memory_error" else 1):
        try:
            fn("crash_workload says goodbye") if what == "fatal" else fn()
        except MemoryError:
            pass


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
