"""``greenepoch plan``: plan a request and write the plan JSON (and its segment CSV)."""

from __future__ import annotations

from collections.abc import Callable

import click
from greenepoch.data.errors import InfeasibleError
from greenepoch.data.providers.base import utc_now
from greenepoch.data.timeparse import utc
from greenepoch.planner.cli.options import (
    check_live_options,
    data_option,
    forecast_given,
    forecast_option,
    json_option,
    live_options,
    live_signal_option,
    output_file,
)
from greenepoch.planner.cli.report import plan_summary
from greenepoch.planner.model import PlanRequest
from greenepoch.planner.pipeline import Intensities, live_intensities, slot_grid
from greenepoch.planner.pipeline import plan as make_plan
from greenepoch.planner.plan import Plan
from greenepoch.planner.request import load_request, shift


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
@live_signal_option
@live_options
@click.option("--seed", default=0, show_default=True,
              help="Seed of the synthetic traces (embedded default only).")
@click.option("--out", "json_path", required=True, type=click.Path(path_type=str),
              callback=output_file,
              help="Plan JSON to write, named as given; its segment CSV is written beside "
              "it (p.json -> p.csv; a name without .json gets .csv appended).")
@json_option
@click.pass_context
def plan(ctx: click.Context, request_file: str, data_dir: str | None, oracle: bool, model: str,
         no_fallback: bool, start: str | None, signal: str, live: bool, provider: str | None,
         allow_default: bool | None, archive_url: str | None, seed: int, json_path: str,
         as_json: bool) -> None:
    """Plan the jobs of REQUEST_FILE (TOML) across zones and time.

    Without --forecast the request's policy.forecast picks the model (itself 'default'
    unless the request names one).  With --live the request is moved to start now
    (the next slot boundary; or at --start, which must not be in the past) and planned
    on the providers' forecasts blended with the model's (docs/live.md of the source
    repository)."""
    given = forecast_given(ctx)
    if oracle and given:
        raise click.UsageError("--oracle and --forecast exclude each other; pick one")
    if oracle and no_fallback:
        raise click.UsageError("--no-fallback is for forecast plans (an oracle plan has no "
                               "forecast to hedge against); drop one of them")
    _check_live(live, oracle, signal, provider, allow_default, archive_url)
    Plan.csv_path(json_path)  # a refused name ('--out p.csv') fails before planning
    progress = lambda note: click.echo(note, err=True)  # noqa: E731
    intensities: Intensities | None = None
    if live:
        request = _live_request(request_file, start)
        intensities = _live(request, data_dir, model if given else None, signal, provider,
                            allow_default, archive_url, progress)
    else:
        request = load_request(request_file, utc(start, "--start") if start else None)
    try:
        result = make_plan(request, data=data_dir, oracle=oracle,
                           model=model if given else None, signal=signal,
                           seed=seed, progress=progress, fallback=not no_fallback,
                           intensities=intensities)
    except InfeasibleError as exc:  # name the file, as request errors do
        raise InfeasibleError(f"{request_file}: {exc}") from exc
    json_file, csv_file = result.write(json_path)  # replaced together or not at all
    if as_json:
        click.echo(result.to_json(), nl=False)
    else:
        click.echo(plan_summary(result))  # a live plan's provenance and warnings too
        click.echo(f"\nwrote {json_file} and {csv_file}")


def _check_live(live: bool, oracle: bool, signal: str, provider: str | None,
                allow_default: bool | None, archive_url: str | None) -> None:
    """The live options only go with --live, and --live not with --oracle."""
    if live and oracle:
        raise click.UsageError("--oracle and --live exclude each other: a live plan is on "
                               "forecasts (nobody knows what will happen); pick one")
    check_live_options(live, provider=provider, allow_default=allow_default,
                       archive_url=archive_url, signal=signal)


def _live_request(request_file: str, start: str | None) -> PlanRequest:
    """The request moved to start at ``start`` (not in the past) or now, rounded up to
    the next slot boundary."""
    now = utc_now()
    request = load_request(request_file, now)  # a request without 'start' starts now
    if start is not None:
        begin = utc(start, "--start")
        if begin < now.floor("min"):
            raise click.UsageError(f"--start {start} is in the past (now is "
                                   f"{now.floor('s').isoformat()}); a live plan starts now "
                                   "or later: drop --start or give a later time")
    else:
        begin = now.ceil(request.policy.slot_length)
    return shift(request, begin - request.start)


def _live(request: PlanRequest, data_dir: str | None, model: str | None, signal: str,
          provider: str | None, allow_default: bool | None, archive_url: str | None,
          progress: Callable[[str], None]) -> Intensities:
    """The live intensities of the request's zones and horizon (docs/live.md)."""
    from greenepoch.data.archive.store import Archive

    slots = slot_grid(request)
    step = request.policy.slot_length
    return live_intensities(
        [z.id for z in request.zones], slots[0], slots[-1] + step,
        slot=request.policy.slot, signal=signal, provider=provider, history=data_dir,
        model=model or request.policy.forecast,
        archive=None if archive_url is None else Archive(archive_url),
        allow_default=allow_default, progress=progress,
        warn=lambda text: click.echo(f"greenepoch: warning: {text}", err=True))
