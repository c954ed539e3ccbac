"""JSON workload for `calls --module _json`: after $PYX_OUT/go appears,
calls two of _json's builtin functions from Python (encode_basestring_ascii
and scanstring, as json.encoder/json.decoder export them) ROUNDS times from a
function of its own, while sys.setprofile counts their c_call events (the
ground truth; _json's C-to-C calls inside dumps/loads would be invisible to
it, so there are none); writes result.json and exits.

With "late": json (and so _json) is imported only after go; then the
workload writes imported and waits for go2 (a tracer discovering the new
module attaches meanwhile) before the calls."""
import os
import sys
import time

if sys.argv[1:] != ["late"]:
    import json.decoder as decoder
    import json.encoder as encoder

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
ROUNDS = 500
C_CALLS = {}


def profiler(frame, event, arg):
    if event == "c_call" and getattr(arg, "__module__", None) == "_json":
        C_CALLS[arg.__name__] = C_CALLS.get(arg.__name__, 0) + 1


def roundtrip(i):
    quoted = encoder.encode_basestring_ascii("x" * (i % 7))
    return decoder.scanstring(quoted, 1)


def wait_file(name):
    while not os.path.exists(os.path.join(OUT, name)):
        time.sleep(0.005)


def main():
    global decoder, encoder
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    wait_file("go")
    if sys.argv[1:] == ["late"]:
        import json.decoder as decoder  # maps _json now
        import json.encoder as encoder

        with open(os.path.join(OUT, "imported"), "w") as f:
            f.write(str(os.getpid()))
        wait_file("go2")
    sys.setprofile(profiler)
    for i in range(ROUNDS):
        roundtrip(i)
    sys.setprofile(None)
    # Written by hand: json.dump would call _json's encoder while still traced.
    calls = ", ".join('"%s": %d' % kv for kv in sorted(C_CALLS.items()))
    with open(os.path.join(OUT, "result.json"), "w") as f:
        f.write('{"c_calls": {%s}, "rounds": %d, "file": "%s"}' % (calls, ROUNDS, __file__))


main()
