"""Calls workload: after $PYX_OUT/go appears, runs Python functions a known
number of times: plain calls, recursion (one shallow, one deeper than the
tracer's per-thread depth), exceptions raised and caught (also through C),
generators and a yield-from delegation consumed to the end, and sleeps of
known length. Each function counts its own calls and raises (the ground
truth); then the same functions run again under sys.setprofile, which
switches 3.12+ to the instrumented opcodes, and the profiler's 'call'
events are the ground truth of that phase. Writes result.json and exits."""
import json
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
COUNTS = {}
RAISED = {}


def count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


def leaf(x):
    count("leaf")
    return x + 1


def middle(n):
    count("middle")
    total = 0
    for i in range(n):
        total += leaf(i)
    return total


def fib(n):
    count("fib")
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def descend(depth):
    count("descend")
    return descend(depth - 1) + 1 if depth else 0


def plunge(depth):
    count("plunge")
    return plunge(depth - 1) + 1 if depth else 0


def boom(i):
    count("boom")
    RAISED["boom"] = RAISED.get("boom", 0) + 1
    raise ValueError(i)


def catcher():
    count("catcher")
    try:
        boom(1)
    except ValueError:
        pass


def key_boom(x):
    count("key_boom")
    RAISED["key_boom"] = RAISED.get("key_boom", 0) + 1
    raise KeyError(x)


def through_c():
    """An exception raised in Python, passed through C (sorted) to Python."""
    count("through_c")
    try:
        sorted([3, 1, 2], key=key_boom)
    except KeyError:
        pass


def numbers(n):
    count("numbers")
    for i in range(n):
        yield leaf(i)


def relay(n):
    count("relay")
    yield from numbers(n)
    yield -1


def napper():
    count("napper")
    time.sleep(0.002)


def sleepy():
    count("sleepy")
    for _ in range(3):
        napper()


def work(rounds):
    for _ in range(rounds):
        middle(10)
        fib(10)
        catcher()
        through_c()
        sum(numbers(5))
        list(relay(3))
    descend(40)
    plunge(150)
    for _ in range(4):
        sleepy()


CALLED = {}


def profiler(frame, event, arg):
    # Generator resumptions are 'call' events too: only plain functions are compared.
    if event == "call" and frame.f_code.co_filename == __file__:
        name = frame.f_code.co_name
        CALLED[name] = CALLED.get(name, 0) + 1


def main():
    sys.setrecursionlimit(10000)
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    work(50)
    plain = dict(COUNTS)
    plain_raised = dict(RAISED)
    COUNTS.clear()
    sys.setprofile(profiler)
    for _ in range(20):
        middle(5)
        catcher()
    sys.setprofile(None)
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump({"counts": plain, "raised": plain_raised, "profiled": CALLED,
                   "profiled_counts": dict(COUNTS), "file": __file__}, f)


main()
