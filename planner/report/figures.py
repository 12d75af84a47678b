"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Every function takes plain frames (UTC ``time`` index, one column per zone, in
gCO2eq/kWh; or the tidy what-if rows) and never touches files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

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


def gantt(segments: pd.DataFrame, backdrop: pd.DataFrame | None, title: str = "", *,
          deadlines: Mapping[str, pd.Timestamp] | None = None,
          forecast: pd.DataFrame | None = None, backdrop_is: str = "what happened") -> bytes:
    """:func:`gantt_figure` as PNG."""
    return to_png(gantt_figure(segments, backdrop, title, deadlines=deadlines,
                               forecast=forecast, backdrop_is=backdrop_is))


def _strip(ax: plt.Axes, values: pd.Series, lane: int, vmax: float) -> Any:
    """One zone's intensities as a colour strip across ``lane``."""
    index = pd.DatetimeIndex(values.index)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta("1h")
    edges = mdates.date2num(pd.DatetimeIndex([*index, index[-1] + step]).tz_convert(None))
    row = values.to_numpy(dtype=float)[None, :]
    return ax.pcolormesh(edges, [lane - 0.5, lane + 0.5], row, cmap=CMAP, vmin=0, vmax=vmax,
                         shading="flat")


def gantt_figure(segments: pd.DataFrame, backdrop: pd.DataFrame | None, title: str = "", *,
                 deadlines: Mapping[str, pd.Timestamp] | None = None,
                 forecast: pd.DataFrame | None = None,
                 backdrop_is: str = "what happened") -> Figure:
    """The plan across zones: one lane per (zone, job), bars where the job runs, over
    the zone's actual intensity as a colour strip; a red tick at each job's deadline.

    ``segments``: columns job, zone, start, end (UTC), gpus.  ``backdrop``: hourly
    intensities (UTC ``time`` index, one column per zone) or None.  ``deadlines``: job
    -> UTC deadline.  ``forecast``: for a plan made on a forecast, the forecast it was
    planned on (same layout); each zone then gets a lane of it above its jobs.  One
    colour scale (horizontal bar below) for actual and forecast.  ``backdrop_is``: what
    the backdrop is, on the colour bar (a live plan's is the forecast it was made on:
    nothing had happened yet).
    """
    zones = list(dict.fromkeys([*(backdrop.columns if backdrop is not None else []),
                                *segments["zone"]]))
    lanes: list[tuple[str, str]] = []  # (zone, job); job "" for a forecast lane
    for z in zones:
        if forecast is not None and z in forecast:
            lanes.append((z, ""))
        jobs = sorted(segments.loc[segments["zone"] == z, "job"].unique())
        lanes += [(z, j) for j in jobs] or [(z, " ")]
    fig, ax = plt.subplots(figsize=(11, max(3.6, 1.9 + 0.5 * len(lanes))),
                           constrained_layout=True)
    frames = [f for f in (backdrop, forecast) if f is not None and len(f)]
    vmax = max([float(np.nanmax(f.to_numpy(dtype=float))) for f in frames] or [1.0]) or 1.0
    image = None
    for i, (zone, job) in enumerate(lanes):
        source = forecast if job == "" else backdrop
        if source is not None and len(source) and zone in source:
            image = _strip(ax, source[zone], i, vmax)
    for i, (zone, job) in enumerate(lanes):
        part = segments[(segments["zone"] == zone) & (segments["job"] == job)]
        for first, last in zip(part["start"].astype(str), part["end"].astype(str), strict=True):
            start = mdates.date2num(pd.Timestamp(first).tz_convert(None))
            end = mdates.date2num(pd.Timestamp(last).tz_convert(None))
            ax.barh(i, end - start, left=start, height=0.45, color="#1f3b73",
                    edgecolor="white", linewidth=0.8)
    marked = False
    for i, (_, job) in enumerate(lanes):
        if deadlines and job in deadlines:
            at = mdates.date2num(pd.Timestamp(deadlines[job]).tz_convert(None))
            ax.plot([at, at], [i - 0.48, i + 0.48], color="#c0392b", linewidth=2.6,
                    solid_capstyle="butt", label=None if marked else "deadline")
            ax.plot([at], [i - 0.48], marker="v", color="#c0392b", markersize=8)
            marked = True
    names = []
    for zone, job in lanes:
        if job == "":
            names.append(f"{zone} · forecast planned on")
        elif job == " ":
            names.append(zone + (" (actual)" if forecast is not None else ""))
        else:
            names.append(f"{zone} · {job}" + (" (actual)" if forecast is not None else ""))
    ax.set_yticks(range(len(lanes)), names)
    ax.set_ylim(-0.5, len(lanes) - 0.5)
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    if marked:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    if image is not None:
        bar = fig.colorbar(image, ax=ax, orientation="horizontal", location="bottom",
                           fraction=0.1, aspect=45, pad=0.02, shrink=0.7)
        bar.set_label("carbon intensity (gCO2eq/kWh): "
                      + (f"forecast lanes, what the plan saw; job lanes, {backdrop_is}"
                         if forecast is not None else backdrop_is), fontsize=9)
        bar.ax.tick_params(labelsize=9)
    ax.set_title(title or "plan: where and when each job runs")
    return fig


