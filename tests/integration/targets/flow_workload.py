"""Flow workload: after $PYX_OUT/go appears, runs a three-level callback
(Python -> C -> Python -> C -> Python -> C: outer() calls the fixture's
call(middle), middle() calls call(inner), inner() calls burn()) twice: first
plainly (the run pyxtrace's flow is checked on), then under sys.setprofile,
which records the order of call/return and c_call/c_return events itself
(the ground truth: the same deterministic code); then `burst` calls of
tiny() (the ring-buffer burst test, count in argv[1]) and exits.
Writes what it recorded to result.json."""
import json
import os
import sys
import time

import pyxfixture

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
ROUNDS = 3
NAMES = {"sequence", "outer", "middle", "inner", "call", "burn"}

recorded = []


def profiler(frame, event, arg):
    if event in ("call", "return"):
        name = frame.f_code.co_name
    elif event in ("c_call", "c_return", "c_exception"):
        name = getattr(arg, "__name__", "?")
        if getattr(arg, "__self__", None) is not pyxfixture:
            return
        event = "c_return" if event == "c_exception" else event
    else:
        return
    if name in NAMES:
        recorded.append([event, name])


def inner():
    pyxfixture.burn(5)
    return 1


def middle():
    return pyxfixture.call(inner) + 1


def outer():
    return pyxfixture.call(middle) + 1


def sequence():
    total = 0
    for _ in range(ROUNDS):
        total += outer()
    return total


def tiny():
    pass


def burst(n):
    for _ in range(n):
        tiny()


def main():
    burst_calls = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    plain = sequence()
    sys.setprofile(profiler)
    profiled = sequence()
    sys.setprofile(None)
    burst(burst_calls)
    result = {"file": os.path.abspath(__file__), "plain": plain, "profiled": profiled,
              "recorded": recorded, "burst": burst_calls}
    with open(os.path.join(OUT, "result.json.tmp"), "w") as f:
        json.dump(result, f)
    os.rename(os.path.join(OUT, "result.json.tmp"), os.path.join(OUT, "result.json"))


if __name__ == "__main__":
    main()
