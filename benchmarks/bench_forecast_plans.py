"""Forecast plans against running now, on what really happened (issue 13 item 18).

A fixed set of 48 one-job plans (``--set 2023``, the set of the issue's target, seed
13): 12 weeks (the first full week of each month), each with one of four zone pairs
and four plan starts on its Monday to Thursday at a random hour; jobs of 8 GPUs
running 4-24 h with 12-96 h of slack.  The first three run in one zone of the pair
(time shifting only: where the forecast decides), the fourth may move to the pair's
other zone (50 GB checkpoint).  Every model is fitted once per zone pair on the
history before the set's year (``fit_until``; the fit is kept by
:mod:`planner.forecast_cache`, so the 12 plans of a pair share it) and reads the
observations up to each plan start.  Two disjoint sets built the same way check that
a rule chosen on the first is not fitted to it: ``2023b`` (the third week of each
month, seed 31), and in 2022 with models fitted through 2021 ``2022`` (first weeks,
seed 22) and ``2022b`` (third weeks, seed 41); ``2023c`` and ``2022c`` (second weeks,
seeds 53 and 67) were planned only after the rule was chosen.

Per model it prints the share of plans that emitted more than running now at home
on the actual intensities, the mean realised saving (``realised_savings_pct``, the
same figure as what-if's ``savings_pct``), the mean expected saving (on the
forecast) and how many plans fell back to running now (docs/plan-schema.md;
``--no-fallback`` also plans each model without the fallback).
Target of the issue: at most 5 % of plans worse than running now, mean realised
saving not lower than before (25.0 %, ``seasonal`` without a fallback, on ``2023``).
``oracle`` (perfect foresight) is the reference.

``--rule`` (repeatable) plans each model once *without* the fallback and prints what
each fallback rule of :mod:`benchmarks.fallback_rules` would have made of those plans
(the planner's own rule is ``p90``; its result is checked against the plans' ``robust``
flag).  ``--from-csv`` replays rules on the per-plan CSV of an earlier ``--out``
(written from a run without the fallback) instead of planning again.

Usage (the machine may be shared: seconds are wall time and noisy)::

    GREENEPOCH_DATA=../shared/data OMP_NUM_THREADS=1 \\
        python -m benchmarks.bench_forecast_plans --models seasonal,blend,oracle
    python -m benchmarks.bench_forecast_plans --models blend --set 2022 \\
        --rule p90 --rule band:0.5 --out plans-2022.csv
    python -m benchmarks.bench_forecast_plans --from-csv plans-2022.csv --rule margin:10
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.atomic import write_atomic
from greenepoch.data.intensity.source import data_dir
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import plan
from greenepoch.planner.report.table import render

from benchmarks import fallback_rules

PAIRS = [("CA-ON", "DE"), ("US-CAL-CISO", "AU-VIC"), ("GB", "ES"),
         ("US-TEX-ERCO", "US-MIDA-PJM")]


@dataclass(frozen=True)
class PlanSet:
    """A fixed set of 48 plans: which year, which week of each month, which seed."""

    year: int
    seed: int
    week: int  # 0: the month's first full week (from its first Monday), 2: its third

    @property
    def fit_until(self) -> pd.Timestamp:
        """Models learn from the history before the set's year."""
        return pd.Timestamp(f"{self.year}-01-01", tz="UTC")


SETS = {"2023": PlanSet(2023, 13, 0), "2023b": PlanSet(2023, 31, 2),
        "2022": PlanSet(2022, 22, 0), "2022b": PlanSet(2022, 41, 2),
        # held out: planned only after the fallback rule was chosen on the four above
        "2023c": PlanSet(2023, 53, 1), "2022c": PlanSet(2022, 67, 1)}


