"""Domain entities of a plan request: jobs, zones and the planning policy.

All are frozen dataclasses validated once, in ``__post_init__``; errors name the
field, the value and the fix.  Units: GPU-hours for work, kW for power, GB for
checkpoints, USD for money, gCO2eq/kWh for intensity thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from greenepoch.data.errors import RequestError
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.solvers.problem import SolveSettings

DEFAULT_GPU_POWER_KW = 1.0
"""kW per GPU, host share included: a DGX H100 node draws at most 10.2 kW for
8 GPUs (1.275 kW per GPU); sustained training runs near 80 % of that."""
MAX_GPU_POWER_KW = 3.0
"""Largest plausible kW per GPU, host share included (a GB200 NVL72 rack draws about
120-132 kW for 72 GPUs, under 2 kW each); 700 is a GPU's watts typed as kW."""
DEFAULT_PUE = 1.2
DEFAULT_EGRESS_USD_PER_GB = 0.02
DEFAULT_TRANSFER_KWH_PER_GB = 0.06
"""Network energy per GB moved between regions (Aslan et al., J. Ind. Ecol. 2018,
0.06 kWh/GB for 2015; a conservative value for today's networks)."""

OBJECTIVES = ("carbon", "carbon+cost")
THRESHOLD_MODES = ("hard", "soft")
SOLVERS = ("highs", "cbc")
#: Relative MIP gap without ``policy.mip_gap``: plans on known intensities solve to
#: 1e-4; plans on a forecast to 1 %, an order of magnitude under the forecast's own error
#: (blend WAPE 7.4-11.7 % by horizon): on the demo the warm plan took 3.2 -> 2.4 s and
#: realised 177.75 vs 177.79 kg (benchmarks/results/forecast_plan_speed.md).
EXACT_MIP_GAP = 1e-4
FORECAST_MIP_GAP = 0.01


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise RequestError(msg)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _dur(td: pd.Timedelta | None) -> str:
    """A duration as hours for messages: ``1.5 h``."""
    return "none" if td is None else f"{td / pd.Timedelta('1h'):g} h"


def check_margin(job: Job, release: pd.Timestamp, margin: pd.Timedelta) -> None:
    """The plan must end ``margin`` before the deadline: some time must remain after
    ``release``."""
    _require(job.deadline - margin > release,
             f"job '{job.name}': deadline_margin {_dur(margin)} leaves no time to run: the "
             f"plan must end by {(job.deadline - margin).isoformat()}, not after release "
             f"{release.isoformat()}; give a smaller margin or a later deadline")


def check_step(job: Job, step: int, why: str) -> None:
    """An elastic job's sizes must be multiples of its GPU ``step`` (``why``: where the
    step comes from); a rigid job's one size is not held to it (exports place it)."""
    if job.rigid:
        return
    for name in ("gpus", "gpus_min"):
        value = getattr(job, name)
        if value % step:
            below, above = value - value % step, value - value % step + step
            near = f"{below} or {above}" if below >= step else f"{above}"
            raise RequestError(
                f"job '{job.name}': {name} = {value} is not a multiple of gpus_step {step} "
                f"({why}); elastic sizes are multiples of the step: use {near}")


