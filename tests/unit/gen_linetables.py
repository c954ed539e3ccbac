#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""
Ground truth for pyx_line_for_offset (user/python/code.c), produced by the
interpreter that owns the format. Run under one interpreter (3.8 to 3.15);
writes one data file (tests/unit/data/linetables-<name>.txt) to stdout.

Every code object of the standard library (compiled from source, walked
recursively through co_consts) plus a synthetic module of edge cases is a
candidate; all candidates showing a table feature not seen yet are kept,
the rest are sampled (deterministically) up to a byte budget.

For each kept code object the expected line of every code unit is what a
traceback would show: PyCode_Addr2Line() called through ctypes, the very
function frame.f_lineno and tb_lineno use. It is cross-checked against the
Python-level views (co_positions() on 3.11+, co_lines() on 3.10+,
dis.findlinestarts() before) and, by running code, against f_lineno under
sys.settrace and tb_lineno of real exceptions; disagreements are printed
to stderr and counted in the header.

Data format (text, one record a line):
  # comment
  version X.Y.Z             the interpreter
  format lnotab|linetable310|locations
  code NAME FIRSTLINENO NUNITS TABLE RUNS
TABLE is the raw co_lnotab/co_linetable in base64 ('-' when empty); RUNS
gives the expected line of code units 0..NUNITS-1 (byte offset 2*i)
(comma-separated LINE or LINE*COUNT; 0 means "no line").
"""
import argparse
import base64
import ctypes
import dis
import os
import random
import sys
import sysconfig
import traceback
import warnings

V = sys.version_info[:2]
if V < (3, 10):
    FORMAT = 'lnotab'
elif V == (3, 10):
    FORMAT = 'linetable310'
else:
    FORMAT = 'locations'

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int

disagreements = {}


def disagree(kind, co, detail):
    n = disagreements.get(kind, 0)
    disagreements[kind] = n + 1
    if n < 5:
        print('gen_linetables: %s disagrees for %s (%s:%d): %s' %
              (kind, co.co_name, co.co_filename, co.co_firstlineno, detail),
              file=sys.stderr)


def raw_table(co):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if FORMAT == 'lnotab':
            return co.co_lnotab
        return co.co_linetable


def norm(line):
    """The C side's convention: a line > 0, or 0 for "no line"."""
    return line if line is not None and line > 0 else 0


