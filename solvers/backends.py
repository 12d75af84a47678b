"""Solver backends: ``solve(problem, time_limit=, mip_gap=) -> Solution``.

PuLP reports a time-limited incumbent as "Optimal" (with ``sol_status``
"Integer Feasible") and a time limit without any solution as "Not Solved"
with objective 0.0; backends read the solver's own status instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp
from greenepoch.data.errors import GreenEpochError


class SolveStatus(enum.Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # time limit reached with an incumbent
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"  # time limit reached before any incumbent
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass(frozen=True)
class Solution:
    """Outcome of one solve.  ``bound`` is the best proven lower bound (minimisation);
    ``gap`` the relative gap (objective - bound) / |objective|; None when unknown.
    ``incumbent``: the solver's own objective when ``objective`` was re-scored on the
    plan returned (see :func:`solvers.solve.rescored`)."""

    backend: str
    status: SolveStatus
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    message: str = ""
    incumbent: float | None = None


ProgressCallback = Callable[[float, float | None, float | None], None]


class Backend:
    name = "base"

    @classmethod
    def is_available(cls) -> bool:
        raise NotImplementedError

    def solve(self, problem: pulp.LpProblem, *, time_limit: float, mip_gap: float,
              on_progress: ProgressCallback | None = None,
              warm_start: bool = False) -> Solution:
        """Solve ``problem``; ``on_progress(seconds, incumbent, bound)`` is called about
        every ``MIP_PROGRESS_EVERY`` s while it runs (None where not known yet).
        ``warm_start``: the variables' initial values (``setInitialValue``) are a
        feasible plan to start from."""
        raise NotImplementedError


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence native-code output on file descriptor 1 (HiGHS prints its banner there
    even with output turned off)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    return max(0.0, (objective - bound) / max(abs(objective), 1e-9))


def highs_status(model_status, objective: float | None) -> SolveStatus:
    """Our status from HiGHS's own model status (PuLP's is not to be trusted)."""
    import highspy

    ms = highspy.HighsModelStatus
    if model_status == ms.kOptimal:
        return SolveStatus.OPTIMAL
    if model_status in (ms.kInfeasible, ms.kUnboundedOrInfeasible):
        return SolveStatus.INFEASIBLE
    if objective is not None and model_status in (
        ms.kTimeLimit, ms.kIterationLimit, ms.kInterrupt, ms.kSolutionLimit,
    ):
        return SolveStatus.FEASIBLE
    if model_status in (ms.kTimeLimit, ms.kIterationLimit, ms.kInterrupt):
        return SolveStatus.NO_SOLUTION
    return SolveStatus.ERROR


def new_highs(*, time_limit: float, mip_gap: float | None = None, threads: int = 1,
              **options: Any):
    """A silent in-process HiGHS with a time limit (s) and thread count set."""
    import highspy

    with quiet_stdout():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", max(0.01, float(time_limit)))
    highs.setOptionValue("threads", int(threads))
    if mip_gap is not None:
        highs.setOptionValue("mip_rel_gap", float(mip_gap))
    for key, value in options.items():
        highs.setOptionValue(key, value)
    return highs


MIP_PROGRESS_EVERY = 5.0  # seconds between MIP progress reports


def run_highs(lp, *, time_limit: float, mip_gap: float, start=None,
              name: str = "highs",
              on_progress: Callable[[float, float | None, float | None], None] | None = None,
              **options: Any):
    """Solve a ``highspy.HighsLp`` in process (a MIP start ``start`` if given).

    Returns ``(Solution, column values or None, row duals or None)``; the bound is
    HiGHS's dual bound for a MIP and the objective for a solved LP (duals: LPs only).
    ``on_progress(seconds, incumbent, bound)`` is called about every
    ``MIP_PROGRESS_EVERY`` s while a MIP runs (None where HiGHS has none yet).
    """
    import highspy

    highs = new_highs(time_limit=time_limit, mip_gap=mip_gap, **options)
    began = time.perf_counter()
    highs.passModel(lp)
    is_mip = len(lp.integrality_) > 0 and any(
        v != highspy.HighsVarType.kContinuous for v in lp.integrality_)
    if start is not None and is_mip:
        sol = highspy.HighsSolution()
        sol.col_value = list(map(float, start))
        sol.value_valid = True
        highs.setSolution(sol)
    if on_progress is not None and is_mip:
        highs.cbMipInterrupt.subscribe(_throttled(on_progress, began))
    stopped = threading.Event()
    if is_mip:
        highs.cbMipInterrupt.subscribe(_deadline(began + time_limit, stopped))
    highs.run()
    seconds = time.perf_counter() - began
    info = highs.getInfo()
    objective = None
    values = duals = None
    if info.primal_solution_status == 2:  # kSolutionStatusFeasible
        objective = float(info.objective_function_value)
        solution = highs.getSolution()
        values = np.asarray(solution.col_value)
        if not is_mip and solution.dual_valid:
            duals = np.asarray(solution.row_dual)
    solution = _highs_solution(highs, name, objective, is_mip, seconds)
    if stopped.is_set():  # our deadline, not a user, interrupted it
        solution = dataclasses.replace(solution, message="Time limit reached")
    return (solution, values, duals)


def _throttled(on_progress: Callable[[float, float | None, float | None], None],
               began: float) -> Callable[[Any], None]:
    """A MIP-interrupt callback that forwards (seconds, incumbent, bound) now and then."""
    last = [0.0]

    def callback(event: Any) -> None:
        now = time.perf_counter() - began
        if now - last[0] < MIP_PROGRESS_EVERY:
            return
        last[0] = now
        out = event.data_out
        primal, dual = float(out.mip_primal_bound), float(out.mip_dual_bound)
        on_progress(now, primal if abs(primal) < float("inf") else None,
                    dual if abs(dual) < float("inf") else None)

    return callback


def _deadline(deadline: float, stopped: threading.Event) -> Callable[[Any], None]:
    """A MIP-interrupt callback that stops HiGHS past ``deadline`` (HiGHS checks its own
    time limit less often: a 2.4 s limit ran 5.0 s on a one-job MILP of 87,672 slots)
    and sets ``stopped``."""

    def callback(event: Any) -> None:
        if time.perf_counter() > deadline:
            stopped.set()
            event.data_in.user_interrupt = True

    return callback


def _highs_solution(highs: Any, name: str, objective: float | None, is_mip: bool,
                    seconds: float) -> Solution:
    """Status, bound and gap from HiGHS's own status (a MIP's dual bound; an LP's or a
    proven optimum's objective)."""
    model_status = highs.getModelStatus()
    bound: float | None = float(highs.getInfo().mip_dual_bound) if is_mip else None
    if bound is not None and abs(bound) == float("inf"):
        bound = None
    status = highs_status(model_status, objective)
    if status is SolveStatus.OPTIMAL and bound is None:
        bound = objective
    return Solution(name, status, objective, bound, _gap(objective, bound), seconds,
                    highs.modelStatusToString(model_status))


