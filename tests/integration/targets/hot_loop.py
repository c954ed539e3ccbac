"""A hot loop for the JIT (PYTHON_JIT=1 on 3.13+ builds that have one): after
$PYX_OUT/go appears, 200 000 calls of g (which calls f), counted by the
workload itself; writes result.json and exits."""
import json
import os
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
CALLS = 200_000


def f(x):
    return x + 1


def g(x):
    return f(x) * 2


def main():
    with open(os.path.join(OUT, "ready"), "w") as out:
        out.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    total = 0
    for i in range(CALLS):
        total += g(i)
    with open(os.path.join(OUT, "result.json"), "w") as out:
        json.dump({"calls": CALLS, "total": total, "file": __file__}, out)


main()
