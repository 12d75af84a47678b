"""``greenepoch report``: one static HTML report of a plan, a what-if sweep or a run log."""

from __future__ import annotations

from pathlib import Path

import click
from greenepoch.planner.cli.options import data_option, output_file


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@data_option
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              callback=output_file,
              help="HTML file to write (self-contained: figures are embedded).")
@click.option("--quiet", is_flag=True, help="Print only the path written.")
def report(source: str, data_dir: str | None, out: str, quiet: bool) -> None:
    """Write an HTML report of SOURCE: a plan JSON, a what-if results file or the log of
    a 'greenepoch run' (RUNLOG.jsonl)."""
    from greenepoch.data.intensity.source import data_dir as resolve
    from greenepoch.planner.report import build_report
    from greenepoch.planner.report.run_report import is_run_log, run_report

    if is_run_log(source):  # the intensities it saw are in the log: no --data needed
        made = run_report(source)
    else:
        root = resolve(data_dir)
        made = build_report(source, data=None if root is None else str(root))
    target = Path(out)
    made.write(target)
    if not quiet:
        click.echo("\n\n".join(made.text))
        click.echo("")
    click.echo(f"wrote {target} ({made.figures} figures, {target.stat().st_size // 1024} KiB)")