@dataclass(frozen=True)
class Job:
    """One training job.

    ``gpus_min == gpus`` is a rigid job; ``gpus_min < gpus`` is elastic (any multiple
    of its GPU step in the range while running, :meth:`PlanRequest.gpus_step`).  Every
    start (the first included) costs ``checkpoint_overhead`` of running time without
    progress, and every run but the last ends in a ``checkpoint_save``; interruptions
    are starts minus one.  ``resize_overhead`` None: a size change is a restart (as the
    Slurm export runs it); a duration: the framework resizes in place, losing that long
    at the larger size.  ``deadline_margin`` None: the policy's.
    """

    name: str
    gpus: int
    gpu_hours: float
    release: pd.Timestamp
    deadline: pd.Timestamp
    zones: tuple[str, ...]
    home_zone: str
    gpus_min: int = 0  # 0 means rigid: same as gpus
    gpu_power_kw: float = DEFAULT_GPU_POWER_KW
    checkpoint_overhead: pd.Timedelta = pd.Timedelta(0)
    max_interruptions: int | None = None
    min_run: pd.Timedelta = pd.Timedelta(0)
    checkpoint_gb: float = 0.0
    egress_usd_per_gb: float = DEFAULT_EGRESS_USD_PER_GB
    transfer_time: pd.Timedelta = pd.Timedelta(0)
    transfer_kwh_per_gb: float = DEFAULT_TRANSFER_KWH_PER_GB
    allow_split: bool = False
    checkpoint_save: pd.Timedelta = pd.Timedelta(0)
    deadline_margin: pd.Timedelta | None = None
    max_migrations: int | None = None
    gpus_step: int | None = None  # None: the lcm of its zones' gpus_per_node, else 1
    resize_overhead: pd.Timedelta | None = None

    def __post_init__(self) -> None:
        where = f"job '{self.name}'"
        _require(bool(self.name.strip()), "job name is empty: give every job a name")
        if self.gpus_min == 0:
            object.__setattr__(self, "gpus_min", self.gpus)
        _require(self.gpus >= 1, f"{where}: gpus = {self.gpus}; a job needs at least 1 GPU")
        _require(
            1 <= self.gpus_min <= self.gpus,
            f"{where}: gpus_min = {self.gpus_min} must be between 1 and gpus = {self.gpus}",
        )
        _require(_finite(self.gpu_hours) and self.gpu_hours > 0,
                 f"{where}: gpu_hours = {self.gpu_hours} must be a finite number above 0")
        _require(
            _finite(self.gpu_power_kw) and self.gpu_power_kw > 0,
            f"{where}: gpu_power_kw = {self.gpu_power_kw} must be positive (kW per GPU)",
        )
        _require(
            self.gpu_power_kw <= MAX_GPU_POWER_KW,
            f"{where}: gpu_power_kw = {self.gpu_power_kw} kW per GPU is above the plausible "
            f"{MAX_GPU_POWER_KW:g} kW; the value is in kW per GPU, host share included "
            f"(a GPU's watts, e.g. 700 W, are {700 / 1000:g} kW)",
        )
        _require(
            self.deadline > self.release,
            f"{where}: deadline {self.deadline.isoformat()} is not after release "
            f"{self.release.isoformat()}; move the deadline later",
        )
        _require(len(self.zones) > 0, f"{where}: zones is empty; list at least one zone")
        _require(
            len(set(self.zones)) == len(self.zones), f"{where}: zones lists a zone twice"
        )
        _require(
            self.home_zone in self.zones,
            f"{where}: home_zone '{self.home_zone}' is not among its zones "
            f"{list(self.zones)}; add it to zones",
        )
        _require(
            self.max_interruptions is None or self.max_interruptions >= 0,
            f"{where}: max_interruptions must be 0 or more",
        )
        for name in ("checkpoint_gb", "egress_usd_per_gb", "transfer_kwh_per_gb"):
            value = getattr(self, name)
            _require(_finite(value) and value >= 0,
                     f"{where}: {name} = {value} must be a finite number, 0 or more")
        for name in ("checkpoint_overhead", "min_run", "transfer_time", "checkpoint_save",
                     "deadline_margin", "resize_overhead"):
            value = getattr(self, name)
            _require(value is None or value >= pd.Timedelta(0),
                     f"{where}: {name} = {value} must be 0 or more")
        _require(self.max_migrations is None or self.max_migrations >= 0,
                 f"{where}: max_migrations must be 0 or more")
        _require(self.gpus_step is None or self.gpus_step >= 1,
                 f"{where}: gpus_step = {self.gpus_step} must be 1 or more")
        run = pd.Timedelta(hours=self.run_hours_at_full_size)
        for name in ("checkpoint_save", "resize_overhead"):
            # a save (or resize) as long as the whole run would leave no run to save
            value = getattr(self, name)
            _require(value is None or value < run,
                     f"{where}: {name} = {_dur(value)} is not shorter than the job's whole run "
                     f"({_dur(run)} at {self.gpus} GPUs); give a shorter {name}")
        if self.deadline_margin is not None:
            check_margin(self, self.release, self.deadline_margin)
        if self.gpus_step is not None:
            check_step(self, self.gpus_step, "its gpus_step")

    @property
    def rigid(self) -> bool:
        return self.gpus_min == self.gpus

    @property
    def run_hours_at_full_size(self) -> float:
        return self.gpu_hours / self.gpus


