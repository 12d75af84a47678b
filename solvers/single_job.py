"""Single-job optimisers: the cheapest slots for one job alone, one function each.

Notation: one job, slots ``t = 0 .. n-1`` of ``h`` hours; ``c[t] >= 0`` the cost of
holding the job for the whole of slot ``t`` (``inf`` where it may not run); ``S`` the
set of held slots.  ``W[s] = c[s] + ... + c[s+k-1]`` is the sum of the window of ``k``
slots starting at ``s``.  Ties go to the earliest slots (the job finishes sooner).

Each optimiser is exact for one shape of job (the MILP restricted to it):

=============================  ==================================================
optimiser                      exact for
=============================  ==================================================
:func:`cheapest_slots`         interruptible, no restart overhead, ``k`` whole slots
:func:`cheapest_slots_partial` the same with fractional work: the last slot runs
                               only what is left
:func:`cheapest_window`        non-interruptible (one start), ``k`` whole slots
:func:`cheapest_slots_sums`,   :func:`cheapest_slots` / :func:`cheapest_window` for
:func:`cheapest_window_sums`   every start of a sliding window at once (slack sweep)
:func:`solvers.dp.best_plan`   the general case: restart overhead, checkpoint saves,
                               limited starts, several zones (the exact dynamic
                               programme; rigid jobs, which never resize)
=============================  ==================================================

``tests/solvers/test_single_job.py`` checks them against brute force, the MILP and
each other where they solve the same problem.
"""

from __future__ import annotations

import heapq

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CHUNK_CELLS = 4_000_000  # floats per partition chunk of cheapest_slots_sums (32 MB)


def window_sums(cost: np.ndarray, k: int) -> np.ndarray:
    """``W[s]`` for ``s = 0 .. n-k`` (``inf`` where the window holds a forbidden slot),
    by differences of cumulative sums: O(n), not O(n k)."""
    cost = np.asarray(cost, dtype=float)
    allowed = np.isfinite(cost)
    if allowed.all():
        csum = np.concatenate(([0.0], np.cumsum(cost)))
        return csum[k:] - csum[:-k]
    csum = np.concatenate(([0.0], np.cumsum(np.where(allowed, cost, 0.0))))
    sums = csum[k:] - csum[:-k]
    bad = np.concatenate(([0], np.cumsum(~allowed)))
    sums[bad[k:] - bad[:-k] > 0] = np.inf
    return sums


def cheapest_order(cost: np.ndarray) -> np.ndarray:
    """The allowed slots from cheapest to dearest, earlier first on ties: the first
    ``k`` of them are :func:`cheapest_slots` for every ``k``."""
    cost = np.asarray(cost, dtype=float)
    allowed = np.flatnonzero(np.isfinite(cost))
    return allowed[np.argsort(cost[allowed], kind="stable")]


def cheapest_slots(cost: np.ndarray, k: int) -> np.ndarray | None:
    """``argmin_{|S| = k} sum_{t in S} c[t]`` (sorted slot numbers), None when fewer than
    ``k`` slots are allowed."""
    order = cheapest_order(cost)
    return None if len(order) < k else np.sort(order[:k])


def cheapest_slots_partial(cost: np.ndarray, work: float) -> np.ndarray | None:
    """The cheapest plan of ``work`` slots of running (fractional) whose last held slot
    runs only what is left: ``k = ceil(work)`` slots, the last one ``L`` charged
    ``f = work - (k - 1)`` of its cost::

        min_L  f c[L] + (sum of the k - 1 cheapest c[t], t < L)

    One pass over ``L`` with a heap of the ``k - 1`` cheapest slots so far; the earliest
    ``L`` wins ties.  Sorted slot numbers, or None when fewer than ``k`` are allowed.
    """
    cost = np.asarray(cost, dtype=float)
    usable = np.flatnonzero(np.isfinite(cost))
    k = max(1, int(np.ceil(work - 1e-9)))
    if len(usable) < k:
        return None
    used_last = work - (k - 1)
    best, last = np.inf, -1
    earlier: list[float] = []  # max-heap (negated) of the k - 1 cheapest slots so far
    total = 0.0
    for t in usable.tolist():
        if len(earlier) == k - 1 and total + used_last * cost[t] < best:
            best, last = total + used_last * cost[t], t
        if k > 1:
            heapq.heappush(earlier, -cost[t])
            total += cost[t]
            if len(earlier) > k - 1:
                total += heapq.heappop(earlier)
    before = usable[usable < last]
    return np.sort(np.append(before[np.argsort(cost[before], kind="stable")[: k - 1]], last))


def cheapest_window(cost: np.ndarray, k: int) -> int | None:
    """``argmin_s W[s]``: where the cheapest run of ``k`` consecutive allowed slots
    starts (the earliest on ties), None when there is none."""
    if k > len(cost):
        return None
    sums = window_sums(cost, k)
    start = int(np.argmin(sums))
    return start if np.isfinite(sums[start]) else None


def cheapest_window_sums(x: np.ndarray, k: int, slack: int) -> np.ndarray:
    """For every start ``s = 0 .. n-k``: ``min W[s']`` over ``s <= s' <= min(s + slack,
    n - k)``, the cheapest window of ``k`` slots starting at most ``slack`` slots late
    (a sliding minimum of :func:`window_sums`)."""
    w = window_sums(x, k)
    if slack == 0:
        return w
    padded = np.concatenate((w, np.full(slack, np.inf)))
    return sliding_window_view(padded, slack + 1).min(axis=1)


def cheapest_slots_sums(x: np.ndarray, k: int, width: int) -> np.ndarray:
    """For every start ``s = 0 .. n-k``: the sum of the ``k`` cheapest slots of
    ``x[s : min(s + width, n)]`` (``width >= k``), by partial sorts
    (``np.partition``) of sliding windows in row chunks."""
    x = np.asarray(x, dtype=float)
    starts = len(x) - k + 1
    if k == 1:
        return cheapest_window_sums(x, 1, width - 1)
    if width == k:
        return window_sums(x, k)
    padded = np.concatenate((x, np.full(width, np.inf)))
    view = sliding_window_view(padded, width)[:starts]
    out = np.empty(starts)
    rows = max(1, CHUNK_CELLS // width)
    for lo in range(0, starts, rows):
        block = np.partition(view[lo : lo + rows], k - 1, axis=1)
        out[lo : lo + rows] = block[:, :k].sum(axis=1)
    return out
