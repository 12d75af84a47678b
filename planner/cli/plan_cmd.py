"""``greenepoch plan``: plan a request and write the plan JSON (and its segment CSV)."""

from __future__ import annotations

import click
from greenepoch.data.errors import InfeasibleError
from greenepoch.data.timeparse import utc
from greenepoch.planner.cli.options import (
    data_option,
    forecast_given,
    forecast_option,
    json_option,
    output_file,
    signal_option,
)
from greenepoch.planner.cli.report import plan_summary
from greenepoch.planner.pipeline import plan as make_plan
from greenepoch.planner.plan import Plan
from greenepoch.planner.request import load_request


@click.command()
@click.argument("request_file", type=click.Path(path_type=str))
@data_option
@click.option("--oracle", is_flag=True, help="Plan with perfect foresight (for studies).")
@forecast_option
@click.option("--no-fallback", "no_fallback", is_flag=True,
              help="Keep a forecast plan's optimised schedule for a job even when it is not "
                   "robust (emits more than running now at the forecast's P90) or expects "
                   "to save under 10 %; the summary still warns when it is not robust.")
@click.option("--start", default=None,
              help="Move the request to start here (ISO 8601 with offset); releases, "
                   "deadlines and capacity steps keep their offsets from its start.")
@signal_option
@click.option("--seed", default=0, show_default=True,
              help="Seed of the synthetic traces (embedded default only).")
@click.option("--out", "json_path", required=True, type=click.Path(path_type=str),
              callback=output_file,
              help="Plan JSON to write, named as given; its segment CSV is written beside "
              "it (p.json -> p.csv; a name without .json gets .csv appended).")
@json_option
@click.pass_context
def plan(ctx: click.Context, request_file: str, data_dir: str | None, oracle: bool, model: str,
         no_fallback: bool, start: str | None, signal: str, seed: int, json_path: str,
         as_json: bool) -> None:
    """Plan the jobs of REQUEST_FILE (TOML) across zones and time.

    Without --forecast the request's policy.forecast picks the model (itself 'default'
    unless the request names one)."""
    given = forecast_given(ctx)
    if oracle and given:
        raise click.UsageError("--oracle and --forecast exclude each other; pick one")
    if oracle and no_fallback:
        raise click.UsageError("--no-fallback is for forecast plans (an oracle plan has no "
                               "forecast to hedge against); drop one of them")
    Plan.csv_path(json_path)  # a refused name ('--out p.csv') fails before planning
    request = load_request(request_file, utc(start, "--start") if start else None)
    try:
        result = make_plan(request, data=data_dir, oracle=oracle,
                           model=model if given else None, signal=signal,
                           seed=seed, progress=lambda note: click.echo(note, err=True),
                           fallback=not no_fallback)
    except InfeasibleError as exc:  # name the file, as request errors do
        raise InfeasibleError(f"{request_file}: {exc}") from exc
    json_file, csv_file = result.write(json_path)  # replaced together or not at all
    if as_json:
        click.echo(result.to_json(), nl=False)
    else:
        click.echo(plan_summary(result))
        click.echo(f"\nwrote {json_file} and {csv_file}")
