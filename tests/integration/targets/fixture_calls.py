"""Fixture-calls target: after $PYX_OUT/go appears, calls each kind of the
fixture's C entry point a known number of times (functions, methods, a
getter and a setter, __init__, dealloc, __repr__, __len__), writes the
fixture's own counters (its ground truth) to calls.json and exits."""
import json
import os
import sys
import time

import pyxfixture

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
ROUNDS = 50


def main():
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    pyxfixture.reset_counts()
    for i in range(ROUNDS):
        pyxfixture.burn(1)
        pyxfixture.c_to_c(3)
        pyxfixture.call(len, "abc")
        try:
            pyxfixture.raise_error("x")
        except ValueError:
            pass
        t = pyxfixture.Thing(i)
        t.add(1)
        t.value = t.value + t.get()
        repr(t)
        len(t)
        del t
    counts = pyxfixture.counts()
    with open(os.path.join(OUT, "calls.json.tmp"), "w") as f:
        json.dump(counts, f)
    os.rename(os.path.join(OUT, "calls.json.tmp"), os.path.join(OUT, "calls.json"))


if __name__ == "__main__":
    main()
