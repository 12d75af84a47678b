"""Checkpoint save time, the migration cap, the elastic size step and size changes
(issue 15 items 2-4) on every solver path: the PuLP MILP, the vectorised MILP, the
exact DP where it applies and the greedy heuristic, against hand arithmetic and a
brute force over every plan of small problems."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError
from greenepoch.solvers import dp, fastbuild
from greenepoch.solvers.backends import HighsBackend, SolveStatus, run_highs
from greenepoch.solvers.formulation import build
from greenepoch.solvers.heuristics import greedy
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import Schedule, objective, trim_excess
from greenepoch.solvers.solve import check_schedule, extract, solve_fast, solve_problem
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(not HighsBackend.is_available(), reason="HiGHS not available")

T0 = pd.Timestamp("2023-06-01T00:00:00Z")


def job_spec(**kw: object) -> JobSpec:
    base: dict[str, object] = dict(
        name="j", gpus=2, gpus_min=2, work=4.0, power_kw=1.0, first=0, last=5, zones=(0,),
        home=0, overhead_h=0.0, max_starts=None, min_run_slots=1, checkpoint_gb=0.0,
        egress_usd_per_gb=0.0, transfer_slots=0, transfer_kwh_per_gb=0.0,
        allow_split=False)
    base.update(kw)
    return JobSpec(**base)  # type: ignore[arg-type]


def problem_of(job: JobSpec, intensity: list[list[float]],
               capacity: list[list[int]] | None = None) -> PlanningProblem:
    """One job, power 1 kW per GPU, PUE 1: a GPU-hour costs intensity / 1000 kg."""
    grid = np.array(intensity, float)
    n_z, n_t = grid.shape
    cap = np.full((n_z, n_t), 64) if capacity is None else np.array(capacity)
    return PlanningProblem(
        slots=pd.date_range(T0, periods=n_t, freq="1h", name="time"), slot_h=1.0,
        zones=tuple(f"Z{z}" for z in range(n_z)), jobs=(job,), intensity=grid,
        pue=np.ones(n_z), capacity=cap.astype(np.int64), price=None)


# --- every path -------------------------------------------------------------------------

def pulp_plan(p: PlanningProblem) -> tuple[float, Schedule]:
    model = build(p)
    solution = HighsBackend().solve(model.lp, time_limit=60, mip_gap=0.0)
    assert solution.status is SolveStatus.OPTIMAL
    return solution.objective, extract(model)


def fast_plan(p: PlanningProblem) -> tuple[float, Schedule]:
    fm = fastbuild.build(p)
    solution, values, _ = run_highs(fm.to_highs_lp(), time_limit=60, mip_gap=0.0)
    assert solution.status is SolveStatus.OPTIMAL and values is not None
    return solution.objective, fastbuild.schedule_from(fm, values)


def dp_plan(p: PlanningProblem) -> tuple[float, Schedule]:
    job = p.jobs[0]
    found = dp.best_plan(p, job, dp.job_slot_cost(p, job))
    assert found is not None
    out = Schedule.empty(p)
    slots = np.flatnonzero(found[1] >= 0)
    out.gpus[0, found[1][slots], slots] = job.gpus
    out.run[0, found[1][slots], slots] = job.gpus * p.slot_h
    trim_excess(p, out, 0)
    return found[0], out


def greedy_plan(p: PlanningProblem) -> Schedule:
    plan, note = greedy(p)
    assert plan is not None, note
    return plan


def exact_plans(p: PlanningProblem) -> list[tuple[str, float, Schedule]]:
    """(path, optimum it reports, plan) of every exact path that applies."""
    out = [("pulp", *pulp_plan(p)), ("fast", *fast_plan(p))]
    if dp.applies(p.jobs[0]):
        out.append(("dp", *dp_plan(p)))
    return out


# --- hand arithmetic, written out here and not taken from the solvers -------------------

def hand_counts(job: JobSpec, gpus: np.ndarray) -> tuple[int, int, int]:
    """(starts, size changes between consecutive held slots of one zone, moves) of a
    one-job plan ``gpus[z, t]``."""
    starts = resizes = 0
    for z in range(gpus.shape[0]):
        for t in range(gpus.shape[1]):
            before = gpus[z, t - 1] if t > 0 else 0
            if gpus[z, t] > 0 and before == 0:
                starts += 1
            elif gpus[z, t] > 0 and gpus[z, t] != before:
                resizes += 1
    moves, where = 0, job.home
    for t in range(gpus.shape[1]):
        for z in range(gpus.shape[0]):
            if gpus[z, t] > 0 and z != where:
                moves, where = moves + 1, z
    return starts, resizes, moves


def hand_larger(gpus: np.ndarray) -> int:
    """The larger size of each size change between consecutive held slots, summed."""
    total = 0
    for z in range(gpus.shape[0]):
        for t in range(1, gpus.shape[1]):
            a, b = int(gpus[z, t - 1]), int(gpus[z, t])
            if a and b and a != b:
                total += max(a, b)
    return total


def hand_lost(job: JobSpec, gpus: np.ndarray) -> float:
    """GPU-hours lost: an overhead per segment, a save before each but the first (both
    at the largest size); a size change is a segment (restart) or loses resize_h x the
    larger of its two sizes."""
    starts, resizes, _ = hand_counts(job, gpus)
    segments = starts + (resizes if job.resize_h is None else 0)
    lost = job.overhead_h * job.gpus * segments + job.save_h * job.gpus * (segments - 1)
    if job.resize_h is not None:
        lost += job.resize_h * hand_larger(gpus)
    return lost


def assert_arithmetic(p: PlanningProblem, plan: Schedule) -> None:
    """The plan passes the checks, holds sizes on the step and runs exactly the work
    plus what its segments, saves and resizes lose (counted by hand)."""
    job = p.jobs[0]
    assert check_schedule(p, plan) == []
    held = plan.gpus[0][plan.gpus[0] > 0]
    assert (held % job.gpus_step == 0).all()
    starts, resizes, moves = hand_counts(job, plan.gpus[0])
    assert plan.run[0].sum() == pytest.approx(job.work + hand_lost(job, plan.gpus[0]),
                                              abs=1e-6)
    if job.max_moves is not None:
        assert moves <= job.max_moves
    if job.max_starts is not None:
        assert starts + (resizes if job.resize_h is None else 0) <= job.max_starts


def brute_force(p: PlanningProblem) -> float | None:
    """The model's optimum over every plan of one job (any zone or none, any size on
    the step, per slot): held slots run in full but the last, which leaves unused what
    the work does not need (it keeps a start's or resize's loss)."""
    job = p.jobs[0]
    h = p.slot_h
    sizes = range(job.gpus_min, job.gpus + 1, job.gpus_step)
    options = [None] + [(z, g) for z in job.zones for g in sizes]
    window = range(job.first, job.last + 1)
    best = None
    for pick in itertools.product(options, repeat=len(window)):
        gpus = np.zeros((len(p.zones), p.n_slots), np.int64)
        ok = True
        for t, o in zip(window, pick, strict=True):
            if o is not None:
                z, g = o
                ok &= bool(p.capacity[z, t] >= g) and (job.max_moves != 0 or z == job.home)
                gpus[z, t] = g
        if not ok or not gpus.any():
            continue
        starts, resizes, moves = hand_counts(job, gpus)
        segments = starts + (resizes if job.resize_h is None else 0)
        if job.max_starts is not None and segments > job.max_starts:
            continue
        if job.max_moves is not None and moves > job.max_moves:
            continue
        excess = h * gpus.sum() - hand_lost(job, gpus) - job.work
        if excess < -1e-9:
            continue
        cost = p.intensity / 1000.0
        total = float((h * gpus * cost).sum())
        z, t = [int(v[-1]) for v in np.nonzero(gpus.T)][::-1]
        before = gpus[z, t - 1] if t > 0 else 0
        floor = 0.0  # a start keeps its overhead, so does a restart at a size change
        if before == 0 or (before != gpus[z, t] and job.resize_h is None):
            floor = min(job.overhead_h * job.gpus, h * job.gpus_min)
        total -= cost[z, t] * min(excess, h * gpus[z, t] - floor)
        best = total if best is None else min(best, total)
    return best


# --- hand-worked cases ------------------------------------------------------------------

# 2 GPUs, 4 GPU-hours (2 h), a 0.25-h overhead per start and a 0.25-h save before every
# start but the first; clean slots 0, 2, 4.  Three runs {0}, {2}, {4, 5} need
# 2 + 3 x 0.25 + 2 x 0.25 = 3.25 h: slots 0, 2, 4 in full and a quarter of slot 5,
# 2 x (0.1 + 0.1 + 0.1) + 0.5 x 0.9 = 1.05 kg (without saves, {0}, {2}, {4} would do:
# 2.75 h).
SAVES = problem_of(job_spec(overhead_h=0.25, save_h=0.25),
                   [[100, 900, 100, 900, 100, 900]])


def test_saves_every_path_by_hand() -> None:
    for name, value, plan in exact_plans(SAVES):
        assert value == pytest.approx(1.05, abs=1e-6), name
        assert objective(SAVES, plan) == pytest.approx(1.05, abs=1e-6), name
        assert plan.gpus[0, 0].tolist() == [2, 0, 2, 0, 2, 2], name
        assert plan.run[0, 0].tolist() == pytest.approx([2, 0, 2, 0, 2, 0.5]), name
        assert plan.segments(SAVES.jobs[0], 0) == 3
        assert plan.lost_gpu_h(SAVES.jobs[0], 0) == pytest.approx(3 * 0.5 + 2 * 0.5)
        assert_arithmetic(SAVES, plan)
    assert {name for name, _, _ in exact_plans(SAVES)} == {"pulp", "fast", "dp"}
    assert_arithmetic(SAVES, greedy_plan(SAVES))
    outcome = solve_problem(SAVES, SolveSettings(mip_gap=0.0))
    assert outcome.method == "milp" and outcome.solution.objective == pytest.approx(1.05)
    fast = solve_fast(SAVES, SolveSettings(mip_gap=0.0))
    assert fast.method == "exact-dp" and fast.solution.objective == pytest.approx(1.05)


def test_a_plan_short_of_its_saves_fails_the_check() -> None:
    """The plan that ignores saves ({0}, {2}, {4}, 2.75 h) does 3.5 of 4 GPU-hours."""
    plan = Schedule.empty(SAVES)
    plan.gpus[0, 0, [0, 2, 4]] = 2
    plan.run[0, 0, [0, 2, 4]] = [2.0, 2.0, 1.5]
    assert plan.work_done(SAVES, 0) == pytest.approx(5.5 - 1.5 - 1.0)
    assert check_schedule(SAVES, plan) == ["j: work 3.0000 != 4.0000"]


def test_a_long_save_still_starts_the_job() -> None:
    """The save credit (W - S) must not let a job with W <= S G run nothing."""
    p = problem_of(job_spec(work=1.0, save_h=1.0, last=2), [[100, 200, 300]])
    for name, value, plan in exact_plans(p):
        assert value == pytest.approx(0.1 * 1.0, abs=1e-6), name
        assert_arithmetic(p, plan)


# Home Z1; clean slots alternate between the zones.  3 GPU-hours on 1 GPU: following the
# clean zone (Z0 at 0, Z1 at 1, Z0 at 2 or Z1 at 3) costs 0.3 kg with 2 or 3 moves;
# any plan with at most one move holds a 900 slot: 1.1 kg.
def moves_problem(max_moves: int | None) -> PlanningProblem:
    job = job_spec(gpus=1, gpus_min=1, work=3.0, last=3, zones=(0, 1), home=1,
                   max_moves=max_moves)
    return problem_of(job, [[100, 900, 100, 900], [900, 100, 900, 100]])


@pytest.mark.parametrize(("cap", "kg"), [(None, 0.3), (2, 0.3), (1, 1.1), (0, 1.1)])
def test_max_moves_every_path(cap: int | None, kg: float) -> None:
    p = moves_problem(cap)
    for name, value, plan in exact_plans(p):
        assert value == pytest.approx(kg, abs=1e-6), name
        assert_arithmetic(p, plan)
        if cap == 0:
            assert not plan.gpus[0, 0].any()  # never leaves home
    assert brute_force(p) == pytest.approx(kg)
    assert_arithmetic(p, greedy_plan(p))


# Elastic 2..4 GPUs, capacity 4, 2, 4: holding 4, 2, 4 is 10 GPU-hours.  Overhead and
# save 0.125 h each (0.5 GPU-hours at 4 GPUs).  As restarts, 4, 2, 4 is 3 segments:
# 3 x 0.5 + 2 x 0.5 = 2.5 lost, 7.5 of work: the only plan doing 7; it runs 9.5.
# In place at 0.0625 h (0.25 GPU-hours): 4, 2, 2 or 2, 2, 4 lose 0.5 + 0.25 and run 7.75.
def resize_problem(resize_h: float | None, max_starts: int | None = None) -> PlanningProblem:
    job = job_spec(gpus=4, gpus_min=2, gpus_step=2, work=7.0, last=2, overhead_h=0.125,
                   save_h=0.125, resize_h=resize_h, max_starts=max_starts)
    return problem_of(job, [[100, 100, 100]], [[4, 2, 4]])


@pytest.mark.parametrize(("resize_h", "run", "segments", "resizes"),
                         [(None, 9.5, 3, 2), (0.0625, 7.75, 1, 1)])
def test_resizes_every_path_by_hand(resize_h: float | None, run: float, segments: int,
                                    resizes: int) -> None:
    p = resize_problem(resize_h)
    job = p.jobs[0]
    for name, value, plan in exact_plans(p):
        assert value == pytest.approx(run * 0.1, abs=1e-6), name
        assert plan.run[0].sum() == pytest.approx(run), name
        assert plan.segments(job, 0) == segments and plan.resizes(0) == resizes, name
        assert plan.work_done(p, 0) == pytest.approx(7.0)
        assert_arithmetic(p, plan)
    assert brute_force(p) == pytest.approx(run * 0.1)


def test_an_in_place_resize_loses_time_at_the_larger_size() -> None:
    """6 GPUs at most, capacity 4, 2, 2: 4, 2, 2 runs 8 GPU-hours and its one change
    (4 -> 2) loses 0.25 h x 4 GPUs = 1 (at the largest size, 6, it would lose 1.5 and
    the 7 GPU-hours would not fit)."""
    job = job_spec(gpus=6, gpus_min=2, gpus_step=2, work=7.0, last=2, resize_h=0.25)
    p = problem_of(job, [[100, 100, 100]], [[4, 2, 2]])
    for name, value, plan in exact_plans(p):
        assert value == pytest.approx(0.8, abs=1e-6), name
        assert plan.gpus[0, 0].tolist() == [4, 2, 2], name
        assert plan.resized_gpus(0) == 4 and plan.lost_gpu_h(job, 0) == pytest.approx(1.0)
        assert_arithmetic(p, plan)
    assert brute_force(p) == pytest.approx(0.8)


def test_a_resize_restart_is_an_interruption() -> None:
    with pytest.raises(InfeasibleError, match=r"max_interruptions \(each size change is a "
                                              r"restart\), .*checkpoint_save"):
        solve_problem(resize_problem(None, max_starts=2), SolveSettings(mip_gap=0.0))
    outcome = solve_problem(resize_problem(0.0625, max_starts=1), SolveSettings(mip_gap=0.0))
    assert outcome.solution.objective == pytest.approx(0.775)


def test_sizes_stay_on_the_step() -> None:
    """Capacity 7 in every slot: with a step of 4 the job holds 4, never 6 or 7."""
    job = job_spec(gpus=8, gpus_min=4, gpus_step=4, work=12.0, last=4)
    p = problem_of(job, [[100, 100, 100, 100, 100]], [[7, 7, 7, 7, 7]])
    for name, value, plan in exact_plans(p):
        assert set(plan.gpus[0, 0].tolist()) <= {0, 4}, name
        assert value == pytest.approx(1.2), name
        assert_arithmetic(p, plan)


def test_step_validation() -> None:
    with pytest.raises(ValueError, match="multiples of gpus_step 4"):
        job_spec(gpus=8, gpus_min=6, gpus_step=4)
    with pytest.raises(ValueError, match="gpus_step 0"):
        job_spec(gpus_step=0)
    with pytest.raises(ValueError, match="max_moves"):
        job_spec(max_moves=-1)


def test_off_step_and_too_many_moves_fail_the_check() -> None:
    p = problem_of(job_spec(gpus=4, gpus_min=2, gpus_step=2, work=3.0),
                   [[100] * 6], [[4] * 6])
    plan = Schedule.empty(p)
    plan.gpus[0, 0, 0] = 3
    plan.run[0, 0, 0] = 3.0
    assert "j: holds GPUs off its step of 2" in check_schedule(p, plan)
    m = moves_problem(1)
    plan = Schedule.empty(m)
    plan.gpus[0, [0, 1, 0], [0, 1, 2]] = 1
    plan.run[0, [0, 1, 0], [0, 1, 2]] = 1.0
    assert check_schedule(m, plan) == ["j: 3 checkpoint moves > max 1"]


# --- properties over random small problems ----------------------------------------------

def random_problem(seed: int) -> PlanningProblem:
    """One job, up to 2 zones and 5 slots: rigid or elastic on a step, with overhead,
    save time, a move cap and either resize mode, capacity and intensity at random."""
    rng = np.random.default_rng(seed)
    step = int(rng.choice([1, 2]))
    gpus = step * int(rng.integers(1, 3))
    elastic = gpus > step and rng.random() < 0.7
    n_z = int(rng.integers(1, 3))
    n_t = 5
    job = job_spec(
        gpus=gpus, gpus_min=step if elastic else gpus, gpus_step=step,
        work=float(rng.integers(1, 3 * gpus)), last=n_t - 1, zones=tuple(range(n_z)),
        home=int(rng.integers(0, n_z)), overhead_h=float(rng.choice([0.0, 0.25])),
        save_h=float(rng.choice([0.0, 0.125, 0.25])),
        max_moves=None if rng.random() < 0.4 else int(rng.integers(0, 2)),
        resize_h=None if rng.random() < 0.5 else 0.125,
        max_starts=None if rng.random() < 0.5 else int(rng.integers(1, 4)))
    cap = rng.choice([step, gpus, gpus + 1], size=(n_z, n_t))
    return problem_of(job, rng.integers(20, 900, size=(n_z, n_t)).tolist(), cap.tolist())


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31))
def test_every_path_agrees_with_the_brute_force(seed: int) -> None:
    p = random_problem(seed)
    best = brute_force(p)
    if best is None:
        with pytest.raises(InfeasibleError):
            solve_problem(p, SolveSettings(mip_gap=0.0))
        return
    for name, value, plan in exact_plans(p):
        assert value == pytest.approx(best, abs=1e-6), name
        assert objective(p, plan) == pytest.approx(best, abs=1e-6), name
        assert_arithmetic(p, plan)
    plan, _ = greedy(p)
    if plan is not None:
        assert_arithmetic(p, plan)
        assert objective(p, plan) >= best - 1e-6


@pytest.mark.parametrize("resize_h", [None, 0.1])
def test_both_builds_have_the_new_families(resize_h: float | None) -> None:
    """Both builds name the new families alike and cover every row."""
    job = job_spec(gpus=4, gpus_min=2, gpus_step=2, work=6.0, zones=(0, 1), save_h=0.25,
                   max_moves=1, max_starts=3, resize_h=resize_h)
    p = problem_of(job, [[100, 200, 300, 400, 500, 600]] * 2)
    fm = fastbuild.build(p)
    families = {"growth", "shrink", "started", "moves"}
    if resize_h is not None:
        families |= {"larger_now", "larger_prev"}
    assert families <= set(fm.family_rows)
    assert sum(b - a for a, b in fm.family_rows.values()) == fm.n_rows
    names = {c[: c.index("_j")] for c in build(p).lp.constraints}  # PuLP: "family_j|..."
    assert families <= names
    assert len(build(p).lp.constraints) == fm.n_rows
    assert dataclasses.replace(job, max_moves=None).tracks_checkpoint is False


def shared_problem(seed: int) -> PlanningProblem:
    """Three jobs competing for two zones' capacity over 12 h: one rigid with saves and
    a move cap, two elastic on a step of 2 (one resizing in place)."""
    rng = np.random.default_rng(seed)
    jobs = (
        job_spec(name="rigid", gpus=4, gpus_min=4, work=12.0, last=11, zones=(0, 1),
                 overhead_h=0.25, save_h=0.25, max_moves=1, max_starts=3),
        job_spec(name="restart", gpus=4, gpus_min=2, gpus_step=2, work=14.0, last=10,
                 zones=(0, 1), home=1, overhead_h=0.25, save_h=0.125),
        job_spec(name="inplace", gpus=6, gpus_min=2, gpus_step=2, work=16.0, first=2,
                 last=11, zones=(0,), overhead_h=0.25, save_h=0.125, resize_h=0.125),
    )
    return PlanningProblem(
        slots=pd.date_range(T0, periods=12, freq="1h", name="time"), slot_h=1.0,
        zones=("Z0", "Z1"), jobs=jobs, intensity=rng.integers(20, 900, (2, 12)).astype(float),
        pue=np.ones(2), capacity=rng.choice([4, 6, 8], (2, 12)).astype(np.int64), price=None)


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_capacity_every_path(seed: int) -> None:
    from greenepoch.solvers import lns

    p = shared_problem(seed)
    (pulp_value, pulp), (fast_value, fast) = pulp_plan(p), fast_plan(p)
    assert pulp_value == pytest.approx(fast_value, rel=1e-6, abs=1e-6)
    progress = lns.decompose(p, time_limit=2.0)
    plans = [plan for plan in (pulp, fast, greedy(p)[0], progress.schedule) if plan is not None]
    for plan in plans:
        assert check_schedule(p, plan) == []
        for j, job in enumerate(p.jobs):
            moves = hand_counts(job, plan.gpus[j])[2]
            assert plan.run[j].sum() == pytest.approx(job.work + hand_lost(job, plan.gpus[j]))
            assert (plan.gpus[j] % job.gpus_step == 0).all()
            assert job.max_moves is None or moves <= job.max_moves
        assert objective(p, plan) >= pulp_value - 1e-6
    # the PuLP MILP warm-started from a plan (r read off the vectorised start vector)
    started = solve_problem(p, SolveSettings(mip_gap=0.0), baselines={"fast": fast})
    assert started.solution.objective == pytest.approx(pulp_value, rel=1e-6)
