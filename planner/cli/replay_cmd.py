"""``greenepoch replay``: replay policies over history, and the slack sweep experiment.

``greenepoch replay --data DIR --zones ... --from DATE --until DATE --jobs JOBS.csv|
--generate SPEC --policies run-now,threshold,greedy,milp,oracle [--json]`` and
``greenepoch replay slack-sweep --data DIR --year 2022 [--signal direct|lca]
[--zones ...] [--lengths 1,6,24] [--slacks 24,168] [--json]``.  JSON: docs/replay.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import pandas as pd
from greenepoch.data.errors import RequestError
from greenepoch.planner.cli.options import (
    data_option,
    forecast_option,
    json_option,
    signal_option,
    zones_option,
)
from greenepoch.planner.report.table import render

DEFAULT_POLICIES = "run-now,threshold,greedy,milp,oracle"


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RequestError(f"{option} {text!r}: give whole hours like 1,6,24") from None
    if not values:
        raise RequestError(f"{option} is empty: give whole hours like 1,6,24")
    return values


def _bar(quiet: bool) -> Callable[[str, int], Callable[[int], None]]:
    from tqdm import tqdm

    def make(label: str, total: int) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=f"replay {label}", unit="slot", leave=False,
                   disable=quiet, mininterval=0.5)

        def tick(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return tick

    return make


def _zone_list(spec: str | None) -> list[str] | None:
    from greenepoch.data.regions import resolve_zones

    if spec is None or spec.strip().lower() == "all":
        return None
    return resolve_zones(spec)


# Click names are the library's parameter names (jobs, spec, replan_every_h, ...): a
# library message naming one shows the option instead (cli.main.as_flags).  The values
# are still text here, parsed below.
@click.group(invoke_without_command=True, context_settings={"ignore_unknown_options": False})
@data_option
@zones_option()
@click.option("--from", "start", default=None, help="Replay start, YYYY-MM-DD (UTC) or ISO 8601.")
@click.option("--until", "until", default=None, help="Replay end (exclusive), as --from.")
@click.option("--jobs", "jobs", default=None, type=click.Path(path_type=str),
              help="CSV of jobs (columns in docs/replay.md of the source repository).")
@click.option("--generate", "spec", default=None,
              help="Generator spec, e.g. n=200,dur=2-48,submit=weekdays09-17,slack=24h,"
                   "gpus=8-64,seed=1 (grammar in docs/replay.md of the source repository).")
@click.option("--policies", default=DEFAULT_POLICIES, show_default=True,
              help="Comma-separated policies; run-now always runs (the baseline).")
@click.option("--capacity", default="512", show_default=True,
              help="GPUs per zone: one number, or DE=512,GB=128.")
@click.option("--slot", "slot", type=click.Choice(["15min", "30min", "1h"]), default=None,
              help="Slot length the replay runs on (default: the data's own step; 5-min "
                   "data: 15min); data of another step is resampled by energy-weighted "
                   "means (docs/data.md of the source repository).")
@click.option("--epoch", default="1h", show_default=True, help="Decision epoch.")
@forecast_option  # the model the forecast-driven policies (greedy, milp) use
@click.option("--forecast-every", default="1h", show_default=True,
              help="How often a new forecast is issued (whole data slots, 1h or more).")
@signal_option
@click.option("--threshold", "threshold", default="q0.3", show_default=True,
              help="Threshold policy: pause above this many g/kWh, or 'qF' for the F "
                   "quantile of the last week's intensity (e.g. q0.3).")
@click.option("--hysteresis", default=0.1, show_default=True,
              help="Threshold policy: start/resume at or below the threshold; once "
                   "running, pause only above threshold x (1 + hysteresis). In [0, 1].")
@click.option("--min-run", "min_run", default="2h", show_default=True,
              help="Threshold policy: shortest run once resumed.")
@click.option("--replan-every", "replan_every_h", default=None,
              help="MILP policy: re-plan this often (and when a job arrives); default: at "
                   "every forecast issue.")
@click.option("--milp-horizon", "horizon_h", default="168h", show_default=True,
              help="MILP policy: how far ahead each plan looks.")
@click.option("--milp-time-limit", "time_limit_s", default="10s", show_default=True,
              help="MILP policy: time limit per re-plan.")
@click.option("--per-job", "per_job", default=None, type=click.Path(path_type=str),
              help="Also write one CSV row per (policy, job) here.")
@json_option
@click.pass_context
def replay(ctx: click.Context, data_dir: str | None, zones: str | None, start: str | None,
           until: str | None, jobs: str | None, spec: str | None, policies: str,
           capacity: str, slot: str | None, epoch: str, model: str, forecast_every: str,
           signal: str,
           threshold: str, hysteresis: float, min_run: str, replan_every_h: str | None,
           horizon_h: str, time_limit_s: str, per_job: str | None,
           as_json: bool) -> None:
    """Replay scheduling POLICIES over real history and compare what they emit.

    Each policy decides every epoch with only the data known by then (and forecasts
    made from it); emissions are charged at the intensities that really occurred.
    """
    if ctx.invoked_subcommand is not None:
        return
    from greenepoch.data.timeparse import duration
    from greenepoch.forecasts.registry import canonical_name
    from greenepoch.planner.replay.jobs import read_jobs_csv
    from greenepoch.planner.replay.metrics import job_metrics, summary
    from greenepoch.planner.replay.policies import get_policy
    from greenepoch.planner.replay.runner import jobs_zones, parse_day, run_policies
    from greenepoch.planner.replay.scenario import build_scenario, replay_document

    model = canonical_name(model)  # recorded as the model 'default' stands for
    if (jobs is None) == (spec is None):
        raise RequestError("give exactly one of --jobs JOBS.csv or --generate SPEC")
    if start is None or until is None:
        raise RequestError("give the replay period with --from DATE and --until DATE")
    t0, t1 = parse_day(start, "--from"), parse_day(until, "--until")
    if t1 <= t0:
        raise RequestError(f"--until {until} is not after --from {start}; give an --until "
                           "later than --from")
    names = [p.strip() for p in policies.split(",") if p.strip()]
    settings = _policy_settings(threshold, hysteresis, min_run, replan_every_h, horizon_h,
                                time_limit_s)
    for name in names:
        get_policy(name, **settings.get(name, {}))  # bad settings fail before any work
    zone_ids = _zone_list(zones)
    listed = read_jobs_csv(jobs) if jobs else None
    if zone_ids is None:
        if listed is None:
            raise RequestError("--generate needs --zones (e.g. --zones DE,GB,ES,NO)")
        zone_ids = jobs_zones(listed)
    assembled = build_scenario(
        zone_ids, t0, t1, jobs=listed, generate=spec, data=data_dir, signal=signal,
        capacity=capacity, epoch=duration(epoch, "--epoch"), forecast=model,
        forecast_every=duration(forecast_every, "--forecast-every"), slot=slot)
    results = run_policies(assembled.scenario, names, progress=_bar(False), settings=settings)
    table = summary(results)
    per = job_metrics(results)
    if per_job:
        from greenepoch.data.atomic import write_atomic

        write_atomic(per_job, per.to_csv(index=False, lineterminator="\n"))
    if as_json:
        doc = replay_document(assembled, results, signal=signal, summary=table, per_job=per)
        click.echo(json.dumps(doc, indent=2))
        return
    shown = table.drop(columns=["seconds"]).round(2)
    click.echo(f"replay {t0.date()} .. {t1.date()}  zones {','.join(zone_ids)}  "
               f"{len(assembled.scenario.jobs)} jobs  slots {assembled.slot}  forecast {model}  "
               f"({assembled.origin} {signal} intensities)")
    click.echo(render(shown, floatfmt="{:,.2f}"))
    for name, res in results.items():
        if res.info:
            click.echo(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float)
                                               else f"{k} {v}" for k, v in res.info.items()))


@replay.command("slack-sweep")
@data_option
@click.option("--year", type=int, required=True, help="Calendar year (UTC) to sweep.")
@signal_option
@zones_option()
@click.option("--lengths", default="1,6,24,96,168", show_default=True,
              help="Job lengths, hours.")
@click.option("--slacks", default="24,168,480,720", show_default=True, help="Slacks, hours.")
@json_option
def slack_sweep_cmd(data_dir: str | None, year: int, signal: str, zones: str | None,
                    lengths: str, slacks: str, as_json: bool) -> None:
    """Oracle savings of delaying a job by up to SLACK hours, every start hour of a year."""
    from greenepoch.planner.replay.scenario import sweep_values
    from greenepoch.planner.replay.sweep import slack_sweep
    from tqdm import tqdm

    zone_ids = _zone_list(zones)
    ls, ss = _ints(lengths, "--lengths"), _ints(slacks, "--slacks")
    values = sweep_values(data_dir, zone_ids, signal)
    total = values.shape[1] * len(ls) * len(ss) * 2
    with tqdm(total=total, desc="slack sweep", unit="case", leave=False,
              mininterval=0.5) as bar:
        records = slack_sweep(values, year, ls, ss, tick=lambda: bar.update(1))
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    frame = pd.DataFrame(records)
    frame["mode"] = frame["interruptible"].map({True: "interruptible", False: "contiguous"})
    pivot = frame.pivot_table(index=["length_h", "mode"], columns="slack_h",
                              values="saving_pct", aggfunc="mean").reset_index()
    pivot.columns = [str(c) if isinstance(c, str) else f"slack {c}h" for c in pivot.columns]
    n_zones = frame["zone"].nunique()
    click.echo(f"slack sweep {year} ({signal}): mean saving % vs starting at once, over "
               f"{n_zones} zone(s) and every start hour")
    click.echo(render(pivot))


def _policy_settings(threshold: str, hysteresis: float, min_run: str,
                     replan_every_h: str | None,
                     horizon_h: str, time_limit_s: str) -> dict[str, dict]:
    """Constructor arguments of the configurable policies, from the CLI options."""
    from greenepoch.data.timeparse import duration, hours

    text = threshold.strip().lower()
    try:
        fixed = None if text.startswith("q") else float(text)
        quantile = float(text[1:]) if text.startswith("q") else 0.3
    except ValueError as exc:
        raise RequestError(f"--threshold {threshold!r}: give g/kWh (e.g. 250) or a quantile "
                           "like q0.3") from exc
    # the qF and negative forms are this option's own: say so in its terms
    if fixed is None and not 0 < quantile < 1:
        raise RequestError(f"--threshold {threshold!r}: the quantile must be in (0, 1), "
                           "e.g. q0.3")
    if fixed is not None and not fixed >= 0:
        raise RequestError(f"--threshold {threshold!r} g/kWh is below 0; give 0 or more "
                           "(e.g. 250) or a quantile like q0.3")
    return {
        "threshold": {"threshold": fixed, "quantile": quantile, "hysteresis": hysteresis,
                      "min_run_h": hours(duration(min_run, "--min-run"))},
        "milp": {"replan_every_h": None if replan_every_h is None
                 else hours(duration(replan_every_h, "--replan-every")),
                 "horizon_h": hours(duration(horizon_h, "--milp-horizon")),
                 "time_limit_s": hours(duration(time_limit_s, "--milp-time-limit")) * 3600},
    }
