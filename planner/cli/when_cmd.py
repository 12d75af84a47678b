"""``greenepoch when``: the best start time and zone for one job.

Plain text by default (the choice, then each zone now and at its best); ``--format
sbatch|at`` prints only the start for ``sbatch`` or ``at -t`` on stdout (the summary
goes to stderr), as CATS does, so that ``sbatch $(greenepoch when ... --format sbatch)
job.sh`` works.  The arithmetic is :mod:`greenepoch.planner.when`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.planner.cli.options import (
    FORECAST_DEFAULT,
    check_live_options,
    data_option,
    forecast_option,
    json_option,
    live_archive,
    live_options,
    live_signal_option,
    zones_option,
)

if TYPE_CHECKING:
    import pandas as pd
    from greenepoch.data.archive.store import Archive
    from greenepoch.data.live.source import Provenance
    from greenepoch.data.providers.config import LiveConfig
    from greenepoch.planner.when import Run, StartChoice

#: longest window the live forecast reaches (provider then own model)
MAX_LIVE = "14D"

slot_option = click.option(
    "--slot", type=click.Choice(list(SLOTS)), default="1h", show_default=True,
    help="Slot length: starts are on slot boundaries (and now).")
from_option = click.option(
    "--from", "from_time", default=None, metavar="TIME",
    help="Without --live: the earliest start (ISO 8601 with offset, e.g. "
    "2023-06-01T08:00:00Z), inside the --data range; default now.")


@dataclass(frozen=True)
class Frames:
    """What a choice is made on: P50 (and P10/P90 for forecasts), time x zone, and where
    it came from (said in the output)."""

    p50: pd.DataFrame
    p10: pd.DataFrame | None
    p90: pd.DataFrame | None
    basis: str                      # one line: what the values are
    live: bool
    origin: pd.DataFrame | None = None  # live: 'provider' | 'seam' | 'model' per cell
    provenance: tuple[Provenance, ...] = field(default=())


@click.command()
@click.option("--duration", required=True,
              help="How long the job runs, with a unit, e.g. 6h or 90min.")
@click.option("--within", default="24h", show_default=True,
              help="The job starts within this long from now (or --from), e.g. 24h.")
@zones_option(required=True, help="Comma-separated zone ids or cloud regions the job may "
              "run in, e.g. DE,GB.")
@from_option
@slot_option
@click.option("--format", "output", type=click.Choice(["text", "sbatch", "at"]),
              default="text", show_default=True,
              help="sbatch: print only --begin=YYYY-MM-DDTHH:MM:SS; at: only the time for "
              "'at -t' (both in this machine's local time zone, $TZ, which sbatch and at "
              "read; the summary goes to stderr).")
@json_option
@live_signal_option
@forecast_option
@data_option
@live_options
def when(duration: str, within: str, zones: str, from_time: str | None, slot: str,
         output: str, as_json: bool, signal: str, model: str, data_dir: str | None,
         live: bool, provider: str | None, allow_default: bool | None,
         archive_url: str | None) -> None:
    """Best start time and zone for one job: the lowest mean carbon intensity over its
    DURATION, starting within WITHIN (now or on a slot boundary), compared with
    starting now in each zone.

    With --live, on the provider forecast and the own model beyond it (docs/live.md
    of the source repository).
    Without it, on the intensities in --data (as measured: hindsight, not a forecast) or
    the embedded synthetic default, from --from (default now).  Times are UTC but
    for --format sbatch/at, which are in the local time zone ($TZ).
    """
    from greenepoch.forecasts.data import parse_span
    from greenepoch.planner.when import best_start

    if as_json and output != "text":
        raise click.UsageError("--json and --format sbatch/at: pick one")
    run_for = parse_span(duration, "--duration")
    window = parse_span(within, "--within", positive=False)
    wanted = command_zones(zones, live=live, provider=provider, signal=signal,
                           allow_default=allow_default, archive_url=archive_url,
                           from_time=from_time)
    if live and run_for + window > parse_span(MAX_LIVE, "horizon"):
        raise click.UsageError(f"--within plus --duration reach at most {MAX_LIVE} "
                               "with --live (the forecast's reach)")
    now = _start(from_time)
    if live:
        frames = live_frames(wanted, now, now + window + run_for + SLOTS[slot], slot=slot,
                             signal=signal, model=model, data_dir=data_dir,
                             provider=provider, allow_default=allow_default,
                             archive_url=archive_url)
        window = _within_frames(frames, now, window, run_for)
    else:
        frames = _recorded(wanted, now, window, run_for, slot, signal, data_dir)
    choice = best_start(frames.p50, run_for, window, now, p10=frames.p10, p90=frames.p90)
    _print(choice, frames, output, as_json, signal=signal, slot=slot)


def command_zones(zones: str, *, live: bool, provider: str | None, signal: str,
                  allow_default: bool | None, archive_url: str | None,
                  from_time: str | None) -> list[str]:
    """The zones of --zones, once the live options are checked (they go with --live
    only, and --from without it): the region catalog's, and with --live also a zone the
    catalog lacks that a provider (--provider, else any) covers for --signal (a UK
    region such as GB-LONDON, a WattTime region such as CAISO_NORTH); decided without a
    request."""
    from greenepoch.data.errors import CatalogError
    from greenepoch.data.providers.config import PROVIDER_NAMES
    from greenepoch.data.providers.registry import providers_covering
    from greenepoch.data.regions import resolve_zones

    check_live_options(live, provider=provider, allow_default=allow_default,
                       archive_url=archive_url, signal=signal)
    if live and from_time is not None:
        raise click.UsageError("--from is for --data (the past); --live reads from now")
    if not live:
        return resolve_zones(zones)
    names = (provider,) if provider else PROVIDER_NAMES
    try:
        return resolve_zones(zones, outside=lambda zone: bool(
            providers_covering(zone, signal=signal, names=names)))
    except CatalogError as exc:
        if not zones.replace(",", "").strip():  # none named: no provider could help
            raise
        by = f"--provider {provider}" if provider else "any provider"
        raise CatalogError(f"{exc}. With --live, {by} covering it for --signal {signal} "
                           "would do, and none does (zones outside the catalog: UK regions "
                           "such as GB-LONDON, WattTime regions such as CAISO_NORTH with "
                           "--signal marginal, Electricity Maps zone keys)") from None


def _start(from_time: str | None) -> pd.Timestamp:
    from greenepoch.data.providers.base import utc_now
    from greenepoch.data.timeparse import utc

    return utc_now() if from_time is None else utc(from_time, "--from")


def _within_frames(frames: Frames, now: pd.Timestamp, window: pd.Timedelta,
                  run_for: pd.Timedelta) -> pd.Timedelta:
    """--within, shortened (with a note) so that every run ends within the live frames:
    a marginal forecast ends where WattTime's does (about 24 h), before a long window."""
    import pandas as pd
    from greenepoch.data.errors import DataError

    index = frames.p50.index
    stop = index[-1] + (index[1] - index[0])
    latest = stop - run_for - now
    if latest >= window:
        return window
    if latest < pd.Timedelta(0):
        raise DataError(
            f"the live forecast ends at {stop:%Y-%m-%d %H:%M} UTC: a "
            f"{_text(run_for)} job starting now would end after it; give a shorter "
            "--duration (WattTime's marginal forecast reaches about 24 h)")
    note(f"starts considered up to {now + latest:%Y-%m-%d %H:%M} UTC, not within "
          f"{_text(window)}: every run must end within the forecast (to "
          f"{stop:%Y-%m-%d %H:%M} UTC)")
    return latest


