"""A replay from its inputs to its JSON document (docs/replay.md), without the CLI.

:func:`build_scenario` loads the intensities (with history) and prices from a source
and assembles the :class:`~greenepoch.planner.replay.engine.Scenario`;
:func:`replay_document` is the ``replay --json`` document;
:func:`sweep_values` is what the slack sweep runs on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.data.intensity.source import ClimatologySource, IntensitySource, source_for
from greenepoch.planner.replay.engine import ReplayResult, Scenario
from greenepoch.planner.replay.jobs import ReplayJob, generate_jobs
from greenepoch.planner.replay.runner import (
    load_actual,
    load_prices,
    parse_capacity,
    to_records,
)

HOUR = pd.Timedelta("1h")  # the CLI's --epoch and --forecast-every defaults


@dataclass(frozen=True)
class Assembled:
    """A scenario and where its intensities came from."""

    scenario: Scenario
    zones: list[str]
    source: IntensitySource

    @property
    def slot(self) -> str:
        """The slot length the replay ran on ('15min', '30min' or '1h')."""
        index = self.scenario.actual.index
        step = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else HOUR
        return next(name for name, length in SLOTS.items() if length == step)

    @property
    def origin(self) -> str:
        """``real`` or ``synthetic``: what the intensities are."""
        return "synthetic" if _synthetic(self.source) else "real"


def _synthetic(source: IntensitySource) -> bool:
    inner = getattr(source, "inner", source)  # a CachedSource is what it wraps
    return isinstance(inner, ClimatologySource)


def build_scenario(zones: Sequence[str], start: pd.Timestamp, end: pd.Timestamp, *,
                   jobs: Sequence[ReplayJob] | None = None, generate: str | None = None,
                   data: str | Path | IntensitySource | None = None,
                   signal: str = "direct", capacity: str = "512",
                   epoch: pd.Timedelta = HOUR, forecast: str = "default",
                   forecast_every: pd.Timedelta = HOUR, slot: str | None = None
                   ) -> Assembled:
    """The replay of ``jobs`` (or of jobs generated from the spec ``generate``) over
    ``[start, end)`` in ``zones``, on intensities and prices from ``data`` (a source,
    or a data folder / None: :func:`~greenepoch.data.intensity.source.source_for`).
    ``capacity``: GPUs per zone, ``256`` or ``DE=512,GB=128``.  ``slot``: '15min',
    '30min' or '1h' (None: the data's own step, :func:`~.runner.replay_slot`)."""
    zone_ids = list(zones)
    actual, source = load_actual(zone_ids, start, end, data=source_for(data), signal=signal,
                                 slot=slot)
    if jobs is None:
        if generate is None:
            raise DataError("no jobs to replay: give jobs or a generator spec")
        jobs = generate_jobs(generate, zone_ids, start, end)
    scenario = Scenario(
        actual=actual, start=start, end=end, jobs=tuple(jobs),
        capacity=parse_capacity(capacity, zone_ids),
        prices=load_prices(source, zone_ids, pd.DatetimeIndex(actual.index)),
        epoch=epoch, forecast=forecast, forecast_every=forecast_every,
    )
    return Assembled(scenario, zone_ids, source)


def replay_document(assembled: Assembled, results: dict[str, ReplayResult], *,
                    signal: str, summary: pd.DataFrame, per_job: pd.DataFrame
                    ) -> dict[str, Any]:
    """The ``replay --json`` document (docs/replay.md)."""
    sc = assembled.scenario
    return {
        "period": {"from": sc.start.isoformat(), "until": sc.end.isoformat()},
        "zones": assembled.zones, "signal": signal, "source": assembled.origin,
        "slot": assembled.slot,
        "forecast": sc.forecast, "n_jobs": len(sc.jobs),
        "summary": to_records(summary),
        # only policies with something to report (milp, oracle)
        "info": {name: res.info for name, res in results.items() if res.info},
        "jobs": to_records(per_job),
    }


def sweep_values(data: str | Path | IntensitySource | None, zones: Sequence[str] | None,
                 signal: str = "direct") -> pd.DataFrame:
    """Every observed hour of ``zones`` (None: every zone the source has), for the
    slack sweep; it needs real data."""
    source = source_for(data)
    if _synthetic(source):
        raise DataError(f"the slack sweep needs real data: pass {param('data_dir')} or set "
                        "GREENEPOCH_DATA to a folder of Electricity Maps exports")
    wanted = list(zones) if zones is not None else source.zones(signal)
    return source.load(wanted, None, None, signal=signal, slot=None).values
