"""Built-in views of a sweep's rows (a frame from :func:`results_frame`).

Each view returns a DataFrame and is empty when its axis was not swept.  The views
that average (zone set x season, threshold, slack) compare like with like: a row's
means are over the *paired* scenarios, those whose other axis values (zone set,
start, slack, ...) planned (``status == "ok"``) under every value of the view's
axis, so every row averages the same scenarios.  ``scenarios`` counts them;
``no_plan`` counts the row's scenarios without a plan (whatever the reason: see
:func:`outcomes`), and ``left_out`` those left out of its means (no plan here, or
under another value).  :func:`outcomes` keeps apart why rows have no plan: proved
infeasible, no plan within the time limit, data missing.

Every view is split by forecast mode (``forecast``: ``oracle`` or a model): plans on
perfect foresight and plans on a forecast are never averaged, ranked or compared
together; a view has one block of rows per mode, in the order the modes were swept,
and pairs scenarios within its mode.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from greenepoch.planner.whatif.results import STATUSES

PARETO_OBJECTIVES = ("emissions_kg", "delay_mean_h", "cost_usd")
# a scenario's axis columns (spec.Scenario.labels), in table order
AXES = ("zones", "season", "start", "slack_h", "threshold", "overhead_min", "forecast")
# columns of the averaging views that count scenarios (printed as whole numbers)
VIEW_COUNTS = ("rank", "scenarios", "no_plan", "left_out", "ties")


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "status" not in frame:
        return frame.iloc[0:0]
    return frame[frame["status"] == "ok"]


def _key(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """One string per row naming its values of ``cols`` (NaN and None included)."""
    rows = frame[cols].itertuples(index=False) if cols else [()] * len(frame)
    return pd.Series(["\x1f".join(map(str, row)) for row in rows], index=frame.index)


def _paired(frame: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    """Per value of ``by``: the means of ``cols`` over the paired scenarios, and the
    counts ``scenarios``, ``no_plan`` and ``left_out`` (module docstring)."""
    others = [c for c in AXES if c in frame and c not in by]
    pairs = frame[others].copy()
    if "season" in by and "start" in others:
        # each season has its own start dates: pair the n-th start of every season
        nth = {season: {t: i for i, t in enumerate(sorted(starts.unique()))}
               for season, starts in frame.groupby("season")["start"]}
        pairs["start"] = [nth[s][t] for s, t in zip(frame["season"], frame["start"],
                                                    strict=True)]
    cell, pair = _key(frame, by), _key(pairs, others)
    ok = frame["status"].eq("ok")
    planned = cell[ok].groupby(pair[ok]).nunique()
    used = ok & pair.isin(planned.index[planned == cell.nunique()])
    work = frame[by].copy()
    present = [c for c in cols if c in frame]
    for col in present:
        work[col] = pd.to_numeric(frame[col], errors="coerce").where(used)
    work["scenarios"] = used.astype(int)
    work["no_plan"] = (~ok).astype(int)
    work["left_out"] = (~used).astype(int)
    groups = work.groupby(by, sort=False, dropna=False)
    out = groups[present].mean()
    out[["scenarios", "no_plan", "left_out"]] = groups[["scenarios", "no_plan",
                                                        "left_out"]].sum()
    return out.reset_index()


def _modes(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame's rows per forecast mode, in the order the modes first appear."""
    if "forecast" not in frame:
        return [("-", frame)]
    labels = frame["forecast"].astype(object).where(frame["forecast"].notna(), "-")
    return [(str(mode), frame[labels == mode]) for mode in dict.fromkeys(labels)]


def _per_mode(frame: pd.DataFrame, by: list[str], cols: list[str]) -> list[pd.DataFrame]:
    """:func:`_paired` within each forecast mode, each block with its ``forecast``
    column first (empty blocks, a mode without a planned row, left out)."""
    blocks = []
    for mode, part in _modes(frame):
        if _ok(part).empty:
            continue
        block = _paired(part, by, cols)
        block.insert(0, "forecast", mode)
        blocks.append(block)
    return blocks


def _swept(frame: pd.DataFrame, col: str) -> bool:
    return col in frame and frame[col].nunique(dropna=False) >= 2


def best_zone_season(frame: pd.DataFrame) -> pd.DataFrame:
    """Zone set x season, ranked by mean emissions over the paired scenarios (lowest
    first), and how much cleaner the best row is than each: ``best_cleaner_kg`` =
    emissions_kg - the best row's, ``best_cleaner_pct`` = 100 x that / emissions_kg."""
    if _ok(frame).empty or not (_swept(frame, "zones") or _swept(frame, "season")):
        return pd.DataFrame()
    cols = ["emissions_kg", "savings_pct", "delay_mean_h", "cost_usd"]
    blocks = []
    for block in _per_mode(frame, ["zones", "season"], cols):
        block = block.sort_values(["emissions_kg", "zones", "season"], kind="stable",
                                  na_position="last").reset_index(drop=True)
        emissions = block["emissions_kg"]
        block["rank"] = pd.Series(np.arange(1, len(block) + 1),
                                  dtype="Int64").where(emissions.notna())
        block["best_cleaner_kg"] = emissions - emissions.min()
        block["best_cleaner_pct"] = (100 * block["best_cleaner_kg"]
                                     / emissions).where(emissions > 0)
        blocks.append(block)
    out = pd.concat(blocks, ignore_index=True)
    if "cost_usd" in out and out["cost_usd"].isna().all():
        out = out.drop(columns="cost_usd")
    order = ["forecast", "rank", "zones", "season", "emissions_kg", "best_cleaner_kg",
             "best_cleaner_pct"]
    return out[order + [c for c in out if c not in order]]


