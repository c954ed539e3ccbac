"""Stacks target: threads parked in known states, and the ground truth of
their Python stacks taken from inside (sys._current_frames() +
traceback.extract_stack()) at a point where no thread moves any more.

Thread states: sleeping in time.sleep, blocked on a lock, spinning in a
one-line loop, waiting on an Event inside a nested-class method, recursing
deeper than 128 frames, a running generator, a running coroutine, a lambda,
Python called back from C (sorted(key=...) and, when built, the fixture's
call()), and on 3.12+ a thread of a sub-interpreter (its own ground truth is
written from inside that interpreter).

Writes $PYX_OUT/groundtruth.json, then parks the main thread too.
Runs on 3.8-3.15: no newer syntax than 3.8 allows.
"""
import asyncio
import json
import os
import sys
import threading
import time
import traceback

try:
    import pyxfixture
except ImportError:
    pyxfixture = None

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
FOREVER = 3600
DEEP = 200

parked = []          # one Event per worker: set just before it blocks
release = threading.Event()   # never set while the test runs
lock = threading.Lock()
spinning = [True]


def park(name):
    ev = threading.Event()
    parked.append((name, ev))
    return ev


def sleeper_leaf(ev):
    ev.set()
    time.sleep(FOREVER)


def sleeper_mid(ev):
    sleeper_leaf(ev)


def sleeper(ev):
    sleeper_mid(ev)


def lock_waiter(ev):
    ev.set()
    lock.acquire()


def spinner(ev):
    ev.set()
    n = 0
    while spinning[0]: n += 1  # noqa: E701  (one line, so its line is stable)


class Outer:
    class Inner:
        def wait_here(self, ev):
            ev.set()
            release.wait()


def event_waiter(ev):
    Outer.Inner().wait_here(ev)


def recurse(depth, ev):
    if depth == 0:
        ev.set()
        release.wait()
        return
    recurse(depth - 1, ev)


def deep(ev):
    recurse(DEEP, ev)


def gen_body(ev):
    ev.set()
    release.wait()
    yield 1


def generator_runner(ev):
    for _ in gen_body(ev):
        pass


async def coro_body(ev):
    ev.set()
    release.wait()  # a running coroutine, blocked without awaiting


def coroutine_runner(ev):
    asyncio.run(coro_body(ev))


def lambda_runner(ev):
    (lambda: (ev.set(), release.wait()))()


def key_that_blocks(ev):
    def key(item):
        if item == 2:
            ev.set()
            release.wait()
        return item
    return key


def sorted_callback(ev):
    sorted([3, 2, 1], key=key_that_blocks(ev))


def fixture_callback(ev):
    def blocker():
        ev.set()
        release.wait()
    pyxfixture.call(blocker)


SUBINTERP_CODE = r'''
import json, sys, threading, time, traceback
def sub_leaf(ev):
    ev.set()
    time.sleep(3600)
def sub_main():
    ev = threading.Event()
    t = threading.Thread(target=sub_leaf, args=(ev,), name="sub-sleeper")
    t.start()
    ev.wait()
    time.sleep(0.3)
    frames = sys._current_frames()
    f = frames[t.ident]
    stack = [[fs.filename, fs.lineno, fs.name] for fs in traceback.extract_stack(f)]
    with open(OUT + "/subinterp.json.tmp", "w") as out:
        json.dump({"native_id": t.native_id, "frames": stack}, out)
    import os
    os.rename(OUT + "/subinterp.json.tmp", OUT + "/subinterp.json")
    time.sleep(3600)
sub_main()
'''


def subinterpreter_runner(ev):
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12
    try:
        interp = interpreters.create("legacy")  # 3.14+: allow threads
    except TypeError:
        interp = interpreters.create()
    code = "OUT = %r\n" % OUT + SUBINTERP_CODE
    ev.set()
    if hasattr(interpreters, "run_string"):
        interpreters.run_string(interp, code)
    else:
        interpreters.exec(interp, code)


def frame_list(frame):
    """Outermost first, as traceback shows them; plus qualnames where code has them."""
    stack = []
    f = frame
    while f is not None:
        code = f.f_code
        stack.append([code.co_filename, f.f_lineno, code.co_name,
                      getattr(code, "co_qualname", code.co_name)])
        f = f.f_back
    stack.reverse()
    # Cross-check our own walk against traceback's view of the same frames.
    tb = [[fs.filename, fs.lineno, fs.name] for fs in traceback.extract_stack(frame)]
    assert [s[:3] for s in stack] == tb, (stack, tb)
    return stack


def reporter(main_ident, workers):
    time.sleep(0.5)  # every worker has called its blocking function by now
    frames = sys._current_frames()
    truth = {"pid": os.getpid(), "threads": []}
    for t in workers + [threading.main_thread()]:
        if t.ident not in frames:
            continue
        truth["threads"].append({
            "name": t.name, "native_id": t.native_id,
            "frames": frame_list(frames[t.ident]),
        })
    tmp = os.path.join(OUT, "groundtruth.json.tmp")
    with open(tmp, "w") as f:
        json.dump(truth, f)
    os.rename(tmp, os.path.join(OUT, "groundtruth.json"))


def main():
    sys.setrecursionlimit(10000)
    lock.acquire()
    targets = [sleeper, lock_waiter, spinner, event_waiter, deep, generator_runner,
               coroutine_runner, lambda_runner, sorted_callback]
    if pyxfixture is not None:
        targets.append(fixture_callback)
    sub = sys.version_info >= (3, 12) and os.environ.get("PYX_SUBINTERP", "1") == "1"
    workers = []
    for fn in targets:
        t = threading.Thread(target=fn, args=(park(fn.__name__),), name=fn.__name__,
                             daemon=True)
        workers.append(t)
        t.start()
    if sub:
        t = threading.Thread(target=subinterpreter_runner, args=(park("subinterpreter"),),
                             name="subinterpreter", daemon=True)
        t.start()
    for name, ev in parked:
        if not ev.wait(30):
            raise SystemExit("worker %s never parked" % name)
    threading.Thread(target=reporter, args=(threading.get_ident(), workers),
                     name="reporter").start()
    release.wait()


if __name__ == "__main__":
    main()
