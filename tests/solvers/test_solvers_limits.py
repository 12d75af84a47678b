"""One job in one zone with a long window: memory stays bounded, the time limit holds,
and windows too long to plan are refused up front with the largest one that fits."""

from __future__ import annotations

import time
import tracemalloc

import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError
from greenepoch.solvers import dp
from greenepoch.solvers.problem import PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import objective
from greenepoch.solvers.solve import MAX_JOB_KEYS, check_schedule, solve_problem

from benchmarks.instances import long_window

T0 = pd.Timestamp("2021-01-01T00:00:00Z")


def solve_measured(p: PlanningProblem, seconds: float, trace: bool = True):
    """Outcome, seconds and the peak of Python/numpy memory (tracemalloc, which slows
    numpy-heavy code: off when timing is what matters; HiGHS's memory is not traced)."""
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    try:
        settings = SolveSettings(time_limit=pd.Timedelta(seconds=seconds), mip_gap=0.01)
        out = solve_problem(p, settings)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        tracemalloc.stop()
    return out, time.perf_counter() - began, peak


def test_the_programme_refuses_what_it_cannot_hold():
    p = long_window(8760, max_starts=20)
    _cells, stored = dp.size(p, p.jobs[0])
    assert stored > dp.MAX_STORED_BYTES  # 21 starts x ~4,380 held counts x 8,760 slots
    assert dp.best_plan(p, p.jobs[0], dp.job_slot_cost(p, p.jobs[0])) is None
    small = long_window(336, max_starts=3)
    assert dp.size(small, small.jobs[0])[1] < dp.MAX_STORED_BYTES
    assert dp.best_plan(small, small.jobs[0], dp.job_slot_cost(small, small.jobs[0]))


def test_a_year_of_hours_with_many_restarts_stays_bounded():
    """8,760 slots, 19 interruptions allowed: the programme's back-pointers alone were
    1.2 GB (3 GB with more); now it is skipped and the MILP plans within the limit."""
    p = long_window(8760, max_starts=20)
    out, seconds, peak = solve_measured(p, 6.0)
    assert check_schedule(p, out.schedule) == []
    assert peak < dp.MAX_STORED_BYTES + 128 * 2**20, f"{peak / 2**20:.0f} MB traced"
    assert seconds < 6.0 * 1.5 + 3, f"{seconds:.1f} s against a 6 s limit (traced)"
    assert out.solution.objective == pytest.approx(objective(p, out.schedule))


@pytest.mark.parametrize("gpus_min", [80, 40])  # rigid: the DP's path; elastic: the MILP's
def test_two_and_a_half_years_of_quarter_hours_keep_the_time_limit(gpus_min):
    """87,672 slots of 15 min: a MemoryError after 45 s (rigid) and 225 s in the transport
    LP against a 20 s limit; now a plan within the limit, its gap stated."""
    p = long_window(87_672, "15min", gpus_min=gpus_min)
    out, seconds, peak = solve_measured(p, 5.0, trace=gpus_min == 80)
    assert check_schedule(p, out.schedule) == []
    # some slack: HiGHS checks its clock between root cut rounds, the machine is shared
    assert seconds < 5.0 * 1.5 + 2, f"{seconds:.1f} s against a 5 s limit"
    assert peak < dp.MAX_STORED_BYTES, f"{peak / 2**20:.0f} MB traced"
    assert out.solution.status.value == "feasible" and out.solution.gap is not None


def test_a_window_too_long_is_refused_with_the_largest_that_fits():
    p = long_window(876_648, "15min")
    began = time.perf_counter()
    with pytest.raises(GreenEpochError) as err:
        solve_problem(p, SolveSettings(time_limit=pd.Timedelta("5s")))
    assert time.perf_counter() - began < 5.0
    message = str(err.value)
    assert "job 'long'" in message and "876,648 slots of 15 min" in message
    assert f"largest window that fits for 'long' is {MAX_JOB_KEYS:,} slots" in message
    assert "'1h'" in message and "would not fit either" in message
    assert "\n" not in message


def test_quarter_hours_that_fit_as_hours_say_so():
    p = long_window(4 * (MAX_JOB_KEYS // 4 + 1000), "15min")
    with pytest.raises(GreenEpochError, match=r"policy.slot = '1h' \(4x fewer slots\) it "
                                              r"would fit;"):
        solve_problem(p, SolveSettings(time_limit=pd.Timedelta("5s")))


def test_a_sub_milp_that_cannot_be_back_in_time_is_not_started(monkeypatch):
    """HiGHS cannot be interrupted in its presolve: a restricted MILP whose matrix is
    larger than the time left allows (lns.MILP_NNZ_PER_SECOND) is skipped, not run past
    the limit."""
    from greenepoch.solvers import lns
    from greenepoch.solvers.heuristics import greedy

    p = long_window(336, "1h", gpus_min=40)
    incumbent, _ = greedy(p)
    assert lns.solve_restricted(p, incumbent, None, 2.0) is not None  # the greedy start at least
    monkeypatch.setattr(lns, "MILP_NNZ_PER_SECOND", 1.0)
    began = time.perf_counter()
    assert lns.solve_restricted(p, incumbent, None, 30.0) is None
    assert time.perf_counter() - began < 5.0
