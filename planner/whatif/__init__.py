"""What-if sweeps: vary zones, seasons, start dates, slack, thresholds, checkpoint
overheads and forecasts around a plan request, one tidy row per scenario."""

from greenepoch.planner.whatif.evaluate import evaluate, plan_cached, plan_row
from greenepoch.planner.whatif.results import (
    METRICS,
    STATUSES,
    is_result_file,
    read_results,
    results_frame,
    status_of,
)
from greenepoch.planner.whatif.spec import Scenario, Spec, load_spec, parse_spec
from greenepoch.planner.whatif.sweep import DEFAULT_WORKERS, SweepResult, run_sweep
from greenepoch.planner.whatif.views import (
    best_zone_season,
    dominated,
    outcomes,
    pareto_front,
    slack_returns,
    threshold_curve,
    views,
)

__all__ = [
    "DEFAULT_WORKERS", "METRICS", "STATUSES", "Scenario", "Spec", "SweepResult",
    "best_zone_season", "dominated", "evaluate", "is_result_file", "load_spec", "outcomes",
    "pareto_front", "parse_spec", "plan_cached", "plan_row", "read_results",
    "results_frame", "run_sweep", "slack_returns", "status_of", "threshold_curve", "views",
]
