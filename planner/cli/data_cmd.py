"""``greenepoch data``: check and calibrate intensity data; fill the live archive from a
provider (``pull``), export it as Electricity Maps CSV (``export``) and show what it
holds (``archive``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click
import pandas as pd
from greenepoch.data.archive.store import Archive, Stored, masked
from greenepoch.data.errors import (
    DataError,
    GreenEpochError,
    ProviderAuthError,
    ProviderDataError,
    ProviderError,
    ProviderUnavailable,
    param,
)
from greenepoch.data.intensity.readers import named_zones, read_any, read_electricitymaps
from greenepoch.data.intensity.summary import summarize
from greenepoch.data.providers.records import Fetched
from greenepoch.data.timeparse import utc
from greenepoch.planner.cli.options import (
    allow_implausible_option,
    archive_option,
    json_option,
    live_archive,
    live_archive_url,
    live_signal_option,
    missing_sqlite_file,
    required_data_folder_option,
    signal_option,
    zones_option,
)
from greenepoch.planner.report.table import render


@click.group()
def data() -> None:
    """Check and calibrate carbon-intensity data; pull, export and show the archive."""


@data.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@signal_option
@click.option("--allow-gaps", is_flag=True,
              help="Interpolate gaps longer than 3 h instead of failing.")
@allow_implausible_option
@json_option
def check(paths: tuple[str, ...], signal: str, allow_gaps: bool, as_json: bool) -> None:
    """Validate export files or folders and print a per-zone summary.

    Each PATH is an Electricity Maps export, a folder of them (or holding
    'electricitymaps/'), or a long-format CSV with columns time,zone,value.
    Only regular files are read: a FIFO or folder named *.csv is named and skipped.
    """
    frames = []
    for path in paths:
        loaded = read_any(path, signal=signal, allow_gaps=allow_gaps)
        for why in loaded.skipped:
            click.echo(f"greenepoch: skipped {why}", err=True)
        table = summarize(loaded)
        table.insert(0, "path", path)
        frames.append(table)
    result = pd.concat(frames, ignore_index=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(orient="records"), indent=2, default=str))
    else:
        click.echo(render(result.drop(columns="path") if len(paths) == 1 else result))
        click.echo(f"\n{len(result)} zone(s) OK, signal {signal}.")


@data.command()
@required_data_folder_option
@click.option("--signal", "signals", multiple=True, type=click.Choice(["direct", "lca"]),
              help="Signal(s) to calibrate; default both.")
@click.option("--out", "out", default=".", show_default=True, type=click.Path(path_type=str),
              help="Folder to write climatology_{signal}.json into (the shipped files live "
                   "in the repository's data/ folder).")
@click.option("--quiet", is_flag=True, help="No progress bar on stderr.")
@allow_implausible_option
def calibrate(data_dir: str, signals: tuple[str, ...], out: str, quiet: bool) -> None:
    """Fit the per-zone climatology the embedded synthetic default is generated from.

    A progress bar on stderr counts the files read, then the zones fitted.
    """
    from greenepoch.data.atomic import write_together
    from greenepoch.data.intensity.climatology import calibrate as fit
    from tqdm import tqdm

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str | Path, str | bytes] = {}
    notes = []
    for signal in dict.fromkeys(signals or ("direct", "lca")):
        files = len(named_zones(data_dir))
        with tqdm(total=files, desc=f"calibrate {signal}: read", unit="file",
                  disable=quiet, file=sys.stderr) as bar:
            loaded = read_electricitymaps(data_dir, signal=signal,
                                          progress=lambda _name: bar.update())
        with tqdm(total=len(loaded.zones), desc=f"calibrate {signal}: fit", unit="zone",
                  disable=quiet, file=sys.stderr) as bar:
            climatology = fit(loaded, progress=lambda _zone: bar.update())
        target = folder / f"climatology_{signal}.json"
        written[target] = climatology.json_text()
        notes.append(f"wrote {target}: {len(loaded.zones)} zones, "
                     f"{loaded.values.index[0].year}-{loaded.values.index[-1].year}")
    write_together(written)  # both signals or neither
    for note in notes:
        click.echo(note)


# -- the archive: pull, export, archive -----------------------------------------------

#: a pull asks each provider for this much at a time (progress, and a bounded loss when
#: a later answer fails: the chunks before it stay archived)
PULL_CHUNK = pd.Timedelta(days=10)


def _zones(zones: str) -> list[str]:
    named = list(dict.fromkeys(z.strip() for z in zones.split(",") if z.strip()))
    if not named:
        raise DataError(f"{param('zones')} is empty; give zone ids like DE,GB")
    return named


def _window(since: str, until: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = utc(since, param("since"))
    if until is None:  # up to now
        end = pd.Timestamp.now(tz="UTC").floor("min")
        if end <= start:
            raise DataError(f"{param('since')} {start.isoformat()} is not in the past (now is "
                            f"{end.isoformat()}): nothing has happened there yet")
        return start, end
    end = utc(until, param("until"))
    if end <= start:
        raise DataError(f"{param('until')} ({end.isoformat()}) must be after {param('since')} "
                        f"({start.isoformat()})")
    return start, end


since_option = click.option("--since", required=True, metavar="TIME",
                            help="Start (UTC, ISO 8601 with offset, e.g. 2026-03-01T00:00Z).")


@data.command()
@click.option("--provider", type=click.Choice(["electricitymaps", "watttime", "ukci"]),
              default=None, help="Provider to pull from. Default: the first configured "
              "provider that covers the zone and serves the signal (ukci needs no key).")
@zones_option(required=True)
@since_option
@click.option("--until", default=None, metavar="TIME", help="End, exclusive (default: now).")
@live_signal_option
# not --forecast/--no-forecast: --forecast names the forecast model in every command
@click.option("--no-forecast", "no_forecast", is_flag=True,
              help="Actuals only; by default each zone's current provider forecast is "
              "archived too.")
@archive_option
@click.option("--quiet", is_flag=True, help="No progress bar on stderr.")
@json_option
def pull(provider: str | None, zones: str, since: str, until: str | None, signal: str,
         no_forecast: bool, archive_url: str | None, quiet: bool, as_json: bool) -> None:
    """Fill the archive with a provider's actuals (and its current forecast, unless
    --no-forecast).

    Asks in chunks of 10 days per zone; each answer is checked and archived in one
    transaction (a malformed answer writes nothing). Re-pulling is idempotent: the
    table at the end counts rows new, changed (revised by the provider) and unchanged.
    """
    from greenepoch.data.providers.config import load_config
    from greenepoch.data.providers.registry import chain_for
    from tqdm import tqdm

    named = _zones(zones)
    start, end = _window(since, until)
    config = load_config()
    chunks = _chunks(start, end)
    forecast = not no_forecast
    sources = {}
    for zone in named:  # every zone's provider is known before anything is fetched
        chain = chain_for(zone, signal, config, first=provider)
        if not chain:
            raise DataError(f"no configured provider covers zone {zone!r} for the {signal} "
                            "signal; set a provider's credentials (docs/live.md) or pick "
                            f"another {param('provider')}")
        sources[zone] = chain[0]
    archive = live_archive(archive_url, config)
    done: list[dict[str, object]] = []
    with archive, tqdm(total=len(named) * (len(chunks) + forecast), unit="answer",
                       desc="pull", disable=True if quiet else None, file=sys.stderr) as bar:
        for zone in named:
            source = sources[zone]
            counts = _Counts(source.name, zone, signal, "actual")
            for lo, hi in chunks:
                bar.set_postfix_str(f"{zone} {lo:%Y-%m-%d}")
                _put(archive, counts, partial(source.actuals, zone, signal, lo, hi), done)
                bar.update()
            done.append(counts.row())
            if forecast:
                ahead = _Counts(source.name, zone, signal, "forecast")
                _put(archive, ahead, partial(source.forecast, zone, signal), done)
                done.append(ahead.row())
                bar.update()
    table = pd.DataFrame(done)
    if as_json:
        click.echo(json.dumps(table.to_dict(orient="records"), indent=2, default=str))
    else:
        click.echo(render(table))
        click.echo(f"\narchive: {archive.shown}")


def _chunks(start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    edges = [start]
    while edges[-1] + PULL_CHUNK < end:
        edges.append(edges[-1] + PULL_CHUNK)
    return list(zip(edges, [*edges[1:], end], strict=True))


class _Counts:
    """Rows a pull wrote for one provider, zone, signal and kind."""

    def __init__(self, provider: str, zone: str, signal: str, kind: str) -> None:
        self.key = {"provider": provider, "zone": zone, "signal": signal, "kind": kind}
        self.new = self.changed = self.unchanged = 0
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None

    def add(self, answer: Fetched, stored: Stored) -> None:
        self.new += stored.new
        self.changed += stored.changed
        self.unchanged += stored.unchanged
        if len(answer):
            first, last = answer.values.index[0], answer.values.index[-1]
            self.first = first if self.first is None else min(self.first, first)
            self.last = last if self.last is None else max(self.last, last)

    def row(self) -> dict[str, object]:
        return {**self.key, "new": self.new, "changed": self.changed,
                "unchanged": self.unchanged,
                "first": "" if self.first is None else self.first.isoformat(),
                "last": "" if self.last is None else self.last.isoformat()}


#: the error classes a pull failure keeps (the first one the error is an instance of)
_KEPT_CLASSES = (ProviderAuthError, ProviderUnavailable, ProviderDataError, ProviderError,
                 DataError, GreenEpochError)


def _put(archive: Archive, counts: _Counts, ask: Callable[[], Fetched],
         done: list[dict[str, object]]) -> None:
    """Ask, then archive the answer; a failure names what earlier answers archived."""
    try:
        answer = ask()
    except GreenEpochError as exc:
        written = sum(int(str(r["new"])) + int(str(r["changed"])) for r in done)
        written += counts.new + counts.changed
        kept = (f"; {written} row(s) from earlier answers are archived" if written
                else "; nothing was archived")
        same = next(c for c in _KEPT_CLASSES if isinstance(exc, c))
        raise same(f"{exc}{kept}") from exc
    counts.add(answer, archive.store(answer))


@data.command("export")
@zones_option(required=True)
@since_option
@click.option("--until", required=True, metavar="TIME", help="End, exclusive (UTC).")
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              help="Folder to write ZONE_YEAR_hourly.csv files into (created if missing).")
@click.option("--provider", type=click.Choice(["electricitymaps", "watttime", "ukci"]),
              default=None, help="Export only this provider's values (default: per hour, "
              "the provider with most hours first).")
@live_signal_option
@archive_option
def export_archive(zones: str, since: str, until: str, out: str, provider: str | None,
                   signal: str, archive_url: str | None) -> None:
    """Write archived actuals as Electricity Maps exports (hourly CSV), readable by every
    command's --data.

    Finer periods become hours by the energy-weighted rule; only whole hours are
    written. All files are written together, or none.
    """
    from greenepoch.data.archive.export import export_electricitymaps

    named = _zones(zones)
    start, end = _window(since, until)
    url = live_archive_url(archive_url)
    missing = missing_sqlite_file(url)
    if missing is not None:  # reading it would create an empty one
        raise DataError(f"no archive at {missing}; fill one with 'greenepoch data pull' or "
                        "name it with --archive")
    with Archive(url) as archive:
        files = export_electricitymaps(archive, named, start, end, out, provider=provider,
                                       signal=signal)
    for file in files:
        click.echo(f"wrote {file}")


@data.command("archive")
@archive_option
@json_option
def archive_summary(archive_url: str | None, as_json: bool) -> None:
    """What the archive holds: per provider, zone, signal and kind, the first and last
    period, the rows and the last fetch time."""
    url = live_archive_url(archive_url)
    if missing_sqlite_file(url) is not None:  # not there: empty, and left uncreated
        table, shown = pd.DataFrame(), masked(url)
    else:
        with Archive(url) as archive:
            table = archive.summary()
            shown = archive.shown
    if as_json:
        click.echo(json.dumps(table.to_dict(orient="records"), indent=2, default=str))
        return
    if table.empty:
        click.echo(f"archive {shown} is empty; fill it with 'greenepoch data pull'")
        return
    for column in ("first", "last", "last_fetched"):
        table[column] = [t.strftime("%Y-%m-%d %H:%M") for t in table[column]]
    click.echo(render(table))
    click.echo(f"\narchive: {shown}")
