"""The types every ``greenepoch run`` policy and the controller share.

Invariants (checked once, in each ``__post_init__``; a violation is a
:class:`~greenepoch.data.errors.RequestError` naming the field):

* every time is a tz-aware UTC :class:`pandas.Timestamp` (``deadline``, ``now``,
  ``since``, ``issued``; the forecast's index too);
* :class:`RunJob`: ``gpus`` a whole number >= 1, ``power_kw`` > 0 (kW per GPU),
  ``gpu_hours`` > 0 or None (unknown: then the training must report progress),
  ``restart_h`` >= 0 (hours lost per pause/resume), ``margin`` >= 0;
* :class:`Observation`: ``interval`` > 0, ``intensity`` in [0, 2000] g/kWh or None
  (unknown), ``since`` not after ``now``, ``done_gpu_h`` >= 0, ``progress`` in [0, 1]
  or None (the training reports nothing), ``issued`` not after ``now``;
* :class:`Decision`: a non-empty ``reason`` (one short sentence for the run log).

Work is in GPU-hours; a job of ``gpus`` GPUs does ``gpus`` GPU-hours per wall hour.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.data.intensity.frame import MAX_INTENSITY
from greenepoch.data.timeparse import hours
from greenepoch.planner.plan_doc import iso


def _finite(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_utc(value: object) -> bool:
    return (isinstance(value, pd.Timestamp) and value.tzinfo is not None
            and str(value.tz) == "UTC")


@dataclass(frozen=True)
class RunJob:
    """What the supervisor knows of the training it runs.

    Attributes
    ----------
    gpus : int
        GPUs the training uses (>= 1).
    power_kw : float
        Configured draw per GPU, kW.
    gpu_hours : float or None
        Total work, GPU-hours; None when unknown (the training then reports progress).
    deadline : Timestamp or None
        UTC time the work must be done by; None: no deadline.
    restart_h : float
        Wall hours lost per pause/resume (checkpoint save plus restart).
    margin : Timedelta
        The deadline guard's safety margin: work must end by ``deadline - margin``.
    zone : str
        Grid zone whose intensity drives the decisions.
    """

    gpus: int = 1
    power_kw: float = 0.3
    gpu_hours: float | None = None
    deadline: pd.Timestamp | None = None
    restart_h: float = 0.0
    margin: pd.Timedelta = pd.Timedelta("1h")
    zone: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 1:
            raise RequestError(f"{param('gpus')} = {self.gpus!r}: must be a whole number of "
                               "GPUs, 1 or more")
        if not _finite(self.power_kw) or self.power_kw <= 0:
            raise RequestError(f"{param('power_kw')} = {self.power_kw!r}: must be a power "
                               "above 0 kW per GPU, e.g. 0.3")
        if self.gpu_hours is not None and (not _finite(self.gpu_hours) or self.gpu_hours <= 0):
            raise RequestError(f"{param('gpu_hours')} = {self.gpu_hours!r}: must be above 0 "
                               "GPU-hours, or None when the training reports its progress")
        if self.deadline is not None and not _is_utc(self.deadline):
            raise RequestError(f"{param('deadline')} = {self.deadline!r}: must be a UTC time, "
                               "e.g. 2023-06-03T00:00Z")
        if not _finite(self.restart_h) or self.restart_h < 0:
            raise RequestError(f"{param('restart_h')} = {self.restart_h!r}: must be 0 or more "
                               "hours lost per pause and resume")
        if not isinstance(self.margin, pd.Timedelta) or self.margin < pd.Timedelta(0):
            raise RequestError(f"{param('margin')} = {self.margin!r}: must be a duration of 0 "
                               "or more, e.g. 1h")
        if not isinstance(self.zone, str):
            raise RequestError(f"{param('zone')} = {self.zone!r}: must be a zone id, e.g. DE")


@dataclass(frozen=True)
class Observation:
    """Everything a policy may look at, at one decision (built by the controller).

    Attributes
    ----------
    now : Timestamp
        UTC decision time (simulated time under ``--simulate``).
    interval : Timedelta
        The decision interval (15 min by default).
    intensity : float or None
        g/kWh of the current interval as known now; None when no source knows it.
    provenance : str
        Where ``intensity`` came from, e.g. ``electricitymaps actual``.
    stale : bool
        True when ``intensity`` is older than the source promises.
    forecast : Series or None
        P50 g/kWh on interval slots starting at ``now``, issued at or before ``now``.
    issued : Timestamp or None
        That forecast's issue time.
    running : bool
        Whether the training runs now.
    since : Timestamp
        When the current state (running or paused) began.
    done_gpu_h : float
        Work done so far, GPU-hours.
    progress : float or None
        Share of the work done, 0..1, as the training reports it; None if it reports nothing.
    """

    now: pd.Timestamp
    interval: pd.Timedelta
    intensity: float | None
    provenance: str
    stale: bool
    forecast: pd.Series | None
    issued: pd.Timestamp | None
    running: bool
    since: pd.Timestamp
    done_gpu_h: float
    progress: float | None

    def __post_init__(self) -> None:
        # built by the controller, not typed by a user: messages name the field plainly
        for name in ("now", "since"):
            if not _is_utc(getattr(self, name)):
                raise RequestError(f"Observation.{name} = {getattr(self, name)!r}: must be a "
                                   "UTC time")
        if self.issued is not None and not _is_utc(self.issued):
            raise RequestError(f"Observation.issued = {self.issued!r}: must be a UTC time")
        if not isinstance(self.interval, pd.Timedelta) or self.interval <= pd.Timedelta(0):
            raise RequestError(f"{param('interval')} = {self.interval!r}: must be a duration "
                               "above 0, e.g. 15min")
        if self.intensity is not None and (not _finite(self.intensity)
                                           or not 0 <= self.intensity <= MAX_INTENSITY):
            raise RequestError(f"Observation.intensity = {self.intensity!r}: must be from 0 to "
                               f"{MAX_INTENSITY:g} g/kWh, or None when unknown")
        if self.since > self.now:
            raise RequestError(f"Observation.since = {self.since}: is after now = {self.now}")
        if self.issued is not None and self.issued > self.now:
            raise RequestError(f"Observation.issued = {self.issued}: is after now = "
                               f"{self.now}; a decision sees only forecasts issued by then")
        if not _finite(self.done_gpu_h) or self.done_gpu_h < 0:
            raise RequestError(f"Observation.done_gpu_h = {self.done_gpu_h!r}: must be 0 or "
                               "more GPU-hours")
        if self.progress is not None and (not _finite(self.progress)
                                          or not 0 <= self.progress <= 1):
            raise RequestError(f"Observation.progress = {self.progress!r}: must be from 0 to 1, "
                               "or None when the training reports nothing")
        if self.forecast is not None:
            idx = self.forecast.index
            if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
                raise RequestError("Observation.forecast: must be indexed by UTC times")

    @property
    def age(self) -> pd.Timedelta:
        """How long the current state (running or paused) has lasted."""
        return self.now - self.since


@dataclass(frozen=True)
class Decision:
    """Whether the training should run over the next interval, and why."""

    run: bool
    reason: str  # one short sentence, e.g. "intensity 412 > pause level 380"
    expected_saving_kg: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise RequestError("Decision.reason: must be a sentence saying why")


class RunPolicy(ABC):
    """Decides, every interval, whether the training should run now."""

    name: ClassVar[str]

    def __init__(self, job: RunJob) -> None:
        self.job = job

    @abstractmethod
    def decide(self, obs: Observation) -> Decision:
        """The decision for the interval starting at ``obs.now``."""

    def remaining_gpu_h(self, obs: Observation) -> float | None:
        """Work left, GPU-hours; None when neither progress nor the total is known.

        * progress ``p`` reported and ``gpu_hours`` known: ``(1 - p) * gpu_hours``
          (the training's own count of what is left, scaled to the configured total);
        * progress reported, total unknown: extrapolated from the work done,
          ``done_gpu_h * (1 - p) / p`` (unknown while ``p`` is 0);
        * no progress: ``max(gpu_hours - done_gpu_h, 0)``.
        """
        total, p = self.job.gpu_hours, obs.progress
        if p is not None and total is not None:
            return (1.0 - p) * total
        if p is not None:
            return obs.done_gpu_h * (1.0 - p) / p if p > 0 else None
        if total is not None:
            return max(total - obs.done_gpu_h, 0.0)
        return None

    def remaining_h(self, obs: Observation) -> float | None:
        """Wall hours of work left on the job's ``gpus`` (restarts not included)."""
        gpu_h = self.remaining_gpu_h(obs)
        return None if gpu_h is None else gpu_h / self.job.gpus


def span_text(td: pd.Timedelta) -> str:
    """A duration as a reason shows it: 45 min, 1 h, 1 h 15 min."""
    minutes = round(td / pd.Timedelta("1min"))
    h, m = divmod(minutes, 60)
    return " ".join(part for part in (f"{h} h" if h else "", f"{m} min" if m else "")
                    if part) or "0 min"


def deadline_guard(policy: RunPolicy, obs: Observation) -> str | None:
    """Why the training must run now to meet its deadline, or None when it need not.

    With ``left`` the hours from ``now`` to ``deadline - margin``, ``work`` the wall
    hours of work left (:meth:`RunPolicy.remaining_h`) and ``restart`` the job's
    ``restart_h``, pausing for one more interval is unaffordable when

        work + restart > left - interval

    (a pause costs one restart later, and the earliest it ends is one interval on).  The
    guard is silent without a deadline or while the work left is unknown."""
    job = policy.job
    work = policy.remaining_h(obs)
    if job.deadline is None or work is None:
        return None
    end_by = job.deadline - job.margin
    left = hours(end_by - obs.now)
    if work + job.restart_h <= left - hours(obs.interval):
        return None
    return (f"deadline guard: {work:.2f} h of work + {job.restart_h:.2f} h restart > "
            f"{left:.2f} h left to {iso(end_by)} less one {span_text(obs.interval)} interval")
