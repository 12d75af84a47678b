"""Rows as the what-if sweep writes them, for the views and report tests."""

from __future__ import annotations

from typing import Any

STARTS = {"2023-01": ["2023-01-01T00:00:00Z", "2023-01-16T00:00:00Z"],
          "2023-07": ["2023-07-01T00:00:00Z", "2023-07-16T00:00:00Z"]}


def row(i: int, emissions: float | None, *, zones: str = "DE", season: str = "2023-01",
        nth: int = 0, slack_h: float = 0.0, threshold: float | None = None,
        interruptions: int = 0, forecast: str = "oracle",
        delay_h: float | None = None, cost: float | None = None) -> dict[str, Any]:
    """One row as the sweep writes it (``emissions`` None: infeasible)."""
    ok = emissions is not None
    run_now = 12.0
    return {
        "scenario_id": f"s{i:03d}", "index": i, "zones": zones, "season": season,
        "start": STARTS[season][nth], "slack_h": slack_h, "threshold": threshold,
        "overhead_min": None, "forecast": forecast,
        "status": "ok" if ok else "infeasible",
        "message": "" if ok else "infeasible: the carbon threshold excludes every slot",
        "emissions_kg": emissions, "planned_emissions_kg": emissions,
        "run_now_kg": run_now if ok else None,
        "saving_kg": run_now - emissions if ok else None,
        "savings_pct": 100 * (run_now - emissions) / run_now if ok else None,
        "delay_mean_h": (slack_h / 2 if delay_h is None else delay_h) if ok else None,
        "delay_p95_h": (slack_h / 2 if delay_h is None else delay_h) if ok else None,
        "interruptions": interruptions if ok else None, "migrations": 0 if ok else None,
        "energy_kwh": 20.0 if ok else None, "cost_usd": cost, "solver": "optimal" if ok else None,
        "segments": [], "seconds": 0.1,
    }
