"""The archive as an intensity source, and provider series turned into frames.

:class:`ArchiveSource` serves the actual intensities kept in an
:class:`~greenepoch.data.archive.store.Archive` like any other source (``name``
``archive``): what ``greenepoch.data.live`` falls back on when every provider is down,
with :attr:`ArchiveSource.fetched` telling how old the values it served are.

Provider series (:class:`~greenepoch.data.providers.records.Fetched`, archived or just
fetched) become :class:`~greenepoch.data.intensity.frame.IntensityData` the way the
readers treat export files: on the provider's own period, gaps up to
:data:`~greenepoch.data.intensity.validate.MAX_FILLED_GAP` interpolated in time and
flagged ``filled``, longer gaps refused; then brought to the asked slot by the one
resampling rule (:func:`~greenepoch.data.intensity.resample.resample`: energy-weighted
means going coarser, the covering period's value going finer).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import pandas as pd
from greenepoch.data.archive.store import Archive
from greenepoch.data.errors import DataError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.resample import resample, target_step
from greenepoch.data.intensity.source import IntensitySource
from greenepoch.data.intensity.validate import MAX_FILLED_GAP
from greenepoch.data.providers.base import utc_now
from greenepoch.data.providers.records import Fetched


class ArchiveSource(IntensitySource):
    """Actual intensities from ``archive`` (see the module docstring).

    A zone archived from several providers is read from one of them: the first of
    ``prefer`` that has values in the window, else the one with the most values there
    (``provider`` restricts the reads to one).  After each read, :attr:`fetched` maps
    every zone read to the newest fetch time of the values served, and
    :meth:`age` tells how old that is.
    """

    name = "archive"
    _coverage_hint = ", or fill the archive for that range first (greenepoch data pull)"

    def __init__(self, archive: Archive, *, provider: str | None = None,
                 prefer: Sequence[str] = (),
                 clock: Callable[[], pd.Timestamp] = utc_now) -> None:
        self.archive = archive
        self.provider = provider
        self.prefer = tuple(prefer)
        self.clock = clock
        self.fetched: dict[str, pd.Timestamp] = {}

    def series(self, zone: str, signal: str, start: pd.Timestamp | None = None,
               end: pd.Timestamp | None = None) -> Fetched | None:
        """The archived actuals of ``zone`` over ``[start, end)`` as one series of one
        provider at one period (the most common one among its rows), ``fetched`` the
        newest fetch among them; None when the archive has none."""
        rows = self.archive.actuals(zone, signal, start, end, provider=self.provider)
        if rows.empty:
            return None
        counts = rows["provider"].value_counts()
        chosen = next((p for p in self.prefer if p in counts.index), str(counts.index[0]))
        rows = rows[rows["provider"] == chosen]
        step = pd.Timedelta(rows["step"].value_counts().index[0])
        rows = rows[rows["step"] == step].sort_index()
        index = pd.DatetimeIndex(rows.index, name="time").tz_convert("UTC")
        return Fetched(
            provider=chosen, zone=zone, signal=signal, kind="actual", step=step,
            values=pd.Series(rows["value"].to_numpy(dtype=float), index=index, name=zone),
            estimated=pd.Series(rows["estimated"].to_numpy(dtype=bool), index=index,
                                name=zone),
            fetched=pd.Timestamp(rows["fetched"].max()).tz_convert("UTC"))

    def age(self, zone: str) -> pd.Timedelta | None:
        """How long ago the newest value served for ``zone`` was fetched."""
        fetched = self.fetched.get(zone)
        return None if fetched is None else self.clock() - fetched

    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        parts = {}
        for zone in zones:
            found = self.series(zone, signal, _floor(start, slot), end)
            if found is None:
                raise DataError(
                    f"{self.describe()} holds no {signal} intensities for {zone}"
                    f"{_window(start, end)}{self._coverage_hint}")
            parts[zone] = zone_frame(found, slot)
            self.fetched[zone] = found.fetched
        return join_zones(parts)

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        return (self.archive.shown, self.provider, self.prefer,
                super().cache_key(zones, start, end, signal, slot))

    def zones(self, signal: str = "direct") -> list[str]:
        summary = self.archive.summary()
        held = summary[(summary["signal"] == signal) & (summary["kind"] == "actual")]
        if self.provider is not None:
            held = held[held["provider"] == self.provider]
        return sorted({str(z) for z in held["zone"]})

    def describe(self) -> str:
        return f"the archive {self.archive.shown}"

    def __repr__(self) -> str:
        return f"ArchiveSource({self.archive.shown!r})"


def regular(fetched: Fetched) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``values``, ``estimated`` and ``filled`` of ``fetched`` on every period from its
    first to its last: gaps up to ``MAX_FILLED_GAP`` interpolated in time (``filled``
    True there), a longer one a DataError, as the readers do with export files."""
    who = f"{fetched.provider} ({fetched.zone}, {fetched.signal} {fetched.kind})"
    values = fetched.values
    if values.empty:
        raise DataError(f"{who}: no values in the answer")
    full = pd.date_range(values.index[0], values.index[-1], freq=fetched.step, name="time")
    missing = pd.Series(~full.isin(values.index), index=full, name=fetched.zone)
    if missing.any():
        runs = (missing != missing.shift()).cumsum()[missing]
        longest = runs.value_counts().max() * fetched.step
        if longest > MAX_FILLED_GAP:
            first = runs.index[runs == runs.value_counts().idxmax()][0]
            raise DataError(
                f"{who}: a gap of {longest / pd.Timedelta('1h'):g} h from "
                f"{first.isoformat()} (at most "
                f"{MAX_FILLED_GAP / pd.Timedelta('1h'):g} h are interpolated)")
    filled_values = values.reindex(full).interpolate(method="time")
    flags = fetched.estimated.reindex(full, fill_value=False).astype(bool)
    return filled_values.rename(fetched.zone), flags.rename(fetched.zone), missing