def _recorded(zones: list[str], now: pd.Timestamp, window: pd.Timedelta,
              run_for: pd.Timedelta, slot: str, signal: str,
              data_dir: str | None) -> Frames:
    """The intensities as recorded in --data (or the synthetic default) over what the
    choice reads; one error line suggesting --live or --from when they do not cover it."""
    from greenepoch.data.errors import DataError
    from greenepoch.data.intensity.source import ClimatologySource, ExportFolderSource
    from greenepoch.data.intensity.source import data_dir as data_root
    from greenepoch.planner.when import needed_span

    first, end = needed_span(now, window, run_for, SLOTS[slot])
    root = data_root(data_dir)
    if root is None:
        got = ClimatologySource().load(zones, first, end, signal=signal, slot=slot)
        return Frames(got.values, None, None, "the embedded synthetic default (not measured "
                      "data; --live for today's grid, --data for measured history)", False)
    got = ExportFolderSource(root).load(zones, None, None, signal=signal, slot=slot)
    index = got.values.index
    stop = index[-1] + got.step
    if first < index[0] or end > stop:
        raise DataError(
            f"the data in {root} covers {index[0]:%Y-%m-%d %H:%M} .. {stop:%Y-%m-%d %H:%M} "
            f"UTC, not {first:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} (start within "
            f"{_text(window)}, run {_text(run_for)}): use --live for today's grid, or "
            "--from inside the data")
    return Frames(got.values, None, None, f"the intensities measured in {root} (as they "
                  "happened: hindsight, not a forecast)", False)


