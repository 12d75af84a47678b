"""``greenepoch regions``: list the region catalog."""

from __future__ import annotations

import json

import click
import pandas as pd

from planner.cli.options import json_option
from planner.cli.table import render
from planner.regions import CLOUDS, zones_on


@click.command()
@click.option(
    "--cloud",
    type=click.Choice(CLOUDS, case_sensitive=False),
    default=None,
    help="Show only zones with regions on this cloud.",
)
@json_option
def regions(cloud: str | None, as_json: bool) -> None:
    """List grid zones and the AWS, GCP and Azure regions whose data centres they supply.

    Any zone id or cloud region name shown here can be passed to --zones.
    """
    rows = [zone.summary() for zone in zones_on(cloud)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    frame = pd.DataFrame(
        rows, columns=["id", "name", "country", "timezone", "lat", "lon", "aws", "gcp", "azure"]
    )
    for column in CLOUDS:
        frame[column] = frame[column].map(lambda names: ", ".join(names) or "-")
    click.echo(render(frame, floatfmt="{:.2f}"))
    click.echo(f"\n{len(rows)} zone(s).")
