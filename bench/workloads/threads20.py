"""20 Python threads parked at different depths, plus a 1 ms ticker thread
that logs every gap between its ticks longer than 2 ms (monotonic clock):
a tool that stops the process shows up as a long gap."""
import os
import sys
import threading
import time

OUT = sys.argv[1]


def park(depth, ev):
    if depth:
        return park(depth - 1, ev)
    ev.wait()


def ticker(log):
    last = time.monotonic()
    while True:
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > 0.002:
            log.write(f"{now:.6f} {now - last:.6f}\n")
            log.flush()
        last = now


def main():
    ev = threading.Event()
    for i in range(19):
        threading.Thread(target=park, args=(5 + i, ev), daemon=True).start()
    log = open(os.path.join(OUT, "gaps.log"), "w")
    threading.Thread(target=ticker, args=(log,), daemon=True).start()
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    ev.wait()  # the main thread is the 20th parked one


if __name__ == "__main__":
    main()
