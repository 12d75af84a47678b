"""Outcomes tell the truth: a solve that runs out of time with no plan is not a proof
that none exists (NoSolutionError), while a request shown impossible is (InfeasibleError)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError, NoSolutionError
from greenepoch.solvers.heuristics import greedy
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.solve import FAST_MIN_KEYS, count_keys, solve_problem

T0 = pd.Timestamp("2023-06-01T00:00:00Z")
N = 1600  # slots: more job-zone-slot choices than FAST_MIN_KEYS (the vectorised path)


def _job(name: str, gpus: int, work: float, first: int, last: int) -> JobSpec:
    return JobSpec(name=name, gpus=gpus, gpus_min=gpus, work=work, power_kw=1.0,
                   first=first, last=last, zones=(0,), home=0, overhead_h=0.0,
                   max_starts=None, min_run_slots=1, checkpoint_gb=0.0,
                   egress_usd_per_gb=0.0, transfer_slots=0, transfer_kwh_per_gb=0.0,
                   allow_split=False)


def _greedy_trap() -> PlanningProblem:
    """A plan exists that greedy cannot find: 'small' (1 GPU, one slot, earliest deadline:
    placed first) takes its cheapest slot, 700, inside the window 'big' (2 GPUs on a
    2-GPU zone) needs whole; 'small' fits only in slots 0-499."""
    intensity = np.full((1, N), 300.0)
    intensity[0, 700] = 10.0
    return PlanningProblem(
        slots=pd.date_range(T0, periods=N, freq="1h", name="time"), slot_h=1.0,
        zones=("Z0",),
        jobs=(_job("small", 1, 1.0, 0, 999), _job("big", 2, 2.0 * 1100, 500, N - 1)),
        intensity=intensity, pue=np.array([1.0]),
        capacity=np.full((1, N), 2, np.int64), price=None)


def test_the_trap_is_feasible_greedy_fails_and_the_solver_path_is_the_vectorised_one():
    problem = _greedy_trap()
    assert greedy(problem)[0] is None
    assert count_keys(problem) > FAST_MIN_KEYS
    out = solve_problem(problem, SolveSettings(time_limit=pd.Timedelta("2s")))
    assert out.schedule.gpus[0, 0, :500].sum() == 1  # 'small' before 'big' starts


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_time_out_without_a_plan_is_no_solution_not_infeasible(solver):
    """1 ms: the decomposition stops after greedy and the full MILP gets no time (HiGHS,
    the vectorised path), or CBC (through PuLP) stops before an incumbent: nothing is
    proved either way."""
    problem = _greedy_trap()
    with pytest.raises(NoSolutionError) as caught:
        solve_problem(problem, SolveSettings(solver=solver,
                                             time_limit=pd.Timedelta("1ms")))
    assert not isinstance(caught.value, InfeasibleError)
    message = str(caught.value)
    assert "does not prove that none exists" in message
    assert "policy.time_limit" in message
    assert "time limit of 0.001 s" in message


def test_a_job_that_cannot_fit_its_window_is_still_infeasible():
    """The pre-check proves it: InfeasibleError, not NoSolutionError."""
    problem = dataclasses.replace(_greedy_trap(), jobs=(_job("big", 2, 2.0 * N, 500, N - 1),))
    with pytest.raises(InfeasibleError):
        solve_problem(problem, SolveSettings(time_limit=pd.Timedelta("1ms")))
