"""Metrics of replays: per job and aggregated per policy, against run-now and the oracle.

Per job (``job_metrics``): ``emissions_kg``, ``saving_kg`` (run-now's minus this
policy's), ``delay_h`` (completion minus run-now's completion), ``latency_h``
(completion minus submission), ``interruptions`` (starts - 1), ``overhead_h``
(checkpoint overhead hours paid, per GPU), ``save_h`` (checkpoint save hours lost
at pauses, per GPU: pauses x ``checkpoint_save_h``), ``energy_kwh``, ``cost_usd`` (NaN where
no price is known), ``missed`` (finished after the deadline, or not at all).

Aggregated (``summary``), one row per policy: ``jobs``, ``emissions_kg``,
``saving_pct`` (100 x (1 - emissions / run-now's)), ``delay_mean_h`` and
``delay_p95_h``, ``interruptions``, ``overhead_h`` and ``energy_kwh`` (sums over
jobs), ``cost_usd`` (sum over the jobs whose zone has prices; NaN when none
does), ``misses``,
``oracle_share_pct`` (100 x saving / the oracle's saving; NaN without an oracle
run or when the oracle saves nothing) and ``seconds`` (wall time of the replay).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.planner.replay.engine import ReplayResult

BASELINE = "run-now"


def job_metrics(results: dict[str, ReplayResult]) -> pd.DataFrame:
    """Long frame: one row per (policy, job)."""
    base = results[BASELINE].jobs
    frames = []
    for name, res in results.items():
        f = res.jobs.copy()
        f.insert(0, "policy", name)
        f["saving_kg"] = base["emissions_kg"] - f["emissions_kg"]
        f["delay_h"] = (f["completion"] - base["completion"]).dt.total_seconds() / 3600.0
        frames.append(f)
    return pd.concat(frames).reset_index()


def summary(results: dict[str, ReplayResult]) -> pd.DataFrame:
    """One row per policy (columns in the module doc)."""
    per_job = job_metrics(results)
    base_kg = float(results[BASELINE].jobs["emissions_kg"].sum())
    oracle_kg = float(results["oracle"].jobs["emissions_kg"].sum()) \
        if "oracle" in results else np.nan
    rows = []
    for name, res in results.items():
        f = per_job[per_job["policy"] == name]
        kg = float(f["emissions_kg"].sum())
        delay = f["delay_h"].dropna()
        oracle_saving = base_kg - oracle_kg
        rows.append({
            "policy": name,
            "jobs": len(f),
            "emissions_kg": kg,
            "saving_pct": 100.0 * (1.0 - kg / base_kg) if base_kg > 0 else np.nan,
            "delay_mean_h": float(delay.mean()) if len(delay) else np.nan,
            "delay_p95_h": float(np.percentile(delay, 95)) if len(delay) else np.nan,
            "interruptions": int(f["interruptions"].sum()),
            "overhead_h": float(f["overhead_h"].sum()),
            "energy_kwh": float(f["energy_kwh"].sum()),
            "cost_usd": float(f["cost_usd"].sum(min_count=1)),
            "misses": int(f["missed"].sum()),
            "oracle_share_pct": 100.0 * (base_kg - kg) / oracle_saving
            if oracle_saving > 1e-12 else np.nan,
            "seconds": res.seconds,
        })
    return pd.DataFrame(rows)
