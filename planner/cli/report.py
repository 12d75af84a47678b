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
from greenepoch.planner.plan import Plan
from greenepoch.planner.report.table import render


def _range(pair: list[float | None] | None) -> str | None:
    if not pair or any(v is None for v in pair):
        return None
    return f"{pair[0]:.1f}..{pair[1]:.1f}"


def _job_row(job: dict[str, Any], forecast: bool, costs: bool) -> dict[str, Any]:
    s, b = job["summary"], job["baselines"]
    home = b["run_now_home"]
    row: dict[str, Any] = {"job": job["name"], "plan_kg": s["emissions_kg"],
                           "run_now_home_kg": home["emissions_kg"]}
    if forecast:
        row["expected_saving_%"] = job["savings_pct"]
        row["at_P10..P90_%"] = _range(job.get("savings_pct_p10_p90"))
        row["realised_kg"] = s.get("realised_emissions_kg")
        row["run_now_realised_kg"] = home.get("realised_emissions_kg")
        row["realised_saving_%"] = job.get("realised_savings_pct")
    else:
        row["saving_%"] = job["savings_pct"]
    row["best_zone"] = b["run_now_best_zone"]["zone"]
    row["best_zone_kg"] = b["run_now_best_zone"]["emissions_kg"]
    if costs:
        row["cost_usd"] = s.get("cost_usd")
        row["run_now_cost_usd"] = home.get("cost_usd")
    row.update({"finish": s["finish"], "run_now_finish": home["finish"],
                "interruptions": s["interruptions"], "migrations": s["migrations"]})
    return row


def plan_summary(plan: Plan) -> str:
    doc = plan.doc
    intensity = doc["intensity"]
    forecast = intensity["mode"] == "forecast"
    costs = any(j["summary"].get("cost_usd") is not None
                or j["baselines"]["run_now_home"].get("cost_usd") is not None
                for j in doc["jobs"])
    rows = [_job_row(job, forecast, costs) for job in doc["jobs"]]
    solver = doc["solver"]
    gap = "n/a" if solver["gap"] is None else f"{100 * solver['gap']:.3f} %"
    head = (
        f"intensities: {intensity['source']} {intensity['signal']}, {intensity['mode']}"
        + (f" ({intensity['model']})" if intensity["model"] else "")
        + f"\nsolver: {solver['name']} {solver['status']} via {solver['method']}, gap {gap}, "
        f"{solver['seconds']:.2f} s solve + {solver['build_seconds']:.2f} s build"
    )
    if forecast:
        actual = "the synthetic trace" if intensity["source"] == "synthetic" else "what happened"
        head += (
            "\nplan_kg, run_now_home_kg and expected_saving_% are on the forecast mean; "
            "at_P10..P90_% charges the plan and running now at the forecast's P10, then "
            f"P90; realised_* are on {actual}.  Every kg counts runs and checkpoint "
            "transfers.")
    if solver["method"] == "heuristic":
        head += "\nNOTE: the MILP found no plan in time; this plan is the greedy heuristic's."
    parts = [head, render(pd.DataFrame(rows)), render(plan.segments()), _totals(doc)]
    warnings = _warnings(doc)
    if warnings:
        parts.append("\n".join(warnings))
    return "\n\n".join(parts)


def _warnings(doc: dict) -> list[str]:
    """A line per job whose expected saving is not robust or that fell back."""
    out = []
    for job in doc["jobs"]:
        s, home = job["summary"], job["baselines"]["run_now_home"]
        fallback = s.get("fallback")
        if fallback:
            out.append(
                f"WARNING: job '{job['name']}' runs now at home (run-now fallback): "
                f"{fallback['reason']}; it expected {fallback['expected_kg']:,.1f} kg on the "
                "forecast mean (--no-fallback keeps it).")
        elif job.get("robust") is False:
            out.append(
                f"WARNING: job '{job['name']}': the expected saving is not robust: at the "
                f"forecast's P90 the plan emits {s['emissions_p90_kg']:,.1f} kg, more than "
                f"running now ({home['emissions_p90_kg']:,.1f} kg at P90).")
        for name, base in job["baselines"].items():  # beside a baseline's figure
            if base.get("meets_request") is False:
                kg = "n/a" if base["emissions_kg"] is None else f"{base['emissions_kg']:,.1f} kg"
                out.append(f"NOTE: job '{job['name']}': {name} ({kg}) does not meet the "
                           f"request: {'; '.join(base['violations'])}.")
    return out


def _sum(values: list[Any]) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))


def _less(base: float | None, value: float | None) -> str:
    if base is None or value is None or base <= 0:
        return ""
    return f" ({100 * (base - value) / base:.1f} % less)"


def _totals(doc: dict) -> str:
    """Closing sentences: the plan against running everything now at home, on the
    intensities it was judged on, on what happened, and in money."""
    jobs = doc["jobs"]
    forecast = doc["intensity"]["mode"] == "forecast"
    planned = _sum([j["summary"]["emissions_kg"] for j in jobs]) or 0.0
    home = sum(j["baselines"]["run_now_home"]["emissions_kg"] or 0.0 for j in jobs)
    on = " on the forecast" if forecast else ""
    line = f"total: {planned:,.1f} kg CO2eq planned vs {home:,.1f} kg running now at home{on}"
    if home > 0:
        line += f" ({100 * (home - planned) / home:.1f} % less"
        line += " expected" if forecast else ""
        at = []
        for q in ("p10", "p90"):
            plan_q = _sum([j["summary"].get(f"emissions_{q}_kg") for j in jobs])
            home_q = _sum([j["baselines"]["run_now_home"].get(f"emissions_{q}_kg")
                           for j in jobs])
            if plan_q is not None and home_q:
                at.append(f"{100 * (home_q - plan_q) / home_q:.1f}")
        if forecast and len(at) == 2:
            line += f", {at[0]} % at P10 .. {at[1]} % at P90"
        line += ")"
    realised = _sum([j["summary"].get("realised_emissions_kg") for j in jobs])
    realised_home = _sum([j["baselines"]["run_now_home"].get("realised_emissions_kg")
                          for j in jobs])
    if forecast and realised is not None:
        line += f"; realised: {realised:,.1f} kg"
        if realised_home is not None:
            line += f" vs {realised_home:,.1f} kg running now{_less(realised_home, realised)}"
    cost = _sum([j["summary"].get("cost_usd") for j in jobs])
    home_cost = _sum([j["baselines"]["run_now_home"].get("cost_usd") for j in jobs])
    if cost is not None or home_cost is not None:
        money = "unknown" if cost is None else f"{cost:,.2f} USD"
        line += f"; cost {money} vs "
        line += "unknown" if home_cost is None else f"{home_cost:,.2f} USD"
        line += " running now at home"
    return line + "."
