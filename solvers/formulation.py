"""The planning MILP in PuLP: one function per constraint family.

Notation: job ``j``, zone ``z``, slot ``t`` of length ``h`` hours; ``A(j)`` the
(zone, slot) pairs where ``j`` may run (window, capacity, hard threshold).

Variables
    x[j,z,t] in {0,1}   j holds GPUs in z during t
    n[j,z,t] integer    GPUs held in steps of D_j = gpus_step (elastic jobs only:
                        gpus = D_j n; rigid: gpus = G_j x)
    s[j,z,t] >= 0       j starts (resumes) in z at t
    r[j,z,t] in {0,1}   j changes size in z at t, held at t-1 and t (elastic jobs)
    w[j,z,t] >= 0       the larger size of that change (jobs that resize in place)
    a[j,z,t] in [0,1]   j's checkpoint is in z (jobs that migrate at a cost or whose
                        moves are capped)
    m[j,z,t] >= 0       j's checkpoint moves into z at t
    u[j,z,t] >= 0       GPU-hours j leaves unused in z during t (it finished early)
    l[j,t] in [0,1]     j holds GPUs after slot t (1 when it does, binary x forcing it)
Losses (GPU-hours, at the job's largest size G_j): O_j = overhead_h G_j per start,
S_j = save_h G_j per checkpoint save, before every segment but the first; a size
change is a restart when resize_h is None (it costs O_j + S_j and counts as a start),
otherwise it loses R_j w GPU-hours (R_j = resize_h).
A held slot runs in full (h x gpus GPU-hours) except the job's last one, which stops
when the work is done: u may be positive only where nothing is held later, so the
objective charges exactly what the plan runs (:func:`solvers.schedule.trim_excess`).
Constraint names are ``family[job|zone|slot]`` and deterministic.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pulp
from greenepoch.solvers.problem import PlanningProblem

Key = tuple[int, int, int]


@dataclass
class Model:
    problem: PlanningProblem
    lp: pulp.LpProblem
    x: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    n: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    s: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    r: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    w: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    a: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    m: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    u: dict[Key, pulp.LpVariable] = field(default_factory=dict)
    later: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)

    def gpus(self, key: Key) -> pulp.LpAffineExpression | pulp.LpVariable:
        job = self.problem.jobs[key[0]]
        return job.gpus_step * self.n[key] if not job.rigid else job.gpus * self.x[key]


def add_variables(model: Model, relax: bool = False) -> None:
    """Create x, n, s on A(j), r (and w, resizing in place) where (j, z, t-1) is in A(j)
    too; integers become continuous when ``relax``."""
    p = model.problem
    cat = pulp.LpContinuous if relax else pulp.LpBinary
    icat = pulp.LpContinuous if relax else pulp.LpInteger
    for j, job in enumerate(p.jobs):
        for z in job.zones:
            for t in np.flatnonzero(p.allowed(job, z)).tolist():
                k = (j, z, t)
                model.x[k] = model.lp.add_variable(f"x_{j}_{z}_{t}", 0, 1, cat)
                model.s[k] = model.lp.add_variable(f"s_{j}_{z}_{t}", 0, 1)
                if not job.rigid:
                    model.n[k] = model.lp.add_variable(f"n_{j}_{z}_{t}", 0,
                                                       job.gpus // job.gpus_step, icat)
                    if (j, z, t - 1) in model.x:
                        model.r[k] = model.lp.add_variable(f"r_{j}_{z}_{t}", 0, 1, cat)
                        if job.resize_h is not None:
                            model.w[k] = model.lp.add_variable(f"w_{j}_{z}_{t}", 0, job.gpus)


def add_run_limits(model: Model) -> None:
    """Elastic jobs: G_min x <= D n <= G_max x (as n <= (G_max / D) x, n >= (G_min / D) x)."""
    p = model.problem
    for k, n in model.n.items():
        job = p.jobs[k[0]]
        x = model.x[k]
        d = job.gpus_step
        model.lp += (n <= job.gpus // d * x, f"nmax[{job.name}|{k[1]}|{k[2]}]")
        model.lp += (n >= job.gpus_min // d * x, f"nmin[{job.name}|{k[1]}|{k[2]}]")


def add_resizes(model: Model) -> None:
    """r[j,z,t] >= (D n[t] - D n[t-1] - G (1 - x[t-1])) / (G - G_min) and
    r[j,z,t] >= (D n[t-1] - D n[t] - G (1 - x[t])) / (G - G_min): r is 1 where the
    size changes between two held slots (the change is at most G - G_min); resizing in
    place, w[j,z,t] >= D n[t] - G (1 - r[j,z,t]) and w[j,z,t] >= D n[t-1] - G (1 -
    r[j,z,t]): w is the larger size where r is 1."""
    p = model.problem
    for k, r in model.r.items():
        j, z, t = k
        job = p.jobs[j]
        prev = (j, z, t - 1)
        span = float(job.gpus - job.gpus_min)
        up = model.gpus(k) - model.gpus(prev) - job.gpus * (1 - model.x[prev])
        down = model.gpus(prev) - model.gpus(k) - job.gpus * (1 - model.x[k])
        model.lp += (span * r >= up, f"growth[{job.name}|{z}|{t}]")
        model.lp += (span * r >= down, f"shrink[{job.name}|{z}|{t}]")
        if k in model.w:
            for name, key in (("larger_now", k), ("larger_prev", prev)):
                model.lp += (model.w[k] >= model.gpus(key) - job.gpus * (1 - r),
                             f"{name}[{job.name}|{z}|{t}]")


def restarts(model: Model, keys: list[Key]) -> pulp.LpAffineExpression:
    """sum s + sum r over ``keys`` of one job, r only when a size change is a restart:
    the job's segments."""
    job = model.problem.jobs[keys[0][0]] if keys else None
    expr = pulp.lpSum(model.s[k] for k in keys)
    if job is not None and job.resize_h is None:
        expr += pulp.lpSum(model.r[k] for k in keys if k in model.r)
    return expr


