"""``greenepoch forecast show``: the next hours to 14 days per zone, P10/P50/P90, and
where each hour came from.

With ``--live``: the provider's forecast for the hours it covers, the own model beyond,
blended at the seam (:func:`greenepoch.planner.pipeline.live_intensities`); the
``origin`` column says ``provider``, ``seam`` or ``model``.  Without it: the own model
only, issued at ``--from`` (default now) on the ``--data`` history, and the output says
so.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click
from greenepoch.data.intensity.frame import SLOTS
from greenepoch.planner.cli.options import (
    forecast_option,
    json_option,
    live_options,
    live_signal_option,
    measured_data_option,
    zones_option,
)
from greenepoch.planner.cli.when_cmd import (
    Frames,
    command_zones,
    live_frames,
    note,
    provenance_json,
    provenance_lines,
)

if TYPE_CHECKING:
    import pandas as pd

MAX_HORIZON = "14D"


@click.command("show")
@zones_option(required=True, help="Comma-separated zone ids or cloud regions, e.g. DE,GB.")
@click.option("--horizon", default="48h", show_default=True,
              help=f"How far ahead, with a unit, e.g. 48h or 7D (at most {MAX_HORIZON}).")
@click.option("--slot", type=click.Choice(list(SLOTS)), default="1h", show_default=True,
              help="Slot length of the rows.")
@click.option("--from", "from_time", default=None, metavar="TIME",
              help="Without --live: the issue time (ISO 8601 with offset), inside the --data "
              "range; default now.")
@live_signal_option
@forecast_option
@measured_data_option
@live_options
@json_option
def show(zones: str, horizon: str, slot: str, from_time: str | None, signal: str,
         model: str, data_dir: str | None, live: bool, provider: str | None,
         allow_default: bool | None, archive_url: str | None, as_json: bool) -> None:
    """Forecast P10/P50/P90 per zone from now over HORIZON, and where each slot came from.

    With --live, the provider's forecast where it reaches and the own model (fitted on
    the archive's history, else --data, else the embedded default, as said) beyond,
    blended at the seam (docs/live.md of the source repository); the slot holding now
    is judged on the part of it from the provider's first forecast period on.  A
    marginal forecast (--signal marginal) ends where WattTime's ends, about 24 h ahead,
    with a note.  Without --live, the own model only, issued at --from (default now) on
    the --data history.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from greenepoch.forecasts.data import parse_span

    span = parse_span(horizon, "--horizon")
    if span > parse_span(MAX_HORIZON, "horizon"):
        raise click.UsageError(f"--horizon {horizon}: at most {MAX_HORIZON}")
    wanted = command_zones(zones, live=live, provider=provider, signal=signal,
                           allow_default=allow_default, archive_url=archive_url,
                           from_time=from_time)
    if live:
        from greenepoch.data.providers.base import utc_now

        now = utc_now()
        issued = now.floor(SLOTS[slot])
        frames = live_frames(wanted, now, issued + span, slot=slot, signal=signal,
                             model=model, data_dir=data_dir, provider=provider,
                             allow_default=allow_default, archive_url=archive_url)
        _say_early_end(frames, issued + span)
    else:
        issued, frames = _model_only(wanted, from_time, span, slot, signal, model, data_dir)
    table = long_table(frames)
    if as_json:
        click.echo(json.dumps(_as_json(table, frames, issued, signal, slot), indent=2))
        return
    from greenepoch.planner.report.table import render

    shown = table.assign(time=table["time"].dt.strftime("%Y-%m-%d %H:%M"))
    click.echo(render(shown.rename(columns={"time": "time (UTC)"})))
    click.echo(f"\ngCO2eq/kWh ({signal}), issued {issued:%Y-%m-%d %H:%M} UTC; on "
               f"{frames.basis}.")
    for line in origin_spans(table):
        click.echo(line)
    for line in provenance_lines(frames):
        click.echo(line)


def _say_early_end(frames: Frames, asked: pd.Timestamp) -> None:
    """A note when the live frames end before the horizon asked (a marginal forecast
    ends where WattTime's does, about 24 h ahead: no model extends it)."""

    index = frames.p50.index
    end = index[-1] + (index[1] - index[0])
    if end < asked:
        note(f"the marginal forecast covers the slots up to {end:%Y-%m-%d %H:%M} UTC, where "
              f"the output ends instead of at {asked:%Y-%m-%d %H:%M} UTC (WattTime forecasts "
              "about 24 h; no model extends it)")


