"""Native target: threads parked inside C code, for mixed C/Python stacks.

- "callbacks": Python -> pyxfixture.call (C) -> Python -> pyxfixture.call (C)
  -> Python, blocked on an Event: the three levels of the fixture calling
  back into Python inside C inside Python.
- "sleeper": time.sleep (the clock_nanosleep wrapper in libc).
- "locked": blocked acquiring a lock (futex).
- "selector": select.select on a pipe nobody writes.
- "spinner": running Python code on a CPU (calling math.sqrt from a loop).
Writes $PYX_OUT/ready with the native thread ids, then parks.
"""
import json
import math
import os
import select
import sys
import threading
import time

import pyxfixture

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
release = threading.Event()
lock = threading.Lock()
parked = {}


def level3(ev):
    ev.set()
    release.wait()


def level2(ev):
    return pyxfixture.call(level3, ev)


def level1(ev):
    return pyxfixture.call(level2, ev)


def callbacks(ev):
    level1(ev)


def sleeper(ev):
    ev.set()
    time.sleep(3600)


def locked(ev):
    ev.set()
    lock.acquire()


def selector(ev):
    r, w = os.pipe()
    ev.set()
    select.select([r], [], [])


def spin_leaf(ev):
    ev.set()
    x = 0.0
    while True:
        x = math.sqrt(x + 1.0)


def spinner(ev):
    spin_leaf(ev)


def main():
    lock.acquire()
    threads = {}
    for fn in (callbacks, sleeper, locked, selector, spinner):
        ev = threading.Event()
        t = threading.Thread(target=fn, args=(ev,), name=fn.__name__, daemon=True)
        t.start()
        ev.wait(30)
        threads[fn.__name__] = t
    time.sleep(0.3)  # each is inside its blocking call now
    info = {name: t.native_id for name, t in threads.items()}
    info["pid"] = os.getpid()
    with open(os.path.join(OUT, "ready.tmp"), "w") as f:
        json.dump(info, f)
    os.rename(os.path.join(OUT, "ready.tmp"), os.path.join(OUT, "ready"))
    release.wait()


if __name__ == "__main__":
    main()