def live_frames(zones: list[str], now: pd.Timestamp, end: pd.Timestamp, *, slot: str,
                signal: str, model: str, data_dir: str | None, provider: str | None,
                allow_default: bool | None, archive_url: str | None) -> Frames:
    """The live forecast (provider, then own model) over the slots from the one holding
    ``now`` to ``end``, read at ``now``; progress and warnings on stderr.  A marginal
    forecast ends where WattTime's ends (a note says so), never extended by a model."""
    from greenepoch.planner.pipeline import live_intensities

    config, archive = live_setup(archive_url)
    step = SLOTS[slot]
    got = live_intensities(
        zones, now.floor(step), end.ceil(step), slot=slot, signal=signal,
        provider=provider, history=data_dir,
        model=None if model == FORECAST_DEFAULT else model, config=config, archive=archive,
        allow_default=allow_default, progress=note, warn=_warn, clock=lambda: now,
        to_forecast_end=True)
    p50 = got.judged.values
    quantiles = got.quantiles or {}
    origin = None if got.live is None else got.live.origin.reindex(index=p50.index,
                                                                   columns=p50.columns)
    model_note = ("" if got.model is None else
                  f", the own model '{got.model}' (fitted on "
                  f"{_HISTORY.get(str(got.history), 'its history')}) beyond, blended at the seam")
    basis = f"the live forecast: the provider's where it reaches{model_note}"
    if got.judged.source == "synthetic":
        basis += "; SYNTHETIC values in it (the embedded default), not the grid's"
    return Frames(p50, quantiles.get("p10"), quantiles.get("p90"), basis, True, origin,
                  tuple(got.provenance))


#: where the own model's history came from (Intensities.history), as said in the output
_HISTORY = {"archive": "the archive's actuals", "data": "the --data history",
            "default": "the embedded synthetic default"}


def live_setup(archive_url: str | None) -> tuple[LiveConfig, Archive]:
    """The live configuration and the archive (:func:`live_archive`)."""
    from greenepoch.data.providers.config import load_config

    config = load_config()
    return config, live_archive(archive_url, config)


def note(message: str) -> None:
    """One line on stderr, ``greenepoch: MESSAGE`` (progress, notes)."""
    click.echo(f"greenepoch: {message}", err=True)


def _warn(message: str) -> None:
    """A stale or synthetic input, said as ``plan --live`` says it."""
    note(f"warning: {message}")


def _text(td: pd.Timedelta) -> str:
    from greenepoch.forecasts.base import span_text

    return span_text(td)


def _print(choice: StartChoice, frames: Frames, output: str, as_json: bool, *, signal: str,
           slot: str) -> None:
    from greenepoch.planner.when import at_time, sbatch_begin

    if as_json:
        click.echo(json.dumps(_as_json(choice, frames, signal, slot), indent=2))
        return
    summary = _summary(choice, frames, signal)
    if output == "text":
        click.echo(summary)
        return
    click.echo(summary, err=True)
    click.echo(sbatch_begin(choice.best.start) if output == "sbatch"
               else at_time(choice.best.start))


