"""The numeric planning problem: the solver boundary where time becomes slot numbers.

Slot ``t`` covers ``[slots[t], slots[t] + slot_h)``.  Arrays are indexed
``[zone, slot]`` over ``zones``.  Built by :func:`planner.pipeline.build_problem`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class JobSpec:
    """One job in slot units.  ``first``..``last`` (inclusive) are the slots inside
    ``[release, deadline)``; ``zones`` are indices into the problem's zones."""

    name: str
    gpus: int
    gpus_min: int
    work: float  # GPU-hours
    power_kw: float  # per GPU
    first: int
    last: int
    zones: tuple[int, ...]
    home: int
    overhead_h: float  # per start
    max_starts: int | None  # max interruptions + 1
    min_run_slots: int
    checkpoint_gb: float
    egress_usd_per_gb: float
    transfer_slots: int
    transfer_kwh_per_gb: float
    allow_split: bool
    # hours a checkpoint save takes: GPU-hours lost (x GPUs) at the end of every
    # segment but the last, i.e. once before every start after the first
    save_h: float = 0.0
    # checkpoint moves (migrations between zones) at most; None: no cap.  0 keeps the
    # job in its home zone
    max_moves: int | None = None
    # elastic jobs hold a multiple of this many GPUs in every slot (gpus and gpus_min
    # are multiples of it)
    gpus_step: int = 1
    # None: a size change between consecutive held slots in one zone is a restart (it
    # pays overhead_h and save_h at the largest size and counts toward max_starts);
    # hours: the training resizes in place, losing resize_h x (the larger of the two
    # sizes) GPU-hours per change, not an interruption
    resize_h: float | None = None

    def __post_init__(self) -> None:
        if self.gpus_step < 1:
            raise ValueError(f"job {self.name!r}: gpus_step {self.gpus_step} is not a "
                             "positive integer")
        if self.gpus % self.gpus_step or self.gpus_min % self.gpus_step:
            raise ValueError(f"job {self.name!r}: gpus {self.gpus} and gpus_min "
                             f"{self.gpus_min} must be multiples of gpus_step "
                             f"{self.gpus_step}")
        if self.save_h < 0 or (self.resize_h is not None and self.resize_h < 0):
            raise ValueError(f"job {self.name!r}: save_h and resize_h must be >= 0")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError(f"job {self.name!r}: max_moves must be >= 0")

    @property
    def rigid(self) -> bool:
        return self.gpus_min == self.gpus

    @property
    def migrates_at_cost(self) -> bool:
        return len(self.zones) > 1 and (self.checkpoint_gb > 0 or self.transfer_slots > 0)

    @property
    def tracks_checkpoint(self) -> bool:
        """The model follows where the checkpoint is (a, m): moves cost or are capped."""
        return len(self.zones) > 1 and (self.migrates_at_cost or self.max_moves is not None)

    @property
    def overhead_gpu_h(self) -> float:
        """GPU-hours lost per start (elastic jobs: at their largest size)."""
        return self.overhead_h * self.gpus

    @property
    def save_gpu_h(self) -> float:
        """GPU-hours lost per checkpoint save (at the largest size)."""
        return self.save_h * self.gpus

    @property
    def segment_gpu_h(self) -> float:
        """GPU-hours lost per segment after the first: its start's overhead and the save
        that ends the segment before it."""
        return self.overhead_gpu_h + self.save_gpu_h

    @property
    def loses_time(self) -> bool:
        """A start, save or resize costs this job GPU-hours."""
        return self.overhead_h > 0 or self.save_h > 0 or bool(self.resize_h)

    def lost_gpu_h(self, segments: int, resized_gpus: int = 0) -> float:
        """GPU-hours lost by a run of ``segments`` segments (starts, and size changes
        when each is a restart): one overhead per segment, one save before each segment
        but the first; and, resizing in place, ``resize_h`` per GPU of ``resized_gpus``
        (the larger size of each change, summed)."""
        resized = 0.0 if self.resize_h is None else self.resize_h * resized_gpus
        return self.overhead_gpu_h * segments + self.save_gpu_h * max(segments - 1, 0) + resized

    def restart_floor(self, slot_h: float) -> float:
        """GPU-hours a start slot runs at least: its restart overhead (capped at the
        smallest slot the job may hold)."""
        return min(self.overhead_gpu_h, slot_h * self.gpus_min)

    def resize_floor(self, slot_h: float) -> float:
        """GPU-hours a slot in which the job changes size runs at least: a restart's
        overhead (:meth:`restart_floor`); nothing for an in-place resize (its loss
        depends on the sizes, and the model keeps it linear)."""
        return self.restart_floor(slot_h) if self.resize_h is None else 0.0

    def earliest_last_slot(self, slot_h: float) -> int:
        """The earliest slot the job's run could end in (at full size, one zone)."""
        if self.allow_split and len(self.zones) > 1:
            return self.first
        return self.first + max(0, math.ceil(self.work / (self.gpus * slot_h) - 1e-9) - 1)