def zone_frame(fetched: Fetched, slot: str) -> IntensityData:
    """One zone's series as a one-column frame on ``slot`` slots: :func:`regular`, then
    :func:`resample` (whole slots only); DataError when not one slot is whole."""
    values, estimated, filled = regular(fetched)
    data = IntensityData(values.to_frame(), estimated.to_frame(), filled.to_frame(), "real",
                         fetched.signal)
    out = resample(data, slot, fetched.step)
    if out.values.empty:
        raise DataError(f"{fetched.provider} ({fetched.zone}): less than one whole {slot} "
                        "slot of values")
    return out


def join_zones(parts: Mapping[str, IntensityData], source: str = "real") -> IntensityData:
    """One frame of the one-column frames ``parts`` (zone -> frame, one slot), over the
    times every zone has; DataError when they share none."""
    zones = list(parts)
    first = parts[zones[0]]
    values = pd.concat([parts[z].values for z in zones], axis=1, join="inner")
    if values.empty:
        spans = "; ".join(f"{z} {_span(parts[z])}" for z in zones)
        raise DataError(f"zones share no common time range ({spans})")
    index = values.index
    estimated = pd.concat([parts[z].estimated.reindex(index) for z in zones], axis=1)
    filled = pd.concat([parts[z].filled.reindex(index) for z in zones], axis=1)
    return IntensityData(values.astype(float), estimated.astype(bool), filled.astype(bool),
                         source, first.signal)


def _span(data: IntensityData) -> str:
    idx = data.values.index
    return f"{idx[0].isoformat()} .. {(idx[-1] + data.step).isoformat()}"


def _floor(start: pd.Timestamp | None, slot: str) -> pd.Timestamp | None:
    return None if start is None else start.floor(target_step(slot))


def _window(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    if start is None and end is None:
        return ""
    return (f" between {'the start' if start is None else start.isoformat()} and "
            f"{'now' if end is None else end.isoformat()}")
