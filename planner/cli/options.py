"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from planner.errors import GreenEpochError

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=str),
    envvar="GREENEPOCH_DATA",
    default=None,
    help="Folder of Electricity Maps exports (or a folder holding 'electricitymaps/'). "
    "Defaults to $GREENEPOCH_DATA; without either, the embedded synthetic default is used.",
)
signal_option = click.option(
    "--signal",
    type=click.Choice(["direct", "lca"]),
    default="direct",
    show_default=True,
    help="Carbon-intensity signal: direct (operational) or lca (life-cycle).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def zones_option(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--zones",
        default=None,
        help="Comma-separated zone ids or cloud regions (e.g. DE,eu-north-1), or 'all'.",
        **kwargs,
    )


def output_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check an output file's folder before any work is done (a long solve must not be
    lost to a typo in ``--out``)."""
    if value is None:
        return None
    path = Path(value)
    name = "/".join(param.opts) if param.opts else "output"
    if path.is_dir():
        raise GreenEpochError(
            f"{name} {value} is a folder; give a file name inside it, e.g. {path / 'out.json'}"
        )
    if not path.parent.is_dir():
        raise GreenEpochError(
            f"{name} {value}: folder {path.parent} does not exist; create it first"
        )
    return value