MODE_STYLE = {"oracle": ("o", "#1f3b73")}  # perfect foresight: circles, dark blue
FORECAST_STYLES = [("^", "#c0392b"), ("s", "#2e8b57"), ("v", "#8e44ad"), ("D", "#d35400")]


def _by_mode(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str, str]]:
    """``(mode, rows, marker, colour)`` per forecast mode, in order of appearance."""
    if "forecast" not in frame:
        return [("", frame, *MODE_STYLE["oracle"])]
    out, others = [], iter(FORECAST_STYLES * 4)
    for mode in dict.fromkeys(frame["forecast"]):
        marker, colour = MODE_STYLE.get(str(mode)) or next(others)
        out.append((str(mode), frame[frame["forecast"] == mode], marker, colour))
    return out


def mode_label(mode: str) -> str:
    return "oracle (perfect foresight)" if mode == "oracle" else f"{mode} forecast"


def include_zero(ax: plt.Axes, values: Sequence[float] | pd.Series, axis: str = "y") -> None:
    """Limit an axis to take in zero and ``values`` (with a margin), so that it does not
    magnify differences that are small against the values themselves."""
    v = pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna()
    lo, hi = min(float(v.min()) if len(v) else 0.0, 0.0), max(float(v.max()) if len(v) else 0.0,
                                                              0.0)
    pad = 0.06 * (hi - lo) or 1.0
    below = lo - pad if lo < 0 else (-pad / 2 if (v == 0).any() else 0.0)  # whole markers
    (ax.set_ylim if axis == "y" else ax.set_xlim)(below, hi + pad if hi > 0 else pad / 2)


def spread_note(curve: pd.DataFrame, y: str, unit: str) -> str:
    """Per forecast mode, ``max - min`` of ``y`` and that as % of its largest value."""
    parts = []
    for mode, part, _, _ in _by_mode(curve):
        v = pd.to_numeric(part[y], errors="coerce").dropna()
        if v.empty:
            continue
        delta, top = float(v.max() - v.min()), float(v.abs().max())
        pct = f" ({100 * delta / top:.3g} %)" if top > 0 else ""
        parts.append(f"{mode + ' ' if mode else ''}{delta:.3g} {unit}{pct}")
    return "max - min: " + "; ".join(parts) if parts else ""


def _point_labels(part: pd.DataFrame, x: str, y: str, label: str) -> list[tuple[float, float,
                                                                            str]]:
    """One annotation per distinct point, naming every label drawn there."""
    out: dict[tuple[float, float], list[str]] = {}
    for px, py, text in zip(part[x], part[y], part[label], strict=True):
        none = text is None or (isinstance(text, float) and np.isnan(text))
        out.setdefault((float(px), float(py)), []).append("none" if none else f"{text:g}")
    return [(px, py, ", ".join(texts)) for (px, py), texts in out.items()]


def tradeoff(curve: pd.DataFrame, x: str, y: str, label: str, xlabel: str, ylabel: str,
             title: str, unit: str = "") -> bytes:
    """:func:`tradeoff_figure` as PNG."""
    return to_png(tradeoff_figure(curve, x, y, label, xlabel, ylabel, title, unit))


