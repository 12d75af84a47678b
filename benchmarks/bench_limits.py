"""Long windows: wall time against the time limit and peak memory (issue 13 item 13).

Each case solves :func:`benchmarks.instances.long_window` in a fresh process and
reports its wall time, the time limit it was given and the process's peak RSS
(``ru_maxrss``: HiGHS's memory included).  Run::

    python -m benchmarks.bench_limits [--repeats 3]

Prints one markdown row per case with the median wall time over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

#: (label, slots, slot, max_starts, gpus_min, time limit s)
CASES = (
    ("8,760 h, 8 interruptions", 8760, "1h", 9, 80, 20.0),
    ("8,760 h, 19 interruptions", 8760, "1h", 20, 80, 10.0),
    ("87,672 x 15 min, rigid", 87_672, "15min", 9, 80, 20.0),
    ("87,672 x 15 min, elastic", 87_672, "15min", 9, 40, 20.0),
    ("87,672 x 15 min, elastic", 87_672, "15min", 9, 40, 10.0),
    ("876,648 x 15 min (refused)", 876_648, "15min", 9, 80, 5.0),
)

CHILD = """
import json, resource, sys, time
import pandas as pd
from benchmarks.instances import long_window
from greenepoch.data.errors import GreenEpochError
from greenepoch.solvers.problem import SolveSettings
from greenepoch.solvers.solve import check_schedule, solve_problem
slots, slot, starts, gmin, limit = json.loads(sys.argv[1])
p = long_window(slots, slot, max_starts=starts, gpus_min=gmin)
began = time.perf_counter()
try:
    out = solve_problem(p, SolveSettings(time_limit=pd.Timedelta(seconds=limit), mip_gap=0.01))
    s = out.solution
    what = f"{s.status.value}, {out.method}, gap {100 * s.gap:.0f} %" if s.gap is not None \\
        else f"{s.status.value}, {out.method}"
    ok = check_schedule(p, out.schedule) == []
except GreenEpochError as exc:
    what, ok = "refused: " + str(exc)[:60], True
wall = time.perf_counter() - began
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "rss": rss, "what": what, "ok": ok}))
"""


def run(case: tuple, repeats: int) -> dict:
    _label, slots, slot, starts, gmin, limit = case
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", CHILD,
                               json.dumps([slots, slot, starts, gmin, limit])],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"wall": statistics.median(r["wall"] for r in runs),
            "walls": [round(r["wall"], 1) for r in runs],
            "rss": max(r["rss"] for r in runs), "what": runs[-1]["what"],
            "ok": all(r["ok"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=None, help="run the cases whose label has this text")
    args = parser.parse_args()
    print("| case | limit s | wall s (median; runs) | within limit | peak RSS MB | outcome |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in case[0]:
            continue
        r = run(case, args.repeats)
        within = "yes" if r["wall"] <= case[5] else f"no (+{100 * (r['wall'] / case[5] - 1):.0f} %)"
        print(f"| {case[0]} | {case[5]:g} | {r['wall']:.1f}; {r['walls']} | {within} | "
              f"{r['rss']:.0f} | {r['what']}{'' if r['ok'] else '; PLAN CHECK FAILED'} |",
              flush=True)


if __name__ == "__main__":
    main()
