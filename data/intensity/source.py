"""Where intensities come from: one small interface and its implementations.

An :class:`IntensitySource` answers one question: the carbon intensity of ``zones``
over ``[start, end)`` for a ``signal`` on slots of ``slot``, as the validated
:class:`~greenepoch.data.intensity.frame.IntensityData` (tz-aware UTC index ``time``,
one column per zone, gCO2eq/kWh) whose ``provider`` is the source's ``name`` and whose
``estimated``/``filled`` flags say which slots were estimated by the provider or
interpolated by GreenEpoch.  :meth:`IntensitySource.load` checks the arguments, the
zones and the coverage once, for every source; a source only implements ``_read``.

* :class:`ExportFolderSource`: Electricity Maps data-portal exports (and long-format
  CSVs) in a folder, through the one reader
  :func:`~greenepoch.data.intensity.readers.read_electricitymaps`; its ``prices`` are
  the ``prices/`` folder beside them, if any;
* :class:`ClimatologySource`: synthetic traces from the shipped climatology (the
  embedded default when no data folder is given);
* :class:`CachedSource`: any source with its reads memoised (what-if plans hundreds of
  requests on the same files).

:func:`source_for` is the ``--data`` / ``$GREENEPOCH_DATA`` rule.  A new provider (a
live API, say) subclasses :class:`IntensitySource`, sets ``name`` and implements
``_read`` (and ``cache_key`` when its reads do not depend on the window).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.frame import SIGNALS, SLOTS, IntensityData
from greenepoch.data.intensity.readers import read_electricitymaps, zones_in
from greenepoch.data.intensity.resample import resample
from greenepoch.data.prices import CachedPrices, PriceFolder, PriceSource, signature

DATA_ENV = "GREENEPOCH_DATA"


class IntensitySource(ABC):
    """Carbon intensities for zones and a time range (see the module docstring).

    ``prices``: the electricity prices that come with this source, or None.
    """

    name: str = "source"
    prices: PriceSource | None = None
    _coverage_hint = ""  # what to do when a range is not covered, for messages

    def load(self, zones: Sequence[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
             *, signal: str = "direct", slot: str | None = "1h", clip_start: bool = False
             ) -> IntensityData:
        """Intensities for ``zones`` over ``[start, end)`` on ``slot`` slots (None: the
        source's own step).

        ``start``/``end`` None: from the first / to the last slot the source has (a
        source without bounds, the climatology, refuses).  ``clip_start``: start where
        the source's data starts if ``start`` is earlier (history that is nice to have,
        not needed).  Raises DataError for an unknown zone, signal or slot, naive
        times, or a range the source does not cover.
        """
        wanted = _zone_list(zones)
        start = None if start is None else _utc(start, "start")
        end = None if end is None else _utc(end, "end")
        if start is not None and end is not None and end <= start:
            raise DataError(f"end {end.isoformat()} is not after start {start.isoformat()}")
        if slot is not None and slot not in SLOTS:
            raise DataError(f"unknown slot {slot!r}: use one of {', '.join(SLOTS)}")
        if signal not in SIGNALS:
            raise DataError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}")
        got = self._read(wanted, start, end, signal, slot or "1h")
        covered = got.values.index
        last = covered[-1] + got.step
        if start is None or (clip_start and (end is None or end > covered[0])):
            start = covered[0] if start is None else max(start, covered[0])
        end = last if end is None else end
        if start < covered[0] or end > last:
            raise DataError(
                f"{self.describe()} covers {covered[0].isoformat()} .. {last.isoformat()}, "
                f"but {start.isoformat()} .. {end.isoformat()} was asked for. Pick dates "
                f"inside it{self._coverage_hint}"
            )
        chosen = got.select(wanted, start, end)
        return replace(chosen if slot is None else resample(chosen, slot), provider=self.name)

    def zones(self, signal: str = "direct") -> list[str]:
        """Every zone the source can load (for 'all')."""
        raise DataError(f"{self.describe()} cannot list its zones; name them")

    @abstractmethod
    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        """Intensities holding at least ``zones``, covering as much of ``[start, end)``
        as the source has (more is fine: :meth:`load` selects); DataError naming an
        unknown zone."""

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        """What distinguishes one ``_read`` from another (for :class:`CachedSource`)."""
        return (tuple(sorted(zones)), start, end, signal, slot)

    def describe(self) -> str:
        """Where the data comes from, for messages ('the data in /data/em')."""
        return f"the {self.name} data"


class ExportFolderSource(IntensitySource):
    """Electricity Maps exports in a folder (or a folder holding ``electricitymaps/``),
    read whole through the one reader; ``allow_gaps`` and ``allow_implausible`` as in
    :func:`~greenepoch.data.intensity.readers.read_electricitymaps`."""

    name = "electricitymaps-exports"
    _coverage_hint = (", add export files for the missing years, or plan on the embedded "
                      f"synthetic default (no {param('data_dir')}, GREENEPOCH_DATA unset or "
                      "empty)")

    def __init__(self, path: str | Path, *, allow_gaps: bool = False,
                 allow_implausible: bool | None = None) -> None:
        self.path = Path(path).expanduser()
        self.allow_gaps = allow_gaps
        self.allow_implausible = allow_implausible
        folder = prices_dir(self.path)
        self.prices = None if folder is None else PriceFolder(folder)

    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        return read_electricitymaps(self.path, signal=signal, allow_gaps=self.allow_gaps,
                                    zones=zones, allow_implausible=self.allow_implausible)

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        # a read is the whole folder, whatever the window; a changed file reads again
        files = [self.path] if self.path.is_file() else [
            f for f in (*self.path.glob("*.csv"), *self.path.glob("*/*.csv")) if f.is_file()]
        return (str(self.path), tuple(sorted(zones)), signal, self.allow_gaps,
                self.allow_implausible, signature(files))

    def zones(self, signal: str = "direct") -> list[str]:
        return sorted(zones_in(self.path))

    def describe(self) -> str:
        return f"the data in {self.path}"

    def __repr__(self) -> str:
        return f"ExportFolderSource({str(self.path)!r})"


class ClimatologySource(IntensitySource):
    """Synthetic traces drawn from the shipped climatology of each signal (``source``
    ``synthetic``), the same for the same ``seed``; covers any time range."""

    name = "climatology"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        from greenepoch.data.intensity.climatology import (
            check_signal,
            embedded_climatology,
            synthesize,
        )

        check_signal(signal)
        if start is None or end is None:
            raise DataError("the synthetic climatology covers any time: give start and end")
        return synthesize(embedded_climatology(signal), zones, start, end, slot=slot,
                          seed=self.seed)

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        return (self.seed, tuple(sorted(zones)), start, end, signal, slot)

    def zones(self, signal: str = "direct") -> list[str]:
        from greenepoch.data.intensity.climatology import embedded_climatology

        return list(embedded_climatology(signal).zones)

    def describe(self) -> str:
        return "the embedded synthetic climatology"

    def __repr__(self) -> str:
        return f"ClimatologySource(seed={self.seed})"


class CachedSource(IntensitySource):
    """``inner`` with its reads memoised (up to ``maxsize``, least recently used out),
    keyed by ``inner.cache_key``; its prices are cached too.  Thread-safe.
    ``reads`` counts the reads that reached ``inner``."""

    def __init__(self, inner: IntensitySource, maxsize: int = 16) -> None:
        self.inner = inner
        self.name = inner.name
        self.prices = None if inner.prices is None else CachedPrices(inner.prices)
        self.maxsize = maxsize
        self.reads = 0
        self._memo: OrderedDict[Hashable, IntensityData] = OrderedDict()
        self._lock = threading.Lock()
        self._coverage_hint = inner._coverage_hint

    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        key = self.inner.cache_key(zones, start, end, signal, slot)
        with self._lock:  # held while reading: concurrent plans wait for one read
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
            got = self.inner._read(zones, start, end, signal, slot)
            self.reads += 1
            self._memo[key] = got
            if len(self._memo) > self.maxsize:
                self._memo.popitem(last=False)
            return got

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        return self.inner.cache_key(zones, start, end, signal, slot)

    def zones(self, signal: str = "direct") -> list[str]:
        return self.inner.zones(signal)

    def describe(self) -> str:
        return self.inner.describe()

    def __repr__(self) -> str:
        return f"CachedSource({self.inner!r})"


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The real-data folder to use, or None for the embedded default.

    ``explicit`` wins over ``$GREENEPOCH_DATA``.  A folder holding an
    ``electricitymaps/`` folder (like the shared data folder) is accepted as is.
    """
    chosen = explicit if explicit not in (None, "") else os.environ.get(DATA_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.exists():
        # the CLI's --data falls back on the variable: name the variable when it was that
        from_env = explicit in (None, "") or str(explicit) == os.environ.get(DATA_ENV)
        origin = f"${DATA_ENV}" if from_env else param("data_dir")
        raise DataError(
            f"{origin} points at {path}, which does not exist. Fix the path, or unset it "
            "to use the embedded synthetic default"
        )
    return path


def prices_dir(root: Path | None) -> Path | None:
    """The ``prices/`` folder beside ``electricitymaps/``, if there is one."""
    if root is None:
        return None
    candidate = root / "prices"
    return candidate if candidate.is_dir() else None


def source_for(data: str | Path | IntensitySource | None = None, *, seed: int = 0,
               allow_gaps: bool = False) -> IntensitySource:
    """The source ``--data`` / ``$GREENEPOCH_DATA`` names (:func:`data_dir`): the export
    folder if one is set, else the synthetic climatology (``seed``).  A source is
    returned as is."""
    if isinstance(data, IntensitySource):
        return data
    root = data_dir(data)
    if root is None:
        return ClimatologySource(seed)
    return ExportFolderSource(root, allow_gaps=allow_gaps)


def _zone_list(zones: Sequence[str]) -> list[str]:
    wanted = [zones] if isinstance(zones, str) else list(zones)
    if not wanted or not all(isinstance(z, str) and z.strip() for z in wanted):
        raise DataError(f"zones must be a non-empty list of zone ids, found {zones!r}")
    return list(dict.fromkeys(wanted))


def _utc(ts: pd.Timestamp, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise DataError(f"{name} {ts} has no time zone; give it in UTC, e.g. 2023-06-01T00:00Z")
    return stamp.tz_convert("UTC")
