"""``greenepoch demo``: plan a sample multi-region training job end to end."""

from __future__ import annotations

import click
from greenepoch.data.intensity.source import data_dir as resolve_data_dir
from greenepoch.data.shipped import shipped_file
from greenepoch.planner.cli.options import data_option, forecast_given, forecast_option, output_file
from greenepoch.planner.cli.report import plan_summary
from greenepoch.planner.pipeline import plan as make_plan
from greenepoch.planner.plan import Plan
from greenepoch.planner.request import load_request


@click.command()
@data_option
@click.option("--oracle", is_flag=True, help="Plan with perfect foresight instead of a forecast.")
@forecast_option
@click.option("--out", "json_path", default=None, type=click.Path(path_type=str),
              callback=output_file,
              help="Also write the plan JSON (and its segment CSV) here.")
@click.pass_context
def demo(ctx: click.Context, data_dir: str | None, oracle: bool, model: str,
         json_path: str | None) -> None:
    """Plan the shipped sample request (two jobs, four zones).

    Runs on the embedded synthetic default unless --data or $GREENEPOCH_DATA
    points at Electricity Maps exports.
    """
    if oracle and forecast_given(ctx):
        raise click.UsageError("--oracle and --forecast exclude each other; pick one")
    request_file = shipped_file("demo_request.toml")
    source = resolve_data_dir(data_dir)
    click.echo(f"sample request: {request_file}")
    click.echo("data: " + (f"real exports from {source}" if source else
                                  "embedded default (synthetic traces from the shipped "
                                  "climatology)"))
    if json_path:
        Plan.csv_path(json_path)  # a refused name ('--out p.csv') fails before planning
    result = make_plan(load_request(request_file), data=data_dir, oracle=oracle,
                       model=None if oracle else model)
    click.echo(plan_summary(result))
    if json_path:
        json_file, csv_file = result.write(json_path)  # together or not at all
        click.echo(f"\nwrote {json_file} and {csv_file}")
