"""Sized benchmark instances with fixed seeds, built on real intensities.

Each :class:`Instance` names a size (jobs x zones x slots), a seed and the issue's
targets for it.  :func:`build_instance` loads the shared Electricity Maps exports
(``$GREENEPOCH_DATA``), keeps the ``n_zones`` zones whose intensity varies most over
the horizon (standard deviation, gCO2eq/kWh), and draws the jobs with
:func:`make_problem`, which takes any intensity frame (tests feed it synthetic ones).

Jobs (rigid, all zones allowed, no paid migration):

* ``gpus``: a multiple of 8 in 8..256;
* ``work`` (GPU-hours): ``gpus`` x a run length drawn from ``run_hours``;
* window: ``slack`` x (run length + one restart overhead), ``slack`` in 1.5..3,
  placed at random inside the horizon (``whole_horizon``: the window is the
  horizon and the run length horizon / ``slack``);
* checkpoint overhead (resume cost) 10..30 min per start; 2..8 interruptions allowed.

Capacity (GPUs, constant over time): with ``shared_capacity`` each zone gets a
the largest job plus a draw of 0..1 x the mean concurrent demand, so the clean
zones fill up and capacity binds; otherwise 2 x the largest job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from greenepoch.solvers.problem import JobSpec, PlanningProblem

GPU_POWER_KW = 0.7  # per GPU, board plus host share
PUE_RANGE = (1.1, 1.4)
GPU_SIZES = np.arange(8, 257, 8)


@dataclass(frozen=True)
class Instance:
    """One benchmark size and the targets it is judged on (seconds are end to end:
    build plus solve, medians of repeats)."""

    name: str
    description: str
    n_jobs: int
    n_zones: int
    hours: int  # horizon length, h
    slot: str  # "1h" | "15min"
    run_hours: tuple[float, float]  # run length at full size, h
    shared_capacity: bool
    seed: int
    target_gap: float  # relative gap to reach ...
    target_seconds: float  # ... within this many seconds
    whole_horizon: bool = False  # one window over the whole horizon (run = horizon / slack)
    feasible_seconds: float | None = None  # a feasible plan within this many seconds
    memory_mb: float | None = None  # peak resident memory allowed
    start: pd.Timestamp = pd.Timestamp("2023-03-01", tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(hours=self.hours)


INSTANCES: dict[str, Instance] = {
    i.name: i
    for i in (
        Instance("A", "1 job x 8 zones x 336 h, resume costs", 1, 8, 336, "1h",
                 (0.0, 0.0), False, 101, 0.001, 2.0, whole_horizon=True),
        Instance("B", "1 job x 4 zones x 1344 slots of 15 min, resume costs", 1, 4, 336,
                 "15min", (0.0, 0.0), False, 102, 0.001, 2.0, whole_horizon=True),
        Instance("C", "10 jobs x 8 zones x 336 h, resume costs, shared capacity", 10, 8, 336,
                 "1h", (12.0, 96.0), True, 103, 0.005, 10.0),
        Instance("D", "50 jobs x 16 zones x 720 h, resume costs, shared capacity", 50, 16, 720,
                 "1h", (12.0, 160.0), True, 104, 0.03, 60.0, feasible_seconds=5.0,
                 memory_mb=2048.0),
    )
}


def richest_zones(values: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` zones whose intensity varies most (std, gCO2eq/kWh), in column order."""
    std = values.std()
    keep = set(std.sort_values(ascending=False, kind="stable").index[:n])
    return [z for z in values.columns if z in keep]


