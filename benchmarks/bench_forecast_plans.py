"""Forecast plans against running now, on what really happened (issue 13 item 18).

A fixed set of 48 one-job plans in 2023 (seed 13): 12 weeks (one in each month),
each with one of four zone pairs and four plan starts on its Monday to Thursday at
a random hour; jobs of 8 GPUs running 4-24 h with 12-96 h of slack.  The first
three run in one zone of the pair (time shifting only: where the forecast decides),
the fourth may move to the pair's other zone (50 GB checkpoint).  Every model is
fitted once per zone pair on the history through 2022-12-31 (``fit_until``; the
fit is kept by :mod:`planner.forecast_cache`, so the 12 plans of a pair share it)
and reads the observations up to each plan start.

Per model it prints the share of plans that emitted more than running now at home
on the actual intensities, the mean realised saving (``realised_savings_pct``, the
same figure as what-if's ``savings_pct``), the mean expected saving (on the
forecast) and how many plans fell back to running now (docs/plan-schema.md;
``--no-fallback`` also plans each model without the fallback).
Target of the issue: at most 5 % of plans worse than running now, mean realised
saving not lower than before.  ``oracle`` (perfect foresight) is the reference.

Usage (the machine may be shared: seconds are wall time and noisy)::

    GREENEPOCH_DATA=../shared/data OMP_NUM_THREADS=1 \\
        python -m benchmarks.bench_forecast_plans --models seasonal,blend,oracle
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from greenepoch.data.atomic import write_atomic
from greenepoch.data.intensity.sources import data_dir
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import plan
from greenepoch.planner.report.table import render

PAIRS = [("CA-ON", "DE"), ("US-CAL-CISO", "AU-VIC"), ("GB", "ES"),
         ("US-TEX-ERCO", "US-MIDA-PJM")]
FIT_UNTIL = pd.Timestamp("2023-01-01", tz="UTC")
SEED = 13


@dataclass(frozen=True)
class Case:
    """One plan of the fixed set."""

    name: str
    start: pd.Timestamp
    pair: tuple[str, str]
    zones: tuple[str, ...]  # the job's zones, home first
    run_h: int
    slack_h: int

    def request(self, model: str) -> PlanRequest:
        job = Job(name=self.name, gpus=8, gpu_hours=8.0 * self.run_h, release=self.start,
                  deadline=self.start + pd.Timedelta(hours=self.run_h + self.slack_h),
                  zones=self.zones, home_zone=self.zones[0],
                  checkpoint_overhead=pd.Timedelta("15min"), checkpoint_gb=50.0)
        zones = tuple(Zone(id=z, capacity_gpus=64) for z in self.pair)
        policy = Policy(forecast=model if model != "oracle" else "seasonal",
                        time_limit=pd.Timedelta("20s"))
        return PlanRequest(start=self.start, jobs=(job,), zones=zones, policy=policy)


def cases() -> list[Case]:
    """The fixed set: 12 weeks x 4 plan starts (seed 13)."""
    rng = np.random.default_rng(SEED)
    out = []
    for month in range(1, 13):
        first = pd.Timestamp(f"2023-{month:02d}-01", tz="UTC")
        monday = first + pd.Timedelta(days=(7 - first.day_of_week) % 7)
        pair = PAIRS[(month - 1) % len(PAIRS)]
        for day in range(4):
            start = monday + pd.Timedelta(days=day, hours=int(rng.integers(0, 24)))
            home, other = pair if day % 2 == 0 else pair[::-1]
            out.append(Case(name=f"m{month:02d}d{day}", start=start, pair=pair,
                            zones=(home, other) if day == 3 else (home,),
                            run_h=int(rng.choice([4, 8, 12, 24])),
                            slack_h=int(rng.choice([12, 24, 48, 96]))))
    return out


def run_model(model: str, data: str, chosen: list[Case], fallback: bool = True) -> pd.DataFrame:
    rows = []
    for case in chosen:
        began = time.perf_counter()
        doc = plan(case.request(model), data=data, oracle=model == "oracle",
                   model=None if model == "oracle" else model, fit_until=FIT_UNTIL,
                   fallback=fallback).doc
        job = doc["jobs"][0]
        s, home = job["summary"], job["baselines"]["run_now_home"]
        actual_plan = s["emissions_kg"] if model == "oracle" else s["realised_emissions_kg"]
        actual_now = home["emissions_kg"] if model == "oracle" else home["realised_emissions_kg"]
        rows.append({
            "model": model if fallback or model == "oracle" else f"{model} (no fallback)",
            "case": case.name, "start": case.start.isoformat(),
            "zones": "+".join(case.zones),
            "run_h": case.run_h, "slack_h": case.slack_h,
            "plan_kg": actual_plan, "run_now_kg": actual_now,
            "realised_saving_pct": 100 * (actual_now - actual_plan) / actual_now,
            "expected_saving_pct": job["savings_pct"],
            "expected_plan_kg": s["emissions_kg"], "expected_run_now_kg": home["emissions_kg"],
            "plan_p10_kg": s.get("emissions_p10_kg"), "plan_p90_kg": s.get("emissions_p90_kg"),
            "run_now_p10_kg": home.get("emissions_p10_kg"),
            "run_now_p90_kg": home.get("emissions_p90_kg"),
            "fallback": bool(s.get("fallback")),
            "robust": job.get("robust"),
            "seconds": time.perf_counter() - began,
        })
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    out = []
    for model, rows in frame.groupby("model", sort=False):
        worse = rows["plan_kg"] > rows["run_now_kg"] + 1e-6
        out.append({
            "model": model, "plans": len(rows),
            "worse_than_run_now_%": round(100 * worse.mean(), 1),
            "mean_realised_saving_%": round(rows["realised_saving_pct"].mean(), 2),
            "median_realised_saving_%": round(rows["realised_saving_pct"].median(), 2),
            "mean_expected_saving_%": round(rows["expected_saving_pct"].mean(), 2),
            "fallbacks": int(rows["fallback"].sum()),
            "seconds": round(rows["seconds"].sum(), 1),
        })
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seasonal,blend,oracle",
                        help="comma-separated registered models, or 'oracle'")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N plans (a quick look; the target needs all)")
    parser.add_argument("--out", default=None, help="CSV of every plan's figures")
    parser.add_argument("--no-fallback", action="store_true",
                        help="also plan every forecast model without the run-now fallback")
    args = parser.parse_args()
    root = data_dir(None)
    if root is None:
        raise SystemExit("set GREENEPOCH_DATA to the shared data folder (real data needed)")
    chosen = cases()[: args.limit]
    print(f"{len(chosen)} plans; models fitted through {FIT_UNTIL:%Y-%m-%d}; "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: seconds are noisy)")
    frames = []
    for model in args.models.split(","):
        runs = [True, False] if args.no_fallback and model.strip() != "oracle" else [True]
        for fallback in runs:
            frames.append(run_model(model.strip(), str(root), chosen, fallback))
            print(render(summarise(frames[-1])), flush=True)
    frame = pd.concat(frames, ignore_index=True)
    print()
    print(render(summarise(frame)))
    if args.out:
        write_atomic(args.out, frame.to_csv(index=False))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
