"""The planning MILP of :mod:`solvers.formulation`, assembled with numpy for HiGHS.

Same variables, rows and objective as the PuLP build (see that module's notation),
one vectorised function per constraint family with the same name.  Columns are laid
out in blocks: ``x`` (one per key ``(j, z, t)`` in ``A(j)``), then ``s`` (same keys),
then ``n`` (keys of elastic jobs, in GPU steps), then ``a`` and ``m`` (jobs that
migrate at a cost or whose moves are capped, keys over the whole window), then ``r``
(elastic keys whose previous slot is a key too) and ``w`` (those ``r`` of jobs that
resize in place), then ``u`` (x keys whose slot could be their job's last) and ``l``
(per job and slot from its earliest possible last slot).  Rows carry their family;
``FastModel.family_rows`` maps each family to its row range, so a row's name is
``family[row - first]``.

Two differences of form, not of model: "minrunend" rows ``s <= 0`` are column bounds
here, and a ``keep`` mask may restrict ``A(j)`` (absent keys are ``x = 0``, exactly
as in the PuLP build), which is how restricted and sub-problems are built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from greenepoch.solvers.problem import PlanningProblem
from greenepoch.solvers.schedule import Schedule, trim_excess

INF = float("inf")


@dataclass
class FastModel:
    """Column layout and the sparse rows of one build."""

    problem: PlanningProblem
    relax: bool
    J: np.ndarray  # job of each x key
    Z: np.ndarray  # zone of each x key
    T: np.ndarray  # slot of each x key
    index: np.ndarray  # [job, zone, slot] -> x column, -1 when absent
    n_col: np.ndarray  # x key -> n column (elastic keys) or -1
    aJ: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    aZ: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    aT: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    a_index: np.ndarray | None = None  # [job, zone, slot] -> a column, -1 when absent
    r_x: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # x key of r
    r_first: int = 0  # first r column
    w_r: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # r of each w
    u_x: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # x key of u
    u_first: int = 0  # first u column; l columns follow the u columns
    lJ: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lT: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_cols: int = 0
    cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    integer: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    family_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    _rows: list[np.ndarray] = field(default_factory=list)
    _cols: list[np.ndarray] = field(default_factory=list)
    _vals: list[np.ndarray] = field(default_factory=list)
    _lo: list[np.ndarray] = field(default_factory=list)
    _hi: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0
    capacity_zt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    capacity_prices: np.ndarray | None = None  # lambda[z,t] of a solved LP

    @property
    def n_x(self) -> int:
        return len(self.J)

    @property
    def n_a(self) -> int:
        return len(self.aJ)

    def s_col(self, i: np.ndarray) -> np.ndarray:
        return self.n_x + i

    def a_col(self, i: np.ndarray) -> np.ndarray:
        return self.n_x * 2 + int((self.n_col >= 0).sum()) + i

    def m_col(self, i: np.ndarray) -> np.ndarray:
        return self.a_col(i) + self.n_a

    def r_col(self, i: np.ndarray) -> np.ndarray:
        return self.r_first + i

    def w_col(self, i: np.ndarray) -> np.ndarray:
        return self.r_first + len(self.r_x) + i

    def u_col(self, i: np.ndarray) -> np.ndarray:
        return self.u_first + i

    def l_col(self, i: np.ndarray) -> np.ndarray:
        return self.u_first + len(self.u_x) + i

    def gpu_terms(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column and coefficient of gpus(j,z,t) for x keys ``i``: G x (rigid) or D n."""
        gpus = np.array([job.gpus for job in self.problem.jobs], dtype=float)[self.J[i]]
        step = np.array([job.gpus_step for job in self.problem.jobs], dtype=float)[self.J[i]]
        cols = np.where(self.n_col[i] >= 0, self.n_col[i], i)
        coef = np.where(self.n_col[i] >= 0, step, gpus)
        return cols, coef

    def add_rows(self, family: str, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray) -> None:
        """Append ``len(lo)`` rows; ``rows`` are local row numbers of the entries."""
        first = self.n_rows
        count = len(lo)
        if count == 0:
            return
        self._rows.append(np.asarray(rows, np.int64) + first)
        self._cols.append(np.asarray(cols, np.int64))
        self._vals.append(np.asarray(vals, float))
        self._lo.append(np.asarray(lo, float))
        self._hi.append(np.asarray(hi, float))
        old = self.family_rows.get(family)
        self.family_rows[family] = (first if old is None else old[0], first + count)
        self.n_rows += count

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Column-wise (start, index, value) and row bounds (lower, upper)."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)
        cols = np.concatenate(self._cols) if self._cols else np.zeros(0, np.int64)
        vals = np.concatenate(self._vals) if self._vals else np.zeros(0)
        order = np.lexsort((rows, cols))
        start = np.searchsorted(cols[order], np.arange(self.n_cols + 1)).astype(np.int32)
        lo = np.concatenate(self._lo) if self._lo else np.zeros(0)
        hi = np.concatenate(self._hi) if self._hi else np.zeros(0)
        return start, rows[order].astype(np.int32), vals[order], lo, hi

    def to_highs_lp(self):
        import highspy

        start, index, value, lo, hi = self.matrix()
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = self.n_rows
        lp.col_cost_ = self.cost
        lp.col_lower_ = self.lower
        lp.col_upper_ = self.upper
        lp.row_lower_ = lo
        lp.row_upper_ = hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = self.n_cols
        lp.a_matrix_.num_row_ = self.n_rows
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        if not self.relax and self.integer.any():
            lp.integrality_ = [highspy.HighsVarType.kInteger if b else
                               highspy.HighsVarType.kContinuous for b in self.integer]
        return lp