def add_starts(model: Model) -> None:
    """s[j,z,t] >= x[j,z,t] - x[j,z,t-1] (x outside A(j) is 0)."""
    p = model.problem
    for k, x in model.x.items():
        j, z, t = k
        job = p.jobs[j]
        prev = model.x.get((j, z, t - 1))
        rhs = x - prev if prev is not None else x
        model.lp += (model.s[k] >= rhs, f"start[{job.name}|{z}|{t}]")


def add_work(model: Model) -> None:
    """h sum_{z,t} gpus[j,z,t] - (O_j + S_j) sum_{z,t} (s[j,z,t] + r[j,z,t])
    - sum_{z,t} u[j,z,t] >= W_j - S_j (resizing in place: - R_j sum_{z,t} w[j,z,t] in
    place of the r terms): all work done in the window, with one overhead per start
    and one save before every start but the first (credited once: a job with work
    starts at least once, sum s >= 1 below when S_j > 0).

    A job split over zones counts one save per start in any zone: a lower bound of its
    loss when a stop in one zone needs no save while another zone runs on."""
    p = model.problem
    keys: dict[int, list[Key]] = defaultdict(list)
    for k in model.x:
        keys[k[0]].append(k)
    for j, job in enumerate(p.jobs):
        expr = pulp.lpSum(p.slot_h * model.gpus(k) for k in keys[j])
        if job.segment_gpu_h > 0:
            expr -= job.segment_gpu_h * restarts(model, keys[j])
        if job.resize_h:
            expr -= job.resize_h * pulp.lpSum(model.w[k] for k in keys[j] if k in model.w)
        expr -= pulp.lpSum(model.u[k] for k in keys[j] if k in model.u)
        model.lp += (expr >= job.work - job.save_gpu_h, f"work[{job.name}]")
        if job.save_h > 0 and keys[j]:
            model.lp += (pulp.lpSum(model.s[k] for k in keys[j]) >= 1, f"started[{job.name}]")


def idle_keys(problem: PlanningProblem, keys: list[Key]) -> list[Key]:
    """The keys whose slot could be their job's last (u exists there)."""
    last = [job.earliest_last_slot(problem.slot_h) for job in problem.jobs]
    return [k for k in keys if k[2] >= last[k[0]]]


