"""``greenepoch slurm status``: compare what Slurm holds with the plan."""

from __future__ import annotations

import json
import sys

import click
from greenepoch.planner.cli.options import config_option, json_option, plan_argument
from greenepoch.planner.exports.config import load_config
from greenepoch.planner.exports.slurm import TRANSFER_TAG
from greenepoch.planner.exports.slurm_status import compare, read_squeue, squeue_json
from greenepoch.planner.plan import Plan


@click.group()
def slurm() -> None:
    """Inspect plans exported to Slurm."""


@slurm.command()
@plan_argument
@config_option  # to check partition, account and nodes too
@click.option("--squeue-json", "squeue_file", type=click.Path(path_type=str), default=None,
              help="Read this saved 'squeue --json' output instead of calling squeue.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with code 1 when drift is found.")
@json_option
def status(plan_file: str, config_file: str | None, squeue_file: str | None,
           fail_on_drift: bool, as_json: bool) -> None:
    """Compare the Slurm queue (squeue --json) with PLAN.json and report drift."""
    plan = Plan.from_json(plan_file)
    config = load_config(config_file) if config_file else None
    jobs = read_squeue(squeue_file) if squeue_file else squeue_json()
    rows, unplanned = compare(plan, jobs, config)
    drift = sum(len(r.drift) for r in rows) + len(unplanned)
    if as_json:
        click.echo(json.dumps({"segments": [r.as_dict() for r in rows], "unplanned": unplanned,
                               "drift": drift}, indent=2))
    else:
        for r in rows:
            ident = "-" if r.slurm_job_id is None else str(r.slurm_job_id)
            what = (f"checkpoint move before segment {r.segment}" if r.kind == TRANSFER_TAG
                    else f"segment {r.segment}")  # numbered from 0, as in the export
            click.echo(f"{json.dumps(r.job)} {what} [{r.zone}] {r.start}..{r.end} "
                       f"gpus={r.gpus}: slurm job {ident}, {r.state}")
            for d in r.drift:
                click.echo(f"    drift: {d}")
        for u in unplanned:
            click.echo(f"unplanned: Slurm job {u['slurm_job_id']} ({u['comment']}) matches "
                       "no segment of this plan")
        click.echo(f"{len(rows)} segment(s), {drift} drift item(s)")
    if drift and fail_on_drift:
        sys.exit(1)
