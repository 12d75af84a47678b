"""Exact dynamic programme for one rigid job (the MILP restricted to that job).

Applies to a rigid job that may not split, migrates for free and has no minimum
run length: then the model's choices are which slots to hold, in which zone, with
at most ``K = max_starts`` starts, and the cost is the sum of the held slots' costs.
With ``N`` held slots and ``k`` starts the work row reads
``N h G - k O G >= W``, i.e. ``N >= need(k) = ceil((W / G + k O) / h)``.

State at the end of slot ``t``: ``(k starts, n held slots, zone or off)``; a slot
held in zone ``z`` continues a run in ``z`` or starts one (``k + 1``).  Costs are
non-negative, so more than ``need(K)`` held slots never pay and ``n`` is capped
there.  ``O(slots x K x need(K) x zones)`` time, vectorised over the last three.
"""

from __future__ import annotations

import math

import numpy as np

from solvers.problem import JobSpec, PlanningProblem

INF = float("inf")


def applies(job: JobSpec) -> bool:
    """True when the programme is exact for ``job`` (see module doc)."""
    return (job.rigid and not job.migrates_at_cost and job.min_run_slots <= 1
            and (not job.allow_split or len(job.zones) == 1))


def need(problem: PlanningProblem, job: JobSpec, k: int) -> int:
    """Fewest held slots that do the work with ``k`` starts."""
    return max(1, math.ceil((job.work / job.gpus + k * job.overhead_h) / problem.slot_h - 1e-9))


def best_plan(problem: PlanningProblem, job: JobSpec, slot_cost: np.ndarray,
              max_states: int = 4_000_000) -> tuple[float, np.ndarray] | None:
    """Cheapest plan for ``job`` alone.

    ``slot_cost[z, t]``: cost of holding the job in zone ``z`` during slot ``t`` (full
    slot, >= 0; ``inf`` where it may not run).  Returns ``(cost, zone per slot, -1
    off)`` or None when no plan exists or the state space exceeds ``max_states``.
    """
    zones = np.array(job.zones)
    n_z = len(zones)
    first, last = job.first, job.last
    window = last - first + 1
    K = job.max_starts if job.max_starts is not None else window
    K = max(1, min(K, window))
    N = need(problem, job, K)
    if window < N:
        K = max(1, min(K, window))
        while K > 1 and need(problem, job, K) > window:
            K -= 1
        N = need(problem, job, K)
        if window < N:
            return None
    if (K + 1) * (N + 1) * (n_z + 1) > max_states:
        return None
    off = n_z
    V = np.full((K + 1, N + 1, n_z + 1), INF)
    V[0, 0, off] = 0.0
    arg_m = np.zeros((window, K + 1, N + 1), np.int16)
    restart = np.zeros((window, K + 1, N + 1, n_z), bool)
    cost = slot_cost[zones][:, first : last + 1]
    for i in range(window):
        M = V.min(axis=2)
        arg_m[i] = V.argmin(axis=2)
        new = np.full_like(V, INF)
        new[:, :, off] = M
        cont = np.full((K + 1, N + 1, n_z), INF)
        cont[:, 1:, :] = V[:, :-1, :n_z]
        rest = np.full((K + 1, N + 1), INF)
        rest[1:, 1:] = M[:-1, :-1]
        pick = rest[:, :, None] < cont
        restart[i] = pick
        new[:, :, :n_z] = np.where(pick, rest[:, :, None], cont) + cost[:, i][None, None, :]
        V = new
    best, state = INF, None
    for k in range(1, K + 1):
        lo = need(problem, job, k)
        if lo > N:
            continue
        sub = V[k, lo:, :]
        flat = int(sub.argmin())
        value = float(sub.flat[flat])
        if value < best:
            n, z = divmod(flat, n_z + 1)
            best, state = value, (k, lo + n, z)
    if state is None or not math.isfinite(best):
        return None
    held = np.full(problem.n_slots, -1, np.int64)
    k, n, z = state
    for i in range(window - 1, -1, -1):
        if z == off:
            z = int(arg_m[i, k, n])
            continue
        held[first + i] = zones[z]
        if restart[i, k, n, z]:
            k, n = k - 1, n - 1
            z = int(arg_m[i, k, n])
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
