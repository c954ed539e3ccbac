"""Churn target: threads start and end, stacks grow and shrink, for N
seconds; then it checks its own result (a stack walker must not disturb it)
and exits 0."""
import json
import os
import sys
import threading
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def worker(results, i):
    results[i] = fib(18)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + seconds
    ok = True
    rounds = 0
    while time.monotonic() < deadline:
        results = [None] * 8
        threads = [threading.Thread(target=worker, args=(results, i)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok &= results == [2584] * 8
        rounds += 1
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump({"ok": ok, "rounds": rounds}, f)


if __name__ == "__main__":
    main()
