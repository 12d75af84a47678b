"""The single-job optimisers agree: with brute force, with the MILP, and with each
other where they solve the same problem (``solvers/single_job.py``, ``solvers/dp.py``).

Costs are whole numbers (some repeated, some slots forbidden) so that sums are exact
and ties are real: the earliest optimal slots must win them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError
from greenepoch.solvers import dp
from greenepoch.solvers.heuristics import exact_applies, exact_cleanest_slots
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import objective
from greenepoch.solvers.single_job import (
    cheapest_slots,
    cheapest_slots_partial,
    cheapest_slots_sums,
    cheapest_window,
    cheapest_window_sums,
    window_sums,
)
from greenepoch.solvers.solve import solve_problem
from hypothesis import given, settings
from hypothesis import strategies as st

INF = float("inf")

costs = st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, INF]),
                 min_size=1, max_size=9).map(np.array)
finite_costs = st.lists(st.integers(0, 30).map(float), min_size=1, max_size=9).map(np.array)


def brute_slots(cost: np.ndarray, k: int) -> tuple[float, tuple[int, ...] | None]:
    """Least sum of ``k`` allowed slots; the first optimal set in lexicographic order."""
    best, where = INF, None
    for s in itertools.combinations(range(len(cost)), k):
        total = float(cost[list(s)].sum())
        if total < best:
            best, where = total, s
    return best, where


def brute_window(cost: np.ndarray, k: int) -> tuple[float, int | None]:
    best, where = INF, None
    for s in range(len(cost) - k + 1):
        total = float(cost[s : s + k].sum())
        if total < best:
            best, where = total, s
    return best, where


def brute_partial(cost: np.ndarray, work: float) -> float:
    """Least cost of ``ceil(work)`` held slots, the last one charged only its share."""
    k = int(np.ceil(work))
    best = INF
    for s in itertools.combinations(range(len(cost)), k):
        best = min(best, float(cost[list(s[:-1])].sum() + (work - k + 1) * cost[s[-1]]))
    return best


def engine_cost(cost: np.ndarray, held: tuple[bool, ...], work: float, overhead: float) -> float:
    """The replay engine's rule (1-h slots): held slots run in full until the work is
    done, every start pays the overhead; inf when the work is not done."""
    left, total, prev = work, 0.0, False
    for c, h in zip(cost, held, strict=True):
        if h and left > 1e-12:
            o = 0.0 if prev else overhead
            r = min(1.0, left + o)
            total += r * c
            left -= r - o
        prev = h
    return total if left <= 1e-9 else INF


def brute_held(cost: np.ndarray, work: float, overhead: float, one_run: bool) -> float:
    best = INF
    for held in itertools.product([False, True], repeat=len(cost)):
        used = [i for i, h in enumerate(held) if h]
        if one_run and used and used[-1] - used[0] != len(used) - 1:
            continue
        best = min(best, engine_cost(cost, held, work, overhead))
    return best


def one_job(cost: np.ndarray, work: float, overhead: float = 0.0,
            max_starts: int | None = None) -> PlanningProblem:
    """One 1-GPU job of ``work`` hours over 1-h slots whose intensity is ``1000 x cost``
    (1 kW, PUE 1: holding slot ``t`` costs ``cost[t]`` kg); forbidden slots have no GPU."""
    n = len(cost)
    allowed = np.isfinite(cost)
    job = JobSpec(name="j", gpus=1, gpus_min=1, work=work, power_kw=1.0, first=0, last=n - 1,
                  zones=(0,), home=0, overhead_h=overhead, max_starts=max_starts,
                  min_run_slots=1, checkpoint_gb=0.0, egress_usd_per_gb=0.0,
                  transfer_slots=0, transfer_kwh_per_gb=0.0, allow_split=False)
    return PlanningProblem(
        slots=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="time"),
        slot_h=1.0, zones=("Z",), jobs=(job,),
        intensity=np.where(allowed, cost, 0.0)[None, :] * 1000.0, pue=np.ones(1),
        capacity=allowed[None, :].astype(np.int64), price=None)


def dp_value(problem: PlanningProblem) -> float:
    job = problem.jobs[0]
    found = dp.best_plan(problem, job, dp.job_slot_cost(problem, job))
    return INF if found is None else found[0]


@settings(max_examples=200, deadline=None)
@given(costs, st.integers(1, 9))
def test_cheapest_slots_is_the_first_optimal_set(cost: np.ndarray, k: int) -> None:
    best, where = brute_slots(cost, k)
    got = cheapest_slots(cost, k)
    if not np.isfinite(best):
        assert got is None
        return
    assert got is not None and tuple(got.tolist()) == where


@settings(max_examples=200, deadline=None)
@given(costs, st.integers(1, 9))
def test_cheapest_window_is_the_first_optimal_window(cost: np.ndarray, k: int) -> None:
    best, where = brute_window(cost, k)
    got = cheapest_window(cost, k)
    assert got == (where if np.isfinite(best) else None)
    if k <= len(cost):
        sums = window_sums(cost, k)
        assert sums.tolist() == [float(cost[s : s + k].sum()) for s in range(len(sums))]


@settings(max_examples=200, deadline=None)
@given(costs, st.integers(1, 8), st.sampled_from([0.25, 0.5, 0.75, 1.0]))
def test_cheapest_slots_partial_charges_only_the_last_slots_share(
        cost: np.ndarray, whole: int, share: float) -> None:
    work = whole - 1 + share
    best = brute_partial(cost, work)
    got = cheapest_slots_partial(cost, work)
    if not np.isfinite(best):
        assert got is None
        return
    assert got is not None and len(got) == whole
    assert float(cost[got[:-1]].sum() + share * cost[got[-1]]) == best
    if share == 1.0:  # whole slots: the k cheapest
        assert best == brute_slots(cost, whole)[0]


@settings(max_examples=100, deadline=None)
@given(finite_costs, st.integers(1, 4), st.integers(0, 6))
def test_sliding_sums_are_the_optimisers_at_every_start(x: np.ndarray, k: int,
                                                        slack: int) -> None:
    if k > len(x):
        return
    n = len(x)
    slots = cheapest_slots_sums(x, k, k + slack)
    windows = cheapest_window_sums(x, k, slack)
    for s in range(n - k + 1):
        part = x[s : min(s + k + slack, n)]
        assert slots[s] == float(part[cheapest_slots(part, k)].sum())
        start = cheapest_window(part, k)
        assert windows[s] == float(part[start : start + k].sum())


@settings(max_examples=100, deadline=None)
@given(costs, st.integers(1, 6))
def test_dp_without_overhead_is_the_cheapest_slots_or_window(cost: np.ndarray,
                                                             k: int) -> None:
    """k cheapest slots == the DP with no restart cost and no minimum run; the cheapest
    window == the DP with one start."""
    slots, _ = brute_slots(cost, k)
    window, _ = brute_window(cost, k)
    assert dp_value(one_job(cost, float(k))) == pytest.approx(slots)
    assert dp_value(one_job(cost, float(k), max_starts=1)) == pytest.approx(window)


@settings(max_examples=100, deadline=None)
@given(costs, st.integers(1, 6), st.sampled_from([0.25, 0.5, 0.75]))
def test_dp_and_cleanest_slots_charge_the_last_slot_alike(cost: np.ndarray, whole: int,
                                                          share: float) -> None:
    work = whole - 1 + share
    best = brute_partial(cost, work)
    p = one_job(cost, work)
    assert dp_value(p) == pytest.approx(best)
    assert exact_applies(p)
    exact = exact_cleanest_slots(p)
    assert (exact is None) == (not np.isfinite(best))
    if exact is not None:
        assert objective(p, exact) == pytest.approx(best)


@settings(max_examples=100, deadline=None)
@given(finite_costs.filter(lambda c: len(c) >= 2), st.sampled_from([1.0, 1.5, 2.25, 3.0]),
       st.sampled_from([0.0, 0.25, 0.5]), st.booleans())
def test_dp_matches_the_engine_rule_by_enumeration(cost: np.ndarray, work: float,
                                                   overhead: float, one_run: bool) -> None:
    """With restart overhead (the replay oracle's case): every held-slot pattern tried."""
    best = brute_held(cost, work, overhead, one_run)
    got = dp_value(one_job(cost, work, overhead, max_starts=1 if one_run else None))
    assert got == pytest.approx(best, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_dp_matches_the_milp(seed: int) -> None:
    """The DP and the MILP (PuLP + HiGHS: the problem is too small for the fast path)
    on restart overhead, limited starts and forbidden slots."""
    rng = np.random.default_rng(seed)
    cost = rng.integers(0, 40, 12).astype(float)
    cost[rng.integers(0, 12, 2)] = INF
    work = float(rng.choice([2.0, 3.5, 4.25]))
    overhead = float(rng.choice([0.0, 0.25, 0.5]))
    max_starts = [None, 1, 2][seed % 3]
    p = one_job(cost, work, overhead, max_starts)
    try:
        out = solve_problem(p, SolveSettings(mip_gap=0.0, time_limit=pd.Timedelta("30s")))
    except InfeasibleError:
        assert dp_value(p) == INF
        return
    assert out.method == "milp"
    assert dp_value(p) == pytest.approx(out.solution.objective, rel=1e-7)


def test_dp_bounds_the_starts_of_a_long_window() -> None:
    """An interruptible job with restart overhead in a 2,000-slot window: at most
    ``need(k)`` starts are worth tracking (the DP gave up at 4 M states before)."""
    rng = np.random.default_rng(1)
    cost = rng.integers(1, 60, 2000).astype(float)
    p = one_job(cost, 48.0, overhead=0.5)
    job = p.jobs[0]
    cells, _ = dp.size(p, job)
    assert cells < 1e8  # 4e9 without the cap
    found = dp.best_plan(p, job, dp.job_slot_cost(p, job))
    assert found is not None
    held = tuple((found[1] >= 0).tolist())
    assert engine_cost(cost, held, 48.0, 0.5) == pytest.approx(found[0], rel=1e-12)
