"""Process discovery workload. Writes $PYX_OUT/ready, waits for $PYX_OUT/go, then:

child SCRIPT ARGS...  start a new Python process (this interpreter) running
                      SCRIPT (a target next to this one) with ARGS, write
                      child.json {"pid": its PID as this process sees it,
                      "status": its exit status, negative: killed by that
                      signal} once it ended, and exit 0.
prefork N             a pre-fork server: fork N workers (no exec) that call
                      work() until told to stop; kill worker 0 and fork a
                      replacement; then stop them all. Each worker writes
                      worker-PID.ready, waits for worker-PID.go (so a tracer
                      can attach first), calls work() CALLS times, writes
                      worker-PID.json {"pid", "calls"} and waits for SIGTERM.
                      The parent writes workers.json (every worker's PID, in
                      order, the killed one first) when all are done."""
import json
import os
import signal
import subprocess
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
CALLS = 3000


def out(name):
    return os.path.join(OUT, name)


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.005)


def write_json(name, value):
    tmp = out(name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, out(name))


def work(i):
    return i * 2


def worker():
    pid = os.getpid()
    open(out(f"worker-{pid}.ready"), "w").close()
    wait_file(out(f"worker-{pid}.go"))
    for i in range(CALLS):
        work(i)
    write_json(f"worker-{pid}.json", {"pid": pid, "calls": CALLS})
    signal.sigwait([signal.SIGTERM])
    os._exit(0)


def fork_worker():
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
        try:
            worker()
        finally:
            os._exit(1)
    return pid


def prefork(n):
    workers = [fork_worker() for _ in range(n)]
    first = workers[0]
    wait_file(out(f"worker-{first}.json"))
    os.kill(first, signal.SIGTERM)
    os.waitpid(first, 0)
    workers.append(fork_worker())
    for pid in workers[1:]:
        wait_file(out(f"worker-{pid}.json"))
    for pid in workers[1:]:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    write_json("workers.json", workers)


def child(script, args):
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, os.path.join(here, script), *args])
    write_json("child-started.json", {"pid": proc.pid})
    status = proc.wait()
    write_json("child.json", {"pid": proc.pid, "status": status})


def main():
    with open(out("ready"), "w") as f:
        f.write(str(os.getpid()))
    wait_file(out("go"))
    if sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "prefork":
        prefork(int(sys.argv[2]))


if __name__ == "__main__":
    main()