def add_idle(model: Model) -> None:
    """u[j,z,t] + f_j s[j,z,t] + g_j r[j,z,t] <= h gpus[j,z,t] (f_j: a start slot's
    restart overhead capped at h G_min; g_j: f_j when a size change is a restart, else 0);
    l[j,t] >= x[j,z,t+1], l[j,t] >= l[j,t+1]; sum_z u[j,z,t] <= h G_j (1 - l[j,t]):
    only the last held slot may be partly run.  Call before :func:`add_work`."""
    p = model.problem
    per_slot: dict[tuple[int, int], list[Key]] = defaultdict(list)
    for k in idle_keys(p, list(model.x)):
        j, z, t = k
        job = p.jobs[j]
        u = model.u[k] = model.lp.add_variable(f"u_{j}_{z}_{t}", 0, p.slot_h * job.gpus)
        floor = job.restart_floor(p.slot_h) * model.s[k]
        if k in model.r and job.resize_floor(p.slot_h) > 0:
            floor += job.resize_floor(p.slot_h) * model.r[k]
        model.lp += (u + floor <= p.slot_h * model.gpus(k), f"idle[{job.name}|{z}|{t}]")
        per_slot[(j, t)].append(k)
    held_at: dict[tuple[int, int], list[pulp.LpVariable]] = defaultdict(list)
    for (j, _z, t), x in model.x.items():
        held_at[(j, t)].append(x)
    for j, job in enumerate(p.jobs):
        for t in range(job.earliest_last_slot(p.slot_h), job.last):
            model.later[(j, t)] = model.lp.add_variable(f"l_{j}_{t}", 0, 1)
    for (j, t), later in model.later.items():
        job = p.jobs[j]
        nxt = model.later.get((j, t + 1))
        if nxt is not None:
            model.lp += (later >= nxt, f"laterchain[{job.name}|{t}]")
        xs = held_at.get((j, t + 1), [])
        if job.allow_split and len(xs) > 1:
            for i, x in enumerate(xs):
                model.lp += (later >= x, f"later[{job.name}|{t}|{i}]")
        elif xs:
            model.lp += (later >= pulp.lpSum(xs), f"later[{job.name}|{t}]")
        keys = per_slot.get((j, t), [])
        if keys:
            model.lp += (pulp.lpSum(model.u[k] for k in keys) + p.slot_h * job.gpus * later
                         <= p.slot_h * job.gpus, f"lastslot[{job.name}|{t}]")


def add_one_zone(model: Model) -> None:
    """sum_z x[j,z,t] <= 1 for jobs that may not split across zones."""
    p = model.problem
    groups: dict[tuple[int, int], list] = defaultdict(list)
    for (j, _z, t), x in model.x.items():
        if not p.jobs[j].allow_split and len(p.jobs[j].zones) > 1:
            groups[(j, t)].append(x)
    for (j, t), xs in groups.items():
        if len(xs) > 1:
            model.lp += (pulp.lpSum(xs) <= 1, f"onezone[{p.jobs[j].name}|{t}]")


def add_capacity(model: Model) -> None:
    """sum_j gpus(j,z,t) <= C[z,t] wherever more than one job competes."""
    p = model.problem
    groups: dict[tuple[int, int], list[Key]] = defaultdict(list)
    for k in model.x:
        groups[(k[1], k[2])].append(k)
    for (z, t), keys in groups.items():
        demand = sum(p.jobs[k[0]].gpus for k in keys)
        if demand > p.capacity[z, t]:
            model.lp += (
                pulp.lpSum(model.gpus(k) for k in keys) <= float(p.capacity[z, t]),
                f"capacity[{p.zones[z]}|{t}]",
            )


def add_max_interruptions(model: Model) -> None:
    """sum_{z,t} s[j,z,t] (+ sum_{z,t} r[j,z,t] when a size change is a restart)
    <= max_interruptions_j + 1."""
    p = model.problem
    per_job: dict[int, list[Key]] = defaultdict(list)
    for k in model.s:
        per_job[k[0]].append(k)
    for j, job in enumerate(p.jobs):
        if job.max_starts is not None and per_job[j]:
            model.lp += (restarts(model, per_job[j]) <= job.max_starts, f"starts[{job.name}]")


