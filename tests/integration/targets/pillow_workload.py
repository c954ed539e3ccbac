"""Pillow workload: after $PYX_OUT/go appears, new, resize, filter, getpixel
and save, under sys.setprofile counting the C functions called from Python
(c_call events) and their calling frames: the ground truth for `watch
--module _imaging` counts and callers of entry points called from bytecode."""
import io
import json
import os
import sys
import time

from PIL import Image, ImageFilter

OUT = os.environ.get("PYX_OUT") or "/pyx/out"
calls = {}
callers = {}  # key -> {"file:function:line": count}


def profiler(frame, event, arg):
    if event != "c_call":
        return
    owner = getattr(arg, "__self__", None)
    if getattr(owner, "__name__", None) == "PIL._imaging":
        key = "PIL._imaging." + arg.__name__  # a module function
    elif type(owner).__name__.startswith("Imaging") and type(owner).__module__ == "builtins":
        key = type(owner).__name__ + "." + arg.__name__  # a method of one of _imaging's types
    else:
        return
    calls[key] = calls.get(key, 0) + 1
    site = "%s:%s:%d" % (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name,
                         frame.f_lineno)
    callers.setdefault(key, {})
    callers[key][site] = callers[key].get(site, 0) + 1


def work():
    for i in range(20):
        im = Image.new("RGB", (64 + i, 48), (i, 2 * i, 3 * i))
        small = im.resize((32, 24))
        blurred = small.filter(ImageFilter.BLUR)
        for x in range(8):
            blurred.getpixel((x, x))
        buf = io.BytesIO()
        blurred.save(buf, format="PNG")


def main():
    work()  # warm up: imports, plugin registration
    with open(os.path.join(OUT, "ready"), "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(os.path.join(OUT, "go")):
        time.sleep(0.005)
    sys.setprofile(profiler)
    work()
    sys.setprofile(None)
    with open(os.path.join(OUT, "result.json.tmp"), "w") as f:
        json.dump({"calls": calls, "callers": callers}, f)
    os.rename(os.path.join(OUT, "result.json.tmp"), os.path.join(OUT, "result.json"))


if __name__ == "__main__":
    main()