def make_problem(spec: Instance, intensity: pd.DataFrame) -> PlanningProblem:
    """Draw ``spec``'s jobs (seeded) over ``intensity`` (UTC index on the slot grid, one
    column per zone, gCO2eq/kWh) and return the planning problem."""
    rng = np.random.default_rng(spec.seed)
    slots = pd.DatetimeIndex(intensity.index, name="time")
    slot_h = pd.Timedelta(spec.slot) / pd.Timedelta("1h")
    n_slots = len(slots)
    zones = tuple(intensity.columns)
    n_z = len(zones)
    jobs = []
    for i in range(spec.n_jobs):
        gpus = int(rng.choice(GPU_SIZES))
        overhead_h = round(float(rng.uniform(10, 30))) / 60.0
        slack = float(rng.uniform(1.5, 3.0))
        if spec.whole_horizon:
            window = n_slots
            run_h = round(n_slots * slot_h / slack - overhead_h, 1)
        else:
            run_h = float(rng.uniform(*spec.run_hours))
            need = math.ceil((run_h + overhead_h) / slot_h - 1e-9)
            window = min(n_slots, math.ceil(slack * need))
        first = int(rng.integers(0, n_slots - window + 1))
        jobs.append(JobSpec(
            name=f"job{i:02d}", gpus=gpus, gpus_min=gpus, work=round(gpus * run_h, 1),
            power_kw=GPU_POWER_KW, first=first, last=first + window - 1,
            zones=tuple(range(n_z)), home=int(rng.integers(0, n_z)), overhead_h=overhead_h,
            max_starts=int(rng.integers(2, 9)) + 1, min_run_slots=1, checkpoint_gb=0.0,
            egress_usd_per_gb=0.0, transfer_slots=0, transfer_kwh_per_gb=0.0,
            allow_split=False,
        ))
    largest = max(j.gpus for j in jobs)
    if spec.shared_capacity:
        mean_demand = sum(j.work for j in jobs) / (n_slots * slot_h)
        caps = largest + np.round(rng.uniform(0.0, 1.0, n_z) * mean_demand / 8) * 8
    else:
        caps = np.full(n_z, 2 * largest)
    capacity = np.repeat(caps.astype(np.int64)[:, None], n_slots, axis=1)
    return PlanningProblem(
        slots=slots, slot_h=slot_h, zones=zones, jobs=tuple(jobs),
        intensity=intensity.to_numpy(dtype=float).T.copy(),
        pue=rng.uniform(*PUE_RANGE, n_z), capacity=capacity, price=None,
    )


def load_values(spec: Instance, data: str | Path | None = None) -> pd.DataFrame:
    """Real intensities of every shared zone over ``spec``'s horizon on its slot grid."""
    from greenepoch.data.intensity.readers import read_electricitymaps
    from greenepoch.data.intensity.resample import resample
    from greenepoch.data.intensity.source import data_dir

    root = data_dir(data)
    if root is None:
        raise RuntimeError(
            "no intensity data: set GREENEPOCH_DATA to the shared Electricity Maps folder "
            "(e.g. GREENEPOCH_DATA=/work/shared/data)"
        )
    loaded = read_electricitymaps(root)
    hourly = loaded.select(loaded.zones, spec.start, spec.end)
    return resample(hourly, spec.slot).values


def build_instance(name: str, data: str | Path | None = None) -> PlanningProblem:
    """The registered instance ``name`` on real data (``data`` or ``$GREENEPOCH_DATA``)."""
    spec = INSTANCES[name]
    values = load_values(spec, data)
    return make_problem(spec, values[richest_zones(values, spec.n_zones)])


def long_window(n_slots: int, slot: str = "1h", max_starts: int | None = 9,
                gpus_min: int = 80) -> PlanningProblem:
    """One 80-GPU job over the whole horizon (run = a third of it, 21 min per restart)
    in one zone, on a daily and weekly intensity cycle with seeded noise: the long
    windows of issue 13 item 13 (benchmarks/bench_limits.py, tests/solvers)."""
    slot_h = pd.Timedelta(slot) / pd.Timedelta("1h")
    hours = np.arange(n_slots) * slot_h
    rng = np.random.default_rng(7)
    intensity = 300 + 150 * np.sin(2 * np.pi * hours / 24) + \
        60 * np.sin(2 * np.pi * hours / 168) + rng.normal(0, 30, n_slots)
    job = JobSpec(name="long", gpus=80, gpus_min=gpus_min,
                  work=round(80 * n_slots * slot_h / 3, 1), power_kw=0.7, first=0,
                  last=n_slots - 1, zones=(0,), home=0, overhead_h=0.35,
                  max_starts=max_starts, min_run_slots=1, checkpoint_gb=0.0,
                  egress_usd_per_gb=0.0, transfer_slots=0, transfer_kwh_per_gb=0.0,
                  allow_split=False)
    t0 = pd.Timestamp("2021-01-01T00:00:00Z")
    return PlanningProblem(
        slots=pd.date_range(t0, periods=n_slots, freq=slot, name="time"), slot_h=slot_h,
        zones=("Z",), jobs=(job,), intensity=np.clip(intensity, 5, None)[None, :],
        pue=np.array([1.2]), capacity=np.full((1, n_slots), 160, np.int64), price=None)
