"""JSON workload for `calls --module _json`: after $PYX_OUT/go appears,
calls two of _json's builtin functions from Python (encode_basestring_ascii
and scanstring, as json.encoder/json.decoder export them) ROUNDS times from a
function of its own, while sys.setprofile counts their c_call events (the
ground truth; _json's C-to-C calls inside dumps/loads would be invisible to
it, so there are none); writes result.json and exits."""
import json
import json.decoder
import json.encoder
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
ROUNDS = 500
C_CALLS = {}


def profiler(frame, event, arg):
    if event == "c_call" and getattr(arg, "__module__", None) == "_json":
        C_CALLS[arg.__name__] = C_CALLS.get(arg.__name__, 0) + 1


def roundtrip(i):
    quoted = json.encoder.encode_basestring_ascii("x" * (i % 7))
    return json.decoder.scanstring(quoted, 1)


def main():
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    sys.setprofile(profiler)
    for i in range(ROUNDS):
        roundtrip(i)
    sys.setprofile(None)
    # Written by hand: json.dump would call _json's encoder while still traced.
    calls = ", ".join('"%s": %d' % kv for kv in sorted(C_CALLS.items()))
    with open(os.path.join(OUT, "result.json"), "w") as f:
        f.write('{"c_calls": {%s}, "rounds": %d, "file": "%s"}' % (calls, ROUNDS, __file__))


main()
