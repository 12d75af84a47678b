"""The ``replan`` policy of ``greenepoch run``: receding horizon on the latest forecast.

Every interval it re-plans the rest of the job, from the work left (the training's
progress, else the configured GPU-hours less the work done) to ``deadline - margin``,
on the forecast in the observation, and acts on the first slot.  The plan is the
replay's ``milp`` decision for one job whose capacity is its own
(:func:`greenepoch.planner.replay.decide.decide`: one function, two callers), so the
run pauses only when the emissions it expects to save exceed what the pause costs: the
``restart_h`` hours the job runs again without progress when it resumes.

Before planning, the deadline guard of the other policies
(:func:`~greenepoch.planner.run.model.deadline_guard`) keeps it running when a pause
would leave too little time; without a forecast, or while the work left is unknown, it
runs (and says why).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.data.timeparse import hours
from greenepoch.planner.replay.decide import Choice, Pending, decide
from greenepoch.planner.run.model import (
    Decision,
    Observation,
    RunJob,
    RunPolicy,
    deadline_guard,
)


class ReplanPolicy(RunPolicy):
    """Re-plan the rest of the job on each decision's forecast; run the first slot."""

    name = "replan"

    def __init__(self, job: RunJob) -> None:
        super().__init__(job)
        if job.deadline is None:
            raise RequestError(f"policy replan plans the work up to a {param('deadline')}; "
                               "give one (or use policy threshold)")

    def pending(self, obs: Observation) -> tuple[Pending, np.ndarray, float] | None:
        """The job as :func:`~greenepoch.planner.replay.decide.decide` reads it, the
        forecast on the slots to ``deadline - margin`` and the slot length (hours); None
        when it cannot be planned (no forecast, work left unknown)."""
        job = self.job
        work = self.remaining_h(obs)
        if work is None or obs.forecast is None or job.deadline is None:
            return None
        slot_h = hours(obs.interval)
        end = math.floor(hours(job.deadline - job.margin - obs.now) / slot_h + 1e-9)
        values = on_slots(obs).to_numpy(dtype=float)
        known = values[: int(np.argmax(np.isnan(values)))] if np.isnan(values).any() \
            else values
        if len(known) == 0:
            return None
        p = Pending(key=0, name=job.zone or "run", zone=0, gpus=job.gpus,
                    power_kw=job.power_kw, remaining_h=work, running=obs.running, end=end,
                    overhead_h=job.restart_h, save_h=0.0, interruptible=True)
        return p, known[: max(1, min(len(known), end))], slot_h

    def decide(self, obs: Observation) -> Decision:
        guard = deadline_guard(self, obs)
        if guard is not None:
            return Decision(True, guard)
        planned = self.pending(obs)
        if planned is None:
            why = "the work left is unknown" if self.remaining_h(obs) is None \
                else "no forecast"
            return Decision(True, f"replan: {why}; runs until it can plan")
        p, forecast, slot_h = planned
        if p.remaining_h <= 0:
            return Decision(True, "replan: no work left; runs to its end")
        choice = decide(forecast[None, :], slot_h, [p])[0]
        return Decision(choice.runs_now, self._reason(choice, obs),
                        expected_saving_kg=choice.saving_kg)

    def _reason(self, choice: Choice, obs: Observation) -> str:
        restart = f"restart {self.job.restart_h:g} h counted"
        if choice.saving_kg is None:
            return "replan: too little time left to pause"
        if choice.runs_now:
            return (f"replan: running now is expected to emit {-choice.saving_kg:.3g} kg "
                    f"less than pausing ({restart})")
        at = first_slot(obs, choice)
        resume = "" if at is None else f"; resumes at {at.isoformat()}"
        return (f"replan: pausing is expected to save {choice.saving_kg:.3g} kg "
                f"({restart}){resume}")


def on_slots(obs: Observation) -> pd.Series:
    """The observation's forecast on the decision slots from ``now`` (slot k at ``now +
    k x interval``), read by time: a slot the forecast has no value for is NaN, so the
    plan stops at the first gap and never takes a later value for an earlier slot."""
    assert obs.forecast is not None
    last = obs.forecast.index.max() if len(obs.forecast) else None
    n = 0 if last is None or last < obs.now else int((last - obs.now) // obs.interval) + 1
    return obs.forecast.reindex(pd.date_range(obs.now, periods=n, freq=obs.interval))


def first_slot(obs: Observation, choice: Choice) -> pd.Timestamp | None:
    """When ``choice`` next runs the job (None: not within the forecast)."""
    held = np.flatnonzero(choice.hours > 0)
    return None if not len(held) else obs.now + int(held[0]) * obs.interval
