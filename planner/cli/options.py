"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

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
