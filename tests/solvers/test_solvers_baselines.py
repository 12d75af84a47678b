"""The run-now baselines are plans too: never return anything dearer than one that
satisfies the request, and say beside a baseline's figure where it does not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from greenepoch.planner.cli.report import plan_summary
from greenepoch.planner.model import Policy, Zone
from greenepoch.planner.pipeline import Intensities, build_problem
from greenepoch.planner.plan import assemble, run_now_plans
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import objective
from greenepoch.solvers.solve import baseline_violations, check_schedule, solve_problem

from tests.planner.test_planner_small import data, job, request


def _two_small_jobs() -> PlanningProblem:
    """Found by the property test: two elastic jobs that fit only in the last two slots."""
    spec = JobSpec(name="job0", gpus=2, gpus_min=1, work=1.875, power_kw=0.5, first=0,
                   last=14, zones=(0,), home=0, overhead_h=0.0, max_starts=None,
                   min_run_slots=1, checkpoint_gb=0.0, egress_usd_per_gb=0.02,
                   transfer_slots=0, transfer_kwh_per_gb=0.06, allow_split=False)
    intensity = np.zeros((1, 15))
    intensity[0, 13:] = [1.0, 2.0]
    capacity = np.zeros((1, 15), np.int64)
    capacity[0, 13:] = [4, 2]
    return PlanningProblem(
        slots=pd.date_range("2023-06-01", periods=15, freq="1h", tz="UTC", name="time"),
        slot_h=1.0, zones=("Z0",), jobs=(spec, dataclasses.replace(spec, name="job1")),
        intensity=intensity, pue=np.array([1.0]), capacity=capacity, price=None)


def test_a_loose_gap_never_returns_a_plan_dearer_than_running_now():
    """With mip_gap 0.9 HiGHS stopped at a first incumbent of 0.00275 while running now
    at home, within every limit, costs 0.001875."""
    p = _two_small_jobs()
    plans = run_now_plans(p)
    home = plans["run_now_home"]
    assert home is not None and baseline_violations(p, home) == {0: [], 1: []}
    assert check_schedule(p, home) == []
    policy = Policy(mip_gap=0.9, time_limit=pd.Timedelta("30s"))
    out = solve_problem(p, policy.solve_settings, baselines=plans)
    assert out.solution.objective is not None
    assert out.solution.objective <= objective(p, home) + 1e-12
    assert objective(p, out.schedule) == pytest.approx(out.solution.objective)
    assert check_schedule(p, out.schedule) == []
    # without baselines the PuLP path now starts from the greedy plan (0.001875 here;
    # HiGHS's own first incumbent was 0.00275), so it is no dearer either
    alone = solve_problem(p, policy.solve_settings)
    assert alone.solution.objective == pytest.approx(0.001875)


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_the_pulp_path_starts_from_the_baseline(solver):
    """The baseline is HiGHS's (setSolution) or CBC's (warmStart) first incumbent, so the
    solver's own plan is no dearer than it (it stopped at 0.00275 without it)."""
    p = _two_small_jobs()
    plans = run_now_plans(p)
    settings = SolveSettings(solver=solver, mip_gap=0.9, time_limit=pd.Timedelta("30s"))
    out = solve_problem(p, settings, baselines=plans)
    assert out.method == "milp"  # the solver's plan, not the baseline put in its place
    assert out.solution.incumbent is not None
    assert out.solution.incumbent <= objective(p, plans["run_now_home"]) + 1e-9


def test_a_cheaper_baseline_replaces_the_solvers_plan(monkeypatch):
    """Where the solver's plan is dearer all the same, the guard returns the baseline
    and says so (the solver left to its own first incumbent: no greedy start)."""
    from greenepoch.solvers import solve
    from greenepoch.solvers.solve import _whole_baseline

    p = _two_small_jobs()
    home = run_now_plans(p)["run_now_home"]
    assert home is not None
    monkeypatch.setattr(solve, "_cheaper_start", lambda problem, start: start)
    alone = solve_problem(p, SolveSettings(mip_gap=0.9, time_limit=pd.Timedelta("30s")))
    out = _whole_baseline(alone, "run_now_home", (home, objective(p, home)))
    assert out.method == "milp+baseline" and out.schedule is home
    assert "the run_now_home baseline (0.001875) was cheaper than the solver's plan " \
        "(0.00275)" in out.solution.message


