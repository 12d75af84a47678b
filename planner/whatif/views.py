"""Built-in views of a sweep's rows (a frame from :func:`results_frame`).

Only rows with ``status == "ok"`` enter a view.  Each view returns a DataFrame and
is empty when its axis was not swept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PARETO_OBJECTIVES = ("emissions_kg", "delay_mean_h", "cost_usd")


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "status" not in frame:
        return frame.iloc[0:0]
    return frame[frame["status"] == "ok"]


def _mean(frame: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    present = [c for c in cols if c in frame]
    out = frame.groupby(by, sort=False, dropna=False)[present].mean()
    out["scenarios"] = frame.groupby(by, sort=False, dropna=False).size()
    return out.reset_index()


def best_zone_season(frame: pd.DataFrame) -> pd.DataFrame:
    """Zone set x season, ranked by mean emissions (lowest first); means over the
    other axes (start dates, slacks, ...)."""
    ok = _ok(frame)
    if ok.empty or (ok["zones"].nunique() < 2 and ok["season"].nunique() < 2):
        return pd.DataFrame()
    cols = ["emissions_kg", "savings_pct", "delay_mean_h", "cost_usd"]
    out = _mean(ok, ["zones", "season"], cols)
    out = out.sort_values(["emissions_kg", "zones", "season"], kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    if out["cost_usd"].isna().all():
        out = out.drop(columns="cost_usd")
    return out.reset_index(drop=True)


def threshold_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Carbon threshold -> mean emissions and completion delay (the trade-off curve);
    ``none`` (no threshold) sorts last."""
    ok = _ok(frame)
    if ok.empty or ok["threshold"].nunique(dropna=False) < 2:
        return pd.DataFrame()
    out = _mean(ok, ["threshold"], ["emissions_kg", "savings_pct", "delay_mean_h",
                                    "delay_p95_h", "interruptions"])
    return out.sort_values("threshold", na_position="last").reset_index(drop=True)


def slack_returns(frame: pd.DataFrame) -> pd.DataFrame:
    """Deadline slack -> mean savings, and the extra saving per extra hour of slack
    (``marginal_pct_per_h``): diminishing returns show as it falls."""
    ok = _ok(frame)
    if ok.empty or ok["slack_h"].nunique() < 2:
        return pd.DataFrame()
    out = _mean(ok, ["slack_h"], ["emissions_kg", "savings_pct", "delay_mean_h"])
    out = out.sort_values("slack_h").reset_index(drop=True)
    out["marginal_pct_per_h"] = out["savings_pct"].diff() / out["slack_h"].diff()
    return out


def dominated(points: np.ndarray) -> np.ndarray:
    """For each row of ``points`` (to minimise in every column): is another row at
    least as good everywhere and better somewhere?"""
    n = len(points)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        no_worse = (points <= points[i]).all(axis=1)
        better = (points < points[i]).any(axis=1)
        out[i] = bool((no_worse & better).any())
    return out


def pareto_front(frame: pd.DataFrame,
                 objectives: tuple[str, ...] = PARETO_OBJECTIVES) -> pd.DataFrame:
    """The scenarios no other scenario beats on every objective (carbon, time, cost).

    An objective some row lacks (cost where a zone has no prices) is left out, so
    that every scenario competes on the same terms.  Sorted by the objectives.
    """
    ok = _ok(frame)
    used = [c for c in objectives if c in ok and ok[c].notna().all()]
    if ok.empty or not used:
        return pd.DataFrame()
    rows = ok
    keep = ~dominated(rows[used].to_numpy(dtype=float))
    labels = [c for c in ("zones", "season", "start", "slack_h", "threshold", "overhead_min",
                          "forecast") if c in rows]
    out = rows.loc[keep, labels + used + ["savings_pct"]]
    return out.sort_values(used, kind="stable")


def views(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every built-in view by title (empty views left out)."""
    out = {
        "best zone and season": best_zone_season(frame),
        "carbon threshold trade-off": threshold_curve(frame),
        "diminishing returns of slack": slack_returns(frame),
        "carbon-time-cost Pareto front": pareto_front(frame),
    }
    return {title: view for title, view in out.items() if not view.empty}
