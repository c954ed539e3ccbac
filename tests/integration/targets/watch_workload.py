"""Watch workload: after $PYX_OUT/go appears, calls the fixture's entry
points a known number of times, with known errors and bad returns, and a
200-deep C<->Python recursion and sleeps of known length; writes the
fixture's own counters, what it caused (errors, bad returns), the Python
callers of each fixture function as sys.setprofile saw them (c_call events:
function, line) and the ids of burn()'s arguments to result.json, then exits."""
import json
import os
import sys
import time

import pyxfixture

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
ROUNDS = 20
DEPTH = 200


callers = {}


def profiler(frame, event, arg):
    """c_call of a fixture function: count it under its calling frame."""
    if event == "c_call" and getattr(arg, "__self__", None) is pyxfixture:
        count_site("pyxfixture." + arg.__name__, site(frame))


def site(frame):
    return "%s:%s:%d" % (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name,
                         frame.f_lineno)


def count_site(key, where):
    callers.setdefault(key, {})
    callers[key][where] = callers[key].get(where, 0) + 1


def deep(depth):
    # The recursion runs unprofiled (a profiler's frames exhaust 3.13d's C stack limit):
    # each level records its own calling line.
    if depth:
        count_site("pyxfixture.recurse", site(sys._getframe())); return pyxfixture.recurse(depth, deep)  # noqa: E702
    return 0


def main():
    sys.setrecursionlimit(10000)
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    pyxfixture.reset_counts()
    caught = {"ValueError": 0, "SystemError": 0, "TypeError": 0}
    # Debug interpreters abort on a bad return (_Py_CheckFunctionResult): only release ones try.
    debug = hasattr(sys, "gettotalrefcount")
    faulty = [pyxfixture.raise_error]
    if not debug:
        faulty += [pyxfixture.null_without_error, pyxfixture.value_with_error]
    sys.setprofile(profiler)
    for i in range(ROUNDS):
        pyxfixture.burn(100)
        for fn in faulty:
            try:
                fn("x") if fn is pyxfixture.raise_error else fn()
            except (ValueError, SystemError) as e:
                caught[type(e).__name__] += 1
        t = pyxfixture.Thing(i)
        try:
            t.value = "not an int"
        except TypeError:
            caught["TypeError"] += 1
        del t
    sys.setprofile(None)
    count_site("pyxfixture.recurse", site(sys._getframe())); pyxfixture.recurse(DEPTH, deep)  # noqa: E702
    # Known latencies for the histogram: 18 short sleeps, 2 long ones, each timed from here.
    slept = []
    for usec in [200] * 18 + [20000] * 2:
        start = time.perf_counter_ns()
        pyxfixture.sleep(usec)
        slept.append(time.perf_counter_ns() - start)
    with open(os.path.join(OUT, "result.json.tmp"), "w") as f:
        json.dump({"counts": pyxfixture.counts(), "caught": caught, "depth": DEPTH,
                   "debug": debug, "slept_ns": slept, "callers": callers,
                   "ids": {"module": id(pyxfixture), "usec": id(100), "none": id(None)}}, f)
    os.rename(os.path.join(OUT, "result.json.tmp"), os.path.join(OUT, "result.json"))


if __name__ == "__main__":
    main()
