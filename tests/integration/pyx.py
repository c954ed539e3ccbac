"""Running the pyxtrace binary from tests: one place for the subprocess
details (timeouts, JSON Lines parsing, BPF link inspection)."""
import json
import os
import subprocess


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json_lines(self):
        """Every JSON document of stdout (JSON Lines)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def json(self):
        docs = self.json_lines()
        assert len(docs) == 1, f"expected one JSON document, got {len(docs)}:\n{self.stdout}"
        return docs[0]

    def __repr__(self):
        return f"<rc={self.rc} stdout={self.stdout[-2000:]!r} stderr={self.stderr[-2000:]!r}>"


def start_attached(binary, *args, timeout=10):
    """Start `pyxtrace ARGS` (which must include -v) in the background and
    return it once its probes are live (the session's "attached, tracing")."""
    proc = subprocess.Popen([binary, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = ""
    while "attached, tracing" not in seen:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"pyxtrace never attached:\n{seen}")
        seen += line
    return proc


def finish(proc, timeout=120, check_rc=0):
    """Wait for a pyxtrace started by start_attached(); its Result."""
    stdout, stderr = proc.communicate(timeout=timeout)
    res = Result(subprocess.CompletedProcess([], proc.returncode, stdout, stderr))
    if check_rc is not None:
        assert res.rc == check_rc, res
    return res


def run(binary, *args, timeout=60, check_rc=None, **kwargs):
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    res = Result(proc)
    if check_rc is not None:
        assert res.rc == check_rc, f"pyxtrace {' '.join(map(str, args))}: {res!r}"
    return res


def link_ids_held(pid):
    """Ids of the BPF links process `pid` holds, from the kernel's fdinfo."""
    ids = set()
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                for line in f:
                    if line.startswith("link_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def all_link_ids():
    """Ids of every BPF link in the kernel, as bpftool lists them."""
    out = subprocess.run(["bpftool", "link", "show", "--json"], capture_output=True, text=True,
                         check=True).stdout
    return {link["id"] for link in json.loads(out or "[]")}


def links_on_process(pid):
    """uprobe links whose file is one of process `pid`'s map_files."""
    out = subprocess.run(["bpftool", "link", "show", "--json"], capture_output=True, text=True,
                         check=True).stdout
    return [link for link in json.loads(out or "[]")
            if str(link.get("file", "")).startswith(f"/proc/{pid}/")]
