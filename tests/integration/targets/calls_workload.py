"""Calls workload: after $PYX_OUT/go appears (at once with argument
"launch"), runs Python functions a known number of times: plain calls,
methods, closures, C->Python callbacks, recursion (one shallow, one deeper
than the tracer's per-thread depth), exceptions raised and caught (also
through C, and re-raised: bare raise, finally, with, a generator resumed in
its except block), generators and a yield-from delegation consumed to the end,
sleeps of known length, and a second thread. Each function counts its own
calls and raises (the ground truth); then some run again under
sys.setprofile, which switches 3.12+ to the instrumented opcodes, and the
profiler's 'call' events are the ground truth of that phase. Writes
result.json and exits. With argument "cprofile", runs the first phase under
cProfile instead (no tracer) and writes its call counts to cprofile.json."""
import json
import os
import sys
import threading
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


def raised(name):
    RAISED[name] = RAISED.get(name, 0) + 1


def reraiser(i):
    """Catches, calls on, then re-raises (a bare raise adds no traceback entry)."""
    count("reraiser")
    try:
        boom(i)
    except ValueError:
        leaf(i)
        raised("reraiser")
        raise


def finally_leaver(i):
    """Left by an exception that passed a finally block (RERAISE)."""
    count("finally_leaver")
    try:
        raised("finally_leaver")
        boom(i)
    finally:
        leaf(i)


class Guard:
    def __enter__(self):
        count("__enter__")
        return self

    def __exit__(self, *exc):
        count("__exit__")
        return False


def with_leaver(i):
    """Left by an exception that its with block's __exit__ let through."""
    count("with_leaver")
    with Guard():
        raised("with_leaver")
        raise KeyError(i)


def gen_reraiser(i):
    """Suspended inside its except block, re-raises when resumed."""
    count("gen_reraiser")
    try:
        boom(i)
    except ValueError:
        yield leaf(i)
        raised("gen_reraiser")
        raise


def leavers(i):
    """Frames left by re-raised exceptions; this one catches them all."""
    count("leavers")
    for fn in (reraiser, finally_leaver, with_leaver):
        try:
            fn(i)
        except (ValueError, KeyError):
            pass
    try:
        list(gen_reraiser(i))
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


class Counter:
    def __init__(self):
        count("__init__")
        self.n = 0

    def bump(self, by):
        count("bump")
        self.n += by
        return self.n


def make_adder(k):
    count("make_adder")

    def add(x):
        count("add")
        return x + k
    return add


def keyfn(x):
    count("keyfn")
    return -x


def t_leaf(x):
    count("t_leaf")
    return x * 2


def t_task(rounds):
    """The second thread's work (cProfile before 3.12 sees only its own thread)."""
    count("t_task")
    for i in range(rounds):
        t_leaf(i)


def work(rounds):
    counter = Counter()
    add = make_adder(3)
    for i in range(rounds):
        middle(10)
        fib(10)
        catcher()
        through_c()
        sum(numbers(5))
        list(relay(3))
        counter.bump(i)
        add(i)
        sorted(range(4), key=keyfn)
        list(map(leaf, range(2)))
        leavers(i)
    descend(40)
    plunge(300)
    for _ in range(4):
        sleepy()


CALLED = {}


def profiler(frame, event, arg):
    # Generator resumptions are 'call' events too: only plain functions are compared.
    if event == "call" and frame.f_code.co_filename == __file__:
        name = frame.f_code.co_name
        CALLED[name] = CALLED.get(name, 0) + 1


def run_cprofile():
    import cProfile
    import pstats
    profile = cProfile.Profile()
    profile.enable()
    work(50)
    profile.disable()
    calls = {}
    for (filename, _line, name), row in pstats.Stats(profile).stats.items():
        if filename == __file__:
            calls[name] = calls.get(name, 0) + row[1]
    with open(os.path.join(OUT, "cprofile.json"), "w") as f:
        json.dump(calls, f)


def main():
    sys.setrecursionlimit(10000)
    mode = sys.argv[1] if len(sys.argv) > 1 else "traced"
    if mode == "cprofile":
        run_cprofile()
        return
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while mode != "launch" and not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    started = time.perf_counter_ns()
    thread = threading.Thread(target=t_task, args=(300,))
    thread.start()
    work(50)
    thread.join()
    plain = dict(COUNTS)
    plain_raised = dict(RAISED)
    COUNTS.clear()
    sys.setprofile(profiler)
    for _ in range(20):
        middle(5)
        catcher()
    sys.setprofile(None)
    # One outermost fib call, timed from inside.
    t0 = time.perf_counter_ns()
    fib(18)
    fib_ns = time.perf_counter_ns() - t0
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump({"counts": plain, "raised": plain_raised, "profiled": CALLED,
                   "profiled_counts": dict(COUNTS), "file": __file__, "fib18_ns": fib_ns,
                   "wall_ns": time.perf_counter_ns() - started}, f)


main()
