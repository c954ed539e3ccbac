#!/usr/bin/python3
"""What `pyxtrace calls` with its default overhead budget (--max-overhead 5)
costs a target that spins on Python calls — the worst case for exact hooks,
where they cost ~70x the untraced call — side by side with the untraced run,
per interpreter: fib(N) timed from inside the target, best of ROUNDS; the
budget's own view (the overhead of its windows, the fraction of the time the
hooks were on). bench/calls_cost.py gives the cost with the hooks always on.

Run as root after tools/build and tests/rig/setup.
"""
import os
import sys

import calls_cost
from calls_cost import INTERPRETERS, PYXTRACE

N = 35  # 29 860 703 calls: ~0.6-0.9 s untraced
ROUNDS = 3


def main():
    if not os.path.exists(PYXTRACE):
        sys.exit(f"budget_cost: {PYXTRACE} missing: tools/build")
    print(f"{'interpreter':14} {'untraced s':>10} {'budget s':>9} {'added %':>8} "
          f"{'window %':>9} {'hooks on':>9}")
    for interp in INTERPRETERS:
        label, root, python, _ = interp
        if not os.path.exists((root or "") + python):
            print(f"{label:14} missing (tests/rig/setup)")
            continue
        best = {}
        for _ in range(ROUNDS):
            for mode in ("untraced", "calls-budget"):
                r = calls_cost.run_once(interp, mode, N)
                if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                    best[mode] = r
        base = best["untraced"]["ns_per_call"] * best["untraced"]["calls"] / 1e9
        budget = best["calls-budget"]["ns_per_call"] * best["calls-budget"]["calls"] / 1e9
        over = best["calls-budget"]["overhead"]
        print(f"{label:14} {base:10.2f} {budget:9.2f} {100 * (budget - base) / base:8.1f} "
              f"{over['max_window_pct']:9.0f} {100 * over['traced_fraction']:8.1f}%")
    print("\nadded %: the target's wall time under `calls` (default budget 5 %) over untraced;"
          "\nwindow %: what the hooks cost while on (of the target's CPU time); hooks on: of "
          "the run.")


if __name__ == "__main__":
    main()
