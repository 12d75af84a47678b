"""Long solves say how they are doing: elapsed time, incumbent, bound and gap on the
PuLP path too (the decomposition and the vectorised MILP already reported)."""

from __future__ import annotations

import re

import greenepoch.solvers.backends as backends
import pandas as pd
import pytest
from greenepoch.solvers.backends import CbcBackend, HighsBackend
from greenepoch.solvers.problem import SolveSettings
from greenepoch.solvers.solve import FAST_MIN_KEYS, count_keys, solve_problem

from tests.solvers.test_solvers_agree import instance

LINE = re.compile(r"^\s*(\d+\.\d) s  plan (\S+)  bound (\S+)(  gap [\d.]+ %)?  \((\w+) MILP\)$")


def _solve_with_progress(solver: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # report every 0.2 s instead of every 5 s, so a 3 s solve shows several notes
    monkeypatch.setattr(backends, "MIP_PROGRESS_EVERY", 0.2)
    p = instance(0, n_zones=3, n_slots=40, n_jobs=6)
    assert count_keys(p) <= FAST_MIN_KEYS  # the PuLP path
    lines: list[str] = []
    solve_problem(p, SolveSettings(solver=solver, mip_gap=0.0, time_limit=pd.Timedelta("3s")),
                  lines.append)
    return lines[1:]  # after the "solving ... with <solver>" line


@pytest.mark.skipif(not HighsBackend.is_available(), reason="HiGHS is not available")
def test_pulp_highs_solve_reports_elapsed_incumbent_and_gap(monkeypatch):
    notes = _solve_with_progress("highs", monkeypatch)
    parsed = [LINE.match(n) for n in notes]
    assert notes and all(parsed), notes
    seconds = [float(m.group(1)) for m in parsed if m]
    assert seconds == sorted(seconds) and seconds[-1] >= 1.0
    with_plan = [m for m in parsed if m and m.group(2) != "-"]
    assert with_plan and with_plan[-1].group(4), "an incumbent and its gap are reported"
    assert {m.group(5) for m in parsed if m} == {"highs"}


@pytest.mark.skipif(not CbcBackend.is_available(), reason="CBC is not available")
def test_pulp_cbc_solve_reports_elapsed_time(monkeypatch):
    notes = _solve_with_progress("cbc", monkeypatch)
    parsed = [LINE.match(n) for n in notes]
    assert notes and all(parsed), notes
    seconds = [float(m.group(1)) for m in parsed if m]
    assert seconds == sorted(seconds) and seconds[-1] >= 1.0


def test_cbc_log_lines_give_incumbent_and_bound():
    log = ("Cbc0010I After 0 nodes, 1 on tree, 1e+50 best solution, best possible 15.25 "
           "(0.41 seconds)\n"
           "Cbc0012I Integer solution of 19.5 found by DiveCoefficient after 120 iterations\n"
           "Cbc0010I After 100 nodes, 37 on tree, 18.49 best solution, best possible 15.31 "
           "(2.10 seconds)\n")
    assert backends._cbc_progress(log.splitlines()[0]) == (None, 15.25)
    assert backends._cbc_progress("\n".join(log.splitlines()[:2])) == (19.5, 15.25)
    assert backends._cbc_progress(log) == (18.49, 15.31)