class HighsBackend(Backend):
    """HiGHS through PuLP's in-process API (the highspy wheel ships no binary)."""

    name = "highs"

    @classmethod
    def is_available(cls) -> bool:
        return bool(pulp.HiGHS().available())

    def solve(self, problem: pulp.LpProblem, *, time_limit: float, mip_gap: float,
              on_progress: ProgressCallback | None = None,
              warm_start: bool = False) -> Solution:
        began = time.perf_counter()
        solver = _ReportingHiGHS(msg=False, timeLimit=time_limit, gapRel=mip_gap, threads=1)
        solver.warm = warm_start
        if on_progress is not None:
            solver.report = _throttled(on_progress, began)
        with quiet_stdout():
            problem.solve(solver)
        seconds = time.perf_counter() - began
        highs = problem.solverModel
        has_ints = any(v.cat == pulp.LpInteger for v in problem.variables())
        objective = None
        if highs.getInfo().primal_solution_status == 2:  # kSolutionStatusFeasible
            objective = float(highs.getObjectiveValue())
        return _highs_solution(highs, self.name, objective, has_ints, seconds)


class _ReportingHiGHS(pulp.HiGHS):
    """PuLP's HiGHS with our MIP-interrupt callback subscribed (PuLP's own callback
    option takes HiGHS's older ``setCallback`` API)."""

    report: Callable[[Any], None] | None = None
    warm = False  # start from the variables' initial values (PuLP's HiGHS has no warmStart)

    def createAndConfigureSolver(self, lp: pulp.LpProblem) -> None:
        super().createAndConfigureSolver(lp)
        if self.report is not None:
            lp.solverModel.cbMipInterrupt.subscribe(self.report)

    def callSolver(self, lp: pulp.LpProblem) -> None:
        if self.warm:
            import highspy

            start = highspy.HighsSolution()
            values = [0.0] * lp.solverModel.getNumCol()
            for var in lp.variables():
                values[var.index] = float(var.varValue or 0.0)
            start.col_value = values
            start.value_valid = True
            lp.solverModel.setSolution(start)
        super().callSolver(lp)


CBC_LINE = re.compile(
    r"Cbc0010I After \d+ nodes, \d+ on tree, (\S+) best solution, best possible (\S+)")