@dataclass(frozen=True)
class SolveSettings:
    """What a solve takes from the request: the backend (``highs`` or ``cbc``), the wall
    clock of the whole solve, and the relative MIP gap at which a plan counts as optimal."""

    solver: str = "highs"
    time_limit: pd.Timedelta = pd.Timedelta("60s")
    mip_gap: float = 1e-4


@dataclass(frozen=True)
class PlanningProblem:
    slots: pd.DatetimeIndex
    slot_h: float
    zones: tuple[str, ...]
    jobs: tuple[JobSpec, ...]
    intensity: np.ndarray  # gCO2eq/kWh, [zone, slot]
    pue: np.ndarray  # [zone]
    capacity: np.ndarray  # GPUs, [zone, slot]
    price: np.ndarray | None  # USD/MWh, [zone, slot]; None when no prices
    threshold: float | None = None
    threshold_mode: str = "hard"
    threshold_penalty: float = 1.0
    price_weight: float = 0.0

    @property
    def n_slots(self) -> int:
        return len(self.slots)

    def allowed(self, job: JobSpec, z: int) -> np.ndarray:
        """Slots where ``job`` may hold GPUs in zone ``z`` (window, capacity, hard threshold;
        only its home zone when it may not move)."""
        mask = np.zeros(self.n_slots, dtype=bool)
        mask[job.first : job.last + 1] = True
        mask &= self.capacity[z] >= job.gpus_min
        if job.max_moves == 0 and z != job.home:
            mask[:] = False  # no move allowed: the job stays where its checkpoint is
        if self.threshold is not None and self.threshold_mode == "hard":
            mask &= self.intensity[z] <= self.threshold
        return mask

    def kg_per_gpu_h(self, job: JobSpec, z: int) -> np.ndarray:
        """Emissions of one GPU-hour of ``job`` in zone ``z`` per slot, kg CO2eq."""
        return job.power_kw * self.pue[z] * self.intensity[z] / 1000.0

    def usd_per_gpu_h(self, job: JobSpec, z: int) -> np.ndarray:
        """Electricity cost of one GPU-hour per slot, USD; NaN where ``z`` has no price."""
        if self.price is None:
            return np.full(self.n_slots, np.nan)
        return job.power_kw * self.pue[z] * self.price[z] / 1000.0

    def cost_per_gpu_h(self, job: JobSpec, z: int) -> np.ndarray:
        """Objective coefficient of one GPU-hour: emissions + weighted cost (without
        ``price``, only egress is priced; the planner requires prices in every zone a job
        may use when ``price_weight`` > 0) + soft penalty."""
        coef = self.kg_per_gpu_h(job, z)
        if self.price_weight > 0 and self.price is not None:
            coef = coef + self.price_weight * self.usd_per_gpu_h(job, z)
        if self.threshold is not None and self.threshold_mode == "soft":
            excess = np.clip(self.intensity[z] - self.threshold, 0, None)
            coef = coef + self.threshold_penalty * job.power_kw * self.pue[z] * excess / 1000.0
        return coef

    def migration_cost(self, job: JobSpec, z: int) -> np.ndarray:
        """Objective cost of moving ``job``'s checkpoint into zone ``z`` at each slot."""
        kg = job.checkpoint_gb * job.transfer_kwh_per_gb * self.intensity[z] / 1000.0
        usd = job.checkpoint_gb * job.egress_usd_per_gb
        return kg + self.price_weight * usd

    def slots_needed(self, job: JobSpec) -> int:
        """Fewest slots the job needs at full size with one start."""
        return math.ceil((job.work + job.overhead_gpu_h) / (job.gpus * self.slot_h) - 1e-9)
