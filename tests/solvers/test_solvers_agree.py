"""HiGHS and CBC reach the same optimum on small instances with restart overhead,
paid migration and shared capacity (fixed seeds, mip_gap = 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError
from greenepoch.solvers.backends import CbcBackend, HighsBackend, SolveStatus
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.solve import Outcome, check_schedule, solve_problem

pytestmark = [
    pytest.mark.skipif(not CbcBackend.is_available(), reason="CBC is not available"),
    pytest.mark.skipif(not HighsBackend.is_available(), reason="HiGHS is not available"),
]

T0 = pd.Timestamp("2023-06-01T00:00:00Z")


def instance(seed: int, n_zones: int = 2, n_slots: int = 16, n_jobs: int = 3) -> PlanningProblem:
    """Jobs that compete for a few GPUs per zone, with restart overhead and, for some,
    a checkpoint to move between zones."""
    rng = np.random.default_rng(seed)
    jobs = []
    for j in range(n_jobs):
        gpus = int(rng.choice([2, 4]))
        first = int(rng.integers(0, 4))
        last = int(rng.integers(n_slots - 5, n_slots))
        zones = tuple(range(n_zones)) if j % 2 == 0 else (j % n_zones,)
        jobs.append(JobSpec(
            name=f"job{j}", gpus=gpus, gpus_min=gpus // 2 if j == 1 else gpus,
            work=float(gpus * rng.integers(3, 6)), power_kw=float(rng.choice([0.7, 1.0])),
            first=first, last=last, zones=zones, home=zones[0],
            overhead_h=float(rng.choice([0.25, 0.5])),
            max_starts=None if j == 0 else int(rng.integers(2, 4)),
            min_run_slots=int(rng.integers(1, 3)),
            checkpoint_gb=float(rng.choice([0.0, 200.0])), egress_usd_per_gb=0.02,
            transfer_slots=int(rng.integers(0, 2)), transfer_kwh_per_gb=0.06,
            allow_split=False,
        ))
    return PlanningProblem(
        slots=pd.date_range(T0, periods=n_slots, freq="1h", name="time"), slot_h=1.0,
        zones=tuple(f"Z{z}" for z in range(n_zones)), jobs=tuple(jobs),
        intensity=rng.integers(20, 700, size=(n_zones, n_slots)).astype(float),
        pue=rng.choice([1.1, 1.3], size=n_zones),
        capacity=rng.choice([4, 6, 8], size=(n_zones, n_slots)).astype(np.int64),
        price=rng.uniform(20, 200, size=(n_zones, n_slots)), price_weight=0.1,
    )


def solve_with(p: PlanningProblem, solver: str) -> Outcome:
    return solve_problem(p, SolveSettings(solver=solver, mip_gap=0.0,
                                          time_limit=pd.Timedelta("60s")))


@pytest.mark.parametrize("seed", range(6))
def test_highs_and_cbc_agree_on_the_optimum(seed):
    p = instance(seed)
    highs, cbc = solve_with(p, "highs"), solve_with(p, "cbc")
    for out, name in ((highs, "highs"), (cbc, "cbc")):
        assert out.method == "milp"
        assert out.solution.backend == name
        assert out.solution.status is SolveStatus.OPTIMAL
        assert check_schedule(p, out.schedule) == []
    assert highs.solution.objective == pytest.approx(cbc.solution.objective, rel=1e-6)
    assert highs.solution.bound == pytest.approx(highs.solution.objective, rel=1e-6)


def test_capacity_binds_in_the_instances():
    """The instances are meant to share capacity: demand exceeds supply somewhere."""
    p = instance(0)
    demand = sum(job.gpus for job in p.jobs if 0 in job.zones)
    assert demand > p.capacity[0].min()


def test_both_solvers_report_the_same_infeasibility():
    # Two rigid 4-GPU jobs, 4 GPUs per slot, 3 slots: 2 + 2 slots do not fit.
    jobs = tuple(
        JobSpec(name=name, gpus=4, gpus_min=4, work=8.0, power_kw=1.0, first=0, last=2,
                zones=(0,), home=0, overhead_h=0.0, max_starts=None, min_run_slots=1,
                checkpoint_gb=0.0, egress_usd_per_gb=0.02,
                transfer_slots=0, transfer_kwh_per_gb=0.06, allow_split=False)
        for name in ("a", "b")
    )
    p = PlanningProblem(
        slots=pd.date_range(T0, periods=3, freq="1h", name="time"), slot_h=1.0, zones=("Z0",),
        jobs=jobs, intensity=np.array([[100.0, 200.0, 300.0]]), pue=np.ones(1),
        capacity=np.full((1, 3), 4, dtype=np.int64), price=None,
    )
    messages = []
    for solver in ("highs", "cbc"):
        with pytest.raises(InfeasibleError, match="capacity shared too thin") as err:
            solve_with(p, solver)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
