"""The supervisor's clocks: the real one, and a simulated one for accelerated history.

Every time a clock gives is a tz-aware UTC :class:`pandas.Timestamp`.  Only the clock
knows how simulated time maps onto wall time, so the controller asks it how long a
simulated span lasts in real seconds (:meth:`Clock.wall_seconds`) for every wait it
makes on a real process.

A :class:`SimClock` runs at ``speed`` simulated seconds per wall second from an anchor:
a simulated time and the wall-clock time (:func:`time.time`) it was reached.  The anchor
is what the run's state file keeps (:meth:`SimClock.anchor`), so a supervisor killed and
started again continues the same simulated timeline: the time it was down counts, as
the training it adopts kept running meanwhile.  Between two readings it measures with
:func:`time.monotonic`, so a wall-clock step (NTP) does not move simulated time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from greenepoch.data.errors import GreenEpochError, param


class Clock(Protocol):
    """What the controller needs of time."""

    def now(self) -> pd.Timestamp:
        """The current time, UTC (simulated on a :class:`SimClock`)."""
        ...

    def wall_seconds(self, sim_span: pd.Timedelta) -> float:
        """Real seconds that ``sim_span`` of this clock's time lasts."""
        ...


def _check_utc(t: object, name: str) -> pd.Timestamp:
    if not isinstance(t, pd.Timestamp) or t.tzinfo is None:
        raise GreenEpochError(f"{name} must be a tz-aware UTC timestamp, found {t!r}")
    return t.tz_convert("UTC")


class RealClock:
    """Wall-clock time."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def wall_seconds(self, sim_span: pd.Timedelta) -> float:
        return pd.Timedelta(sim_span).total_seconds()


@dataclass(frozen=True)
class SimAnchor:
    """A simulated clock's serialisable anchor: simulated time ``sim`` was reached at
    wall-clock time ``wall`` (seconds since the epoch) and runs at ``speed``."""

    sim: pd.Timestamp
    wall: float
    speed: float

    def to_json(self) -> dict[str, Any]:
        return {"sim": self.sim.isoformat(), "wall": self.wall, "speed": self.speed}

    @classmethod
    def from_json(cls, raw: object) -> SimAnchor:
        """The anchor from :meth:`to_json`'s object; ValueError when it is not one."""
        if not isinstance(raw, dict) or set(raw) != {"sim", "wall", "speed"}:
            raise ValueError(f"expected an object with sim, wall and speed, found {raw!r}")
        sim = pd.Timestamp(raw["sim"])
        wall, speed = raw["wall"], raw["speed"]
        if sim.tzinfo is None or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in (wall, speed)) or speed <= 0:
            raise ValueError(f"expected a UTC time and finite wall and speed > 0, found {raw!r}")
        return cls(sim.tz_convert("UTC"), float(wall), float(speed))


class SimClock:
    """Simulated time: ``start + (wall time elapsed since the anchor) x speed``.

    Parameters
    ----------
    start : Timestamp
        The simulated time at the anchor (UTC).
    speed : float
        Simulated seconds per wall second (> 0; 3600: an hour a second).
    anchor_wall : float, optional
        The wall-clock time (:func:`time.time`) at which the simulation was at
        ``start``; None: now.  A restarted supervisor passes the anchor it saved
        (:meth:`resume`) and the simulation continues where it would be had it never
        stopped.
    """

    def __init__(self, start: pd.Timestamp, speed: float,
                 anchor_wall: float | None = None) -> None:
        self.start = _check_utc(start, "start")
        if isinstance(speed, bool) or not isinstance(speed, int | float) \
                or not math.isfinite(speed) or speed <= 0:
            raise GreenEpochError(f"{param('speed')} must be a number > 0 (simulated seconds "
                                  f"per wall second), found {speed!r}")
        self.speed = float(speed)
        wall_now, mono_now = time.time(), time.monotonic()
        self.anchor_wall = wall_now if anchor_wall is None else float(anchor_wall)
        # the monotonic reading that corresponds to anchor_wall
        self._anchor_mono = mono_now - (wall_now - self.anchor_wall)

    @classmethod
    def resume(cls, anchor: SimAnchor) -> SimClock:
        """The clock a previous supervisor saved with :meth:`anchor`."""
        return cls(anchor.sim, anchor.speed, anchor_wall=anchor.wall)

    def anchor(self) -> SimAnchor:
        """What to keep in the state file to continue this timeline later."""
        return SimAnchor(self.start, self.anchor_wall, self.speed)

    def now(self) -> pd.Timestamp:
        elapsed = time.monotonic() - self._anchor_mono
        return self.start + pd.Timedelta(seconds=elapsed * self.speed)

    def wall_seconds(self, sim_span: pd.Timedelta) -> float:
        return pd.Timedelta(sim_span).total_seconds() / self.speed
