"""What a live provider hands back: one checked series of one fetch.

Invariants of :class:`Fetched` (checked once, in ``__post_init__``; a provider module
builds one per answer, so every answer passes the same checks before anything sees it,
the archive included):

* ``values`` is a float Series in gCO2eq/kWh on a tz-aware UTC ``DatetimeIndex`` named
  ``time`` (the start of each period), strictly increasing (no duplicates, nothing out
  of order), every time on the ``step`` grid (whole multiples of ``step`` apart: gaps
  are kept as gaps, never filled here), every value finite and within
  [0, :data:`~greenepoch.data.intensity.frame.MAX_INTENSITY`] (IntensityData's bound);
* ``estimated`` is a bool Series on exactly the same index (the provider's own
  "estimated" flag; False where it gives none);
* ``step`` is one of :data:`PERIODS` (5, 15, 30 or 60 minutes);
* ``kind`` is ``actual`` (what the provider reports happened, or its estimate of it) or
  ``forecast``; a forecast has ``issued`` (the provider's own issue / generation time, not
  after ``fetched``), an actual has ``issued`` None;
* ``signal`` is ``direct`` or ``lca`` (average emission factors, operational or
  life-cycle) or ``marginal`` (WattTime's MOER): never mixed in one series;
* ``fetched`` is the UTC time the answer arrived; ``provider`` and ``zone`` are the
  provider's name and GreenEpoch's zone id (``region`` the provider's own id for it,
  when it differs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from greenepoch.data.errors import ProviderDataError
from greenepoch.data.intensity.frame import MAX_INTENSITY, SIGNALS, STEPS

#: the periods a provider may answer at: the steps an IntensityData may have
PERIODS = tuple(STEPS.values())
KINDS = ("actual", "forecast")
PROVIDER_SIGNALS = SIGNALS
#: lbs CO2 per MWh -> g CO2 per kWh (1 lb = 453.59237 g; 1 MWh = 1,000 kWh)
G_PER_KWH_PER_LBS_PER_MWH = 0.45359237


@dataclass(frozen=True)
class Fetched:
    """One provider answer for one zone and signal (see the module docstring)."""

    provider: str
    zone: str
    signal: str
    kind: str
    step: pd.Timedelta
    values: pd.Series
    estimated: pd.Series
    fetched: pd.Timestamp
    issued: pd.Timestamp | None = None
    region: str = ""

    def __post_init__(self) -> None:
        who = f"{self.provider} ({self.zone}, {self.signal} {self.kind})"
        if self.kind not in KINDS:
            raise ProviderDataError(f"{who}: kind must be one of {KINDS}")
        if self.signal not in PROVIDER_SIGNALS:
            raise ProviderDataError(f"{who}: signal must be one of {PROVIDER_SIGNALS}")
        if self.step not in PERIODS:
            raise ProviderDataError(f"{who}: period of {self.step} is not 5, 15, 30 or 60 min")
        _check_utc(self.fetched, f"{who}: fetch time")
        if self.kind == "forecast":
            if self.issued is None:
                raise ProviderDataError(f"{who}: a forecast needs its issue time")
            _check_utc(self.issued, f"{who}: issue time")
            # a little clock skew between us and the provider is normal
            if self.issued > self.fetched + pd.Timedelta("10min"):
                raise ProviderDataError(
                    f"{who}: issued {self.issued.isoformat()}, after it was fetched "
                    f"({self.fetched.isoformat()})")
        elif self.issued is not None:
            raise ProviderDataError(f"{who}: an actual series has no issue time")
        _check_index(self.values.index, self.step, who)
        if not self.estimated.index.equals(self.values.index) or self.estimated.dtype != bool:
            raise ProviderDataError(f"{who}: estimated flags must be bool on the same times")
        _check_values(self.values, who)

    def __len__(self) -> int:
        return len(self.values)


def fetched_series(provider: str, zone: str, signal: str, kind: str, step: pd.Timedelta,
                   points: list[tuple[pd.Timestamp, float, bool]], fetched: pd.Timestamp,
                   issued: pd.Timestamp | None = None, region: str = "") -> Fetched:
    """A :class:`Fetched` from ``(time, value in g/kWh, estimated)`` points in the order
    the provider gave them (so that out-of-order or duplicated points are refused, not
    sorted away)."""
    index = pd.DatetimeIndex([p[0] for p in points], name="time")
    if len(index) and index.tz is None:
        raise ProviderDataError(f"{provider} ({zone}): times without a time zone")
    index = (index.tz_convert("UTC") if len(index)
             else pd.DatetimeIndex([], tz="UTC", name="time"))
    values = pd.Series([float(p[1]) for p in points], index=index, dtype=float, name=zone)
    flags = pd.Series([bool(p[2]) for p in points], index=index, dtype=bool, name=zone)
    return Fetched(provider, zone, signal, kind, step, values, flags, fetched, issued, region)


def _check_utc(stamp: pd.Timestamp, what: str) -> None:
    if not isinstance(stamp, pd.Timestamp) or stamp.tzinfo is None:
        raise ProviderDataError(f"{what} must be a tz-aware timestamp, found {stamp!r}")


def _check_index(index: pd.Index, step: pd.Timedelta, who: str) -> None:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ProviderDataError(f"{who}: times must be tz-aware UTC")
    if index.name != "time":
        raise ProviderDataError(f"{who}: the time index must be named 'time'")
    if len(index) < 2:
        return
    ns = index.as_unit("ns").asi8
    gaps = np.diff(ns)
    bad = np.flatnonzero(gaps <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        what = "duplicated" if gaps[bad[0]] == 0 else "out of order"
        raise ProviderDataError(f"{who}: point {i} ({index[i].isoformat()}) is {what}")
    off = np.flatnonzero(gaps % step.value != 0)
    if len(off):
        i = int(off[0]) + 1
        raise ProviderDataError(
            f"{who}: point {i} ({index[i].isoformat()}) is off the {_minutes(step)} grid")


def _check_values(values: pd.Series, who: str) -> None:
    array = values.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0) | (array > MAX_INTENSITY))
    if len(bad):
        i = int(bad[0])
        shown = array[i] if math.isfinite(array[i]) else "a non-number"
        raise ProviderDataError(
            f"{who}: value {shown} g/kWh at {values.index[i].isoformat()} is outside "
            f"0..{MAX_INTENSITY:g} g/kWh (wrong units, or a broken answer)")


def _minutes(step: pd.Timedelta) -> str:
    return f"{int(step / pd.Timedelta('1min'))}-minute"