@dataclass(frozen=True)
class Zone:
    """A grid zone where GPUs can run.

    ``capacity`` is GPUs available per slot: a constant, or a step schedule of
    ``(from_time, gpus)`` pairs (each value holds until the next).
    ``price_usd_per_mwh`` is an optional hourly electricity price series.
    """

    id: str
    capacity_gpus: int
    pue: float = DEFAULT_PUE
    capacity_schedule: tuple[tuple[pd.Timestamp, int], ...] = ()
    price_usd_per_mwh: pd.Series | None = field(default=None, compare=False)
    gpus_per_node: int | None = None  # the default GPU step of elastic jobs here

    def __post_init__(self) -> None:
        where = f"zone '{self.id}'"
        _require(self.gpus_per_node is None or self.gpus_per_node >= 1,
                 f"{where}: gpus_per_node = {self.gpus_per_node} must be 1 or more")
        _require(self.capacity_gpus >= 0, f"{where}: capacity_gpus must be 0 or more")
        _require(1.0 <= self.pue <= 3.0, f"{where}: pue = {self.pue} must be in [1.0, 3.0]")
        for when, gpus in self.capacity_schedule:
            _require(gpus >= 0, f"{where}: capacity schedule at {when} has {gpus} GPUs (< 0)")

    def capacity_at(self, slots: pd.DatetimeIndex) -> pd.Series:
        """GPUs available in each slot."""
        cap = pd.Series(float(self.capacity_gpus), index=slots)
        for when, gpus in sorted(self.capacity_schedule):
            cap[slots >= when] = float(gpus)
        return cap.astype(int)


@dataclass(frozen=True)
class Policy:
    """How to plan: objective, carbon threshold, slot length and solver settings.

    ``price_weight`` is kg CO2eq per USD: objective = emissions_kg + price_weight
    x cost_usd when ``objective = "carbon+cost"``.  A soft threshold adds
    ``threshold_penalty`` x energy x (intensity - threshold) to the objective.
    """

    objective: str = "carbon"
    price_weight: float = 0.0
    threshold: float | None = None
    threshold_mode: str = "hard"
    threshold_penalty: float = 1.0
    slot: str = "1h"
    solver: str = "highs"
    time_limit: pd.Timedelta = pd.Timedelta("60s")
    mip_gap: float | None = None  # None: EXACT_MIP_GAP, or FORECAST_MIP_GAP on a forecast
    forecast: str = "default"  # forecasts.registry.DEFAULT_MODEL: the best measured (blend)
    deadline_margin: pd.Timedelta = pd.Timedelta(0)  # every job's, unless it sets its own

    @property
    def solve_settings(self) -> SolveSettings:
        """What the solver takes from this policy for a plan on known intensities."""
        return self.settings_for(forecast=False)

    def settings_for(self, *, forecast: bool) -> SolveSettings:
        """What the solver takes from this policy; ``forecast``: the plan is made on a
        forecast, so without ``mip_gap`` it stops at FORECAST_MIP_GAP."""
        gap = self.mip_gap
        if gap is None:
            gap = FORECAST_MIP_GAP if forecast else EXACT_MIP_GAP
        return SolveSettings(self.solver, self.time_limit, gap)

    def __post_init__(self) -> None:
        _require(
            self.objective in OBJECTIVES,
            f"policy.objective = {self.objective!r}; use one of {', '.join(OBJECTIVES)}",
        )
        _require(
            self.threshold_mode in THRESHOLD_MODES,
            f"policy.threshold_mode = {self.threshold_mode!r}; use 'hard' or 'soft'",
        )
        _require(self.slot in SLOTS,
                 f"policy.slot = {self.slot!r}; use one of {', '.join(repr(k) for k in SLOTS)}")
        _require(
            self.solver in SOLVERS,
            f"policy.solver = {self.solver!r}; use one of {', '.join(SOLVERS)}",
        )
        _require(self.time_limit > pd.Timedelta(0), "policy.time_limit must be positive")
        _require(self.deadline_margin >= pd.Timedelta(0),
                 f"policy.deadline_margin = {self.deadline_margin} must be 0 or more")
        _require(self.mip_gap is None or 0 <= self.mip_gap < 1,
                 f"policy.mip_gap = {self.mip_gap} must be in [0, 1)")
        _require(_finite(self.price_weight) and self.price_weight >= 0,
                 f"policy.price_weight = {self.price_weight} must be a finite number, 0 or more")
        _require(
            self.threshold is None or (_finite(self.threshold) and self.threshold >= 0),
            f"policy.carbon_threshold = {self.threshold} must be a finite number, 0 or more "
            "(gCO2eq/kWh)",
        )
        # a negative penalty rewards running above the threshold (it planned 48.5 kg
        # against 25.3 kg running now and reported "-91.9 % less")
        _require(
            _finite(self.threshold_penalty) and self.threshold_penalty >= 0,
            f"policy.threshold_penalty = {self.threshold_penalty} must be a finite number, "
            "0 or more",
        )

    @property
    def slot_length(self) -> pd.Timedelta:
        return pd.Timedelta(self.slot)