def tradeoff_figure(curve: pd.DataFrame, x: str, y: str, label: str, xlabel: str,
                    ylabel: str, title: str, unit: str = "") -> Figure:
    """A curve of ``y`` against ``x`` per forecast mode, each point annotated with its
    ``label``; both axes take in zero.  With a ``unit``, the title's second line
    gives the spread of ``y`` within each mode (how small a visible gap is)."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6), constrained_layout=True)
    modes = _by_mode(curve)
    for mode, part, marker, colour in modes:
        ax.plot(part[x], part[y], marker=marker, linestyle="-", color=colour,
                label=mode_label(mode) if mode else None)
        for px, py, text in _point_labels(part, x, y, label):
            ax.annotate(text, (px, py), textcoords="offset points", xytext=(6, 5),
                        fontsize=8, color=colour)
    include_zero(ax, curve[x], "x")
    include_zero(ax, curve[y], "y")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    note = spread_note(curve, y, unit) if unit else ""
    if note:
        import textwrap

        note = "\n".join(textwrap.wrap(note, 70))
        ax.set_title(f"{title}\n{note}", fontsize=10)
    else:
        ax.set_title(title)
    if len(modes) > 1 or (modes and modes[0][0]):
        ax.legend(loc="lower right", fontsize=8, title="planned on", title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def pareto(rows: pd.DataFrame, front: pd.DataFrame, objectives: Sequence[str]) -> bytes:
    """:func:`pareto_figure` as PNG."""
    return to_png(pareto_figure(rows, front, objectives))


def pareto_figure(rows: pd.DataFrame, front: pd.DataFrame,
                  objectives: Sequence[str]) -> Figure:
    """Every scenario as emissions against delay (coloured by cost when known), one
    marker per forecast mode, each mode's Pareto front highlighted; a front point
    that stands for several tied scenarios is labelled with their number."""
    fig, ax = plt.subplots(figsize=(7.2, 4.8), constrained_layout=True)
    color = "cost_usd" in objectives
    points = None
    fronts = {mode: part for mode, part, _, _ in _by_mode(front)}
    for n, (mode, part, marker, colour) in enumerate(_by_mode(rows)):
        points = ax.scatter(part["delay_mean_h"], part["emissions_kg"], s=24, alpha=0.6,
                            marker=marker, c=part["cost_usd"] if color else colour,
                            cmap="viridis" if color else None,
                            vmin=rows["cost_usd"].min() if color else None,
                            vmax=rows["cost_usd"].max() if color else None,
                            label=f"scenario, {mode_label(mode)}" if mode else "scenario")
        best = fronts.get(mode)
        if best is None or best.empty:
            continue
        ordered = best.sort_values("delay_mean_h")
        ax.plot(ordered["delay_mean_h"], ordered["emissions_kg"], linestyle="none",
                marker=marker, mfc="none", mec=colour, ms=11, mew=1.8,
                label=f"Pareto front, {mode_label(mode)}" if mode else "Pareto front")
        if "ties" in ordered:
            for ties, dx, dy in zip(ordered["ties"].astype(int), ordered["delay_mean_h"],
                                    ordered["emissions_kg"], strict=True):
                if ties > 1:
                    ax.annotate(f"×{ties}", (dx, dy), fontsize=8, textcoords="offset points",
                                xytext=(8, -12 + 14 * (n % 2)), color=colour)
    if color and points is not None:
        fig.colorbar(points, ax=ax, label="cost (USD)")
    include_zero(ax, rows["delay_mean_h"], "x")
    include_zero(ax, rows["emissions_kg"], "y")
    ax.set_xlabel("completion delay, mean (h)")
    ax.set_ylabel("emissions (kg CO2eq)")
    ax.set_title("carbon-time" + ("-cost" if color else "") + " Pareto front")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def ranked_bars(table: pd.DataFrame) -> bytes:
    """Best zone and season: mean emissions per (zone set, season), best first, one
    block of bars per forecast mode."""
    fig, ax = plt.subplots(figsize=(7.4, 0.9 + 0.32 * len(table)), constrained_layout=True)
    modes = _by_mode(table)
    several = len(modes) > 1
    labels: list[str] = []
    for mode, part, _, colour in modes:
        ys = range(len(labels), len(labels) + len(part))
        ax.barh(list(ys), part["emissions_kg"], color=colour if several else "#2e8b57",
                label=mode_label(mode) if several else None)
        labels += [f"{z} · {s}" for z, s in zip(part["zones"], part["season"], strict=True)]
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("mean emissions (kg CO2eq)")
    only = f", planned on {mode_label(modes[0][0])}" if modes and modes[0][0] and \
        not several else ""
    ax.set_title(f"best zone and season{only}")
    if several:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="planned on",
                  title_fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)