def test_a_baseline_above_the_hard_threshold_says_so_beside_its_figure():
    req = request([job(gpus=2, gpu_hours=4.0)], threshold=300.0)
    judged = data({"DE": [400, 400, 100, 100, 100, 100]})
    p = build_problem(req, judged)
    out = solve_problem(p, req.policy.solve_settings, baselines=run_now_plans(p))
    planned = assemble(req, p, out, Intensities(judged, None, "oracle", None), 0.0).jobs[0]
    assert planned.baselines is not None and planned.summary is not None
    home = planned.baselines["run_now_home"]
    assert home.emissions_kg == pytest.approx(2 * 2 * 400 / 1000)  # runs now, in the 400s
    assert home.meets_request is False
    assert home.violations == ("runs 2 slot(s) above the hard threshold 300 gCO2eq/kWh",)
    assert planned.summary.emissions_kg == pytest.approx(2 * 2 * 100 / 1000)
    plan = assemble(req, p, out, Intensities(judged, None, "oracle", None), 0.0)
    assert "NOTE: job 'train': run_now_home (1.6 kg) does not meet the request: runs 2 " \
        "slot(s) above the hard threshold 300 gCO2eq/kWh." in plan_summary(plan)


def test_baselines_that_crowd_a_zone_are_not_used_and_say_so():
    jobs = [job(name="a", gpus=4, gpu_hours=8.0), job(name="b", gpus=4, gpu_hours=8.0)]
    req = request(jobs, zones=[Zone("DE", capacity_gpus=4, pue=1.0)])
    judged = data({"DE": [100, 100, 300, 300, 500, 500]})
    p = build_problem(req, judged)
    plans = run_now_plans(p)
    assert plans["run_now_home"] is not None
    broken = baseline_violations(p, plans["run_now_home"])
    assert broken[0] == broken[1] == ["exceeds the zone capacity with the other jobs in 2 slot(s)"]
    out = solve_problem(p, req.policy.solve_settings, baselines=plans)
    assert check_schedule(p, out.schedule) == []
    assert "baseline" not in out.method
    planned = assemble(req, p, out, Intensities(judged, None, "oracle", None), 0.0)
    assert [j.baselines["run_now_home"].meets_request for j in planned.jobs
            if j.baselines is not None] == [False, False]


def test_one_job_runs_as_its_baseline_when_the_whole_baseline_breaks_the_request(monkeypatch):
    """Found by a search at mip_gap 0.9: running every job now at home crowds zone Z0,
    but job2 alone run now at home, the others as planned, keeps every limit and costs
    less than the solver's plan (0.178808 -> 0.17627; the solver left to its own first
    incumbent: no greedy start)."""
    from greenepoch.solvers import solve

    monkeypatch.setattr(solve, "_cheaper_start", lambda problem, start: start)
    base = JobSpec(name="job0", gpus=1, gpus_min=1, work=2.0, power_kw=0.5, first=0, last=3,
                   zones=(0,), home=0, overhead_h=0.0, max_starts=None, min_run_slots=1,
                   checkpoint_gb=0.0, egress_usd_per_gb=0.02, transfer_slots=0,
                   transfer_kwh_per_gb=0.06, allow_split=False)
    jobs = (base, dataclasses.replace(base, name="job1", work=2.344, last=19, zones=(0, 1)),
            dataclasses.replace(base, name="job2", work=0.203, zones=(0, 1)))
    intensity = np.zeros((3, 22))
    intensity[0, [2, 3, 7]] = [47, 296, 215]
    intensity[1, [1, 2, 3, 5, 6, 14]] = [742, 73, 72, 32, 99, 12]
    capacity = np.zeros((3, 22), np.int64)
    capacity[0, [2, 3, 4, 6, 7, 9]] = 2
    capacity[1, [1, 2, 3, 5, 6, 14]] = 2
    p = PlanningProblem(
        slots=pd.date_range("2023-06-01", periods=22, freq="1h", tz="UTC", name="time"),
        slot_h=1.0, zones=("Z0", "Z1", "Z2"), jobs=jobs, intensity=intensity,
        pue=np.ones(3), capacity=capacity, price=None)
    plans = run_now_plans(p)
    assert all(b is None or any(baseline_violations(p, b).values()) for b in plans.values())
    policy = Policy(mip_gap=0.9, time_limit=pd.Timedelta("30s"))
    alone = solve_problem(p, policy.solve_settings)
    out = solve_problem(p, policy.solve_settings, baselines=plans)
    assert alone.solution.objective == pytest.approx(0.178808, abs=1e-6)
    assert out.solution.objective == pytest.approx(0.1762705)
    assert "'job2' run_now_home" in out.solution.message and out.method == "milp+baseline"
    assert check_schedule(p, out.schedule) == []
    assert objective(p, out.schedule) == pytest.approx(out.solution.objective)