def add_min_run(model: Model) -> None:
    """sum_{t'=t-L+1..t} s[j,z,t'] <= x[j,z,t]: every run lasts at least L_j slots."""
    p = model.problem
    for (j, z, t), x in model.x.items():
        job = p.jobs[j]
        if job.min_run_slots <= 1:
            continue
        recent = [model.s[(j, z, tt)] for tt in range(t - job.min_run_slots + 1, t + 1)
                  if (j, z, tt) in model.s]
        model.lp += (pulp.lpSum(recent) <= x, f"minrun[{job.name}|{z}|{t}]")
        # a run that cannot last L slots inside A(j) may not start at all
        after = [(j, z, tt) for tt in range(t, t + job.min_run_slots)]
        if any(key not in model.x for key in after):
            model.lp += (model.s[(j, z, t)] <= 0, f"minrunend[{job.name}|{z}|{t}]")


def add_migration(model: Model) -> None:
    """Checkpoint location a (starts at home): a[j,z,t] >= x[j,z,t], sum_z a = 1,
    m[j,z,t] >= a[j,z,t] - a[j,z,t-1]; no run in z for the transfer time after a
    move: x[j,z,t+d] <= 1 - m[j,z,t], d < transfer slots; sum_{z,t} m[j,z,t] <=
    max_moves_j.  (a follows one checkpoint: such a job runs in one zone at a time.)"""
    p = model.problem
    for j, job in enumerate(p.jobs):
        if not job.tracks_checkpoint:
            continue
        for t in range(job.first, job.last + 1):
            col = []
            for z in job.zones:
                k = (j, z, t)
                a = model.a[k] = model.lp.add_variable(f"a_{j}_{z}_{t}", 0, 1)
                m = model.m[k] = model.lp.add_variable(f"m_{j}_{z}_{t}", 0)
                col.append(a)
                if k in model.x:
                    model.lp += (a >= model.x[k], f"loc[{job.name}|{z}|{t}]")
                prev = model.a.get((j, z, t - 1))
                before = prev if prev is not None else (1.0 if z == job.home else 0.0)
                model.lp += (m >= a - before, f"move[{job.name}|{z}|{t}]")
            model.lp += (pulp.lpSum(col) == 1, f"where[{job.name}|{t}]")
        for (jj, z, t), m in list(model.m.items()):
            if jj != j:
                continue
            for d in range(job.transfer_slots):
                key = (j, z, t + d)
                if key in model.x:
                    model.lp += (model.x[key] <= 1 - m, f"transfer[{job.name}|{z}|{t}|{d}]")
        if job.max_moves is not None:
            moves = [m for (jj, _z, _t), m in model.m.items() if jj == j]
            model.lp += (pulp.lpSum(moves) <= job.max_moves, f"moves[{job.name}]")


def set_objective(model: Model) -> None:
    """min sum c[j,z,t] (h gpus[j,z,t] - u[j,z,t]) + sum mc[j,z,t] m[j,z,t], where c is
    kg CO2eq per GPU-hour (intensity x PUE x power) plus weighted cost and soft-threshold
    penalty."""
    p = model.problem
    coef = {}
    for j, job in enumerate(p.jobs):
        for z in job.zones:
            coef[(j, z)] = p.cost_per_gpu_h(job, z)
    terms = []
    for k, x in model.x.items():
        c = p.slot_h * float(coef[(k[0], k[1])][k[2]])
        if p.jobs[k[0]].rigid:
            terms.append((x, c * p.jobs[k[0]].gpus))
        else:
            terms.append((model.n[k], c * p.jobs[k[0]].gpus_step))
        if k in model.u:
            terms.append((model.u[k], -float(coef[(k[0], k[1])][k[2]])))
    mig = {}
    for k, m in model.m.items():
        key = (k[0], k[1])
        if key not in mig:
            mig[key] = p.migration_cost(p.jobs[k[0]], k[1])
        terms.append((m, float(mig[key][k[2]])))
    model.lp += pulp.LpAffineExpression(terms)


def build(problem: PlanningProblem, relax: bool = False) -> Model:
    """The full model (``relax``: its LP relaxation, for bounds)."""
    model = Model(problem, pulp.LpProblem("greenepoch_plan", pulp.LpMinimize))
    add_variables(model, relax)
    add_run_limits(model)
    add_resizes(model)
    add_starts(model)
    add_idle(model)
    add_work(model)
    add_one_zone(model)
    add_capacity(model)
    add_max_interruptions(model)
    add_min_run(model)
    add_migration(model)
    set_objective(model)  # after add_migration, which creates the m variables it prices
    return model

