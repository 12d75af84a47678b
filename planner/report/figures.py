"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Every function takes plain frames (UTC ``time`` index, one column per zone, in
gCO2eq/kWh; or the tidy what-if rows) and never touches files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: reports are rendered headless

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CMAP = "RdYlGn_r"  # low carbon green, high red
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DPI = 100


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def hour_month(values: pd.Series) -> pd.DataFrame:
    """Mean intensity by hour of day (UTC, rows 0..23) and month (columns 1..12)."""
    idx = pd.DatetimeIndex(values.index)
    frame = pd.DataFrame({"v": values.to_numpy(dtype=float), "h": idx.hour, "m": idx.month})
    table = frame.pivot_table(index="h", columns="m", values="v", aggfunc="mean")
    return table.reindex(index=range(24), columns=range(1, 13))


def intensity_heatmaps(values: pd.DataFrame, title: str = "") -> bytes:
    """One heatmap per zone: hour of day (UTC) x month, on a shared colour scale."""
    zones = [str(z) for z in values.columns]
    tables = {z: hour_month(values[z]) for z in zones}
    vmax = max(float(np.nanmax(t.to_numpy())) for t in tables.values()) if tables else 1.0
    cols = min(3, len(zones))
    rows = -(-len(zones) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False,
                             constrained_layout=True)
    image = None
    for ax, zone in zip(axes.flat, zones, strict=False):
        image = ax.imshow(tables[zone].to_numpy(), aspect="auto", origin="lower", cmap=CMAP,
                          vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(zone)
        ax.set_xticks(range(0, 12, 2), MONTHS[::2])
        ax.set_yticks(range(0, 24, 6))
        ax.set_ylabel("hour of day (UTC)")
    for ax in list(axes.flat)[len(zones):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, label="gCO2eq/kWh", shrink=0.8)
    if title:
        fig.suptitle(title)
    return to_png(fig)


def gantt(segments: pd.DataFrame, backdrop: pd.DataFrame | None, title: str = "") -> bytes:
    """The plan across zones: one lane per (zone, job), bars where the job runs, over
    the zone's intensity as a colour strip.

    ``segments``: columns job, zone, start, end (UTC), gpus.  ``backdrop``: hourly
    intensities (UTC ``time`` index, one column per zone) or None.
    """
    zones = list(dict.fromkeys([*(backdrop.columns if backdrop is not None else []),
                                *segments["zone"]]))
    lanes = [(z, j) for z in zones for j in sorted(segments.loc[segments["zone"] == z, "job"]
                                                   .unique()) or [""]]
    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.55 * len(lanes)), constrained_layout=True)
    image = None
    if backdrop is not None and len(backdrop):
        step = backdrop.index[1] - backdrop.index[0] if len(backdrop) > 1 else pd.Timedelta("1h")
        edges = [*backdrop.index, backdrop.index[-1] + step]
        x = mdates.date2num(pd.DatetimeIndex(edges).tz_convert(None))
        vmax = float(np.nanmax(backdrop.to_numpy())) or 1.0
        for i, (zone, _) in enumerate(lanes):
            if zone in backdrop:
                row = backdrop[zone].to_numpy(dtype=float)[None, :]
                image = ax.pcolormesh(x, [i - 0.5, i + 0.5], row, cmap=CMAP, vmin=0, vmax=vmax,
                                      alpha=0.55, shading="flat")
    for i, (zone, job) in enumerate(lanes):
        part = segments[(segments["zone"] == zone) & (segments["job"] == job)]
        for seg in part.itertuples(index=False):
            start = mdates.date2num(pd.Timestamp(seg.start).tz_convert(None))
            end = mdates.date2num(pd.Timestamp(seg.end).tz_convert(None))
            ax.barh(i, end - start, left=start, height=0.5, color="#1f3b73",
                    edgecolor="white", linewidth=0.5)
    ax.set_yticks(range(len(lanes)), [f"{z} · {j}" if j else z for z, j in lanes])
    ax.set_ylim(-0.5, len(lanes) - 0.5)
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    if image is not None:
        fig.colorbar(image, ax=ax, label="gCO2eq/kWh", pad=0.01)
    ax.set_title(title or "plan: where and when each job runs")
    return to_png(fig)


def tradeoff(curve: pd.DataFrame, x: str, y: str, label: str, xlabel: str, ylabel: str,
             title: str) -> bytes:
    """A curve of ``y`` against ``x``, each point annotated with its ``label``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    ax.plot(curve[x], curve[y], "o-", color="#1f3b73")
    for row in curve.itertuples(index=False):
        text = getattr(row, label)
        ax.annotate("none" if text is None or (isinstance(text, float) and np.isnan(text))
                    else f"{text:g}", (getattr(row, x), getattr(row, y)),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return to_png(fig)


def pareto(rows: pd.DataFrame, front: pd.DataFrame, objectives: Sequence[str]) -> bytes:
    """Every scenario as emissions against delay (coloured by cost when known), the
    Pareto front highlighted."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6), constrained_layout=True)
    color = "cost_usd" in objectives
    points = ax.scatter(rows["delay_mean_h"], rows["emissions_kg"], s=22, alpha=0.6,
                        c=rows["cost_usd"] if color else "#9aa5b1",
                        cmap="viridis" if color else None, label="scenario")
    if color:
        fig.colorbar(points, ax=ax, label="cost (USD)")
    ordered = front.sort_values("delay_mean_h")
    ax.plot(ordered["delay_mean_h"], ordered["emissions_kg"], "D", mfc="none", mec="#c0392b",
            ms=9, mew=1.6, label="Pareto front")
    ax.set_xlabel("completion delay, mean (h)")
    ax.set_ylabel("emissions (kg CO2eq)")
    ax.set_title("carbon-time" + ("-cost" if color else "") + " Pareto front")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return to_png(fig)


def ranked_bars(table: pd.DataFrame) -> bytes:
    """Best zone and season: mean emissions per (zone set, season), best first."""
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.32 * len(table)), constrained_layout=True)
    labels = [f"{z} · {s}" for z, s in zip(table["zones"], table["season"], strict=True)]
    ax.barh(range(len(table)), table["emissions_kg"], color="#2e8b57")
    ax.set_yticks(range(len(table)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("mean emissions (kg CO2eq)")
    ax.set_title("best zone and season")
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)
