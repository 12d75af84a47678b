"""The vectorised HiGHS build, the exact DP and the decomposition against the PuLP
model, on small synthetic instances (no shared data needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from greenepoch.planner.model import Policy
from greenepoch.solvers import bounds, dp, fastbuild, lns
from greenepoch.solvers.backends import HighsBackend, SolveStatus, run_highs
from greenepoch.solvers.formulation import build
from greenepoch.solvers.problem import PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import objective
from greenepoch.solvers.solve import (
    FAST_MIN_KEYS,
    check_schedule,
    count_keys,
    solve_fast,
    solve_problem,
)

from benchmarks.instances import Instance, make_problem

pytestmark = pytest.mark.skipif(not HighsBackend.is_available(), reason="HiGHS not available")


def synthetic(n_jobs: int, n_zones: int, hours: int, seed: int, slot: str = "1h",
              shared: bool = True) -> PlanningProblem:
    """A seeded instance on smooth random intensities (gCO2eq/kWh)."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(slot)
    index = pd.date_range("2023-03-01", periods=int(pd.Timedelta(hours=hours) / step),
                          freq=step, tz="UTC", name="time")
    t = np.arange(len(index)) * (step / pd.Timedelta("1h"))
    cols = {f"Z{z}": 200 + 150 * np.sin(2 * np.pi * (t / 24 + rng.uniform()))
            + rng.normal(0, 30, len(t)).cumsum() * 0.1 + 100 * z for z in range(n_zones)}
    values = pd.DataFrame(cols, index=index).clip(lower=5)
    spec = Instance("T", "test", n_jobs, n_zones, hours, slot, (4.0, 12.0), shared, seed,
                    0.0, 60.0, whole_horizon=n_jobs == 1)
    return make_problem(spec, values)


