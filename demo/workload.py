# SPDX-License-Identifier: GPL-2.0-only
"""A small, steady Python service for the README demo: a few threads doing
JSON, sorting with Python callbacks called from C, and some recursion, so
every pyxtrace command has something real to show."""
import json
import os
import sys
import threading
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def encode_orders(orders):
    return json.dumps(orders, sort_keys=True)


def rank(items):
    # sorted() is C; the key lambda is Python called back from C.
    return sorted(items, key=lambda item: (-item["qty"], item["sku"]))


def worker(stop):
    orders = [{"sku": f"A{i:04d}", "qty": (i * 7919) % 97} for i in range(200)]
    while not stop.is_set():
        rank(orders)
        encode_orders(orders)
        fib(15)
        time.sleep(0.005)


def main():
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(stop,), name=f"worker-{i}") for i in range(3)]
    for t in threads:
        t.start()
    ready = os.environ.get("PYX_DEMO_READY")
    if ready:
        with open(ready, "w") as f:
            f.write(f"{os.getpid()}\n")
    print(f"demo workload running as PID {os.getpid()} on Python {sys.version.split()[0]}",
          flush=True)
    try:
        duration = float(sys.argv[1]) if len(sys.argv) > 1 else 3600
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    stop.set()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