def truth(co):
    """Expected line per code unit, as the traceback machinery computes it."""
    nunits = len(co.co_code) // 2
    lines = [norm(addr2line(co, 2 * i)) for i in range(nunits)]

    if V >= (3, 11):
        pos = [norm(p[0]) for p in co.co_positions()]
        if pos != lines:
            i = next(i for i in range(nunits) if pos[i] != lines[i])
            disagree('co_positions', co, 'unit %d: %d vs Addr2Line %d' % (i, pos[i], lines[i]))
    if V >= (3, 10):
        view = [None] * nunits
        for start, end, line in co.co_lines():
            for b in range(start, end, 2):
                view[b // 2] = norm(line)
        view = [0 if x is None else x for x in view]
        if view != lines:
            i = next(i for i in range(nunits) if view[i] != lines[i])
            disagree('co_lines', co, 'unit %d: %d vs Addr2Line %d' % (i, view[i], lines[i]))
    else:
        starts = list(dis.findlinestarts(co))
        view = []
        cur = co.co_firstlineno
        k = 0
        for i in range(nunits):
            while k < len(starts) and starts[k][0] <= 2 * i:
                cur = starts[k][1]
                k += 1
            view.append(cur)
        if view != lines:
            i = next(i for i in range(nunits) if view[i] != lines[i])
            disagree('findlinestarts', co, 'unit %d: %d vs Addr2Line %d' % (i, view[i], lines[i]))
    return lines


def features(table):
    """Table traits worth covering, decoded here only to tag, never to judge."""
    f = set()
    if FORMAT in ('lnotab', 'linetable310'):
        for i in range(0, len(table) - 1, 2):
            a, l = table[i], table[i + 1]
            l = l - 256 if l > 127 else l
            f.add('a0' if a == 0 else 'a%s' % ('big' if a >= 254 else 'odd' if a & 1 else 'n'))
            if l == -128:
                f.add('l-128')
            elif l == 127 or l == -127:
                f.add('l127')
            elif l < 0:
                f.add('lneg')
            f.add('l0' if l == 0 else 'l')
            if a == 0 and l != 0:
                f.add('a0l')
        return f
    i = 0
    while i < len(table):
        b = table[i]
        code = (b >> 3) & 15
        f.add('code%d' % code)
        f.add('len%d' % ((b & 7) + 1))
        i += 1
        while i < len(table) and not table[i] & 0x80:
            if table[i] & 0x40:
                f.add('varint-cont')
            i += 1
    return f


def walk(co, out):
    out.append(co)
    for c in co.co_consts:
        if hasattr(c, 'co_code'):
            walk(c, out)


# Shapes a stdlib may lack: huge line jumps both ways, long lines (wide
# columns, more than 255 bytes of code on one line), statements spanning
# many lines, a function far down a file, no-location instructions.
def synthetic_source():
    s = []
    s.append('def jumps(a):\n    x = a\n' + '\n' * 300 + '    y = x + 1\n' +
             '\n' * 70000 + '    z = y + 2\n' + '\n' * 130 + '    return z\n')
    s.append('def wide(a):\n    return ' + ' + '.join('a[%d]' % i for i in range(400)) + '\n')
    s.append('def indented(a):\n    v = (' + ' ' * 5000 + 'a + 1)\n    return v\n')
    s.append('def spanning(a):\n    return f(\n' +
             ''.join('        a%d,\n' % (i % 7) for i in range(1500)) + '    )\n')
    s.append('def backwards(n):\n    t = 0\n    for i in range(n):\n'
             '        for j in range(i):\n            t += (i *\n'
             '                  j)\n    while t > 5:\n        t -= 3\n    return t\n')
    s.append('def handlers(x):\n    try:\n        with open(x) as f:\n            return f.read()\n'
             '    except OSError as e:\n        raise ValueError(x) from e\n'
             '    finally:\n        x = None\n')
    s.append('async def coro(x):\n    async with x as y:\n        async for z in y:\n'
             '            await z\n    return [i async for i in x]\n')
    s.append('def gen(x):\n    yield from x\n    yield [lambda: (yield) for _ in x]\n')
    s.append('class K:\n    def m(self):\n        return {k: v for k, v in self}\n')
    s.append('\n' * 99000 + 'def far(a):\n    return (a,\n        a)\n')
    return ''.join(s)


def stdlib_files():
    root = sysconfig.get_paths()['stdlib']
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in ('site-packages', 'dist-packages', '__pycache__'))
        for name in sorted(filenames):
            if name.endswith('.py'):
                yield root, os.path.join(dirpath, name)


def candidates():
    out = []
    walk(compile(synthetic_source(), '<synthetic>', 'exec'), out)
    nsyn = len(out)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for root, path in stdlib_files():
            try:
                with open(path, 'rb') as f:
                    src = f.read()
                walk(compile(src, os.path.relpath(path, root), 'exec'), out)
            except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
                pass
    return out, nsyn


def runs(lines):
    out = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j] == lines[i]:
            j += 1
        out.append(str(lines[i]) if j - i == 1 else '%d*%d' % (lines[i], j - i))
        i = j
    return ','.join(out)


# ---- running code: f_lineno under tracing and tb_lineno must agree ----

selfchecked = {'trace': 0, 'traceback': 0}


