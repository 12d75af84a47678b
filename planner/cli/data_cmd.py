"""``greenepoch data``: check and calibrate intensity data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pandas as pd
from greenepoch.data.intensity.readers import named_zones, read_any, read_electricitymaps
from greenepoch.data.intensity.summary import summarize
from greenepoch.planner.cli.options import (
    allow_implausible_option,
    json_option,
    required_data_folder_option,
    signal_option,
)
from greenepoch.planner.report.table import render


@click.group()
def data() -> None:
    """Check and calibrate carbon-intensity data."""


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
