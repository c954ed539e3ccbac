"""A Python workload that does ordinary work: function calls, json, regex,
small allocations, a little I/O. After argv[2] (go) appears, runs ROUNDS and
prints {"seconds": ...}; writes argv[1] (ready) first."""
import json
import os
import re
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "1000"))


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def one_round(tmp):
    fib(18)
    doc = {"k%d" % i: [i, str(i), {"x": i * 1.5}] for i in range(300)}
    text = json.dumps(doc)
    assert json.loads(text) == doc
    words = re.findall(r"k(\d+)", text)
    with open(os.path.join(tmp, "f"), "w") as f:
        f.write(" ".join(words))
    return len(words)


def main():
    ready, go = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        one_round(tmp)
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.005)
        start = time.perf_counter()
        for _ in range(ROUNDS):
            one_round(tmp)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
