"""``greenepoch whatif``: sweep scenarios around a plan request, one row each."""

from __future__ import annotations

import json
import sys

import click
import pandas as pd
from greenepoch.planner.cli.options import data_option, json_option, output_file

ROW_COLUMNS = ["zones", "season", "start", "slack_h", "threshold", "overhead_min", "forecast",
               "status", "emissions_kg", "savings_pct", "delay_mean_h", "delay_p95_h",
               "interruptions", "energy_kwh", "cost_usd"]


def whatif_tables(frame: pd.DataFrame, limit: int = 20) -> str:
    """The built-in views as terminal tables (and the rows when no view applies), then
    the rows without a plan by why (proved infeasible, no plan within the time limit,
    data missing, other error); cells as in planner.report.cells (``none``: no
    threshold, ``-``: no value)."""
    from greenepoch.planner.report.cells import text_table
    from greenepoch.planner.whatif.views import (
        PAIRED,
        VIEW_COUNTS,
        outcomes,
        paired_note,
        views,
    )

    parts = []
    for title, view in views(frame).items():
        shown = view.head(limit).reset_index(drop=True)
        more = f"\n({len(view) - limit} more rows)" if len(view) > limit else ""
        note = f"\n{paired_note(view, PAIRED[title])}" if title in PAIRED else ""
        counts = VIEW_COUNTS  # rank, scenarios, no_plan, left_out, ties: whole numbers
        parts.append(f"{title}\n\n{text_table(shown, counts)}{more}{note}")
    if not parts and not frame.empty:
        cols = [c for c in ROW_COLUMNS if c in frame]
        parts.append(f"scenarios\n\n{text_table(frame[cols].head(limit).reset_index(drop=True))}")
    missing = outcomes(frame)
    if not missing.empty:
        lines = [f"{int(missing['rows'].sum())} scenario(s) without a plan:"]
        width = max(map(len, missing["status"]))
        lines += [f"  {r.status:<{width}}  {r.rows:>4}  {r.outcome}; first: {r.first}: "
                  f"{r.message}" for r in missing.itertuples()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


@click.command()
@click.argument("spec_file", type=click.Path(path_type=str))
@data_option
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              callback=output_file,
              help="Results file (JSON Lines, one row per scenario). Rows already in it "
                   "are kept and not run again: rerun the same command to resume.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Local worker processes (1 runs in this process).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run on this Dask distributed scheduler instead of local processes; "
                   "its workers must see --data at the same path.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def whatif(spec_file: str, data_dir: str | None, out: str, workers: int,
           scheduler: str | None, quiet: bool, as_json: bool) -> None:
    """Sweep the scenarios of SPEC_FILE (TOML, docs/whatif.md of the source repository)
    through the planner."""
    from greenepoch.data.intensity.source import data_dir as resolve
    from greenepoch.planner.whatif import load_spec, run_sweep

    spec = load_spec(spec_file)
    root = resolve(data_dir)
    data = None if root is None else str(root.resolve())
    result = run_sweep(spec, out, data=data, workers=workers, scheduler=scheduler,
                       progress=not quiet)
    frame = result.frame
    if as_json:
        records = json.loads(frame.reset_index().to_json(orient="records"))
        click.echo(json.dumps(records, indent=2))
    else:
        from greenepoch.planner.whatif.views import planned_on

        source = f"real data in {data}" if data else "synthetic intensities"
        click.echo(f"{result.done} of {result.total} scenarios ({result.reused} from {out}, "
                   f"{result.backend}; {source}; planned on {planned_on(frame)})\n")
        click.echo(whatif_tables(frame))
    if result.interrupted:
        click.echo(f"greenepoch: interrupted: kept {result.done} of {result.total} rows in "
                   f"{out}; rerun the same command to resume", err=True)
        sys.exit(130)
