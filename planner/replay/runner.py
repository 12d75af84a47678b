"""Glue for the CLI and scripts: load intensities and prices from a source, run policies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, RequestError, param
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.data.intensity.resample import resample
from greenepoch.data.intensity.source import IntensitySource, source_for
from greenepoch.data.prices import PriceSource
from greenepoch.planner.replay.engine import Compiled, ReplayResult, Scenario, run_replay
from greenepoch.planner.replay.jobs import ReplayJob
from greenepoch.planner.replay.policies import get_policy

HISTORY = pd.Timedelta("90D")


def parse_day(value: str, field: str) -> pd.Timestamp:
    """``YYYY-MM-DD`` (midnight UTC) or ISO 8601 with an offset."""
    from greenepoch.data.timeparse import utc

    text = str(value).strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            return pd.Timestamp(text, tz="UTC")
        except ValueError:
            pass
    return utc(text, field)


def parse_capacity(text: str, zones: Sequence[str]) -> dict[str, int]:
    """``256`` (every zone) or ``DE=512,GB=128`` (others get 0); keys may be cloud
    regions."""
    from greenepoch.planner.replay.jobs import zone_id

    try:
        if "=" not in text:
            return {z: int(text) for z in zones}
        out = {z: 0 for z in zones}
        for part in text.split(","):
            key, value = part.split("=", 1)
            out[zone_id(key.strip())] = int(value)
    except ValueError:
        raise RequestError(
            f"{param('capacity')} {text!r}; give GPUs per zone as 256 or DE=512,GB=128"
        ) from None
    if any(v < 0 for v in out.values()):
        raise RequestError(f"{param('capacity')} {text!r} has a negative number of GPUs; "
                           "give 0 or more")
    return out


def replay_slot(step: pd.Timedelta, slot: str | None = None) -> str:
    """The slot a replay runs on: ``slot`` if given, else the data's own ``step`` when
    it is a plan slot (15 min, 30 min, 1 h), else the shortest slot longer than it
    (5-minute data replays on 15-minute slots)."""
    if slot is not None:
        if slot not in SLOTS:
            raise RequestError(f"{param('slot')} {slot!r}; use one of {', '.join(SLOTS)}")
        return slot
    return next(name for name, length in SLOTS.items() if length >= step)


def load_actual(zones: Sequence[str], start: pd.Timestamp, end: pd.Timestamp, *,
                data: str | Path | IntensitySource | None, signal: str = "direct",
                history: pd.Timedelta = HISTORY, slot: str | None = None,
                ) -> tuple[pd.DataFrame, IntensitySource]:
    """Intensities over ``[start - history, end)`` (history clipped to the data start)
    from ``data`` (a source, or a data folder / None: :func:`source_for`), on the slots
    :func:`replay_slot` picks (resampled by the energy-weighted rule,
    :mod:`~greenepoch.data.intensity.resample`, when the data's step differs), and
    the source they came from."""
    source = source_for(data)
    loaded = source.load(list(zones), start - history, end, signal=signal, slot=None,
                         clip_start=True)
    chosen = replay_slot(loaded.step, slot)
    if loaded.step != SLOTS[chosen]:
        loaded = resample(loaded, chosen)
    first = loaded.values.index[0]
    if start < first + pd.Timedelta("7D"):
        raise DataError(
            f"{source.describe()} starts {first.date()}; the replay needs a week of history "
            f"before {start.date()}. Start the replay at least 7 days after the data start"
        )
    return loaded.values, source


def load_prices(source: IntensitySource | PriceSource | None, zones: Sequence[str],
                index: pd.DatetimeIndex) -> pd.DataFrame | None:
    """USD/MWh per zone on ``index`` from the source's prices (the market of each zone
    from the region catalog; NaN outside a market's files); None when no zone has
    prices.  Prices are hourly: a 15- or 30-minute slot takes the price of the hour it
    falls in (going finer by the energy-weighted rule)."""
    prices = source.prices if isinstance(source, IntensitySource) else source
    if prices is None:
        return None
    cols = {}
    for zone in zones:
        series = prices.zone(zone)
        if series is None or series.empty:
            continue
        hourly = series.resample("1h").mean()
        cols[zone] = hourly.reindex(index.floor("1h")).to_numpy()
    if not cols:
        return None
    return pd.DataFrame(cols, index=index).reindex(columns=list(zones))


def run_policies(scenario: Scenario, policies: Sequence[str],
                 progress: Callable[[str, int], Callable[[int], None]] | None = None,
                 settings: dict[str, dict] | None = None,
                 ) -> dict[str, ReplayResult]:
    """Replay each policy (run-now always first: every metric is relative to it).
    ``settings`` maps a policy name to keyword arguments of its constructor."""
    names = ["run-now"] + [p for p in policies if p != "run-now"]
    settings = settings or {}
    for name in names:
        get_policy(name, **settings.get(name, {}))  # bad names fail before any work
    compiled = Compiled(scenario)
    out = {}
    for name in names:
        tick = progress(name, compiled.t1 - compiled.t0) if progress else None
        out[name] = run_replay(compiled, get_policy(name, **settings.get(name, {})),
                               progress=tick)
    return out


def to_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready records: NaN -> None, timestamps -> ISO 8601."""
    out = []
    for row in frame.to_dict("records"):
        rec = {}
        for k, v in row.items():
            if isinstance(v, pd.Timestamp):
                v = None if pd.isna(v) else v.isoformat()
            elif isinstance(v, float | np.floating):
                v = None if np.isnan(v) else float(v)
            elif isinstance(v, np.integer):
                v = int(v)
            elif isinstance(v, np.bool_):
                v = bool(v)
            elif v is pd.NaT:
                v = None
            rec[k] = v
        out.append(rec)
    return out


def jobs_zones(jobs: Sequence[ReplayJob]) -> list[str]:
    return sorted({j.zone for j in jobs})
