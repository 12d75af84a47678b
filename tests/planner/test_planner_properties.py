"""Plan invariants over random small requests (Hypothesis).

Every feasible solve passes :func:`check_schedule` and the same invariants recounted
here from the raw arrays; every infeasible draw raises InfeasibleError (never a broken
plan), and only when the MILP itself is infeasible; on uncoupled requests the MILP
equals the exact cleanest-slots method.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import Policy
from greenepoch.planner.pipeline import Intensities
from greenepoch.planner.plan import Plan, assemble, run_now_plans
from greenepoch.solvers.backends import SolveStatus, get_backend
from greenepoch.solvers.formulation import build
from greenepoch.solvers.heuristics import exact_applies, exact_cleanest_slots, greedy
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import Schedule, objective
from greenepoch.solvers.solve import Outcome, baseline_violations, check_schedule, solve_problem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

POLICY = Policy(mip_gap=0.0, time_limit=pd.Timedelta("30s"))
SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
T0 = pd.Timestamp("2023-06-01T00:00:00Z")


@st.composite
def job_specs(draw: st.DrawFn, index: int, n_zones: int, n_slots: int,
              coupled: bool = True) -> JobSpec:
    """One job; ``coupled=False`` keeps to what the exact method covers."""
    gpus = draw(st.sampled_from([1, 2, 4]))
    step = draw(st.sampled_from([1, 1, 2])) if coupled and gpus % 2 == 0 else 1
    first = draw(st.integers(0, n_slots // 2))
    last = draw(st.integers(min(first + 3, n_slots - 1), n_slots - 1))
    if coupled:
        zones = tuple(sorted(draw(st.sets(st.integers(0, n_zones - 1), min_size=1))))
    else:
        zones = tuple(range(n_zones))
    window = last - first + 1
    work = draw(st.floats(0.05, 0.6)) * window * gpus  # GPU-hours, usually feasible
    return JobSpec(
        name=f"job{index}",
        gpus=gpus,
        gpus_min=step * draw(st.integers(1, gpus // step)) if coupled else gpus,
        work=round(work, 3) or 0.25,
        power_kw=draw(st.sampled_from([0.5, 1.0, 1.3])),
        first=first,
        last=last,
        zones=zones,
        home=draw(st.sampled_from(zones)),
        overhead_h=draw(st.sampled_from([0.0, 0.25, 0.5])) if coupled else 0.0,
        max_starts=draw(st.sampled_from([None, None, 1, 2, 3])) if coupled else None,
        min_run_slots=draw(st.integers(1, 3)) if coupled else 1,
        checkpoint_gb=draw(st.sampled_from([0.0, 0.0, 50.0])) if coupled else 0.0,
        egress_usd_per_gb=0.02,
        transfer_slots=draw(st.sampled_from([0, 0, 1])) if coupled else 0,
        transfer_kwh_per_gb=0.06,
        allow_split=draw(st.booleans()) if coupled else False,
        save_h=draw(st.sampled_from([0.0, 0.0, 0.25])) if coupled else 0.0,
        max_moves=draw(st.sampled_from([None, None, 0, 1])) if coupled else None,
        gpus_step=step,
        resize_h=draw(st.sampled_from([None, None, 0.1])) if coupled else None,
    )


@st.composite
def problems(draw: st.DrawFn, coupled: bool = True) -> PlanningProblem:
    n_zones = draw(st.integers(1, 3))
    n_slots = draw(st.integers(8, 30))
    n_jobs = draw(st.integers(1, 3)) if coupled else 1
    jobs = [draw(job_specs(i, n_zones, n_slots, coupled)) for i in range(n_jobs)]
    intensity = np.array(draw(st.lists(
        st.lists(st.integers(0, 900), min_size=n_slots, max_size=n_slots),
        min_size=n_zones, max_size=n_zones)), dtype=float)
    capacity = np.array(draw(st.lists(
        st.lists(st.sampled_from([0, 2, 4, 8, 8, 16, 16]), min_size=n_slots, max_size=n_slots),
        min_size=n_zones, max_size=n_zones)), dtype=np.int64)
    mode = draw(st.sampled_from(["hard", "soft"]))
    return PlanningProblem(
        slots=pd.date_range(T0, periods=n_slots, freq="1h", name="time"),
        slot_h=1.0,
        zones=tuple(f"Z{i}" for i in range(n_zones)),
        jobs=tuple(jobs),
        intensity=intensity,
        pue=np.array(draw(st.lists(st.sampled_from([1.0, 1.1, 1.5]), min_size=n_zones,
                                   max_size=n_zones))),
        capacity=capacity,
        price=None,
        threshold=draw(st.sampled_from([None, None, 300.0, 600.0])),
        threshold_mode=mode,
        threshold_penalty=draw(st.sampled_from([0.5, 2.0])),
        price_weight=draw(st.sampled_from([0.0, 0.5])),
    )


def _starts(held: np.ndarray) -> int:
    """Runs begun, counted slot by slot: held in a zone and not held there just before."""
    count = 0
    for row in held:
        before = False
        for now in row.tolist():
            count += bool(now and not before)
            before = now
    return count


def _runs(row: np.ndarray) -> list[int]:
    """Lengths of the maximal runs of held slots in one zone."""
    out, length = [], 0
    for now in row.tolist():
        if now:
            length += 1
        elif length:
            out.append(length)
            length = 0
    return out + ([length] if length else [])


def assert_invariants(p: PlanningProblem, s: Schedule) -> None:
    assert check_schedule(p, s) == []
    tol = 1e-6
    assert (s.gpus >= 0).all() and (s.run >= -tol).all()
    assert (s.gpus.sum(axis=0) <= p.capacity).all(), "capacity exceeded"
    for j, job in enumerate(p.jobs):
        held = s.gpus[j] > 0
        sizes = s.gpus[j][held]
        assert ((sizes >= job.gpus_min) & (sizes <= job.gpus)).all()
        assert (s.run[j] <= s.gpus[j] * p.slot_h + tol).all()
        assert not held[[z for z in range(len(p.zones)) if z not in job.zones]].any()
        slots = np.flatnonzero(held.any(axis=0))
        assert len(slots) > 0
        assert job.first <= slots[0] and slots[-1] <= job.last
        if p.threshold is not None and p.threshold_mode == "hard":
            assert (p.intensity[held] <= p.threshold).all()
        if not job.allow_split:
            assert (held.sum(axis=0) <= 1).all()
        starts = _starts(held)
        assert s.starts(j) == starts
        assert (sizes % job.gpus_step == 0).all()
        if job.max_starts is not None:  # size changes that are restarts count
            assert s.segments(job, j) <= job.max_starts
        if job.max_moves is not None:
            assert len(s.moves(j, job.home)) <= job.max_moves
        delivered = s.run[j].sum() - s.lost_gpu_h(job, j)
        assert delivered == pytest.approx(job.work, rel=1e-6, abs=1e-6)
        for z in job.zones:
            assert all(n >= job.min_run_slots for n in _runs(held[z]))
        if job.migrates_at_cost:  # a checkpoint move blocks the new zone for transfer_slots
            ran = held.any(axis=0)
            for _z, t in s.moves(j, job.home):
                before = np.flatnonzero(ran[:t])
                free_from = before[-1] + 1 if len(before) else job.first
                assert t - free_from >= job.transfer_slots


def assert_plan_document(p: PlanningProblem, out: Outcome) -> None:
    """The plan JSON agrees with the schedule and is strict JSON."""
    flags = pd.DataFrame(False, index=p.slots, columns=list(p.zones))
    judged = IntensityData(pd.DataFrame(p.intensity.T, index=p.slots, columns=list(p.zones)),
                           flags, flags.copy(), "synthetic")
    step = pd.Timedelta(hours=p.slot_h)
    # assemble reads the request's start, slot name and each job's window and work
    jobs = [SimpleNamespace(name=job.name, release=p.slots[job.first],
                            deadline=p.slots[job.last] + step, gpu_hours=job.work)
            for job in p.jobs]
    req = SimpleNamespace(start=T0, policy=Policy(), jobs=jobs,
                          deadline_margin_of=lambda _job: pd.Timedelta(0))
    plan = assemble(req, p, out, Intensities(judged, None, "oracle", None), 0.0)  # type: ignore[arg-type]
    text = plan.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the plan JSON"))
    assert Plan.from_json(text) == plan  # the JSON is only its serialisation
    assert [(j.release, j.deadline, j.gpu_hours) for j in plan.jobs] == [
        (j.release, j.deadline, j.gpu_hours) for j in jobs]
    plan_doc = plan.to_dict()
    for j, (job, doc) in enumerate(zip(p.jobs, plan_doc["jobs"], strict=True)):
        segs = doc["segments"]
        assert segs
        for seg in segs:
            start, end = pd.Timestamp(seg["start"]), pd.Timestamp(seg["end"])
            assert seg["start"].endswith("Z") and seg["end"].endswith("Z")
            assert p.slots[job.first] <= start < end <= p.slots[job.last] + step
            assert job.gpus_min <= seg["gpus"] <= job.gpus
        kwh = sum(float((out.schedule.run[j, z] * job.power_kw * p.pue[z]).sum())
                  for z in range(len(p.zones)))
        assert sum(seg["energy_kwh"] for seg in segs) == pytest.approx(kwh, abs=1e-3 * len(segs))
        summary = doc["summary"]
        assert summary["emissions_kg"] == pytest.approx(
            sum(seg["emissions_kg"] for seg in segs) + summary["transfer_emissions_kg"],
            abs=2e-3)
        # a size change that is a restart is an interruption too
        assert summary["interruptions"] == out.schedule.segments(job, j) - 1
        # work arithmetic: what the segments run less what is lost is the work done;
        # every run but the last ends in a save, charged at the largest size
        assert sum(seg["gpu_hours"] for seg in segs) - summary["lost_gpu_hours"] == \
            pytest.approx(out.schedule.work_done(p, j), abs=2e-3 * len(segs))
        assert sum(seg["save_hours"] for seg in segs) * job.gpus == pytest.approx(
            job.save_gpu_h * (out.schedule.segments(job, j) - 1))
        assert all(seg["gpus"] % doc["gpus_step"] == 0 for seg in segs)
        assert summary["migrations"] == len(out.schedule.moves(j, job.home))
        assert summary["finish"] == max(seg["end"] for seg in segs)


def assert_truly_infeasible(p: PlanningProblem, message: str) -> None:
    """The error explains itself, and the MILP agrees there is no plan."""
    assert message.startswith("infeasible") or "no plan" in message
    assert any(f"'{job.name}'" in message for job in p.jobs)
    solution = get_backend("highs").solve(build(p).lp, time_limit=30, mip_gap=0.0)
    assert solution.status is SolveStatus.INFEASIBLE, message


@SETTINGS
@given(problems())
def test_every_plan_keeps_the_invariants(p: PlanningProblem):
    try:
        out = solve_problem(p, POLICY.solve_settings)
    except InfeasibleError as exc:
        assert_truly_infeasible(p, str(exc))
        return
    assert out.method == "milp"
    assert out.solution.status is SolveStatus.OPTIMAL
    assert_invariants(p, out.schedule)
    assert_plan_document(p, out)
    # the MILP charges exactly what the plan reports, except where a minimum run length
    # makes a job hold slots past its end (the plan leaves them idle, the MILP charges)
    # (within the solver's feasibility tolerance, 1e-6 of a slot at the dearest cost)
    reported = objective(p, out.schedule)
    tol = 1e-6 * max(job.gpus * p.slot_h * float(p.cost_per_gpu_h(job, z).max())
                     for job in p.jobs for z in job.zones) + 1e-9
    assert out.solution.objective == pytest.approx(reported, rel=1e-9, abs=1e-12)
    solver = out.solution.incumbent  # the MILP's own value, before extraction
    assert solver is not None
    if all(job.min_run_slots <= 1 for job in p.jobs):
        assert solver == pytest.approx(reported, rel=1e-6, abs=tol)
    else:
        assert reported <= solver * (1 + 1e-6) + tol
    if exact_applies(p):
        exact = exact_cleanest_slots(p)
        assert exact is not None
        assert out.solution.objective == pytest.approx(objective(p, exact), rel=1e-6,
                                                       abs=1e-9)
        assert objective(p, out.schedule) == pytest.approx(objective(p, exact), rel=1e-6,
                                                           abs=1e-9)


@SETTINGS
@given(problems())
def test_plans_are_never_worse_than_a_feasible_baseline(p: PlanningProblem):
    """With a loose gap (HiGHS may stop at its first incumbent) the plan still costs no
    more than each run-now baseline that satisfies the request."""
    plans = run_now_plans(p)
    try:
        out = solve_problem(p, SolveSettings(mip_gap=0.9, time_limit=pd.Timedelta("30s")),
                            baselines=plans)
    except InfeasibleError:
        return
    assert_invariants(p, out.schedule)
    assert out.solution.objective == pytest.approx(objective(p, out.schedule), rel=1e-9)
    for base in plans.values():
        if base is not None and not any(baseline_violations(p, base).values()):
            assert check_schedule(p, base) == []
            assert out.solution.objective <= objective(p, base) + 1e-9


@SETTINGS
@given(problems(coupled=False))
def test_milp_equals_the_exact_method_when_nothing_couples_slots(p: PlanningProblem):
    assert exact_applies(p)
    exact = exact_cleanest_slots(p)
    try:
        out = solve_problem(p, POLICY.solve_settings)
    except InfeasibleError as exc:
        assert exact is None
        assert_truly_infeasible(p, str(exc))
        return
    assert exact is not None
    assert_invariants(p, exact)
    assert out.solution.objective == pytest.approx(objective(p, exact), rel=1e-6, abs=1e-9)
    assert objective(p, out.schedule) == pytest.approx(objective(p, exact), rel=1e-6, abs=1e-9)


@SETTINGS
@given(problems())
def test_greedy_plans_keep_the_invariants(p: PlanningProblem):
    schedule, note = greedy(p)
    if schedule is None:
        assert "found no room" in note
        return
    assert_invariants(p, schedule)
