#!/usr/bin/python3
"""Cost of `pyxtrace flow` (every call and return event streamed in order,
JSON lines to a file), side by side in one run per interpreter: untraced;
`pyxtrace calls` on the same hooks (aggregated in the kernel); `pyxtrace
flow`; and, where the interpreter has USDT function probes (Debian 3.9 and
3.15), bpftrace printing each entry and return (like BCC's uflow) to a
file. The workload is fib(N) timed from inside the target; best of ROUNDS.
Also: the events flow received and dropped, and the rate the consumer kept
up with (events over the target's own run time).

Run as root after tools/build and tests/rig/setup.
"""
import os
import shutil
import sys

import calls_cost
from calls_cost import INTERPRETERS, PYXTRACE

N = 24  # 150 049 calls, 300 098 events
ROUNDS = 3


def main():
    if not os.path.exists(PYXTRACE):
        sys.exit(f"flow_cost: {PYXTRACE} missing: tools/build")
    have_bpftrace = shutil.which("bpftrace") is not None
    print(f"{'interpreter':14} {'untraced':>9} {'calls +':>8} {'flow +':>8} {'/event':>7} "
          f"{'x calls':>8} {'bt flow +':>9} {'x bt':>6} {'events/s':>10} {'dropped':>8} "
          f"{'RSS':>7}")
    for interp in INTERPRETERS:
        label, root, python, usdt = interp
        if not os.path.exists((root or "") + python):
            print(f"{label:14} missing (tests/rig/setup)")
            continue
        modes = ["untraced", "calls", "flow"]
        modes += ["bpftrace-flow"] if usdt and have_bpftrace else []
        best = {}
        for _ in range(ROUNDS):
            for mode in modes:
                r = calls_cost.run_once(interp, mode, N)
                if mode not in best or r["ns_per_call"] < best[mode]["ns_per_call"]:
                    best[mode] = r
        base = best["untraced"]["ns_per_call"]
        calls = best["calls"]["ns_per_call"] - base
        flow = best["flow"]["ns_per_call"] - base
        end = best["flow"]["flow_end"]
        run_s = best["flow"]["ns_per_call"] * best["flow"]["calls"] / 1e9
        rate = end["events"] / run_s
        bt = best["bpftrace-flow"]["ns_per_call"] - base if "bpftrace-flow" in best else None
        print(f"{label:14} {base:9.0f} {calls:8.0f} {flow:8.0f} {flow / 2:7.0f} "
              f"{flow / calls:8.2f} {f'{bt:.0f}' if bt else '-':>9} "
              f"{f'{flow / bt:.2f}' if bt else '-':>6} {rate:10.3g} "
              f"{end['drops']['ringbuf']:8d} {best['flow']['rss_kib'] / 1024:6.1f}M")
    print("\nns per call added over untraced (a call is two events: /event is half);"
          "\nevents/s: events flow received over the target's run time (the rate it kept up "
          "with).")


if __name__ == "__main__":
    main()