def _when(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def _band(run: Run) -> str:
    if run.p10 is None or run.p90 is None:
        return ""
    return f" (P10 {run.p10:.0f} .. P90 {run.p90:.0f})"


def _summary(choice: StartChoice, frames: Frames, signal: str) -> str:
    import pandas as pd
    from greenepoch.planner.report.table import render
    from greenepoch.planner.when import pct_less

    best = choice.best
    savings = ", ".join(f"{choice.saving_pct(run.zone):.0f}% less than now in {run.zone}"
                        for run in choice.now)
    lines = [f"Best start: {_when(best.start)} in {best.zone} (runs to {_when(best.end)}), "
             f"mean {best.p50:.0f} gCO2eq/kWh{_band(best)}: {savings}.", ""]
    rows = pd.DataFrame({
        "zone": [run.zone for run in choice.now],
        "now (g/kWh)": [run.p50 for run in choice.now],
        "best start (UTC)": [f"{run.start:%Y-%m-%d %H:%M}" for run in choice.by_zone],
        "best (g/kWh)": [run.p50 for run in choice.by_zone],
        "saving %": [pct_less(n.p50, b.p50)
                     for n, b in zip(choice.now, choice.by_zone, strict=True)],
    })
    lines.append(render(rows, floatfmt="{:,.0f}"))
    lines.append("")
    lines.append(f"gCO2eq/kWh ({signal}), mean over the run; 'now' is "
                 f"{_when(choice.starts[0])}; on {frames.basis}.")
    lines.extend(provenance_lines(frames))
    return "\n".join(lines)


def provenance_lines(frames: Frames) -> list[str]:
    """One line per zone and kind read live: where it came from, when, how stale."""
    from greenepoch.planner.plan import age_text

    lines = []
    for p in frames.provenance:
        times = "".join(f", {what} {ts:%Y-%m-%d %H:%M} UTC" for what, ts in
                        (("issued", p.issued), ("fetched", p.fetched)) if ts is not None)
        stale = f", STALE by {age_text(p.stale_s)}" if p.stale_s else ""
        lines.append(f"{p.zone} {p.kind}: {p.origin} from {p.provider}{times}{stale}")
    return lines


def _run_json(run: Run) -> dict[str, Any]:
    return {"zone": run.zone, "start": run.start.isoformat(), "end": run.end.isoformat(),
            "p50": run.p50, "p10": run.p10, "p90": run.p90}


def _as_json(choice: StartChoice, frames: Frames, signal: str, slot: str) -> dict[str, Any]:
    return {
        "start": choice.best.start.isoformat(),
        "end": choice.best.end.isoformat(),
        "zone": choice.best.zone,
        "intensity": {"unit": "gCO2eq/kWh", "signal": signal, "p50": choice.best.p50,
                      "p10": choice.best.p10, "p90": choice.best.p90},
        "saving_pct_vs_now": {run.zone: choice.saving_pct(run.zone) for run in choice.now},
        "now": [_run_json(run) for run in choice.now],
        "best_by_zone": [_run_json(run) for run in choice.by_zone],
        "slot": slot,
        "live": frames.live,
        "basis": frames.basis,
        "origin_slots": _origins(choice.best, frames.origin),
        "provenance": [provenance_json(p) for p in frames.provenance],
    }


def _origins(run: Run, origin: pd.DataFrame | None) -> dict[str, int] | None:
    """How many of the run's slots came from the provider, the seam and the model."""
    if origin is None:
        return None
    step = origin.index[1] - origin.index[0]
    index = origin.index
    held = origin.loc[(index + step > run.start) & (index < run.end), run.zone]
    return {str(k): int(v) for k, v in held.value_counts(sort=False).items()}


def provenance_json(p: Provenance) -> dict[str, Any]:
    """One :class:`~greenepoch.data.live.source.Provenance` as JSON (times ISO UTC)."""
    from dataclasses import asdict

    import pandas as pd

    return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
            for k, v in asdict(p).items()}
