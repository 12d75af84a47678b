"""Benchmark the planner on the registered instances (benchmarks/instances.py).

    GREENEPOCH_DATA=/work/shared/data OMP_NUM_THREADS=1 \\
        python benchmarks/bench_planner.py [--instances A,B,C,D] [--repeats 3]

Each run is end to end (build + solve) in a fresh process (so peak RSS is the
run's own), with ``policy.time_limit`` = 0.9 x the instance's target seconds and
``policy.mip_gap`` = its target gap.  Figures are medians over the repeats.
``objective`` is the model's (GPU-hours run), ``plan kg`` the plan's emissions (what
the plan reports; equal but for paid checkpoint moves and minimum run lengths); the
MILP's advantage over greedy compares plan kg.
Never asserted: a table to read.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIMIT_SHARE = 0.9


def _run(name: str, time_limit: float, queue: mp.Queue) -> None:
    """One end-to-end run in this (child) process; puts a dict on ``queue``."""
    import resource

    import pandas as pd
    from greenepoch.planner.model import Policy
    from greenepoch.solvers.heuristics import greedy
    from greenepoch.solvers.schedule import objective
    from greenepoch.solvers.solve import check_schedule, solve_problem

    from benchmarks.instances import INSTANCES, build_instance

    spec = INSTANCES[name]
    problem = build_instance(name)
    began = time.perf_counter()
    plan, _ = greedy(problem)
    greedy_s = time.perf_counter() - began
    policy = Policy(time_limit=pd.Timedelta(seconds=time_limit), mip_gap=spec.target_gap)
    began = time.perf_counter()
    outcome = solve_problem(problem, policy.solve_settings)
    total = time.perf_counter() - began
    sol = outcome.solution
    queue.put({
        "build": outcome.build_seconds, "total": total, "solve": total - outcome.build_seconds,
        "objective": sol.objective, "bound": sol.bound,
        "gap": None if sol.gap is None else 100 * sol.gap,
        "status": sol.status.value, "method": outcome.method,
        "plan_kg": objective(problem, outcome.schedule),
        "greedy_kg": None if plan is None else objective(problem, plan),
        "greedy_s": greedy_s,
        "issues": check_schedule(problem, outcome.schedule),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "message": sol.message,
    })


def run_once(name: str, time_limit: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(name, time_limit, queue))
    proc.start()
    try:
        result = queue.get(timeout=time_limit * 3 + 120)
    finally:
        proc.join(timeout=30)
    return result


def _median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report(name: str, rows: list[dict], label: str, target_gap: float,
           target_s: float, memory_mb: float | None) -> list[str]:
    total, gap = _median(rows, "total"), _median(rows, "gap")
    plan_kg, greedy_kg = _median(rows, "plan_kg"), _median(rows, "greedy_kg")
    adv = None if plan_kg is None or not greedy_kg else 100 * (greedy_kg - plan_kg) / greedy_kg
    rss = max(r["rss_mb"] for r in rows)
    issues = sorted({i for r in rows for i in r["issues"]})
    met_time = total is not None and total < target_s
    met_gap = gap is not None and gap <= 100 * target_gap + 1e-9
    met_mem = memory_mb is None or rss <= memory_mb
    lines = [
        f"{name} {label}",
        f"  build s {_fmt(_median(rows, 'build'), '.3f')}   solve s "
        f"{_fmt(_median(rows, 'solve'))}   total s {_fmt(total)}   (runs: "
        + ", ".join(_fmt(r["total"]) for r in rows) + ")",
        f"  objective {_fmt(_median(rows, 'objective'), '.2f')}   bound "
        f"{_fmt(_median(rows, 'bound'), '.2f')}   gap % {_fmt(gap, '.3f')}   status "
        f"{'/'.join(sorted({r['status'] for r in rows}))}   method "
        f"{'/'.join(sorted({r['method'] for r in rows}))}",
        f"  plan kg {_fmt(plan_kg)}   greedy kg {_fmt(greedy_kg)} "
        f"({_fmt(_median(rows, 'greedy_s'), '.3f')} s)"
        f"   advantage over greedy % {_fmt(adv)}   peak RSS MB {rss:.0f}",
        f"  plan check: {'ok' if not issues else '; '.join(issues)}",
        f"  target gap <= {100 * target_gap:g} % in < {target_s:g} s"
        + ("" if memory_mb is None else f", RSS <= {memory_mb:g} MB")
        + f": time {'MET' if met_time else 'MISSED'}, gap {'MET' if met_gap else 'MISSED'}"
        + ("" if memory_mb is None else f", memory {'MET' if met_mem else 'MISSED'}"),
        f"  solver: {rows[0]['message']}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", default="A,B,C,D")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not os.environ.get("GREENEPOCH_DATA"):
        print("bench_planner: GREENEPOCH_DATA is not set; point it at the shared data "
              "folder, e.g. GREENEPOCH_DATA=/work/shared/data", file=sys.stderr)
        return 2
    from benchmarks.instances import INSTANCES

    names = [n.strip() for n in args.instances.split(",") if n.strip()]
    unknown = [n for n in names if n not in INSTANCES]
    if unknown:
        print(f"bench_planner: unknown instance(s) {unknown}; have {list(INSTANCES)}",
              file=sys.stderr)
        return 2
    for name in names:
        spec = INSTANCES[name]
        runs = [(spec.target_seconds, spec.target_gap, f"({spec.description})")]
        if spec.feasible_seconds is not None:
            runs.insert(0, (spec.feasible_seconds, 1.0,
                            f"feasible plan within {spec.feasible_seconds:g} s"))
        for seconds, gap, label in runs:
            rows = [run_once(name, LIMIT_SHARE * seconds) for _ in range(args.repeats)]
            for line in report(name, rows, label, gap, seconds, spec.memory_mb):
                print(line, flush=True)
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
