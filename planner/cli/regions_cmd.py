"""``greenepoch regions``: list the region catalog."""

from __future__ import annotations

import json

import click
import pandas as pd
from greenepoch.data.regions import CLOUDS, zones_on
from greenepoch.planner.cli.options import data_folder_option, json_option
from greenepoch.planner.report.table import render


@click.command()
@click.option(
    "--cloud",
    type=click.Choice(CLOUDS, case_sensitive=False),
    default=None,
    help="Show only zones with regions on this cloud.",
)
@data_folder_option
@json_option
def regions(cloud: str | None, data_dir: str | None, as_json: bool) -> None:
    """List grid zones, the AWS, GCP and Azure regions whose data centres they supply,
    and where each zone has intensity data.

    Column 'data': 'embedded' (the shipped climatology: plans without --data work)
    and/or 'real' (export files in the --data / $GREENEPOCH_DATA folder).  A zone
    id or cloud region name can be passed to --zones only where it has data.
    """
    from greenepoch.data.intensity.climatology import embedded_climatology
    from greenepoch.data.intensity.readers import zones_in
    from greenepoch.data.intensity.source import data_dir as resolve_data_dir

    embedded = set(embedded_climatology("direct").zones)
    root = resolve_data_dir(data_dir)
    real = zones_in(root) if root is not None else {}
    rows = []
    for zone in zones_on(cloud):
        row = zone.summary()
        row["data"] = [name for name, has in (("embedded", zone.id in embedded),
                                              ("real", zone.id in real)) if has]
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    frame = pd.DataFrame(
        rows,
        columns=["id", "name", "country", "timezone", "lat", "lon", "aws", "gcp", "azure",
                 "data"],
    )
    for column in (*CLOUDS, "data"):
        frame[column] = frame[column].map(lambda names: ", ".join(names) or "-")
    click.echo(render(frame, floatfmt="{:.2f}"))
    with_embedded = sum("embedded" in row["data"] for row in rows)
    where = (f"{sum('real' in row['data'] for row in rows)} with real data in {root}"
             if root is not None else "real data not looked for (no --data or $GREENEPOCH_DATA)")
    click.echo(f"\n{len(rows)} zone(s): {with_embedded} with embedded data, {where}; "
               "a zone with '-' needs its exports in a data folder before it can be planned.")