def _model_only(zones: list[str], from_time: str | None, span: pd.Timedelta, slot: str,
                signal: str, model: str, data_dir: str | None
                ) -> tuple[pd.Timestamp, Frames]:
    """The own model's forecast issued at ``from_time`` (default now, on the data's slot
    grid) on the history in ``data_dir``, on ``slot`` slots."""
    import pandas as pd
    from greenepoch.data.providers.base import utc_now
    from greenepoch.data.timeparse import utc
    from greenepoch.forecasts.base import ForecastError
    from greenepoch.forecasts.data import history_before, load_values
    from greenepoch.forecasts.registry import canonical_name, get_model
    from greenepoch.planner.forecast_cache import fit_cutoff, fitted_model

    values = load_values(data_dir, signal, zones)
    index = values.index
    step = index[1] - index[0] if len(index) > 1 else SLOTS["1h"]
    at = utc_now() if from_time is None else utc(from_time, "--from")
    issued = index[0] + (at - index[0]) // step * step
    if issued > index[-1] + step:
        raise ForecastError(
            f"the data in {data_dir} ends at {index[-1] + step:%Y-%m-%d %H:%M} UTC: a forecast "
            f"issued at {issued:%Y-%m-%d %H:%M} UTC would read stale history; use --live "
            "for today's grid, or --from inside the data")
    history = history_before(values, issued, "--from")
    name = canonical_name(model)
    # fitted as plans fit it (weekly cut-off, cached): the latest lags come from `data`
    cutoff = fit_cutoff(issued, history.index[0], get_model(name).history_needed)
    fitted = fitted_model(name, history, cutoff, progress=note)
    predicted = fitted.predict(issued, max(span, step), data=history)
    stats = {stat: _on_slots(pd.DataFrame(predicted.xs(stat, axis=1, level=1))
                             .reindex(columns=zones),
                             slot, signal) for stat in ("p10", "p50", "p90")}
    end = issued + span
    stats = {k: v[v.index < end] for k, v in stats.items()}
    basis = (f"the own model '{name}' only, fitted on the history in {data_dir} (read up to the "
             "issue; no provider forecast: --live for today's grid)")
    return issued, Frames(stats["p50"], stats["p10"], stats["p90"], basis, False)


def _on_slots(frame: pd.DataFrame, slot: str, signal: str) -> pd.DataFrame:
    """A predicted stat on ``slot`` slots by the one resampling rule."""
    from greenepoch.data.intensity.frame import MAX_INTENSITY, IntensityData
    from greenepoch.data.intensity.resample import resample

    values = frame.clip(lower=0, upper=MAX_INTENSITY).rename_axis("time")
    values.columns = [str(c) for c in values.columns]
    flags = values.map(lambda _: False)
    data = IntensityData(values, flags, flags.copy(), "real", signal)
    return resample(data, slot).values


def long_table(frames: Frames) -> pd.DataFrame:
    """One row per zone and slot (zones in the order asked): time, zone, p10, p50, p90,
    origin."""
    import pandas as pd

    def column(frame: pd.DataFrame | None, zone: object) -> Any:
        return float("nan") if frame is None else frame[zone].to_numpy()

    parts = [pd.DataFrame({
        "time": frames.p50.index, "zone": str(zone), "p10": column(frames.p10, zone),
        "p50": column(frames.p50, zone), "p90": column(frames.p90, zone),
        "origin": "model" if frames.origin is None else frames.origin[zone].to_numpy(),
    }) for zone in frames.p50.columns]
    return pd.concat(parts, ignore_index=True)


def origin_spans(table: pd.DataFrame) -> list[str]:
    """Per zone, the stretches of slots from each origin, e.g. 'DE: provider
    2026-12-03 07:00 .. 2026-12-05 01:00, seam .. 07:00, model .. 2026-12-17 07:00'."""
    lines = []
    for zone, rows in table.groupby("zone", sort=False):
        runs = (rows["origin"] != rows["origin"].shift()).cumsum()
        step = rows["time"].diff().dropna().min() if len(rows) > 1 else None
        parts = []
        for _, stretch in rows.groupby(runs, sort=False):
            last = stretch["time"].iloc[-1] + (step if step is not None else 0)
            parts.append(f"{stretch['origin'].iloc[0]} {stretch['time'].iloc[0]:%Y-%m-%d %H:%M}"
                         f" .. {last:%Y-%m-%d %H:%M}")
        lines.append(f"{zone}: " + ", ".join(parts) + " (UTC)")
    return lines


def _as_json(table: pd.DataFrame, frames: Frames, issued: pd.Timestamp, signal: str,
             slot: str) -> dict[str, Any]:
    from greenepoch.forecasts.backtest import json_records

    rows = table.assign(time=table["time"].map(lambda t: t.isoformat()))
    return {
        "issued": issued.isoformat(),
        "live": frames.live,
        "signal": signal,
        "unit": "gCO2eq/kWh",
        "slot": slot,
        "basis": frames.basis,
        "forecast": json_records(rows),
        "provenance": [provenance_json(p) for p in frames.provenance],
    }

