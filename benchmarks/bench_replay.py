"""Replay and slack-sweep benchmark on the shared real data (``$GREENEPOCH_DATA``).

Instances (fixed seeds):

* ``replay-1000``: 1,000 generated jobs (``n=1000,dur=2-48,submit=weekdays09-17,
  slack=24h,gpus=8-64,seed=1``) in 4 zones over 2022, 512 GPUs per zone; the
  run-now, threshold, greedy and oracle policies (target: < 60 s each for greedy
  and threshold);
* ``milp``: the receding-horizon policy (re-planned at every hourly forecast) on the
  same jobs (with ``--milp-jobs`` below the number of jobs: ``replay-milp``, run-now,
  greedy, oracle and milp on the first ``--milp-jobs`` of them); target: at least 90 %
  of the oracle's saving, ahead of greedy, within 3x greedy's time (issue 17);
* ``slack-sweep``: all zones x 2022 x lengths 1,6,24,96,168 x slacks 24,168,480,
  720 x both modes (target: < 5 min), data loading timed separately.

``--spec`` and ``--year`` replay other jobs or another year (issue 17's instance:
``--spec n=200,dur=2-48,submit=weekdays09-17,slack=48h,gpus=8-64,seed=1 --year 2023``).
The forecast model is fitted once and shared by the policies (its time is its own
row); ``oracle_share_pct`` is the share of the oracle's saving a policy realises,
``x_greedy_time`` its time over greedy's.  Seconds are medians of ``--repeats`` runs
(wall time; the machine may be shared, so the load average is printed).  Usage::

    GREENEPOCH_DATA=../shared/data python -m benchmarks.bench_replay [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import pandas as pd
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.data.intensity.source import data_dir
from greenepoch.forecasts.base import Forecaster
from greenepoch.planner.replay.engine import (
    Compiled,
    ReplayResult,
    Scenario,
    fit_forecaster,
    run_replay,
)
from greenepoch.planner.replay.jobs import generate_jobs
from greenepoch.planner.replay.policies import get_policy
from greenepoch.planner.replay.runner import load_actual
from greenepoch.planner.replay.sweep import slack_sweep
from greenepoch.planner.report.table import render

ZONES = ["DE", "GB", "ES", "US-CAL-CISO"]
SPEC = "n=1000,dur=2-48,submit=weekdays09-17,slack=24h,gpus=8-64,seed=1"
START = pd.Timestamp("2022-01-01", tz="UTC")
END = pd.Timestamp("2023-01-01", tz="UTC")


T = TypeVar("T")


def _median(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    times: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), out  # repeats >= 1


def _policy_rows(label: str, compiled: Compiled, names: tuple[str, ...], repeats: int,
                 forecaster: Forecaster) -> list[tuple]:
    """One row per policy: seconds (median), saving vs run-now, share of the oracle's
    saving and time over greedy's (when both ran)."""
    kg, seconds, infos = {}, {}, {}

    def replay(name: str) -> Callable[[], ReplayResult]:
        return lambda: run_replay(compiled, get_policy(name), forecaster=forecaster)

    for name in names:
        sec, res = _median(replay(name), 1 if name == "milp" else repeats)
        kg[name] = float(res.jobs["emissions_kg"].sum())
        seconds[name], infos[name] = sec, res.info
    base = kg["run-now"]
    best = base - kg["oracle"] if "oracle" in kg else None
    rows = []
    for name in names:
        step = name
        if name == "milp":
            info = infos[name]
            step = f"milp ({info['replans']} replans, {info['solves']} MILP solves)"
        target = "< 60 s" if name in ("threshold", "greedy") else \
            "<= 3x greedy" if name == "milp" else ""
        share = 100 * (base - kg[name]) / best if best else None
        ratio = seconds[name] / seconds["greedy"] if "greedy" in seconds else None
        rows.append((label, step, len(compiled.names), seconds[name], target,
                     f"{100 * (1 - kg[name] / base):.2f}",
                     "" if share is None else f"{share:.1f}",
                     "" if ratio is None else f"{ratio:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--milp-jobs", type=int, default=1000)
    parser.add_argument("--skip-milp", action="store_true")
    parser.add_argument("--spec", default=SPEC, help="job generator spec (default %(default)s)")
    parser.add_argument("--year", type=int, default=START.year,
                        help="replayed year (default %(default)s)")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    root = data_dir(None)
    if root is None:
        raise SystemExit("set GREENEPOCH_DATA to the shared data folder")
    start = pd.Timestamp(f"{args.year}-01-01", tz="UTC")
    end = pd.Timestamp(f"{args.year + 1}-01-01", tz="UTC")
    rows: list[tuple] = []
    load_s, (actual, _) = _median(lambda: load_actual(ZONES, start, end, data=root), 1)
    jobs = generate_jobs(args.spec, ZONES, start, end)
    label = f"replay-{len(jobs)}"
    compiled = Compiled(Scenario(actual, start, end, jobs, {z: 512 for z in ZONES}))
    rows.append((label, "load 4 zones", 0, load_s, "", "", "", ""))
    # one fit shared by the forecasting policies: the times compare decisions and
    # forecast issues, not the model's fit
    fit_s, forecaster = _median(lambda: fit_forecaster(compiled), 1)
    rows.append((label, f"fit forecast model '{compiled.sc.forecast}'", 0, fit_s, "", "", "",
                 ""))
    names = ("run-now", "threshold", "greedy", "oracle")
    milp_here = not args.skip_milp and args.milp_jobs >= len(jobs)
    rows += _policy_rows(label, compiled, names + (("milp",) if milp_here else ()),
                         args.repeats, forecaster)
    if not args.skip_milp and not milp_here:
        sub = Compiled(Scenario(actual, start, end, jobs[: args.milp_jobs],
                                {z: 512 for z in ZONES}))
        rows += _policy_rows("replay-milp", sub, ("run-now", "greedy", "oracle", "milp"), 1,
                             forecaster)
    if not args.skip_sweep:
        load_s, values = _median(lambda: read_electricitymaps(root).values, 1)
        rows.append(("slack-sweep", f"load {values.shape[1]} zones", 0, load_s, "", "", "",
                     ""))
        seconds, records = _median(
            lambda: slack_sweep(values, 2022, [1, 6, 24, 96, 168], [24, 168, 480, 720]),
            args.repeats)
        rows.append(("slack-sweep", f"{len(records)} records", 0, seconds, "< 300 s", "", "",
                     ""))
    table = pd.DataFrame(rows, columns=["instance", "step", "jobs", "seconds", "target",
                                        "saving_pct", "oracle_share_pct", "x_greedy_time"])
    print(render(table, floatfmt="{:,.2f}"))
    every_h = compiled.sc.forecast_every / pd.Timedelta("1h")
    print(f"\nmedian of {args.repeats} (sweep, fast policies); forecasts every {every_h:g} h; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
