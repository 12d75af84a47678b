"""Human-readable summaries of plans for the terminal."""

from __future__ import annotations

import pandas as pd

from planner.cli.table import render
from planner.plan import Plan


def plan_summary(plan: Plan) -> str:
    doc = plan.doc
    rows = []
    for job in doc["jobs"]:
        s, b = job["summary"], job["baselines"]
        rows.append({
            "job": job["name"],
            "plan_kg": s["emissions_kg"],
            "run_now_home_kg": b["run_now_home"]["emissions_kg"],
            "best_zone": b["run_now_best_zone"]["zone"],
            "best_zone_kg": b["run_now_best_zone"]["emissions_kg"],
            "saving_%": job["savings_pct"],
            "finish": s["finish"],
            "run_now_finish": b["run_now_home"]["finish"],
            "interruptions": s["interruptions"],
            "migrations": s["migrations"],
        })
    intensity = doc["intensity"]
    solver = doc["solver"]
    gap = "n/a" if solver["gap"] is None else f"{100 * solver['gap']:.3f} %"
    head = (
        f"intensities: {intensity['source']} {intensity['signal']}, {intensity['mode']}"
        + (f" ({intensity['model']})" if intensity["model"] else "")
        + f"\nsolver: {solver['name']} {solver['status']} via {solver['method']}, gap {gap}, "
        f"{solver['seconds']:.2f} s solve + {solver['build_seconds']:.2f} s build"
    )
    if solver["method"] == "heuristic":
        head += "\nNOTE: the MILP found no plan in time; this plan is the greedy heuristic's."
    segs = plan.segments()
    return "\n\n".join([head, render(pd.DataFrame(rows)), render(segs), _totals(doc)])


def _totals(doc: dict) -> str:
    """One closing sentence: the plan against running everything now at home."""
    jobs = doc["jobs"]
    planned = sum(j["summary"]["emissions_kg"] for j in jobs)
    home = sum(j["baselines"]["run_now_home"]["emissions_kg"] or 0.0 for j in jobs)
    line = f"total: {planned:,.1f} kg CO2eq planned vs {home:,.1f} kg running now at home"
    if home > 0:
        line += f" ({100 * (home - planned) / home:.1f} % less)"
    realised = [j["summary"].get("realised_emissions_kg") for j in jobs]
    if all(r is not None for r in realised):
        line += f"; {sum(realised):,.1f} kg realised on the actual intensities"
    return line + "."
