"""The carbon-intensity container every GreenEpoch component consumes.

Invariants of :class:`IntensityData` (checked once, in ``__post_init__``):

* ``values`` is indexed by a tz-aware UTC ``DatetimeIndex`` named ``time``,
  strictly increasing at one regular step of :data:`STEPS` (5, 15, 30 or 60 minutes:
  what providers answer at);
* one float column per zone id, in gCO2eq/kWh, no NaN, every value in [0, 2000];
* ``estimated`` and ``filled`` are boolean frames of exactly the same shape:
  the provider's "Data Estimated" flag, and the cells GreenEpoch interpolated;
* ``source`` is ``real`` or ``synthetic``; ``signal`` is ``direct``, ``lca`` (average
  emission factors) or ``marginal`` (WattTime's MOER, never mixed with the others);
  ``provider`` names the :class:`~greenepoch.data.intensity.source.IntensitySource`
  that loaded the frame (empty when it was built by hand or straight from a reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
from greenepoch.data.errors import DataError

SIGNALS = ("direct", "lca", "marginal")
SOURCES = ("real", "synthetic")
# the steps a frame may have (providers answer at 5, 15, 30 or 60 minutes) ...
STEPS = {"5min": pd.Timedelta("5min"), "15min": pd.Timedelta("15min"),
         "30min": pd.Timedelta("30min"), "1h": pd.Timedelta("1h")}
# ... and the slots plans and replays run on (a frame of another step is resampled)
SLOTS = {name: STEPS[name] for name in ("15min", "30min", "1h")}
MAX_INTENSITY = 2000.0  # gCO2eq/kWh; dirtiest grids and marginal coal units stay below 1,200


@dataclass(frozen=True)
class IntensityData:
    """Carbon intensity per zone and slot, with provenance flags.

    Attributes
    ----------
    values : DataFrame
        gCO2eq/kWh, index ``time`` (UTC), one column per zone.
    estimated : DataFrame
        True where the provider marked the value as estimated.
    filled : DataFrame
        True where GreenEpoch filled a gap by time interpolation.
    source : str
        ``real`` (measured exports) or ``synthetic`` (generated from the climatology).
    signal : str
        ``direct`` (operational) or ``lca`` (life-cycle) average emission factors, or
        ``marginal`` (the emissions of the marginal generator, WattTime's MOER).
    files : tuple of str
        The files the data was read from (empty for synthetic data).
    skipped : tuple of str
        Paths named ``*.csv`` that were not read because they are not regular files
        (a FIFO, a folder, a broken link), each with the reason.
    provider : str
        Name of the intensity source that loaded it (``electricitymaps-exports``,
        ``climatology``, ...); empty when built directly.
    """

    values: pd.DataFrame
    estimated: pd.DataFrame
    filled: pd.DataFrame
    source: str = "real"
    signal: str = "direct"
    files: tuple[str, ...] = field(default=())
    skipped: tuple[str, ...] = field(default=())
    provider: str = ""

    def __post_init__(self) -> None:
        idx = self.values.index
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
            raise DataError("intensity index must be a tz-aware UTC DatetimeIndex")
        if idx.name != "time":
            raise DataError(f"intensity index must be named 'time', found {idx.name!r}")
        if len(idx) > 1:
            steps = idx.to_series().diff().dropna().unique()
            if len(steps) != 1 or steps[0] not in STEPS.values():
                raise DataError("intensity index must have one regular step of "
                                f"{', '.join(STEPS)}")
        if self.values.isna().to_numpy().any():
            raise DataError(
                "intensity values contain NaN; load data through the validating loaders"
            )
        for name in ("estimated", "filled"):
            other = getattr(self, name)
            if other.shape != self.values.shape or not other.index.equals(idx):
                raise DataError(f"'{name}' flags must have the same shape and index as values")
        if self.source not in SOURCES:
            raise DataError(f"source must be one of {SOURCES}, found {self.source!r}")
        if self.signal not in SIGNALS:
            raise DataError(f"signal must be one of {SIGNALS}, found {self.signal!r}")
        if not isinstance(self.provider, str):
            raise DataError(f"provider must be a source name, found {self.provider!r}")

    @property
    def zones(self) -> list[str]:
        return [str(c) for c in self.values.columns]

    @property
    def step(self) -> pd.Timedelta:
        if len(self.values.index) < 2:
            return STEPS["1h"]
        return pd.Timedelta(self.values.index[1] - self.values.index[0])

    def select(
        self,
        zones: list[str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> IntensityData:
        """Return the zones and the half-open time range ``[start, end)`` asked for."""
        cols = self.zones if zones is None else list(zones)
        missing = [z for z in cols if z not in self.values.columns]
        if missing:
            raise DataError(
                f"zone(s) {', '.join(missing)} not in the data (have: {', '.join(self.zones)}); "
                "add their export files or pick other zones"
            )
        mask = pd.Series(True, index=self.values.index)
        if start is not None:
            mask &= self.values.index >= start
        if end is not None:
            mask &= self.values.index < end
        rows = mask.to_numpy()
        if not rows.any():
            have = f"{self.values.index[0]} .. {self.values.index[-1]}"
            raise DataError(f"no data between {start} and {end} (data covers {have})")
        return replace(self, values=self.values.loc[rows, cols],
                       estimated=self.estimated.loc[rows, cols],
                       filled=self.filled.loc[rows, cols])

    def estimated_share(self) -> pd.Series:
        """Share (0..1) of slots per zone that the provider marked as estimated."""
        return self.estimated.mean()

    def filled_gaps(self) -> pd.DataFrame:
        """One row per filled run: zone, start, end (exclusive), slots."""
        rows = []
        for zone in self.zones:
            flags = self.filled[zone].to_numpy()
            idx = self.filled.index
            i = 0
            while i < len(flags):
                if flags[i]:
                    j = i
                    while j < len(flags) and flags[j]:
                        j += 1
                    rows.append((zone, idx[i], idx[j - 1] + self.step, j - i))
                    i = j
                else:
                    i += 1
        return pd.DataFrame(rows, columns=["zone", "start", "end", "slots"])
