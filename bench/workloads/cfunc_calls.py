"""A C function of an extension module called in a loop: _json's
encode_basestring_ascii, CALLS times after argv[2] (go) appears, timed from
inside; prints {"seconds": ..., "calls": CALLS}; writes argv[1] (ready) first."""
import json
import os
import sys
import time
from json import encoder

CALLS = 200_000


def main():
    ready, go = sys.argv[1], sys.argv[2]
    encode = encoder.c_encode_basestring_ascii
    encode("warm")
    with open(ready, "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(go):
        time.sleep(0.005)
    t0 = time.perf_counter()
    for _ in range(CALLS):
        encode("x")
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "calls": CALLS}), flush=True)


main()
