"""Exact dynamic programme for one rigid job (the MILP restricted to that job).

Applies to a rigid job that may not split, migrates for free and has no minimum
run length: then the model's choices are which slots to hold, in which zone, with
at most ``K = max_starts`` starts, and the cost is the sum of the held slots' costs.
With ``N`` held slots and ``k`` starts the work row reads
``N h G - k O G - (k - 1) S G >= W`` (overhead ``O`` hours per start, a checkpoint save
of ``S`` hours before every start but the first), i.e. ``N >= need(k) =
ceil(lost(k) / h)`` with ``lost(k) = W / G + k O + (k - 1) S``.  The job stops when
its work is done, so its last slot runs only ``1 - spare(k)`` of itself,
``spare(k) = need(k) - lost(k) / h`` (less when that slot is also a start and keeps
its restart overhead); the saving is taken on the slot's running cost.

State at the end of slot ``t``: ``(k starts, n held slots, zone or off)``; a slot
held in zone ``z`` continues a run in ``z`` or starts one (``k + 1``).  Costs are
non-negative, so more than ``need(k)`` held slots never pay and ``n`` is capped at
``N = need(K)``; a plan ending in slot ``t`` with ``need(k)`` slots held is priced as it
ends.  Each start holds a slot, so ``k <= need(k)``: ``K`` is capped there too (without
it an interruptible job's ``K`` is its window, 2,000 slots and more in a long replay).
``O(slots x K x need(K) x zones)`` time, vectorised over the last three.
"""

from __future__ import annotations

import math

import numpy as np
from greenepoch.solvers.problem import JobSpec, PlanningProblem

INF = float("inf")


def applies(job: JobSpec) -> bool:
    """True when the programme is exact for ``job`` (see module doc): rigid (it never
    resizes), moves free and uncapped (or none allowed: ``max_moves`` 0 keeps it home)."""
    capped = job.max_moves not in (None, 0) and len(job.zones) > 1
    return (job.rigid and not job.migrates_at_cost and not capped
            and job.min_run_slots <= 1 and (not job.allow_split or len(job.zones) == 1))


def _hours(job: JobSpec, k: int) -> float:
    """Hours at full size a plan with ``k`` starts runs: the work, ``k`` overheads and a
    save before every start but the first."""
    return job.work / job.gpus + k * job.overhead_h + max(k - 1, 0) * job.save_h


def need(problem: PlanningProblem, job: JobSpec, k: int) -> int:
    """Fewest held slots that do the work with ``k`` starts."""
    return max(1, math.ceil(_hours(job, k) / problem.slot_h - 1e-9))


def spare(problem: PlanningProblem, job: JobSpec, k: int) -> float:
    """Share of the last slot left unused by a plan of ``need(k)`` slots and ``k`` starts."""
    used = _hours(job, k) / problem.slot_h
    return min(max(need(problem, job, k) - used, 0.0), 1.0)


MAX_STORED_BYTES = 512 * 2**20  # the programme's back-pointers, kept for every slot
CELLS_PER_SECOND = 2e7  # cells per second, a little below the 2.5e7 measured (one
# core of this 2-core machine, shared)


def _dims(problem: PlanningProblem, job: JobSpec) -> tuple[int, int, int, int] | None:
    """``(K, N, need(1), window)`` of the programme, None when no plan fits the window."""
    window = job.last - job.first + 1
    K = job.max_starts if job.max_starts is not None else window
    K = max(1, min(K, window))
    h, o = problem.slot_h, job.overhead_h + job.save_h  # per start after the first
    if o < h:  # k starts hold k slots or more, and an optimal plan holds need(k): k <= need(k)
        K = min(K, int((job.work / job.gpus / h + 1) / (1 - o / h)) + 1)
    while K > 1 and not K <= need(problem, job, K) <= window:
        K -= 1
    N = need(problem, job, K)
    if window < N:
        return None
    return K, N, need(problem, job, 1), window


def size(problem: PlanningProblem, job: JobSpec) -> tuple[float, float]:
    """``(cells, stored bytes)`` of :func:`best_plan` on ``job``: the states it updates
    (its time is proportional) and the back-pointers it keeps (a bool pick per zone
    and an int8 zone per state and slot, the bulk of its memory).  (0, 0) when no plan fits."""
    dims = _dims(problem, job)
    if dims is None:
        return 0.0, 0.0
    K, N, need1, window = dims
    i = np.arange(window)
    a = np.maximum(1, need1 - (window - 1 - i))
    width = np.maximum(np.minimum(i + 1, N) - a + 1, 0).astype(float)
    n_z = len(job.zones)
    states = float((K + 1) * width.sum())
    return states * n_z, states * (n_z + 1)


