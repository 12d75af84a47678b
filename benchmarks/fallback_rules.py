"""Run-now fallback rules for forecast plans, evaluated after the fact (issue 13 item 18).

A forecast plan's job falls back to running now at home when its optimised schedule
is not robust (``planner/plan.py``: ``not_robust`` decides, ``hedge`` swaps the
schedule).  For a one-job plan whose run-now baseline keeps every limit, the swap is
all the fallback does, so the outcome of any rule can be computed from one plan made
*without* the fallback: the realised emissions are the run-now baseline's when the
rule fires, the optimised schedule's otherwise.  A rule reads only what the plan JSON
gives (kg, every slot charged at the forecast's mean, P10 and P90, for the plan and
for running now), so it can be replayed on a saved CSV of
``benchmarks/bench_forecast_plans.py --out``.

Rules, by the name ``--rule`` takes (``kg`` columns of that CSV: ``expected_*`` on
the forecast mean, ``*_p10_kg`` / ``*_p90_kg`` at P10 / P90):

* ``none``: never fall back (``--no-fallback``).
* ``p90``: the planner's rule today: plan at P90 > running now at P90.
* ``p90margin:M``: the plan's saving at P90 is under ``M`` %:
  plan P90 > (1 - M/100) x run-now P90 (``p90margin:0`` is ``p90``).
* ``band:A``: the plan charged on the band ``A`` of the way from the mean to P90
  emits more than running now is expected to:
  plan mean + A x (plan P90 - plan mean) > run-now mean.  ``band:1`` is the strict
  "plan P90 > run-now expected"; in other words the expected saving (kg) must be at
  least ``A`` times the plan's upside spread (P90 - mean).
* ``margin:M``: the expected saving is under ``M`` % (run-now mean as the base):
  plan mean > (1 - M/100) x run-now mean.

Rules joined by ``|`` fall back when any of them does (``p90|margin:10``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: kg below which two emissions are the same (the plan JSON rounds to 1 g)
EPS_KG = 1e-6

#: the columns a rule reads
NEEDS = ("expected_plan_kg", "expected_run_now_kg", "plan_p90_kg", "run_now_p90_kg")


@dataclass(frozen=True)
class Rule:
    """A fallback rule: ``kind`` (see the module docstring) and its parameter."""

    kind: str
    param: float = 0.0

    @property
    def name(self) -> str:
        return self.kind if self.kind in ("none", "p90") else f"{self.kind}:{self.param:g}"

    def falls_back(self, rows: pd.DataFrame) -> pd.Series:
        """Per plan: does this rule send the job back to running now?"""
        plan, now = rows["expected_plan_kg"], rows["expected_run_now_kg"]
        plan90, now90 = rows["plan_p90_kg"], rows["run_now_p90_kg"]
        if self.kind == "none":
            fired = pd.Series(False, index=rows.index)
        elif self.kind in ("p90", "p90margin"):
            fired = plan90 > (1 - self.param / 100) * now90 + EPS_KG
        elif self.kind == "band":
            fired = plan + self.param * (plan90 - plan) > now + EPS_KG
        elif self.kind == "margin":
            fired = plan > (1 - self.param / 100) * now + EPS_KG
        else:  # parse() refuses any other kind
            raise AssertionError(self.kind)
        # a plan without quantiles (oracle) or without a run-now figure never falls back
        return fired & rows[list(NEEDS)].notna().all(axis=1)


@dataclass(frozen=True)
class Either:
    """Rules joined by ``|``: falls back when any of them does."""

    rules: tuple[Rule, ...]

    @property
    def name(self) -> str:
        return "|".join(rule.name for rule in self.rules)

    def falls_back(self, rows: pd.DataFrame) -> pd.Series:
        fired = pd.Series(False, index=rows.index)
        for rule in self.rules:
            fired |= rule.falls_back(rows)
        return fired


KINDS = ("none", "p90", "p90margin", "band", "margin")


def parse(text: str) -> Rule | Either:
    """``none``, ``p90``, ``kind:number`` (``band:0.5``, ``margin:10``, ...), or such
    rules joined by ``|``."""
    if "|" in text:
        return Either(tuple(_one(part) for part in text.split("|")))
    return _one(text)


def _one(text: str) -> Rule:
    kind, _, value = text.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown rule {text!r}; rules: {', '.join(KINDS)} (see --help)")
    if kind in ("none", "p90"):
        if value:
            raise ValueError(f"rule {kind!r} takes no parameter (got {text!r})")
        return Rule(kind)
    try:
        return Rule(kind, float(value))
    except ValueError:
        raise ValueError(f"rule {text!r} needs a number after ':' (e.g. {kind}:0.5)") from None


def apply(rule: Rule | Either, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (plans made without the fallback) as they come out under ``rule``:
    ``plan_kg`` (realised) becomes ``run_now_kg`` where the rule fires, both savings
    0 there, and ``fallback`` says where."""
    fired = rule.falls_back(rows)
    out = rows.copy()
    out["rule"] = rule.name
    out["fallback"] = fired
    out.loc[fired, "plan_kg"] = out.loc[fired, "run_now_kg"]
    out.loc[fired, ["realised_saving_pct", "expected_saving_pct"]] = 0.0
    return out
