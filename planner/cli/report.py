"""Human-readable summaries of plans for the terminal.

Every figure says what it was computed on: in a forecast plan the plan and run-now
emissions and the expected saving are on the forecast mean, the savings at P10 and
P90 charge the plan and running now at the forecast's P10 and P90 and the realised
figures are on what really happened.  ``realised_saving_%`` (and an oracle plan's ``saving_%``)
is the figure what-if reports as ``savings_pct``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from greenepoch.planner.plan_doc import Baseline, JobSummary, Plan, PlanJob, iso
from greenepoch.planner.report.table import render


def _range(pair: tuple[float | None, float | None] | None) -> str | None:
    if not pair or any(v is None for v in pair):
        return None
    return f"{pair[0]:.1f}..{pair[1]:.1f}"


def _parts(job: PlanJob) -> tuple[JobSummary, Baseline, Baseline]:
    """A job's summary and its two baselines (a plan the planner wrote has them)."""
    baselines = job.baselines or {}
    return (job.summary or JobSummary(), baselines.get("run_now_home") or Baseline(),
            baselines.get("run_now_best_zone") or Baseline())


def _realised(plan: Plan) -> bool:
    """True when the plan knows what happened (a live plan cannot: it is of the future)."""
    return any(_parts(j)[0].realised_emissions_kg is not None for j in plan.jobs)


def _job_row(job: PlanJob, forecast: bool, costs: bool, realised: bool) -> dict[str, Any]:
    s, home, best = _parts(job)
    row: dict[str, Any] = {"job": job.name, "plan_kg": s.emissions_kg,
                           "run_now_home_kg": home.emissions_kg}
    if forecast:
        row["expected_saving_%"] = job.savings_pct
        row["at_P10..P90_%"] = _range(job.savings_pct_p10_p90)
        if realised:
            row["realised_kg"] = s.realised_emissions_kg
            row["run_now_realised_kg"] = home.realised_emissions_kg
            row["realised_saving_%"] = job.realised_savings_pct
    else:
        row["saving_%"] = job.savings_pct
    row["best_zone"] = best.zone
    row["best_zone_kg"] = best.emissions_kg
    if costs:
        row["cost_usd"] = s.cost_usd
        row["run_now_cost_usd"] = home.cost_usd
    row.update({"finish": _when(s.finish), "run_now_finish": _when(home.finish),
                "interruptions": s.interruptions, "migrations": s.migrations})
    return row


