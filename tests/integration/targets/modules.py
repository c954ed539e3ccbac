"""Modules target: imports extension modules nobody here wrote and writes,
from inside, what they expose (dir() of the modules and of their types), the
ground truth for entry-point discovery; then waits."""
import json
import os
import sys
import time

OUT = os.environ.get("PYX_OUT") or "/pyx/out"


def builtins_of(obj):
    """Names of the C functions/methods an object exposes (what discovery must
    find): a module's, or a type's own (not those inherited from object)."""
    out = []
    for name in (list(vars(obj)) if isinstance(obj, type) else dir(obj)):
        try:
            value = getattr(obj, name)
        except Exception:
            continue
        kind = type(value).__name__
        if kind in ("builtin_function_or_method", "method_descriptor"):
            out.append(name)
    return sorted(out)


def main():
    truth = {}
    wanted = sys.argv[1:]
    if "json" in wanted:
        import _json
        truth["_json"] = {"functions": builtins_of(_json),
                          "builtin": "_json" in sys.builtin_module_names}
    if "pyxfixture" in wanted:
        import pyxfixture
        truth["pyxfixture"] = {"functions": builtins_of(pyxfixture),
                               "types": {"Thing": builtins_of(pyxfixture.Thing)}}
    if "pil" in wanted:
        from PIL import Image
        import PIL._imaging as imaging
        im = Image.new("RGB", (8, 8))
        truth["PIL._imaging"] = {"functions": builtins_of(imaging),
                                 "types": {type(im.im).__name__: builtins_of(type(im.im))}}
    if "numpy" in wanted:
        import numpy
        try:
            import numpy._core._multiarray_umath as mu
            name = "numpy._core._multiarray_umath"
        except ImportError:
            import numpy.core._multiarray_umath as mu
            name = "numpy.core._multiarray_umath"
        truth[name] = {"functions": builtins_of(mu)}
    with open(os.path.join(OUT, "modules.json.tmp"), "w") as f:
        json.dump(truth, f)
    os.rename(os.path.join(OUT, "modules.json.tmp"), os.path.join(OUT, "modules.json"))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
