"""Calls one cheap C function (the fixture's c_to_c(0)) N times from a
Python stack DEPTH frames deep, after the file GO appears, and prints the
time per call measured from inside: the benchmark's ground truth."""
import json
import os
import sys
import time
import traceback

import pyxfixture


def level(depth, n, go, ready):
    if depth > 0:
        return level(depth - 1, n, go, ready)
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(go):
        time.sleep(0.005)
    call = pyxfixture.c_to_c
    t0 = time.perf_counter_ns()
    for _ in range(n):
        call(0)
    t1 = time.perf_counter_ns()
    return {"ns_per_call": (t1 - t0) / n, "python_frames": len(traceback.extract_stack()),
            "calls": n}


if __name__ == "__main__":
    depth, n, go, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    print(json.dumps(level(depth, n, go, ready)), flush=True)