CBC_FOUND = re.compile(r"Cbc0012I Integer solution of (\S+)")


def _cbc_progress(log: str) -> tuple[float | None, float | None]:
    """The latest (incumbent, bound) in a CBC log; None where CBC has none yet (it
    prints 1e+50 for no solution)."""
    incumbent = bound = None
    for line in log.splitlines():
        if m := CBC_LINE.search(line):
            inc, low = float(m.group(1)), float(m.group(2))
            incumbent = inc if abs(inc) < 1e49 else incumbent
            bound = low if abs(low) < 1e49 else bound
        elif m := CBC_FOUND.search(line):
            incumbent = float(m.group(1))
    return incumbent, bound


def _watch_cbc_log(path: str, began: float, on_progress: ProgressCallback,
                   stop: threading.Event) -> None:
    """Every ``MIP_PROGRESS_EVERY`` s until ``stop``: report CBC's incumbent and bound
    from its log (CBC runs as a child process; its log is the only window in)."""
    while not stop.wait(MIP_PROGRESS_EVERY):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                incumbent, bound = _cbc_progress(fh.read())
        except OSError:
            incumbent = bound = None
        on_progress(time.perf_counter() - began, incumbent, bound)


class CbcBackend(Backend):
    """CBC through PuLP's bundled binary, with a time limit enforced from outside too
    (CBC does not check its own limit during presolve and the root node)."""

    name = "cbc"
    grace_factor = 1.5
    grace_seconds = 5.0

    @classmethod
    def is_available(cls) -> bool:
        return bool(pulp.PULP_CBC_CMD().available())

    def solve(self, problem: pulp.LpProblem, *, time_limit: float, mip_gap: float,
              on_progress: ProgressCallback | None = None,
              warm_start: bool = False) -> Solution:
        with tempfile.TemporaryDirectory(prefix="greenepoch-cbc-") as tmp:
            return self._solve(problem, time_limit, mip_gap, on_progress,
                               os.path.join(tmp, "cbc.log"), warm_start)

    def _solve(self, problem: pulp.LpProblem, time_limit: float, mip_gap: float,
               on_progress: ProgressCallback | None, log_path: str,
               warm_start: bool = False) -> Solution:
        options: dict[str, Any] = {} if on_progress is None else {"logPath": log_path}
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=mip_gap, threads=1,
                                   warmStart=warm_start, **options)
        killed = threading.Event()
        watchdog = threading.Timer(
            time_limit * self.grace_factor + self.grace_seconds, _kill_children, (killed,)
        )
        began = time.perf_counter()
        stop = threading.Event()
        watcher = None if on_progress is None else threading.Thread(
            target=_watch_cbc_log, args=(log_path, began, on_progress, stop), daemon=True)
        watchdog.start()
        if watcher is not None:
            watcher.start()
        try:
            problem.solve(solver)
        except pulp.PulpSolverError as exc:
            seconds = time.perf_counter() - began
            if killed.is_set():
                return Solution(self.name, SolveStatus.NO_SOLUTION, None, None, None, seconds,
                                "stopped from outside after the time limit")
            return Solution(self.name, SolveStatus.ERROR, None, None, None, seconds, str(exc))
        finally:
            watchdog.cancel()
            stop.set()
            if watcher is not None:
                watcher.join()
        seconds = time.perf_counter() - began
        if problem.status == pulp.LpStatusInfeasible:
            status = SolveStatus.INFEASIBLE
        elif problem.sol_status == pulp.LpSolutionOptimal:
            status = SolveStatus.OPTIMAL
        elif problem.sol_status == pulp.LpSolutionIntegerFeasible:
            status = SolveStatus.FEASIBLE
        elif problem.status == pulp.LpStatusNotSolved:
            status = SolveStatus.NO_SOLUTION
        else:
            status = SolveStatus.ERROR
        objective = pulp.value(problem.objective) if status.has_solution else None
        bound = objective if status is SolveStatus.OPTIMAL else None
        return Solution(self.name, status, objective, bound, _gap(objective, bound), seconds,
                        pulp.LpStatus[problem.status])


def _kill_children(flag: threading.Event) -> None:
    """Kill this process's CBC children (Linux /proc scan)."""
    me = os.getpid()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if int(fields[1]) == me and "cbc" in comm.lower():
            flag.set()
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


BACKENDS: dict[str, type[Backend]] = {"highs": HighsBackend, "cbc": CbcBackend}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise GreenEpochError(f"unknown solver {name!r}; use one of {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    if not backend.is_available():
        raise GreenEpochError(f"solver {name!r} is not available here; try 'highs'")
    return backend()