def table_view(co):
    """
    Lines from the table alone. Code that ran under sys.settrace is
    instrumented on 3.12+, and PyCode_Addr2Line then answers from the
    instrumentation data, which has no line for CACHE units: right where
    instructions start (all a frame can point to) but not a table oracle.
    """
    if V >= (3, 11):
        return [norm(p[0]) for p in co.co_positions()]
    return [norm(addr2line(co, 2 * i)) for i in range(len(co.co_code) // 2)]


def expected_at(co, byte_offset, cache={}):
    if byte_offset < 0:
        return co.co_firstlineno
    lines = cache.get(co)
    if lines is None:
        lines = cache[co] = table_view(co)
    i = byte_offset // 2
    return lines[i] if i < len(lines) else None


def tracer(frame, event, arg):
    co = frame.f_code
    if co.co_filename.startswith('<') or co is tracer.__code__:
        return tracer
    # Before 3.10 tracing keeps f_lineno itself, updated only at 'line'
    # events: a jump into the middle of a line (say, to the implicit
    # "return None" of the last line) leaves it stale at 'return' events,
    # where PyCode_Addr2Line (what an untraced frame and its traceback use)
    # is right. Only 'line' events are a fair comparison there.
    if event == 'call' or (V < (3, 10) and event != 'line'):
        return tracer
    want = expected_at(co, frame.f_lasti)
    selfchecked['trace'] += 1
    if want is not None and want != norm(frame.f_lineno):
        disagree('f_lineno(%s)' % event, co, 'lasti %d: f_lineno %s, table %s' %
                 (frame.f_lasti, frame.f_lineno, want))
    return tracer


def workload():
    import json, textwrap, difflib, ast, pprint, fractions, string, shlex, csv, io
    d = {'a': [1, 2.5, None, {'b': 'c' * 50}], 'x': list(range(30))}
    json.loads(json.dumps(d, indent=2, sort_keys=True))
    textwrap.fill('lorem ipsum dolor sit amet ' * 20, width=37)
    list(difflib.unified_diff(['a\n', 'b\n', 'c\n'] * 5, ['a\n', 'x\n', 'c\n'] * 5))
    ast.dump(ast.parse('def f(x):\n    return [y for y in x if y]\n'))
    pprint.pformat(d, width=20)
    sum(fractions.Fraction(i, i + 1) for i in range(1, 40))
    string.Template('$a and ${b}').safe_substitute(a=1)
    shlex.split('a "b c" d\\ e')
    list(csv.reader(io.StringIO('a,b\n"c,d",e\n')))


def raise_everywhere():
    """Exceptions raised from many places: tb_lineno at tb_lasti is the truth."""
    import json, fractions, ipaddress, shlex, base64, textwrap
    cases = [lambda: json.loads('{"a": [1, 2,'), lambda: fractions.Fraction('x/y'),
             lambda: ipaddress.ip_address('1.2.3.999'), lambda: shlex.split('"open'),
             lambda: base64.b32decode('!!'), lambda: textwrap.fill(None),
             lambda: json.dumps({1j: 1}), lambda: fractions.Fraction(1, 0)]
    for case in cases:
        try:
            case()
        except Exception as e:
            tb = e.__traceback__
            while tb is not None:
                co = tb.tb_frame.f_code
                if not co.co_filename.startswith('<'):
                    want = expected_at(co, tb.tb_lasti)
                    selfchecked['traceback'] += 1
                    if want is not None and want != norm(tb.tb_lineno):
                        disagree('tb_lineno', co, 'lasti %d: tb_lineno %s, table %s' %
                                 (tb.tb_lasti, tb.tb_lineno, want))
                tb = tb.tb_next


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--name', required=True, help='interpreter name for the header')
    ap.add_argument('--budget', type=int, default=220000, help='bytes of records to aim for')
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    sys.setrecursionlimit(10000)

    sys.settrace(tracer)
    try:
        workload()
    finally:
        sys.settrace(None)
    raise_everywhere()

    cands, nsyn = candidates()
    seen = set()
    keep = []
    rest = []
    for i, co in enumerate(cands):
        f = features(raw_table(co)) - seen
        if i < nsyn or f:
            seen |= f
            keep.append(co)
        else:
            rest.append(co)
    random.Random(args.seed).shuffle(rest)

    records = []
    size = 0
    units = 0
    for co in keep + rest:
        lines = truth(co)
        name = ''.join(ch if ch.isalnum() or ch in '<>_.-' else '_' for ch in co.co_name)
        rec = 'code %s %d %d %s %s\n' % (name or '_', co.co_firstlineno, len(lines),
                                          base64.b64encode(raw_table(co)).decode() or '-', runs(lines))
        if len(records) >= len(keep) and size + len(rec) > args.budget:
            continue
        records.append(rec)
        size += len(rec)
        units += len(lines)

    out = sys.stdout
    out.write('# pyxtrace line-table ground truth, generated by tests/unit/gen_linetables.py\n')
    out.write('# (tools/regen-linetables); do not edit.\n')
    out.write('# interpreter %s: %s\n' % (args.name, sys.version.replace('\n', ' ')))
    out.write('# %d of %d code objects (%d synthetic, %d kept for features), %d code units\n' %
              (len(records), len(cands), nsyn, len(keep), units))
    out.write('# features: %s\n' % ' '.join(sorted(seen)))
    out.write('# self-check: %d trace events, %d traceback entries; disagreements: %s\n' %
              (selfchecked['trace'], selfchecked['traceback'],
               ', '.join('%s %d' % kv for kv in sorted(disagreements.items())) or 'none'))
    out.write('version %d.%d.%d\n' % sys.version_info[:3])
    out.write('format %s\n' % FORMAT)
    out.writelines(records)


if __name__ == '__main__':
    main()
