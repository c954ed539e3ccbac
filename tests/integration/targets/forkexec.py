"""A Python that forks a child which runs execve later. Writes $PYX_OUT/ready,
forks; the child writes forked (its PID), waits for $PYX_OUT/exec, then runs
execve of this interpreter on SCRIPT (a target next to this one) with ARGS.
The parent writes child (PID and exit status, negative: killed by that
signal) once it ended, and exits 0. No json here: neither image of the
child has _json mapped before SCRIPT imports it."""
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"


def write(name, text):
    with open(os.path.join(OUT, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(OUT, name + ".tmp"), os.path.join(OUT, name))


def main():
    script, args = sys.argv[1], sys.argv[2:]
    here = os.path.dirname(os.path.abspath(__file__))
    write("ready", str(os.getpid()))
    pid = os.fork()
    if pid == 0:
        try:
            write("forked", str(os.getpid()))
            while not os.path.exists(os.path.join(OUT, "exec")):
                time.sleep(0.002)
            os.execv(sys.executable, [sys.executable, os.path.join(here, script), *args])
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    write("child", "%d %d" % (pid, code))


if __name__ == "__main__":
    main()
