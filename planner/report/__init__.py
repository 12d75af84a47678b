"""Static HTML reports of plans and what-if sweeps, with embedded matplotlib figures."""

from greenepoch.planner.report.build import Report, build_report, plan_report, result_report

__all__ = ["Report", "build_report", "plan_report", "result_report"]
