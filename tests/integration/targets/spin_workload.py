"""CPU-bound workload for sampled mode: after $PYX_OUT/go appears, alternates
heavy() and light() for SECONDS, spinning 3 ms and 1 ms of this thread's CPU
time; records the CPU time each took (the ground truth of their shares)
in result.json and exits."""
import json
import os
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
SECONDS = 1.5
SPENT = {"heavy": 0.0, "light": 0.0}


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def heavy():
    t = time.thread_time()
    spin(0.003)
    SPENT["heavy"] += time.thread_time() - t


def light():
    t = time.thread_time()
    spin(0.001)
    SPENT["light"] += time.thread_time() - t


def main():
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        heavy()
        light()
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump({"spent": SPENT, "file": __file__}, f)


main()