@dataclass(frozen=True)
class PlanRequest:
    """Everything needed to plan: when, which jobs, which zones, how."""

    start: pd.Timestamp
    jobs: tuple[Job, ...]
    zones: tuple[Zone, ...]
    policy: Policy = Policy()

    def __post_init__(self) -> None:
        _require(len(self.jobs) > 0, "the request has no [[jobs]]; add at least one")
        names = [j.name for j in self.jobs]
        dup = {n for n in names if names.count(n) > 1}
        _require(not dup, f"job name(s) {sorted(dup)} appear twice; names must be unique")
        ids = [z.id for z in self.zones]
        _require(len(set(ids)) == len(ids), "a zone is listed twice in [[zones]]")
        for job in self.jobs:
            unknown = [z for z in job.zones if z not in ids]
            _require(
                not unknown,
                f"job '{job.name}': zone(s) {unknown} have no [[zones]] entry; add them with "
                "capacity_gpus and pue",
            )
            _require(
                job.deadline > self.start,
                f"job '{job.name}': deadline {job.deadline.isoformat()} is before the plan "
                f"start {self.start.isoformat()}",
            )
            check_margin(job, max(job.release, self.start), self.deadline_margin_of(job))
            check_step(job, self.gpus_step(job), self._step_source(job))

    def deadline_margin_of(self, job: Job) -> pd.Timedelta:
        """How long before its deadline ``job``'s plan must end: its own margin, else
        the policy's."""
        return self.policy.deadline_margin if job.deadline_margin is None \
            else job.deadline_margin

    def plan_deadline(self, job: Job) -> pd.Timestamp:
        """What the planner plans ``job`` against: its deadline less its margin."""
        return job.deadline - self.deadline_margin_of(job)

    def _nodes(self, job: Job) -> dict[str, int]:
        return {z.id: z.gpus_per_node for z in self.zones
                if z.id in job.zones and z.gpus_per_node is not None}

    def gpus_step(self, job: Job) -> int:
        """The GPU step of ``job``'s sizes: its own ``gpus_step``, else the least common
        multiple of its zones' ``gpus_per_node`` where given (a size that fills whole
        nodes in every zone), else 1."""
        if job.gpus_step is not None:
            return job.gpus_step
        return math.lcm(*self._nodes(job).values())  # lcm() of no zones is 1

    def _step_source(self, job: Job) -> str:
        if job.gpus_step is not None:
            return "its gpus_step"
        nodes = ", ".join(f"{z} {n}" for z, n in self._nodes(job).items())
        return f"from gpus_per_node of its zones: {nodes}"

    @property
    def end(self) -> pd.Timestamp:
        return max(j.deadline for j in self.jobs)

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)
