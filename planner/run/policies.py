"""The ``threshold`` and ``plan`` policies of ``greenepoch run``, and the factory that
builds a policy by name (``replan`` lives in :mod:`.replan`).

Every policy decides from one :class:`~.model.Observation`; what it remembers between
decisions is in the observation (``running``, ``since``, work done), so a supervisor
started again after a crash decides as the one before it would have.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.data.timeparse import duration, number
from greenepoch.planner.plan_doc import Plan, PlanJob, PlanSegment, iso
from greenepoch.planner.run.model import (
    Decision,
    Observation,
    RunJob,
    RunPolicy,
    deadline_guard,
    span_text,
)


def _level(x: float) -> str:
    """An intensity as a reason shows it: 412, 380.5."""
    return f"{x:.4g}"


def _as_duration(value: pd.Timedelta | str, field: str) -> pd.Timedelta:
    """A duration of 0 or more; ``field`` names it (``param("min_run")``)."""
    if isinstance(value, pd.Timedelta):
        if value < pd.Timedelta(0):
            raise RequestError(f"{field} = {value}: must be 0 or more, e.g. 30min")
        return value
    return duration(value, field)


def started(obs: Observation) -> bool:
    """Whether the training ever ran: before its first start there is no pause to keep."""
    return obs.running or obs.done_gpu_h > 0 or bool(obs.progress)


class ThresholdPolicy(RunPolicy):
    """Pause above ``pause_above`` g/kWh, resume at or below ``resume_below``.

    In order, at each decision:

    1. the deadline guard (:func:`deadline_guard`): run, whatever else holds (it
       overrides ``min_pause``);
    2. intensity unknown: keep the current state;
    3. running: pause when intensity > ``pause_above``, unless the run is younger than
       ``min_run``;
    4. paused: resume when intensity <= ``resume_below``, unless the pause is younger
       than ``min_pause`` (a training that never started has no pause to keep).

    ``resume_below`` defaults to ``pause_above`` (no hysteresis) and may not exceed it.
    """

    name = "threshold"

    def __init__(self, job: RunJob, pause_above: float, resume_below: float | None = None,
                 min_run: pd.Timedelta | str = "1h",
                 min_pause: pd.Timedelta | str = "30min") -> None:
        super().__init__(job)
        self.pause_above = number(pause_above, param("pause_above"), low=0, unit="g/kWh",
                                  example="380")
        self.resume_below = self.pause_above if resume_below is None else number(
            resume_below, param("resume_below"), low=0, unit="g/kWh", example="300")
        if self.resume_below > self.pause_above:
            raise RequestError(
                f"{param('resume_below')} = {self.resume_below:g} g/kWh is above "
                f"{param('pause_above')} = {self.pause_above:g}: a paused run would resume "
                "at an intensity that pauses it again; give a resume level at or below it")
        self.min_run = _as_duration(min_run, param("min_run"))
        self.min_pause = _as_duration(min_pause, param("min_pause"))

    def decide(self, obs: Observation) -> Decision:
        guard = deadline_guard(self, obs)
        if guard is not None:
            return Decision(True, guard)
        state = "keep running" if obs.running else "stay paused"
        if obs.intensity is None:
            return Decision(obs.running, f"intensity unknown ({obs.provenance or 'no source'}): "
                                         f"{state}")
        g = _level(obs.intensity)
        if obs.running:
            return self._running(obs, g)
        return self._paused(obs, g)

    def _running(self, obs: Observation, g: str) -> Decision:
        level = _level(self.pause_above)
        assert obs.intensity is not None
        if obs.intensity <= self.pause_above:
            return Decision(True, f"intensity {g} <= pause level {level}")
        if obs.age < self.min_run:
            return Decision(True, f"intensity {g} > pause level {level}, but the run is "
                                  f"{span_text(obs.age)} old < min run {span_text(self.min_run)}")
        return Decision(False, f"intensity {g} > pause level {level}")

    def _paused(self, obs: Observation, g: str) -> Decision:
        level = _level(self.resume_below)
        assert obs.intensity is not None
        if obs.intensity > self.resume_below:
            return Decision(False, f"intensity {g} > resume level {level}")
        if started(obs) and obs.age < self.min_pause:
            return Decision(False, f"intensity {g} <= resume level {level}, but the pause is "
                                   f"{span_text(obs.age)} old < min pause "
                                   f"{span_text(self.min_pause)}")
        return Decision(True, f"intensity {g} <= resume level {level}")


class PlanPolicy(RunPolicy):
    """Follow one job's segments of a plan (``greenepoch plan``) in one zone.

    Runs iff ``now`` falls inside a segment of job ``job_name`` in ``zone``
    (``start <= now < end``).  After the job's last segment (in any zone) the plan has
    nothing more to say: the training runs until it is done (``plan ended, work
    remains``), since a plan made on a forecast may have under-estimated the work.
    Outside its segments the deadline guard (:func:`deadline_guard`) runs it too, when the
    work left (by the reported progress) no longer fits the job's deadline.  ``zone``
    defaults to the job's zone.
    """

    name = "plan"

    def __init__(self, job: RunJob, plan: Plan, job_name: str, zone: str | None = None) -> None:
        super().__init__(job)
        self.zone = job.zone if zone is None else zone
        self.plan_job = _plan_job(plan, job_name, self.zone)
        self.segments = tuple(s for s in self.plan_job.segments if s.zone == self.zone)
        self.end = max(s.end for s in self.plan_job.segments)

    def decide(self, obs: Observation) -> Decision:
        here = self._segment_at(obs.now)
        if here is not None:
            k, seg = here
            return Decision(True, f"plan segment {k + 1} of {len(self.segments)} in "
                                  f"{self.zone}: {iso(seg.start)} to {iso(seg.end)}")
        guard = deadline_guard(self, obs)
        if guard is not None:
            return Decision(True, guard)
        if obs.now >= self.end:
            left = self.remaining_gpu_h(obs)
            work = "" if left is None else f" ({left:.2f} GPU-h by the estimate)"
            return Decision(True, f"plan ended, work remains{work}")
        nxt = next((s for s in self.segments if s.start > obs.now), None)
        where = (f"next {iso(nxt.start)}" if nxt is not None
                 else f"the plan continues elsewhere until {iso(self.end)}")
        return Decision(False, f"no plan segment in {self.zone} now; {where}")

    def _segment_at(self, now: pd.Timestamp) -> tuple[int, PlanSegment] | None:
        for k, seg in enumerate(self.segments):
            if seg.start <= now < seg.end:
                return k, seg
        return None


def _plan_job(plan: Plan, job_name: str, zone: str) -> PlanJob:
    """The plan's job ``job_name`` with segments in ``zone``; otherwise one error that
    lists what the plan has (each job with its zones)."""
    for job in plan.jobs:
        if job.name == job_name and any(s.zone == zone for s in job.segments):
            return job
    has = "; ".join(f"{j.name} in {', '.join(dict.fromkeys(s.zone for s in j.segments))}"
                    for j in plan.jobs if j.segments) or "no segments at all"
    raise RequestError(f"the plan has no segments of {param('job_name')} {job_name!r} in "
                       f"{param('zone')} {zone!r}; it has: {has}")


def _read_plan(value: Plan | str | Path) -> Plan:
    return value if isinstance(value, Plan) else Plan.from_json(value)


#: How an error names a policy's options (literal names, so the CLI shows its flags)
_NAMED = {"pause_above": param("pause_above"), "resume_below": param("resume_below"),
          "min_run": param("min_run"), "min_pause": param("min_pause"),
          "plan": param("plan"), "job_name": param("job_name"), "zone": param("zone")}


def _names(names: list[str]) -> str:
    return ", ".join(_NAMED.get(n, n) for n in names)

#: The policies by name (``replan`` is imported on demand: it pulls in the planner).
POLICIES = ("threshold", "plan", "replan")


def make_policy(name: str, job: RunJob, **options: Any) -> RunPolicy:
    """The policy called ``name`` for ``job``, built from keyword ``options`` (those of
    its class: :class:`ThresholdPolicy`, :class:`PlanPolicy`, ``replan.ReplanPolicy``).
    Options given as None are left to the policy's defaults; ``plan`` may be a path."""
    if name == "threshold":
        cls: type[RunPolicy] = ThresholdPolicy
    elif name == "plan":
        cls = PlanPolicy
    elif name == "replan":
        from greenepoch.planner.run.replan import ReplanPolicy
        cls = ReplanPolicy
    else:
        raise RequestError(f"{param('policy')} = {name!r}: not a policy; choose one of "
                           f"{', '.join(POLICIES)}")
    given = {k: v for k, v in options.items() if v is not None}
    accepted = [p for p in inspect.signature(cls.__init__).parameters.values()
                if p.name not in ("self", "job")]
    unknown = sorted(set(given) - {p.name for p in accepted})
    if unknown:
        raise RequestError(f"policy {name} takes no {_names(unknown)}; it takes "
                           f"{_names([p.name for p in accepted])}")
    missing = [p.name for p in accepted
               if p.default is inspect.Parameter.empty and p.name not in given]
    if missing:
        raise RequestError(f"policy {name} needs {_names(missing)}")
    if name == "plan":
        given["plan"] = _read_plan(given["plan"])
    return cls(job, **given)