def best_plan(problem: PlanningProblem, job: JobSpec, slot_cost: np.ndarray,
              max_states: int = 4_000_000,
              max_bytes: float = MAX_STORED_BYTES, max_seconds: float | None = None
              ) -> tuple[float, np.ndarray] | None:
    """Cheapest plan for ``job`` alone.

    ``slot_cost[z, t]``: cost of holding the job in zone ``z`` during slot ``t`` (full
    slot, >= 0; ``inf`` where it may not run): its running cost (the part the last
    slot saves, see module doc) plus any price on holding.  Returns ``(cost, zone per slot, -1
    off)`` or None when no plan exists, the state space exceeds ``max_states`` or its
    back-pointers would take more than ``max_bytes`` or (at ``CELLS_PER_SECOND``) it
    would take more than ``max_seconds`` (see :func:`size`).

    ``R[k, n, z]``: best cost with the job held in ``z`` in the current slot;
    ``M[k, n]``: best cost whatever the current slot does.  Only held counts that can
    still reach ``need(1)`` by the window's end, and at most ``i + 1`` after slot
    ``i``, are updated (others are never read again).
    """
    zones = np.array(job.zones)
    n_z = len(zones)
    first, last = job.first, job.last
    dims = _dims(problem, job)
    if dims is None:
        return None
    K, N, need1, window = dims
    cells, stored = size(problem, job)
    if (K + 1) * (N + 1) * (n_z + 1) > max_states or stored > max_bytes or (
            max_seconds is not None and cells > max_seconds * CELLS_PER_SECOND):
        return None
    cost = np.ascontiguousarray(slot_cost[zones][:, first : last + 1].T)  # [slot, zone]
    running = np.vstack([problem.cost_per_gpu_h(job, int(z))[first : last + 1]
                         for z in zones]).T * (problem.slot_h * job.gpus)
    ks = np.arange(1, K + 1)
    need_k = np.array([need(problem, job, int(k)) for k in ks])
    spare_k = np.array([spare(problem, job, int(k)) for k in ks])
    restart_spare = 1.0 - job.restart_floor(problem.slot_h) / (problem.slot_h * job.gpus)
    tail = (INF, -1, 0, 0, 0)  # best plan priced as it ends: (cost, slot, k, n, zone)
    R = np.full((K + 1, N + 1, n_z), INF)
    M = np.full((K + 1, N + 1), INF)
    M[0, 0] = 0.0
    picks, args, los = [], [], []
    rest = np.full((K + 1, N + 1), INF)
    for i in range(window):
        a = max(1, need1 - (window - 1 - i))
        hi = min(i + 1, N)
        cont = R[:, a - 1 : hi, :]
        rest_i = rest[:, : hi - a + 1]
        rest_i[1:] = M[:-1, a - 1 : hi]
        pick = rest_i[:, :, None] < cont  # restart beats continuing in z
        new_r = np.minimum(rest_i[:, :, None], cont)  # = where(pick, rest, cont)
        new_r += cost[i]
        ends = (need_k >= a) & (need_k <= hi) & (spare_k > 0)
        if ends.any():
            kk, nn = ks[ends], need_k[ends]
            pk = pick[kk, nn - a, :]
            sv = np.where(pk, np.minimum(spare_k[ends, None], restart_spare),
                          spare_k[ends, None])
            cand = new_r[kk, nn - a, :] - sv * running[i]
            flat = int(cand.argmin())
            r, zz = divmod(flat, n_z)
            if cand[r, zz] < tail[0]:
                tail = (float(cand[r, zz]), i, int(kk[r]), int(nn[r]), zz)
        arg = new_r.argmin(axis=2)
        r_min = new_r.min(axis=2)
        off = M[:, a : hi + 1]
        use_off = off <= r_min
        arg[use_off] = n_z
        args.append(arg.astype(np.int8 if n_z < 127 else np.int16))  # zone position, n_z: off
        np.minimum(off, r_min, out=off)  # M[:, a : hi + 1] = where(use_off, off, r_min)
        R[:, a : hi + 1, :] = new_r
        picks.append(pick)
        los.append(a)
    best, state = INF, None
    for k in range(1, K + 1):
        lo = need(problem, job, k)
        if lo > N:
            continue
        sub = M[k, lo:]
        n = int(sub.argmin())
        if sub[n] < best:
            best, state = float(sub[n]), (k, lo + n)
    held = np.full(problem.n_slots, -1, np.int64)
    if tail[0] < best and math.isfinite(tail[0]):
        best, i_end, k, n, z = tail
    elif state is not None and math.isfinite(best):
        (k, n), i_end, z = state, window - 1, -1
    else:
        return None
    # z = -1: the state at this slot is M[k, n] (zone from args)
    for i in range(i_end, -1, -1):
        a = los[i]
        if z < 0:
            if n < a:
                continue  # nothing held yet (n = 0)
            z = int(args[i][k, n - a])
            if z == n_z:
                z = -1
                continue
        held[first + i] = zones[z]
        if picks[i][k, n - a, z]:
            k, n, z = k - 1, n - 1, -1
        else:
            n -= 1
    return best, held


def job_slot_cost(problem: PlanningProblem, job: JobSpec, capacity: np.ndarray | None = None,
                  prices: np.ndarray | None = None) -> np.ndarray:
    """[zone, slot] cost of holding ``job`` for a full slot (kg CO2eq plus weighted
    terms, plus ``prices[z,t]`` per GPU), ``inf`` where not allowed or where
    ``capacity`` (GPUs left) is short."""
    out = np.full((len(problem.zones), problem.n_slots), INF)
    cap = problem.capacity if capacity is None else capacity
    for z in job.zones:
        ok = problem.allowed(job, z) & (cap[z] >= job.gpus)
        c = problem.slot_h * job.gpus * problem.cost_per_gpu_h(job, z)
        if prices is not None:
            c = c + job.gpus * prices[z]
        out[z, ok] = c[ok]
    return out