def threshold_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Carbon threshold -> mean emissions and completion delay over the paired
    scenarios (the trade-off curve); ``none`` (no threshold, NaN) sorts last."""
    if _ok(frame).empty or not _swept(frame, "threshold"):
        return pd.DataFrame()
    cols = ["emissions_kg", "savings_pct", "delay_mean_h", "delay_p95_h", "interruptions"]
    blocks = [block.sort_values("threshold", na_position="last")
              for block in _per_mode(frame, ["threshold"], cols)]
    return pd.concat(blocks, ignore_index=True)


def slack_returns(frame: pd.DataFrame) -> pd.DataFrame:
    """Deadline slack -> mean savings over the paired scenarios, and the extra saving
    per extra hour of slack (``marginal_pct_per_h``): diminishing returns show as it
    falls."""
    if _ok(frame).empty or not _swept(frame, "slack_h"):
        return pd.DataFrame()
    blocks = []
    for block in _per_mode(frame, ["slack_h"], ["emissions_kg", "savings_pct",
                                                 "delay_mean_h"]):
        block = block.sort_values("slack_h")
        block["marginal_pct_per_h"] = block["savings_pct"].diff() / block["slack_h"].diff()
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def paired_note(view: pd.DataFrame, axis: str) -> str:
    """One line saying which scenarios a paired view's means are over (per forecast
    mode when the view has more than one)."""
    modes = [(None, view)] if "forecast" not in view else \
        [(mode, view[view["forecast"] == mode]) for mode in dict.fromkeys(view["forecast"])]
    parts = []
    for mode, block in modes:
        same = int(block["scenarios"].max()) if len(block) else 0
        left = int(block["left_out"].sum())
        counts = (f"the same {same} scenarios, those that planned under every {axis}; "
                  f"{left} of {same * len(block) + left} rows left out")
        parts.append(counts if len(modes) == 1 else f"{mode}: {counts}")
    lead = "every row averages" if len(modes) == 1 else \
        "within each forecast mode (never averaged together) every row averages"
    return (f"{lead} {'; '.join(parts)} (no plan under some {axis}: see no_plan)")


def planned_on(frame: pd.DataFrame) -> str:
    """What the plans were made on, with the number of rows of each: ``oracle``
    (perfect foresight) or a forecast model."""
    if frame.empty or "forecast" not in frame:
        return "-"
    counts = frame["forecast"].value_counts(sort=False)
    names = {"oracle": "oracle (perfect foresight)"}
    return ", ".join(f"{names.get(str(name), f'{name} forecast')} {n}"
                     for name, n in counts.items())


def outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without a plan by why (``status``, in :data:`STATUSES` order; statuses it
    does not know last): ``outcome`` says what the status means, ``rows`` how many,
    ``first`` the first such scenario (zone set and start) and ``message`` its reason.
    Empty when every row planned."""
    if frame.empty or "status" not in frame:
        return pd.DataFrame()
    failed = frame[frame["status"] != "ok"]
    if "index" in failed:
        failed = failed.sort_values("index", kind="stable")
    order = list(STATUSES) + sorted(set(failed["status"].astype(str)) - set(STATUSES))
    out = []
    for status in order:
        rows = failed[failed["status"].astype(str) == status]
        if rows.empty:
            continue
        first = rows.iloc[0]
        out.append({"status": status, "outcome": STATUSES.get(status, status),
                    "rows": len(rows),
                    "first": f"{first.get('zones', '-')} {first.get('start', '-')}",
                    "message": str(first.get("message") or "")})
    return pd.DataFrame(out)


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
    """Per forecast mode, the points no other scenario of that mode beats on every
    objective (carbon, time, cost), exact ties collapsed.

    An objective some row lacks (cost where a zone has no prices) is left out, so
    that every scenario competes on the same terms.  Scenarios with exactly the same
    objective values are one point: its row carries the labels and ``savings_pct`` of
    the first of them (lowest ``index``) and ``ties``, how many scenarios it stands
    for.  Indexed by that first scenario; sorted by mode, then the objectives.
    """
    ok = _ok(frame)
    used = [c for c in objectives if c in ok and ok[c].notna().all()]
    if ok.empty or not used:
        return pd.DataFrame()
    labels = [c for c in ("forecast", *AXES) if c in ok]
    labels = list(dict.fromkeys(labels))  # forecast first, as in the other views
    blocks = []
    for _, rows in _modes(ok):
        if "index" in rows:
            rows = rows.sort_values("index", kind="stable")
        keep = ~dominated(rows[used].to_numpy(dtype=float))
        front = rows.loc[keep, labels + used + ["savings_pct"]]
        ties = front.groupby(used, sort=False)[used[0]].transform("size")
        front = front.assign(ties=ties.astype(int))
        front = front[~front.duplicated(subset=used, keep="first")]
        blocks.append(front.sort_values(used, kind="stable"))
    return pd.concat(blocks)


# the averaging views by title, and the axis they pair scenarios across
PAIRED = {"best zone and season": "zone set and season",
          "carbon threshold trade-off": "threshold",
          "diminishing returns of slack": "slack"}


def views(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every built-in view by title (empty views left out)."""
    out = {
        "best zone and season": best_zone_season(frame),
        "carbon threshold trade-off": threshold_curve(frame),
        "diminishing returns of slack": slack_returns(frame),
        "carbon-time-cost Pareto front": pareto_front(frame),
    }
    return {title: view for title, view in out.items() if not view.empty}