@dataclass(frozen=True)
class Case:
    """One plan of a set."""

    name: str
    start: pd.Timestamp
    pair: tuple[str, str]
    zones: tuple[str, ...]  # the job's zones, home first
    run_h: int
    slack_h: int

    def request(self, model: str, mip_gap: float | None = None) -> PlanRequest:
        job = Job(name=self.name, gpus=8, gpu_hours=8.0 * self.run_h, release=self.start,
                  deadline=self.start + pd.Timedelta(hours=self.run_h + self.slack_h),
                  zones=self.zones, home_zone=self.zones[0],
                  checkpoint_overhead=pd.Timedelta("15min"), checkpoint_gb=50.0)
        zones = tuple(Zone(id=z, capacity_gpus=64) for z in self.pair)
        policy = Policy(forecast=model if model != "oracle" else "seasonal",
                        time_limit=pd.Timedelta("20s"))
        if mip_gap is not None:
            policy = replace(policy, mip_gap=mip_gap)
        return PlanRequest(start=self.start, jobs=(job,), zones=zones, policy=policy)


def cases(chosen: PlanSet = SETS["2023"]) -> list[Case]:
    """The set's 48 plans: 12 weeks x 4 plan starts."""
    rng = np.random.default_rng(chosen.seed)
    out = []
    for month in range(1, 13):
        first = pd.Timestamp(f"{chosen.year}-{month:02d}-01", tz="UTC")
        monday = first + pd.Timedelta(days=(7 - first.day_of_week) % 7 + 7 * chosen.week)
        pair = PAIRS[(month - 1) % len(PAIRS)]
        for day in range(4):
            start = monday + pd.Timedelta(days=day, hours=int(rng.integers(0, 24)))
            home, other = pair if day % 2 == 0 else pair[::-1]
            out.append(Case(name=f"m{month:02d}d{day}", start=start, pair=pair,
                            zones=(home, other) if day == 3 else (home,),
                            run_h=int(rng.choice([4, 8, 12, 24])),
                            slack_h=int(rng.choice([12, 24, 48, 96]))))
    return out


