"""``greenepoch run`` on accelerated history: the policies' trade-off over 2023.

Instance (fixed): 4 zones (DE, GB, US-CAL-CISO, AU-NSW) x 4 seasons of 2023 (weeks from
Jan 16, Apr 17, Jul 17, Oct 16) x ``--starts`` daily starts at 08:00 UTC; each run is
8 GPU-hours on 1 GPU at 0.3 kW, deadline run-now's finish + 24 h (margin 1 h), 15-min
decisions, 15 min of work lost per resume.  The forecast model (``--forecast``,
default ``default``: blend) is fitted on each zone's history through 2022 (one fit per
zone, kept by the forecast cache); at each simulated hour the policies see the forecast
issued then and the latest completed hour's actual, never what followed.

Policies: ``threshold`` at two levels per zone (the 25th and 50th percentiles of the
zone's 2022 hours: fixed by a rule, not tuned on 2023), ``replan``, run-now and the oracle
(planner/run/sweep.py: the cheapest hours before the deadline with perfect knowledge and
no restart cost, an upper bound).  Every run drives the same controller as ``greenepoch
run`` against the sweep's study model of a training (work accumulates while running,
the restart cost lost per resume).

Prints per policy: share of the oracle's saving realised (of the summed savings), saving
vs run-now, mean and p95 completion delay (hours after run-now's finish), pauses per run,
deadlines missed, seconds.  Goal (issue 17): replan >= 90 % of the oracle's saving with
no missed deadline, and ahead of threshold at equal or lower p95 delay.  Usage::

    GREENEPOCH_DATA=../shared/data python -m benchmarks.bench_run [--starts 7]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
from greenepoch.data.intensity.source import data_dir, source_for
from greenepoch.planner.run.feeds import HistoryFeed
from greenepoch.planner.run.sweep import RunResult, SweepSpec, summarise, sweep

ZONES = ("DE", "GB", "US-CAL-CISO", "AU-NSW")
SEASONS = ("2023-01-16", "2023-04-17", "2023-07-17", "2023-10-16")
FIT_UNTIL = pd.Timestamp("2023-01-01T00:00Z")
GPU_HOURS, SLACK = 8.0, pd.Timedelta("24h")


def levels(zone: str, data: str) -> list[float]:
    """The zone's 25th and 50th percentiles of 2022 (g/kWh, rounded)."""
    values = source_for(data).load([zone], pd.Timestamp("2022-01-01T00:00Z"), FIT_UNTIL
                                   ).values[zone]
    return [round(float(values.quantile(q))) for q in (0.25, 0.5)]


def run_zone(zone: str, data: str, starts_per_season: int, model: str
             ) -> tuple[list[RunResult], dict[str, float]]:
    began = time.perf_counter()
    feed = HistoryFeed(data, zone, model=model, fit_until=FIT_UNTIL,
                       horizon=pd.Timedelta("72h"))
    starts = [pd.Timestamp(f"{day}T08:00Z") + pd.Timedelta(days=k)
              for day in SEASONS for k in range(starts_per_season)]
    thresholds = levels(zone, data)
    spec = SweepSpec(zone=zone, starts=starts, gpu_hours=GPU_HOURS, gpus=1, power_kw=0.3,
                     slack=SLACK, restart_h=0.25, thresholds=thresholds,
                     policies=("threshold", "replan"))
    # the forecasts are made before the timing of the policies (shared by them)
    for start in starts:
        for h in range(int((GPU_HOURS + SLACK / pd.Timedelta("1h")) + 1)):
            feed.forecast_at(start.floor("1h") + pd.Timedelta(hours=h))
    ready = time.perf_counter()
    label = dict(zip(thresholds, ("p25", "p50"), strict=True))  # one label over the zones
    results = [RunResult(**{**r.__dict__, "threshold": label.get(r.threshold)})  # type: ignore[arg-type]
               if r.threshold is not None else r for r in sweep(spec, feed)]
    return results, {"forecast_s": ready - began, "runs_s": time.perf_counter() - ready}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=7, help="daily starts per season")
    ap.add_argument("--forecast", default="default", help="forecast model")
    ap.add_argument("--zones", default=",".join(ZONES))
    args = ap.parse_args()
    data = str(data_dir() or os.environ.get("GREENEPOCH_DATA", ""))
    if not data:
        raise SystemExit("set GREENEPOCH_DATA to the shared data folder")
    results: list[RunResult] = []
    for zone in args.zones.split(","):
        got, seconds = run_zone(zone, data, args.starts, args.forecast)
        results += got
        print(f"{zone}: thresholds {levels(zone, data)} g/kWh; forecasts "
              f"{seconds['forecast_s']:.0f} s, {len(got)} runs {seconds['runs_s']:.0f} s",
              flush=True)
    pd.set_option("display.width", 200)
    table = summarise(results)
    per_policy = _per_policy(results)
    print(f"\n{len(results)} runs; load average {os.getloadavg()[0]:.1f}")
    print("\nper policy and threshold level (all zones):")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print("\nper policy (threshold: its two levels together):")
    print(per_policy.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print("\nper zone, share of the oracle's saving (%):")
    for zone in args.zones.split(","):
        zone_table = summarise([r for r in results if r.zone == zone])
        shares = ", ".join(f"{row.policy} {row.threshold} {row.oracle_share_pct:.0f}"
                           for row in zone_table.itertuples() if row.policy not in
                           ("run-now", "oracle"))
        print(f"  {zone}: {shares}")


def _per_policy(results: list[RunResult]) -> pd.DataFrame:
    relabelled = [RunResult(**{**r.__dict__, "threshold": None}) for r in results]
    return summarise(relabelled)


if __name__ == "__main__":
    main()