def variants(problem: PlanningProblem) -> list[PlanningProblem]:
    """The problem plus elastic, min-run, paid-migration and hard-threshold variants, and
    those of issue 15: checkpoint save time, a migration cap, an elastic job on a size
    step whose size changes are restarts or in-place resizes."""
    job = problem.jobs[0]
    elastic = dataclasses.replace(job, gpus_min=max(1, job.gpus // 2))
    half = job.gpus // 2
    stepped = dataclasses.replace(job, gpus_min=half // 2 * 2, gpus_step=half // 2)
    in_place = dataclasses.replace(stepped, resize_h=0.1, save_h=0.05)
    saves = dataclasses.replace(job, save_h=0.2)
    capped = dataclasses.replace(job, max_moves=1, save_h=0.1)
    minrun = dataclasses.replace(job, min_run_slots=3)
    migrate = dataclasses.replace(job, checkpoint_gb=50.0, transfer_kwh_per_gb=0.06,
                                  egress_usd_per_gb=0.02, transfer_slots=1)
    threshold = float(np.quantile(problem.intensity, 0.7))
    return [
        problem,
        dataclasses.replace(problem, jobs=(elastic, *problem.jobs[1:])),
        dataclasses.replace(problem, jobs=(minrun, *problem.jobs[1:])),
        dataclasses.replace(problem, jobs=(migrate, *problem.jobs[1:])),
        dataclasses.replace(problem, threshold=threshold),
        dataclasses.replace(problem, jobs=(stepped, *problem.jobs[1:])),
        dataclasses.replace(problem, jobs=(in_place, *problem.jobs[1:])),
        dataclasses.replace(problem, jobs=(saves, *problem.jobs[1:])),
        dataclasses.replace(problem, jobs=(capped, *problem.jobs[1:])),
    ]


def pulp_objective(problem: PlanningProblem, relax: bool = False) -> float:
    model = build(problem, relax=relax)
    solution = HighsBackend().solve(model.lp, time_limit=60, mip_gap=0.0)
    assert solution.status is SolveStatus.OPTIMAL
    return solution.objective


def fast_objective(problem: PlanningProblem, relax: bool = False) -> tuple[float, PlanningProblem,
                                                                         fastbuild.FastModel,
                                                                         np.ndarray]:
    fm = fastbuild.build(problem, relax=relax)
    solution, values, _ = run_highs(fm.to_highs_lp(), time_limit=60, mip_gap=0.0)
    assert solution.status is SolveStatus.OPTIMAL
    return solution.objective, problem, fm, values


SMALL = [synthetic(1, 3, 24, 1), synthetic(2, 2, 24, 2), synthetic(3, 2, 18, 3)]


@pytest.mark.parametrize("base", SMALL, ids=["1job", "2jobs", "3jobs"])
def test_fast_build_matches_pulp(base: PlanningProblem) -> None:
    for problem in variants(base):
        for relax in (False, True):
            fast, _, fm, values = fast_objective(problem, relax)
            assert fast == pytest.approx(pulp_objective(problem, relax), rel=1e-6, abs=1e-6)
            if not relax:
                plan = fastbuild.schedule_from(fm, values)
                assert check_schedule(problem, plan) == []


@pytest.mark.parametrize("base", SMALL, ids=["1job", "2jobs", "3jobs"])
def test_family_rows_cover_the_model(base: PlanningProblem) -> None:
    fm = fastbuild.build(base)
    covered = sum(b - a for a, b in fm.family_rows.values())
    assert covered == fm.n_rows
    assert len(build(base).lp.constraints) == fm.n_rows  # minrunend rows are bounds here


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_dp_is_exact_for_one_job(seed: int) -> None:
    problem = synthetic(1, 3, 36, seed)
    job = problem.jobs[0]
    assert dp.applies(job)
    value, held = dp.best_plan(problem, job, dp.job_slot_cost(problem, job))
    assert value == pytest.approx(pulp_objective(problem), rel=1e-7)
    assert (held >= 0).sum() >= dp.need(problem, job, 1)


def test_dp_15_minute_slots() -> None:
    problem = synthetic(1, 2, 24, 5, slot="15min")
    job = problem.jobs[0]
    value, _ = dp.best_plan(problem, job, dp.job_slot_cost(problem, job))
    assert value == pytest.approx(pulp_objective(problem), rel=1e-7)


def test_warm_start_is_feasible() -> None:
    from greenepoch.solvers.heuristics import greedy

    problem = synthetic(3, 2, 24, 7)
    plan, _ = greedy(problem)
    assert plan is not None
    fm = fastbuild.build(problem)
    start = fastbuild.start_values(fm, plan)
    assert start is not None
    solution, _, _ = run_highs(fm.to_highs_lp(), time_limit=10, mip_gap=1.0, start=start)
    assert solution.status.has_solution
    assert solution.objective <= objective(problem, plan) + 1e-6


def test_bounds_are_lower_bounds() -> None:
    problem = synthetic(3, 2, 24, 8)
    optimum = pulp_objective(problem)
    lp = pulp_objective(problem, relax=True)
    transport, _, _ = bounds.transport_bound(problem, 30)
    assert bounds.separable_bound(problem) <= transport + 1e-6
    assert transport <= lp + 1e-6
    assert lp <= optimum + 1e-6
    prices = np.random.default_rng(0).uniform(0, 0.05, problem.capacity.shape)
    lag, _ = lns.dp_lagrangian(problem, prices, deadline=float("inf"))
    assert lag is not None and lag <= optimum + 1e-6


def test_decomposition_plans_pass_the_checks() -> None:
    problem = synthetic(5, 3, 48, 9)
    progress = lns.decompose(problem, time_limit=3.0)
    assert progress.schedule is not None
    assert check_schedule(problem, progress.schedule) == []
    assert progress.bound <= progress.objective + 1e-6
    assert progress.objective == pytest.approx(objective(problem, progress.schedule))


@pytest.mark.parametrize(("n_jobs", "method"), [(1, "exact-dp"), (4, "lns"), (4, "lns+milp")])
def test_solve_problem_fast_paths(n_jobs: int, method: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import greenepoch.solvers.solve

    problem = synthetic(n_jobs, 3, 48, 10 + n_jobs)
    seconds = 4.0
    min_seconds = 1.0 if method == "lns+milp" else 99
    monkeypatch.setattr(greenepoch.solvers.solve, "MILP_MIN_SECONDS", min_seconds)
    policy = Policy(time_limit=pd.Timedelta(seconds=seconds), mip_gap=1e-6)
    outcome = solve_fast(problem, policy.solve_settings)
    assert outcome.method == method
    assert check_schedule(problem, outcome.schedule) == []
    assert outcome.solution.status.has_solution
    assert outcome.solution.bound <= outcome.solution.objective + 1e-6
    assert objective(problem, outcome.schedule) <= outcome.solution.objective + 1e-6
    assert outcome.solution.seconds < seconds + 2.0


def test_solve_problem_routes_large_problems_to_the_fast_path() -> None:
    problem = synthetic(1, 8, 24 * 14, 13)
    assert count_keys(problem) > FAST_MIN_KEYS
    outcome = solve_problem(problem, SolveSettings(time_limit=pd.Timedelta(seconds=10)))
    assert outcome.method == "exact-dp"
    assert check_schedule(problem, outcome.schedule) == []


def test_solve_problem_pulp_path_unchanged() -> None:
    problem = synthetic(2, 2, 24, 12)
    assert count_keys(problem) <= FAST_MIN_KEYS
    outcome = solve_problem(problem, SolveSettings(time_limit=pd.Timedelta(seconds=30), mip_gap=0))
    assert outcome.method == "milp"
    assert check_schedule(problem, outcome.schedule) == []
    assert outcome.solution.objective == pytest.approx(pulp_objective(problem), rel=1e-6)


def test_progress_notes_follow_the_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import greenepoch.solvers.backends
    import greenepoch.solvers.solve

    monkeypatch.setattr(greenepoch.solvers.solve, "MILP_MIN_SECONDS", 1.0)
    monkeypatch.setattr(lns, "REPORT_EVERY", 0.0)
    monkeypatch.setattr(greenepoch.solvers.backends, "MIP_PROGRESS_EVERY", 0.0)
    problem = synthetic(4, 3, 48, 14)
    policy = Policy(time_limit=pd.Timedelta(seconds=4), mip_gap=1e-9)
    notes: list[str] = []
    # small: the PuLP path, which reports too
    solve_problem(problem, policy.solve_settings, notes.append)
    assert notes[0] == (f"solving 4 job(s) x 3 zone(s) x 48 slots ({count_keys(problem):,} "
                        "job-zone-slot choices) with highs, time limit 4 s")
    assert notes[1:] and all(n.endswith("(highs MILP)") for n in notes[1:])
    notes.clear()
    outcome = solve_fast(problem, policy.solve_settings, notes.append)
    line = re.compile(r"^\s*([\d.]+) s  plan ([\d,.]+)  bound ([\d,.]+)  gap [\d.]+ %  \((.+)\)$")
    parsed = [m.groups() for m in map(line.match, notes) if m]
    assert len(parsed) == len(notes) and len(parsed) >= 3
    seconds = [float(s) for s, _, _, _ in parsed]
    plans = [float(p.replace(",", "")) for _, p, _, _ in parsed]
    assert seconds == sorted(seconds) and plans == sorted(plans, reverse=True)
    assert parsed[0][3] == "greedy"
    assert outcome.method == "lns+milp"
    assert any(label.startswith("full MILP for the last") for *_, label in parsed)
    assert plans[-1] >= outcome.solution.objective - 0.05  # printed to 0.1


def test_progress_line() -> None:
    assert lns.progress_line(12.34, 5472.7, 5359.1, "lns 3") == \
        "  12.3 s  plan 5,472.7  bound 5,359.1  gap 2.08 %  (lns 3)"
    assert lns.progress_line(0.0, None, None, "start") == "   0.0 s  plan -  bound -  (start)"