def _when(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else iso(ts)


def plan_summary(plan: Plan) -> str:
    """The terminal summary of a plan: what it was judged on, the solver, a row per job,
    its segments, the totals, where a live plan's intensities came from, and a warning
    per job that is not robust or fell back and per stale or synthetic live input."""
    plan.require_full()
    assert plan.intensity is not None and plan.solver is not None  # checked just above
    intensity, solver = plan.intensity, plan.solver
    forecast = intensity.forecast
    realised = _realised(plan)
    costs = any(_parts(j)[0].cost_usd is not None or _parts(j)[1].cost_usd is not None
                for j in plan.jobs)
    rows = [_job_row(job, forecast, costs, realised) for job in plan.jobs]
    gap = "n/a" if solver.gap is None else f"{100 * solver.gap:.3f} %"
    status = None if solver.status is None else solver.status.value
    head = (
        f"intensities: {intensity.source} {intensity.signal_text}, {intensity.mode}"
        + (f" ({intensity.model})" if intensity.model else "")
        + f"\nsolver: {solver.name} {status} via {solver.method}, gap {gap}, "
        f"{solver.seconds or 0.0:.2f} s solve + {solver.build_seconds or 0.0:.2f} s build"
    )
    if forecast:
        actual = "the synthetic trace" if intensity.source == "synthetic" else "what happened"
        head += (
            "\nplan_kg, run_now_home_kg and expected_saving_% are on the forecast mean; "
            "at_P10..P90_% charges the plan and running now at the forecast's P10, then "
            "P90" + (f"; realised_* are on {actual}" if realised else "")
            + ".  Every kg counts runs and checkpoint transfers.")
    if solver.method == "heuristic":
        head += "\nNOTE: the MILP found no plan in time; this plan is the greedy heuristic's."
    parts = [head, render(pd.DataFrame(rows)), render(plan.segments()), _totals(plan)]
    live = intensity.live
    if live is not None:
        parts.append(live.line())
    warnings = _warnings(plan) + ([] if live is None else live.warning_lines())
    if warnings:
        parts.append("\n".join(warnings))
    return "\n\n".join(parts)


def _kg(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} kg"


def _warnings(plan: Plan) -> list[str]:
    """A line per job whose expected saving is not robust or that fell back."""
    out = []
    for job in plan.jobs:
        s, home, _best = _parts(job)
        if s.fallback is not None:
            expected = s.fallback.expected_kg
            out.append(
                f"WARNING: job '{job.name}' runs now at home (run-now fallback): "
                f"{s.fallback.reason}; it expected {_kg(expected)} on the "
                "forecast mean (--no-fallback keeps it).")
        elif job.robust is False:
            out.append(
                f"WARNING: job '{job.name}': the expected saving is not robust: at the "
                f"forecast's P90 the plan emits {_kg(s.emissions_p90_kg)}, more than "
                f"running now ({_kg(home.emissions_p90_kg)} at P90).")
        for name, base in (job.baselines or {}).items():  # beside a baseline's figure
            if base.meets_request is False:
                out.append(f"NOTE: job '{job.name}': {name} ({_kg(base.emissions_kg)}) does "
                           f"not meet the request: {'; '.join(base.violations or ())}.")
    return out


def _sum(values: list[Any]) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))


def _less(base: float | None, value: float | None) -> str:
    if base is None or value is None or base <= 0:
        return ""
    return f" ({100 * (base - value) / base:.1f} % less)"


def _totals(plan: Plan) -> str:
    """Closing sentences: the plan against running everything now at home, on the
    intensities it was judged on, on what happened, and in money."""
    parts = [_parts(j) for j in plan.jobs]
    forecast = plan.intensity is not None and plan.intensity.forecast
    planned = _sum([s.emissions_kg for s, _h, _b in parts]) or 0.0
    home = sum(h.emissions_kg or 0.0 for _s, h, _b in parts)
    on = " on the forecast" if forecast else ""
    line = f"total: {planned:,.1f} kg CO2eq planned vs {home:,.1f} kg running now at home{on}"
    if home > 0:
        line += f" ({100 * (home - planned) / home:.1f} % less"
        line += " expected" if forecast else ""
        at = []
        for q in ("p10", "p90"):
            plan_q = _sum([getattr(s, f"emissions_{q}_kg") for s, _h, _b in parts])
            home_q = _sum([getattr(h, f"emissions_{q}_kg") for _s, h, _b in parts])
            if plan_q is not None and home_q:
                at.append(f"{100 * (home_q - plan_q) / home_q:.1f}")
        if forecast and len(at) == 2:
            line += f", {at[0]} % at P10 .. {at[1]} % at P90"
        line += ")"
    realised = _sum([s.realised_emissions_kg for s, _h, _b in parts])
    realised_home = _sum([h.realised_emissions_kg for _s, h, _b in parts])
    if forecast and realised is not None:
        line += f"; realised: {realised:,.1f} kg"
        if realised_home is not None:
            line += f" vs {realised_home:,.1f} kg running now{_less(realised_home, realised)}"
    cost = _sum([s.cost_usd for s, _h, _b in parts])
    home_cost = _sum([h.cost_usd for _s, h, _b in parts])
    if cost is not None or home_cost is not None:
        money = "unknown" if cost is None else f"{cost:,.2f} USD"
        line += f"; cost {money} vs "
        line += "unknown" if home_cost is None else f"{home_cost:,.2f} USD"
        line += " running now at home"
    return line + "."
