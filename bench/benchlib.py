"""Helpers shared by the bench/ scripts."""


def wait_line(stream, needle):
    """Read @stream until a line containing @needle (e.g. pyxtrace -v's "attached, tracing")."""
    seen = ""
    while needle not in seen:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"never saw {needle!r}: {seen}")
        seen += line


def peak_rss_kib(pid):
    """VmHWM of a running process; None once it exited (a zombie has no memory lines)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), None)
    except FileNotFoundError:
        return None