def add_variables(fm: FastModel, keep: list[np.ndarray] | None = None) -> None:
    """x, s on A(j) (within ``keep[j]``, a [zone, slot] mask, when given), n for elastic
    jobs; bounds 0..1 (n: 0..G/D), x and n integer unless relaxed."""
    p = fm.problem
    js, zs, ts = [], [], []
    for j, job in enumerate(p.jobs):
        for z in job.zones:
            ok = p.allowed(job, z)
            if keep is not None:
                ok &= keep[j][z]
            t = np.flatnonzero(ok)
            js.append(np.full(len(t), j))
            zs.append(np.full(len(t), z))
            ts.append(t)
    cat = (lambda a: np.concatenate(a).astype(np.int64)) if js else \
        (lambda a: np.zeros(0, np.int64))
    fm.J, fm.Z, fm.T = cat(js), cat(zs), cat(ts)
    nx = len(fm.J)
    fm.index = np.full((len(p.jobs), len(p.zones), p.n_slots), -1, dtype=np.int64)
    fm.index[fm.J, fm.Z, fm.T] = np.arange(nx)
    elastic = np.array([not job.rigid for job in p.jobs], bool)[fm.J] if nx else \
        np.zeros(0, bool)
    fm.n_col = np.full(nx, -1, np.int64)
    fm.n_col[elastic] = 2 * nx + np.arange(int(elastic.sum()))
    gmax = np.array([job.gpus // job.gpus_step for job in p.jobs], float)[fm.J[elastic]]
    fm.lower = np.zeros(2 * nx + int(elastic.sum()))
    fm.upper = np.concatenate([np.ones(2 * nx), gmax])
    fm.integer = np.concatenate([np.ones(nx, bool), np.zeros(nx, bool),
                                 np.ones(int(elastic.sum()), bool)])
    fm.n_cols = len(fm.lower)
    fm.cost = np.zeros(fm.n_cols)


def _migration_variables(fm: FastModel) -> None:
    """a, m over every (zone, slot) of the window of jobs that migrate at a cost or
    whose moves are capped."""
    p = fm.problem
    js, zs, ts = [], [], []
    for j, job in enumerate(p.jobs):
        if not job.tracks_checkpoint:
            continue
        t = np.arange(job.first, job.last + 1)
        for z in job.zones:
            js.append(np.full(len(t), j))
            zs.append(np.full(len(t), z))
            ts.append(t)
    if not js:
        return
    fm.aJ, fm.aZ, fm.aT = (np.concatenate(v).astype(np.int64) for v in (js, zs, ts))
    fm.a_index = np.full((len(p.jobs), len(p.zones), p.n_slots), -1, dtype=np.int64)
    fm.a_index[fm.aJ, fm.aZ, fm.aT] = np.arange(fm.n_a)
    na = fm.n_a
    fm.lower = np.concatenate([fm.lower, np.zeros(2 * na)])
    fm.upper = np.concatenate([fm.upper, np.ones(na), np.full(na, INF)])
    fm.integer = np.concatenate([fm.integer, np.zeros(2 * na, bool)])
    fm.cost = np.concatenate([fm.cost, np.zeros(2 * na)])
    fm.n_cols = len(fm.lower)


def add_run_limits(fm: FastModel) -> None:
    """Elastic jobs: G_min x <= D n <= G_max x (as n <= (G_max / D) x, n >= (G_min / D) x)."""
    p = fm.problem
    i = np.flatnonzero(fm.n_col >= 0)
    if not len(i):
        return
    r = np.arange(len(i))
    gmax = np.array([job.gpus // job.gpus_step for job in p.jobs], float)[fm.J[i]]
    gmin = np.array([job.gpus_min // job.gpus_step for job in p.jobs], float)[fm.J[i]]
    rows = np.concatenate([r, r])
    cols = np.concatenate([fm.n_col[i], i])
    fm.add_rows("nmax", rows, cols, np.concatenate([np.ones(len(i)), -gmax]),
                np.full(len(i), -INF), np.zeros(len(i)))
    fm.add_rows("nmin", rows, cols, np.concatenate([np.ones(len(i)), -gmin]),
                np.zeros(len(i)), np.full(len(i), INF))


def _resize_variables(fm: FastModel) -> None:
    """r for elastic keys whose previous slot (same job and zone) is a key too, binary
    unless relaxed; w (0..G) for those of jobs that resize in place."""
    p = fm.problem
    prev = _prev(fm)
    fm.r_x = np.flatnonzero((fm.n_col >= 0) & (prev >= 0)) if fm.n_x else \
        np.zeros(0, np.int64)
    nr = len(fm.r_x)
    in_place = np.array([job.resize_h is not None for job in p.jobs], bool)
    fm.w_r = np.flatnonzero(in_place[fm.J[fm.r_x]])
    nw = len(fm.w_r)
    gmax = np.array([job.gpus for job in p.jobs], float)[fm.J[fm.r_x[fm.w_r]]]
    fm.r_first = fm.n_cols
    fm.lower = np.concatenate([fm.lower, np.zeros(nr + nw)])
    fm.upper = np.concatenate([fm.upper, np.ones(nr), gmax])
    fm.integer = np.concatenate([fm.integer, np.ones(nr, bool), np.zeros(nw, bool)])
    fm.cost = np.concatenate([fm.cost, np.zeros(nr + nw)])
    fm.n_cols = len(fm.lower)


def add_resizes(fm: FastModel) -> None:
    """(G - G_min) r - D n[t] + D n[t-1] - G x[t-1] >= -G and
    (G - G_min) r - D n[t-1] + D n[t] - G x[t] >= -G: r is 1 where the size changes
    between two held slots; resizing in place, w - D n[t] - G r >= -G and
    w - D n[t-1] - G r >= -G: w is the larger size where r is 1."""
    nr = len(fm.r_x)
    if not nr:
        return
    p = fm.problem
    i = fm.r_x
    prev = _prev(fm)[i]
    k = np.arange(nr)
    gmax = np.array([job.gpus for job in p.jobs], float)[fm.J[i]]
    span = gmax - np.array([job.gpus_min for job in p.jobs], float)[fm.J[i]]
    step = np.array([job.gpus_step for job in p.jobs], float)[fm.J[i]]
    rows = np.concatenate([k, k, k, k])
    for family, grow, shrink in (("growth", i, prev), ("shrink", prev, i)):
        fm.add_rows(family, rows,
                    np.concatenate([fm.r_col(k), fm.n_col[grow], fm.n_col[shrink], shrink]),
                    np.concatenate([span, -step, step, -gmax]), -gmax, np.full(nr, INF))
    nw = len(fm.w_r)
    if not nw:
        return
    kw = np.arange(nw)
    rows = np.concatenate([kw, kw, kw])
    r = fm.w_r
    for family, key in (("larger_now", i[r]), ("larger_prev", prev[r])):
        fm.add_rows(family, rows,
                    np.concatenate([fm.w_col(kw), fm.n_col[key], fm.r_col(r)]),
                    np.concatenate([np.ones(nw), -step[r], -gmax[r]]), -gmax[r],
                    np.full(nw, INF))


def restart_resizes(fm: FastModel) -> np.ndarray:
    """Positions (into ``r_x``) of the r columns that count as restarts."""
    restart = np.array([job.resize_h is None for job in fm.problem.jobs], bool)
    return np.flatnonzero(restart[fm.J[fm.r_x]])


def _row_of(n: int, chosen: np.ndarray | list[int]) -> np.ndarray:
    """Local row of each of ``n`` groups in a family with one row per ``chosen`` group
    (in that order), -1 for the groups without a row."""
    local = np.full(n, -1, np.int64)
    local[chosen] = np.arange(len(chosen))
    return local


def _prev(fm: FastModel) -> np.ndarray:
    """x column of (j, z, t-1) for every x key, -1 when absent."""
    prev = np.full(fm.n_x, -1, np.int64)
    has = fm.T > 0
    prev[has] = fm.index[fm.J[has], fm.Z[has], fm.T[has] - 1]
    return prev


def add_starts(fm: FastModel) -> None:
    """s[j,z,t] - x[j,z,t] + x[j,z,t-1] >= 0 (x outside A(j) is 0)."""
    nx = fm.n_x
    i = np.arange(nx)
    prev = _prev(fm)
    has = prev >= 0
    rows = np.concatenate([i, i, i[has]])
    cols = np.concatenate([fm.s_col(i), i, prev[has]])
    vals = np.concatenate([np.ones(nx), -np.ones(nx), np.ones(int(has.sum()))])
    fm.add_rows("start", rows, cols, vals, np.zeros(nx), np.full(nx, INF))


def add_work(fm: FastModel) -> None:
    """h sum_{z,t} gpus[j,z,t] - (O_j + S_j) sum_{z,t} (s[j,z,t] + r[j,z,t])
    - sum_{z,t} u[j,z,t] >= W_j - S_j (resizing in place: - R_j sum_{z,t} w[j,z,t] in
    place of the r terms): all work done in the window, one overhead per start and one
    save before every start but the first; sum_{z,t} s[j,z,t] >= 1 for jobs with a save
    time (the credit assumes a start)."""
    p = fm.problem
    i = np.arange(fm.n_x)
    gcols, gcoef = fm.gpu_terms(i)
    overhead = np.array([job.segment_gpu_h for job in p.jobs], float)
    has_o = overhead[fm.J] > 0
    kr = restart_resizes(fm)
    kr = kr[overhead[fm.J[fm.r_x[kr]]] > 0]
    per_gpu = np.array([job.resize_h or 0.0 for job in p.jobs], float)
    kw = np.arange(len(fm.w_r))
    jw = fm.J[fm.r_x[fm.w_r]]
    k = np.arange(len(fm.u_x))
    rows = np.concatenate([fm.J, fm.J[has_o], fm.J[fm.r_x[kr]], jw, fm.J[fm.u_x]])
    cols = np.concatenate([gcols, fm.s_col(i[has_o]), fm.r_col(kr), fm.w_col(kw),
                           fm.u_col(k)])
    vals = np.concatenate([p.slot_h * gcoef, -overhead[fm.J[has_o]],
                           -overhead[fm.J[fm.r_x[kr]]], -per_gpu[jw], -np.ones(len(k))])
    need = np.array([job.work - job.save_gpu_h for job in p.jobs], float)
    fm.add_rows("work", rows, cols, vals, need, np.full(len(p.jobs), INF))
    saves = np.array([job.save_h > 0 for job in p.jobs], bool)
    has_keys = np.bincount(fm.J, minlength=len(p.jobs)) > 0
    which = np.flatnonzero(saves & has_keys)
    local = _row_of(len(p.jobs), which)
    got = np.flatnonzero(local[fm.J] >= 0)
    fm.add_rows("started", local[fm.J[got]], fm.s_col(got), np.ones(len(got)),
                np.ones(len(which)), np.full(len(which), INF))


def add_idle(fm: FastModel) -> None:
    """u[j,z,t] + f_j s[j,z,t] + g_j r[j,z,t] - h gpus[j,z,t] <= 0 (f_j: a start slot's
    restart overhead, g_j: f_j when a size change is a restart, else 0); l[j,t] >=
    x[j,z,t+1], l[j,t] >= l[j,t+1]; sum_z u[j,z,t] + h G_j l[j,t] <= h G_j: only the
    last held slot may be partly run.  Creates the u, l columns."""
    p = fm.problem
    h = p.slot_h
    last = np.array([job.earliest_last_slot(h) for job in p.jobs], np.int64)
    fm.u_x = np.flatnonzero(last[fm.J] <= fm.T) if fm.n_x else np.zeros(0, np.int64)
    lj, lt = [], []
    for j, job in enumerate(p.jobs):
        t = np.arange(last[j], job.last)
        lj.append(np.full(len(t), j))
        lt.append(t)
    fm.lJ = np.concatenate(lj).astype(np.int64) if lj else np.zeros(0, np.int64)
    fm.lT = np.concatenate(lt).astype(np.int64) if lt else np.zeros(0, np.int64)
    gpus = np.array([job.gpus for job in p.jobs], float)
    nu, nl = len(fm.u_x), len(fm.lJ)
    fm.u_first = fm.n_cols
    fm.lower = np.concatenate([fm.lower, np.zeros(nu + nl)])
    fm.upper = np.concatenate([fm.upper, h * gpus[fm.J[fm.u_x]], np.ones(nl)])
    fm.integer = np.concatenate([fm.integer, np.zeros(nu + nl, bool)])
    fm.cost = np.concatenate([fm.cost, np.zeros(nu + nl)])
    fm.n_cols = len(fm.lower)
    k = np.arange(nu)
    i = fm.u_x
    gcols, gcoef = fm.gpu_terms(i)
    floor = np.array([job.restart_floor(h) for job in p.jobs], float)[fm.J[i]]
    r_of = _row_of(fm.n_x, fm.r_x)  # position in r_x of each x key
    rfloor_of = np.array([job.resize_floor(h) for job in p.jobs], float)
    kr = np.flatnonzero((r_of[i] >= 0) & (rfloor_of[fm.J[i]] > 0))
    rfloor = rfloor_of[fm.J[i[kr]]]
    fm.add_rows("idle", np.concatenate([k, k, k, kr]),
                np.concatenate([fm.u_col(k), fm.s_col(i), gcols, fm.r_col(r_of[i[kr]])]),
                np.concatenate([np.ones(nu), floor, -h * gcoef, rfloor]),
                np.full(nu, -INF), np.zeros(nu))
    if not nl:
        return
    l_index = np.full((len(p.jobs), p.n_slots), -1, np.int64)
    l_index[fm.lJ, fm.lT] = np.arange(nl)
    nxt = np.where(fm.lT + 1 < p.n_slots, l_index[fm.lJ, np.minimum(fm.lT + 1, p.n_slots - 1)],
                   -1)
    has = np.flatnonzero(nxt >= 0)
    fm.add_rows("laterchain", np.concatenate([np.arange(len(has))] * 2),
                np.concatenate([fm.l_col(has), fm.l_col(nxt[has])]),
                np.concatenate([np.ones(len(has)), -np.ones(len(has))]),
                np.zeros(len(has)), np.full(len(has), INF))
    # l[j,t] >= x[j,z,t+1]: one row per (job, slot) summing the zones (at most one held)
    # for jobs that may not split, one row per key for those that may
    split = np.array([job.allow_split and len(job.zones) > 1 for job in p.jobs], bool)
    src = np.full(fm.n_x, -1, np.int64)
    has_prev = fm.T > 0
    src[has_prev] = l_index[fm.J[has_prev], fm.T[has_prev] - 1]
    xi = np.flatnonzero(src >= 0)
    group = np.where(split[fm.J[xi]], nl + xi, src[xi])
    uniq, row = np.unique(group, return_inverse=True)
    member = np.zeros(len(uniq), np.int64)
    member[row] = xi
    fm.add_rows("later", np.concatenate([np.arange(len(uniq)), row]),
                np.concatenate([fm.l_col(src[member]), xi]),
                np.concatenate([np.ones(len(uniq)), -np.ones(len(xi))]),
                np.zeros(len(uniq)), np.full(len(uniq), INF))
    # sum_z u[j,z,t] + h G_j l[j,t] <= h G_j, where u exists
    ul = l_index[fm.J[i], fm.T[i]]
    got = np.flatnonzero(ul >= 0)
    uniq_l, lr = np.unique(ul[got], return_inverse=True)
    cap = h * gpus[fm.lJ[uniq_l]]
    fm.add_rows("lastslot", np.concatenate([lr, np.arange(len(uniq_l))]),
                np.concatenate([fm.u_col(k[got]), fm.l_col(uniq_l)]),
                np.concatenate([np.ones(len(got)), cap]),
                np.full(len(uniq_l), -INF), cap)


def add_one_zone(fm: FastModel) -> None:
    """sum_z x[j,z,t] <= 1 for jobs that may not split across zones."""
    p = fm.problem
    single = np.array([not job.allow_split and len(job.zones) > 1 for job in p.jobs], bool)
    i = np.flatnonzero(single[fm.J]) if fm.n_x else np.zeros(0, np.int64)
    group = fm.J[i] * p.n_slots + fm.T[i]
    uniq, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
    take = counts[inv] > 1
    keep_groups = np.flatnonzero(counts > 1)
    local = _row_of(len(uniq), keep_groups)
    n = len(keep_groups)
    fm.add_rows("onezone", local[inv[take]], i[take], np.ones(int(take.sum())),
                np.full(n, -INF), np.ones(n))


def add_capacity(fm: FastModel) -> None:
    """sum_j gpus(j,z,t) <= C[z,t] wherever more than one job competes."""
    p = fm.problem
    n_s = p.n_slots
    group = fm.Z * n_s + fm.T
    gpus = np.array([job.gpus for job in p.jobs], float)[fm.J]
    demand = np.bincount(group, weights=gpus, minlength=len(p.zones) * n_s)
    cap = p.capacity.astype(float).reshape(-1)
    binding = np.flatnonzero(demand > cap)
    fm.capacity_zt = binding  # z * n_slots + t of each capacity row, in row order
    local = _row_of(len(demand), binding)
    i = np.flatnonzero(local[group] >= 0)
    cols, coef = fm.gpu_terms(i)
    fm.add_rows("capacity", local[group[i]], cols, coef, np.full(len(binding), -INF),
                cap[binding])


def add_max_interruptions(fm: FastModel) -> None:
    """sum_{z,t} s[j,z,t] (+ sum_{z,t} r[j,z,t] when a size change is a restart)
    <= max_interruptions_j + 1."""
    p = fm.problem
    limits = [(j, job.max_starts) for j, job in enumerate(p.jobs) if job.max_starts is not None]
    has_keys = np.bincount(fm.J, minlength=len(p.jobs)) > 0
    limits = [(j, k) for j, k in limits if has_keys[j]]
    if not limits:
        return
    local = _row_of(len(p.jobs), [j for j, _ in limits])
    i = np.flatnonzero(local[fm.J] >= 0)
    kr = restart_resizes(fm)
    kr = kr[local[fm.J[fm.r_x[kr]]] >= 0]
    fm.add_rows("starts", np.concatenate([local[fm.J[i]], local[fm.J[fm.r_x[kr]]]]),
                np.concatenate([fm.s_col(i), fm.r_col(kr)]), np.ones(len(i) + len(kr)),
                np.full(len(limits), -INF), np.array([k for _, k in limits], float))


def add_min_run(fm: FastModel) -> None:
    """sum_{t'=t-L+1..t} s[j,z,t'] - x[j,z,t] <= 0: every run lasts at least L_j slots;
    s[j,z,t] = 0 (column bound) where a run could not last L slots inside A(j)."""
    p = fm.problem
    runs = np.array([job.min_run_slots for job in p.jobs], np.int64)
    i = np.flatnonzero(runs[fm.J] > 1) if fm.n_x else np.zeros(0, np.int64)
    if not len(i):
        return
    n_s = p.n_slots
    L = runs[fm.J[i]]
    rows, cols = [i * 0 + np.arange(len(i))], [i]
    vals = [-np.ones(len(i))]
    cut = np.zeros(len(i), bool)
    for d in range(int(L.max())):
        live = d < L
        back = fm.T[i] - d
        ok = live & (back >= 0)
        src = np.full(len(i), -1, np.int64)
        src[ok] = fm.index[fm.J[i[ok]], fm.Z[i[ok]], back[ok]]
        got = src >= 0
        rows.append(np.flatnonzero(got))
        cols.append(fm.s_col(src[got]))
        vals.append(np.ones(int(got.sum())))
        ahead = fm.T[i] + d
        inside = ahead < n_s
        fwd = np.full(len(i), -1, np.int64)
        fwd[inside] = fm.index[fm.J[i[inside]], fm.Z[i[inside]], ahead[inside]]
        cut |= live & (fwd < 0)
    fm.add_rows("minrun", np.concatenate(rows), np.concatenate(cols), np.concatenate(vals),
                np.full(len(i), -INF), np.zeros(len(i)))
    fm.upper[fm.s_col(i[cut])] = 0.0


def add_migration(fm: FastModel) -> None:
    """Checkpoint location a (starts at home): a[j,z,t] >= x[j,z,t], sum_z a = 1,
    m[j,z,t] >= a[j,z,t] - a[j,z,t-1]; no run in z for the transfer time after a
    move: x[j,z,t+d] <= 1 - m[j,z,t], d < transfer slots; sum_{z,t} m[j,z,t] <=
    max_moves_j."""
    _migration_variables(fm)
    if fm.n_a == 0:
        return
    p = fm.problem
    assert fm.a_index is not None
    k = np.arange(fm.n_a)
    a, m = fm.a_col(k), fm.m_col(k)
    xi = fm.index[fm.aJ, fm.aZ, fm.aT]
    has_x = xi >= 0
    r = np.arange(int(has_x.sum()))
    fm.add_rows("loc", np.concatenate([r, r]), np.concatenate([a[has_x], xi[has_x]]),
                np.concatenate([np.ones(len(r)), -np.ones(len(r))]),
                np.zeros(len(r)), np.full(len(r), INF))
    first = np.array([job.first for job in p.jobs], np.int64)[fm.aJ]
    home = np.array([job.home for job in p.jobs], np.int64)[fm.aJ]
    later = fm.aT > first
    prev = np.full(fm.n_a, -1, np.int64)
    prev[later] = fm.a_index[fm.aJ[later], fm.aZ[later], fm.aT[later] - 1]
    before = np.where(later, 0.0, (fm.aZ == home).astype(float))
    fm.add_rows("move", np.concatenate([k, k, k[later]]),
                np.concatenate([m, a, fm.a_col(prev[later])]),
                np.concatenate([np.ones(fm.n_a), -np.ones(fm.n_a), np.ones(int(later.sum()))]),
                -before, np.full(fm.n_a, INF))
    group = fm.aJ * p.n_slots + fm.aT
    uniq, inv = np.unique(group, return_inverse=True)
    fm.add_rows("where", inv, a, np.ones(fm.n_a), np.ones(len(uniq)), np.ones(len(uniq)))
    tslots = np.array([job.transfer_slots for job in p.jobs], np.int64)[fm.aJ]
    rows, cols, count = [], [], 0
    for d in range(int(tslots.max(initial=0))):
        ahead = fm.aT + d
        ok = (d < tslots) & (ahead < p.n_slots)
        target = np.full(fm.n_a, -1, np.int64)
        target[ok] = fm.index[fm.aJ[ok], fm.aZ[ok], ahead[ok]]
        got = np.flatnonzero(target >= 0)
        r = count + np.arange(len(got))
        rows += [r, r]
        cols += [target[got], m[got]]
        count += len(got)
    if count:
        fm.add_rows("transfer", np.concatenate(rows), np.concatenate(cols), np.ones(2 * count),
                    np.full(count, -INF), np.ones(count))
    capped = [j for j, job in enumerate(p.jobs) if job.tracks_checkpoint and
              job.max_moves is not None]
    if capped:
        local = _row_of(len(p.jobs), capped)
        got = np.flatnonzero(local[fm.aJ] >= 0)
        fm.add_rows("moves", local[fm.aJ[got]], m[got], np.ones(len(got)),
                    np.full(len(capped), -INF),
                    np.array([p.jobs[j].max_moves for j in capped], float))


def set_objective(fm: FastModel) -> None:
    """min sum c[j,z,t] (h gpus[j,z,t] - u[j,z,t]) + sum mc[j,z,t] m[j,z,t], where c is
    kg CO2eq per GPU-hour (intensity x PUE x power) plus weighted cost and soft-threshold
    penalty."""
    p = fm.problem
    coef = np.zeros((len(p.jobs), len(p.zones), p.n_slots))
    for j, job in enumerate(p.jobs):
        for z in job.zones:
            coef[j, z] = p.cost_per_gpu_h(job, z)
    i = np.arange(fm.n_x)
    cols, gcoef = fm.gpu_terms(i)
    fm.cost[cols] = p.slot_h * coef[fm.J, fm.Z, fm.T] * gcoef
    u = fm.u_x
    fm.cost[fm.u_col(np.arange(len(u)))] = -coef[fm.J[u], fm.Z[u], fm.T[u]]
    if fm.n_a:
        mig = np.zeros((len(p.jobs), len(p.zones), p.n_slots))
        for j, job in enumerate(p.jobs):
            if job.tracks_checkpoint:
                for z in job.zones:
                    mig[j, z] = p.migration_cost(job, z)
        fm.cost[fm.m_col(np.arange(fm.n_a))] = mig[fm.aJ, fm.aZ, fm.aT]


def build(problem: PlanningProblem, relax: bool = False,
          keep: list[np.ndarray] | None = None) -> FastModel:
    """The full model (``relax``: its LP relaxation; ``keep``: restrict A(j) to a
    [zone, slot] mask per job)."""
    empty = np.zeros(0, np.int64)
    fm = FastModel(problem, relax, empty, empty, empty, np.zeros((0, 0, 0), np.int64), empty)
    add_variables(fm, keep)
    add_migration(fm)  # creates a, m first so every column exists before the rows
    _resize_variables(fm)  # ... and r
    add_idle(fm)  # ... and u, l
    set_objective(fm)
    add_run_limits(fm)
    add_resizes(fm)
    add_starts(fm)
    add_work(fm)
    add_one_zone(fm)
    add_capacity(fm)
    add_max_interruptions(fm)
    add_min_run(fm)
    return fm


def schedule_from(fm: FastModel, values: np.ndarray) -> Schedule:
    """Read a column vector back into a schedule (x > 0.5 held), trimmed like the
    PuLP path's :func:`solvers.solve.extract`."""
    p = fm.problem
    out = Schedule.empty(p)
    held = values[: fm.n_x] > 0.5
    i = np.flatnonzero(held)
    gpus = np.array([job.gpus for job in p.jobs], np.int64)[fm.J[i]]
    step = np.array([job.gpus_step for job in p.jobs], np.int64)[fm.J[i]]
    el = fm.n_col[i] >= 0
    gpus[el] = step[el] * np.round(values[fm.n_col[i[el]]]).astype(np.int64)
    out.gpus[fm.J[i], fm.Z[i], fm.T[i]] = gpus
    out.run[fm.J[i], fm.Z[i], fm.T[i]] = gpus * p.slot_h
    for j in range(len(p.jobs)):
        trim_excess(p, out, j)
    return out


def start_values(fm: FastModel, schedule: Schedule) -> np.ndarray | None:
    """A full column vector for ``schedule`` (a MIP start), or None when the schedule
    holds GPUs outside this model's keys."""
    p = fm.problem
    held = schedule.gpus > 0
    if held.sum() != held[fm.J, fm.Z, fm.T].sum():
        return None
    v = np.zeros(fm.n_cols)
    x = held[fm.J, fm.Z, fm.T].astype(float)
    v[: fm.n_x] = x
    prev = _prev(fm)
    xprev = np.where(prev >= 0, x[np.maximum(prev, 0)], 0.0)
    v[fm.s_col(np.arange(fm.n_x))] = np.maximum(x - xprev, 0.0)
    el = np.flatnonzero(fm.n_col >= 0)
    step = np.array([job.gpus_step for job in p.jobs], float)[fm.J[el]]
    v[fm.n_col[el]] = schedule.gpus[fm.J[el], fm.Z[el], fm.T[el]] / step
    if len(fm.r_x):
        i = fm.r_x  # keys whose previous slot is a key too (:func:`_resize_variables`)
        now = schedule.gpus[fm.J[i], fm.Z[i], fm.T[i]]
        before = schedule.gpus[fm.J[i], fm.Z[i], fm.T[i] - 1]
        changed = (now > 0) & (before > 0) & (now != before)
        v[fm.r_col(np.arange(len(i)))] = changed
        r = fm.w_r
        v[fm.w_col(np.arange(len(r)))] = np.where(changed[r], np.maximum(now[r], before[r]), 0)
    if fm.n_a:
        loc = np.zeros((len(p.jobs), p.n_slots), np.int64)
        for j, job in enumerate(p.jobs):
            if not job.tracks_checkpoint:
                continue
            where = np.full(p.n_slots, -1)
            zz, tt = np.nonzero(held[j])
            where[tt] = zz
            current = job.home
            for t in range(job.first, job.last + 1):
                if where[t] >= 0:
                    current = where[t]
                loc[j, t] = current
        a = (loc[fm.aJ, fm.aT] == fm.aZ).astype(float)
        v[fm.a_col(np.arange(fm.n_a))] = a
        first = np.array([job.first for job in p.jobs], np.int64)[fm.aJ]
        home = np.array([job.home for job in p.jobs], np.int64)[fm.aJ]
        before = np.where(fm.aT > first, (loc[fm.aJ, np.maximum(fm.aT - 1, 0)] == fm.aZ),
                          fm.aZ == home).astype(float)
        v[fm.m_col(np.arange(fm.n_a))] = np.maximum(a - before, 0.0)
    if len(fm.u_x) or len(fm.lJ):
        any_held = np.asarray(held.any(axis=1))  # [job, slot]
        slots = np.arange(p.n_slots)
        last = np.where(any_held, slots, -1).max(axis=1)
        i = fm.u_x
        at_last = fm.T[i] == last[fm.J[i]]
        unused = schedule.gpus[fm.J[i], fm.Z[i], fm.T[i]] * p.slot_h - \
            schedule.run[fm.J[i], fm.Z[i], fm.T[i]]
        v[fm.u_col(np.arange(len(i)))] = np.where(at_last, np.maximum(unused, 0.0), 0.0)
        v[fm.l_col(np.arange(len(fm.lJ)))] = (fm.lT < last[fm.lJ]).astype(float)
    return v