def run_model(model: str, data: str, chosen: list[Case], set_name: str,
              fallback: bool = True, mip_gap: float | None = None) -> pd.DataFrame:
    fit_until = SETS[set_name].fit_until
    rows = []
    for case in chosen:
        began = time.perf_counter()
        doc = plan(case.request(model, mip_gap), data=data, oracle=model == "oracle",
                   model=None if model == "oracle" else model, fit_until=fit_until,
                   fallback=fallback).to_dict()
        job = doc["jobs"][0]
        s, home = job["summary"], job["baselines"]["run_now_home"]
        actual_plan = s["emissions_kg"] if model == "oracle" else s["realised_emissions_kg"]
        actual_now = home["emissions_kg"] if model == "oracle" else home["realised_emissions_kg"]
        rows.append({
            "model": model if fallback or model == "oracle" else f"{model} (no fallback)",
            "set": set_name, "case": case.name, "start": case.start.isoformat(),
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


def summarise(frame: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    out = []
    for key, rows in frame.groupby(by, sort=False):
        worse = rows["plan_kg"] > rows["run_now_kg"] + 1e-6
        row = {
            by: key, "plans": len(rows),
            "worse_than_run_now_%": round(100 * worse.mean(), 1),
            "mean_realised_saving_%": round(rows["realised_saving_pct"].mean(), 2),
            "median_realised_saving_%": round(rows["realised_saving_pct"].median(), 2),
            "mean_expected_saving_%": round(rows["expected_saving_pct"].mean(), 2),
            "fallbacks": int(rows["fallback"].sum()),
        }
        if "seconds" in rows:
            row["seconds"] = round(rows["seconds"].sum(), 1)
        out.append(row)
    return pd.DataFrame(out)


def rule_table(frame: pd.DataFrame,
               rules: list[fallback_rules.Rule | fallback_rules.Either]) -> pd.DataFrame:
    """Every forecast model's plans (made without the fallback) under every rule, per
    plan set and, with more than one set, over all of them pooled."""
    forecast = frame[frame["plan_p90_kg"].notna()]
    out = []
    for model, rows in forecast.groupby("model", sort=False):
        groups = list(rows.groupby("set", sort=False))
        if len(groups) > 1:
            groups.append(("all", rows))
        for name, chosen in groups:
            ruled = pd.concat([fallback_rules.apply(rule, chosen) for rule in rules])
            table = summarise(ruled.drop(columns="seconds"), by="rule")
            table.insert(0, "set", name)
            table.insert(0, "model", model)
            out.append(table)
    return pd.concat(out, ignore_index=True)


def check_p90(frame: pd.DataFrame) -> str:
    """Does the ``p90`` rule replayed here fall back exactly where the planner calls the
    plan not robust?  (It should: it is the same comparison, on rounded kg.)"""
    rows = frame[frame["robust"].notna()]
    fired = fallback_rules.parse("p90").falls_back(rows)
    differ = int((fired != ~rows["robust"].astype(bool)).sum())
    return (f"rule p90 replayed: {int(fired.sum())} fallbacks, "
            f"{differ} of {len(rows)} plans differ from the planner's robust flag")


def main() -> None:
    rules_help = fallback_rules.__doc__.split("Rules, by")[1].split(":\n", 1)[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Rules (--rule):\n" + rules_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="seasonal,blend,oracle",
                        help="comma-separated registered models, or 'oracle'")
    parser.add_argument("--set", dest="plan_set", choices=sorted(SETS), default="2023",
                        help="which fixed set of 48 plans (default 2023, the issue's)")
    parser.add_argument("--mip-gap", type=float, default=None,
                        help="solve every plan to this relative MIP gap (default: the "
                             "planner's, 1 %% on a forecast, 1e-4 for oracle)")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N plans (a quick look; the target needs all)")
    parser.add_argument("--out", default=None, help="CSV of every plan's figures")
    parser.add_argument("--no-fallback", action="store_true",
                        help="also plan every forecast model without the run-now fallback")
    parser.add_argument("--rule", action="append", default=[],
                        help="plan without the fallback, then apply this fallback rule "
                             "(repeatable; see below)")
    parser.add_argument("--from-csv", action="append", default=[],
                        help="apply --rule to this --out CSV (plans made without the "
                             "fallback) instead of planning; repeatable: per set and pooled")
    args = parser.parse_args()
    try:
        rules = [fallback_rules.parse(text) for text in args.rule]
    except ValueError as exc:
        parser.error(str(exc))
    if args.from_csv:
        if not rules:
            parser.error("--from-csv needs at least one --rule")
        frames = []
        for path in args.from_csv:
            read = pd.read_csv(path)
            if "set" not in read:  # written before the column: name the set by its file
                read.insert(1, "set", Path(path).stem)
            frames.append(read)
        frame = pd.concat(frames, ignore_index=True)
        print(f"{len(frame)} rows (plans x models) from {', '.join(args.from_csv)}")
        reference = frame[frame["plan_p90_kg"].isna()]  # oracle: no forecast, no rule
        if not reference.empty:
            print(render(summarise(reference.assign(model=reference["model"] + " "
                                                    + reference["set"].astype(str)))))
        print(check_p90(frame))
        print(render(rule_table(frame, rules)))
        return
    root = data_dir(None)
    if root is None:
        raise SystemExit("set GREENEPOCH_DATA to the shared data folder (real data needed)")
    chosen_set = SETS[args.plan_set]
    chosen = cases(chosen_set)[: args.limit]
    print(f"{len(chosen)} plans of set {args.plan_set}; models fitted through "
          f"{chosen_set.fit_until - pd.Timedelta('1D'):%Y-%m-%d}; load average "
          f"{os.getloadavg()[0]:.1f} (shared machine: seconds are noisy)")
    frames = []
    for model in (m.strip() for m in args.models.split(",")):
        if rules:
            runs = [model == "oracle"]  # rules replace the planner's fallback
        else:
            runs = [True, False] if args.no_fallback and model != "oracle" else [True]
        for fallback in runs:
            frames.append(run_model(model, str(root), chosen, args.plan_set, fallback,
                                    args.mip_gap))
            print(render(summarise(frames[-1])), flush=True)
    frame = pd.concat(frames, ignore_index=True)
    print()
    print(render(summarise(frame)))
    if rules:
        print()
        print(check_p90(frame))
        print(render(rule_table(frame, rules)))
    if args.out:
        write_atomic(args.out, frame.to_csv(index=False))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
