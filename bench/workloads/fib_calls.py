"""fib(N) once after the file GO appears: 2*fib(N+1)-1 Python calls, timed
from inside; prints the time per call (the benchmark's ground truth)."""
import json
import os
import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    n, go, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    fib(15)  # quickened before timing (3.11+ warms code up)
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(go):
        time.sleep(0.005)
    t0 = time.perf_counter_ns()
    fib(n)
    t1 = time.perf_counter_ns()
    # 2*fib(n+1)-1, computed without calls (a tracer is still counting).
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    calls = 2 * a - 1 if n > 1 else 1
    print(json.dumps({"ns_per_call": (t1 - t0) / calls, "calls": calls}), flush=True)


main()
