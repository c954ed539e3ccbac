"""Budget workload: after $PYX_OUT/go appears, either spins on Python calls
for 1.5 s ("heavy": fib, thousands of calls per millisecond) or calls one
function 40 times with sleeps between ("light"); counts its own calls and
writes them to result.json, then exits."""
import json
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
calls = {"fib": 0, "tick": 0}


def fib(n):
    calls["fib"] += 1
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def tick():
    calls["tick"] += 1


def main():
    mode = sys.argv[1]
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    if mode == "heavy":
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            fib(12)
    else:
        for _ in range(40):
            tick()
            time.sleep(0.02)
    with open(os.path.join(OUT, "result.json.tmp"), "w") as f:
        json.dump({"file": os.path.abspath(__file__), "calls": calls}, f)
    os.rename(os.path.join(OUT, "result.json.tmp"), os.path.join(OUT, "result.json"))


if __name__ == "__main__":
    main()
