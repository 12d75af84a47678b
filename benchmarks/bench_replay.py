"""Replay and slack-sweep benchmark on the shared real data (``$GREENEPOCH_DATA``).

Instances (fixed seeds):

* ``replay-1000``: 1,000 generated jobs (``n=1000,dur=2-48,submit=weekdays09-17,
  slack=24h,gpus=8-64,seed=1``) in 4 zones over 2022, 512 GPUs per zone; the
  run-now, threshold, greedy and oracle policies (target: < 60 s each for greedy
  and threshold);
* ``replay-milp``: the MILP policy on the first ``--milp-jobs`` of those jobs
  (default 1,000; the receding-horizon re-plans make it the slow one);
* ``slack-sweep``: all zones x 2022 x lengths 1,6,24,96,168 x slacks 24,168,480,
  720 x both modes (target: < 5 min), data loading timed separately.

Seconds are medians of ``--repeats`` runs (wall time; the machine may be shared,
so the load average is printed).  Usage::

    GREENEPOCH_DATA=../shared/data python -m benchmarks.bench_replay [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pandas as pd
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.intensity.source import data_dir
from greenepoch.planner.replay.engine import Compiled, Scenario, run_replay
from greenepoch.planner.replay.jobs import generate_jobs
from greenepoch.planner.replay.policies import get_policy
from greenepoch.planner.replay.runner import load_actual
from greenepoch.planner.replay.sweep import slack_sweep
from greenepoch.planner.report.table import render

ZONES = ["DE", "GB", "ES", "US-CAL-CISO"]
SPEC = "n=1000,dur=2-48,submit=weekdays09-17,slack=24h,gpus=8-64,seed=1"
START = pd.Timestamp("2022-01-01", tz="UTC")
END = pd.Timestamp("2023-01-01", tz="UTC")


def _median(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--milp-jobs", type=int, default=1000)
    parser.add_argument("--skip-milp", action="store_true")
    args = parser.parse_args()
    root = data_dir(None)
    if root is None:
        raise SystemExit("set GREENEPOCH_DATA to the shared data folder")
    rows = []
    load_s, (actual, _) = _median(lambda: load_actual(ZONES, START, END, data=root), 1)
    jobs = generate_jobs(SPEC, ZONES, START, END)
    scenario = Scenario(actual, START, END, jobs, {z: 512 for z in ZONES})
    compiled = Compiled(scenario)
    rows.append(("replay-1000", "load 4 zones", 0, load_s, "", ""))
    baseline = None
    for name in ("run-now", "threshold", "greedy", "oracle"):
        seconds, res = _median(lambda n=name: run_replay(compiled, get_policy(n)), args.repeats)
        kg = float(res.jobs["emissions_kg"].sum())  # type: ignore[attr-defined]
        baseline = kg if name == "run-now" else baseline
        target = "< 60 s" if name in ("threshold", "greedy") else ""
        saving = f"{100 * (1 - kg / baseline):.2f}" if baseline else ""
        rows.append(("replay-1000", name, len(jobs), seconds, target, saving))
    if not args.skip_milp:
        sub = Scenario(actual, START, END, jobs[: args.milp_jobs], {z: 512 for z in ZONES})
        c_sub = Compiled(sub)
        base_kg = float(run_replay(c_sub, get_policy("run-now")).jobs["emissions_kg"].sum())
        seconds, res = _median(lambda: run_replay(c_sub, get_policy("milp")), 1)
        kg = float(res.jobs["emissions_kg"].sum())  # type: ignore[attr-defined]
        info = res.info  # type: ignore[attr-defined]
        rows.append(("replay-milp", f"milp ({info['solves']} solves)", args.milp_jobs, seconds,
                     "report", f"{100 * (1 - kg / base_kg):.2f}"))
    load_s, values = _median(lambda: read_electricitymaps(root).values, 1)
    rows.append(("slack-sweep", f"load {values.shape[1]} zones", 0, load_s, "", ""))
    seconds, records = _median(
        lambda: slack_sweep(values, 2022, [1, 6, 24, 96, 168], [24, 168, 480, 720]),
        args.repeats)
    rows.append(("slack-sweep", f"{len(records)} records", 0, seconds, "< 300 s", ""))  # type: ignore[arg-type]
    table = pd.DataFrame(rows, columns=["instance", "step", "jobs", "seconds", "target",
                                        "saving_pct"])
    print(render(table, floatfmt="{:,.2f}"))
    print(f"\nmedian of {args.repeats} (sweep, fast policies); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
