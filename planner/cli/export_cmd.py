"""``greenepoch export``: hand a plan to a cluster scheduler (Slurm, Kubernetes) or
write its segment table (JSON, CSV).  Contracts: docs/exports.md."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from greenepoch.data.atomic import write_atomic
from greenepoch.planner.cli.options import config_option, plan_argument
from greenepoch.planner.exports import k8s as k8s_export
from greenepoch.planner.exports import slurm as slurm_export
from greenepoch.planner.exports.common import ExportError
from greenepoch.planner.exports.config import load_config
from greenepoch.planner.exports.generic import to_csv, to_json
from greenepoch.planner.plan import Plan

force_option = click.option(
    "--force", is_flag=True,
    help="Replace an earlier export in --out that was submitted (it holds job_ids.tsv or "
         "logs/); those two are kept, never deleted.")


def _print_files(files: dict[str, str]) -> None:
    for name in sorted(files, key=lambda n: (n.startswith("submit") or n == "resume.sh", n)):
        click.echo(f"==> {name} <==")
        click.echo(files[name], nl=False)


@click.group()
def export() -> None:
    """Export a plan for a scheduler (slurm, k8s) or as a segment table (json, csv)."""


@export.command()
@plan_argument
@click.option("--out", "out_dir", type=click.Path(path_type=str), default=None,
              help="Directory to write the sbatch scripts and submit.sh into.")
@config_option
@click.option("--dry-run", is_flag=True, help="Print the scripts; write and submit nothing.")
@click.option("--submit", "do_submit", is_flag=True,
              help="After writing, run submit.sh (sbatch must work here).")
@force_option
def slurm(plan_file: str, out_dir: str | None, config_file: str | None, dry_run: bool,
          do_submit: bool, force: bool) -> None:
    """One sbatch script per segment of PLAN.json, chained by submit.sh."""
    if dry_run and do_submit:
        raise click.UsageError("--dry-run and --submit exclude each other")
    if not dry_run and out_dir is None:
        raise click.UsageError("--out DIR is required (or use --dry-run)")
    plan = Plan.from_json(plan_file)
    config = load_config(config_file)
    if dry_run:
        _print_files(slurm_export.export_slurm(plan, config))
        return
    assert out_dir is not None
    target = slurm_export.write_slurm(plan, config, out_dir, force=force)
    n = len(list(target.glob("*.sbatch")))
    moves = len(list(target.glob(f"{slurm_export.TRANSFER_PREFIX}*.sbatch")))
    click.echo(f"wrote {n} sbatch script(s) ({moves} checkpoint move(s)) and "
               f"{slurm_export.SUBMIT} to {target}")
    if do_submit:
        ids = slurm_export.submit(target)
        for row in ids:
            what = (f"checkpoint move before segment {row['segment']}"
                    if row.get("kind") == slurm_export.TRANSFER_TAG
                    else f"segment {row['segment']}")
            click.echo(f"submitted job {row['job_index']} {what}: "
                       f"Slurm job {row['slurm_job_id']}")
        click.echo(f"job ids recorded in {target / slurm_export.JOB_IDS}")
    else:
        click.echo(f"submit with: bash {target / slurm_export.SUBMIT}")


@export.command("k8s")
@plan_argument
@click.option("--out", "out_dir", type=click.Path(path_type=str), default=None,
              help="Directory to write the manifests into.")
@config_option
@click.option("--kind", type=click.Choice(k8s_export.KINDS), default="cronjob",
              show_default=True,
              help="cronjob: fires at the window start; job: created suspended, "
                   "resume.sh lifts the suspension at the window start.")
@click.option("--dry-run", is_flag=True, help="Print the manifests; write nothing.")
@click.option("--validate", "crd_dir", default=None, is_flag=False, flag_value="",
              type=click.Path(path_type=str),
              help="Validate every manifest strictly (needs kubernetes-validate); give a "
                   "folder of CRDs to check Kueue objects too.")
@force_option
def k8s(plan_file: str, out_dir: str | None, config_file: str | None, kind: str,
        dry_run: bool, crd_dir: str | None, force: bool) -> None:
    """Kubernetes manifests for each segment of PLAN.json."""
    if not dry_run and out_dir is None:
        raise click.UsageError("--out DIR is required (or use --dry-run)")
    plan = Plan.from_json(plan_file)
    config = load_config(config_file)
    objs = k8s_export.manifests(plan, config, kind)
    if crd_dir is not None:
        from greenepoch.planner.exports.k8s_validate import KUBERNETES_VERSION, validate

        for group in objs.values():
            for obj in group:
                validate(obj, crd_dir or None)
        click.echo(f"validated {sum(map(len, objs.values()))} object(s) strictly against "
                   f"Kubernetes {KUBERNETES_VERSION}", err=True)
    if dry_run:
        _print_files(k8s_export.export_k8s(plan, config, kind))
        return
    assert out_dir is not None
    target = k8s_export.write_k8s(plan, config, out_dir, kind, force=force)
    click.echo(f"wrote {len(objs)} manifest file(s) to {target}; apply with: "
               f"kubectl apply -f {target}")
    if kind == "job":
        click.echo(f"then run {target / k8s_export.RESUME} to start each Job at its window")


def _table_command(name: str, render: object, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @plan_argument
    @click.option("--out", "out_file", type=click.Path(path_type=str), default=None,
                  help="File to write (default: standard output).")
    def command(plan_file: str, out_file: str | None) -> None:
        if out_file is not None and Path(out_file).resolve() == Path(plan_file).resolve():
            raise ExportError(f"--out {out_file}: is the plan file itself, which the table "
                              "would replace; give another file name")
        plan = Plan.from_json(plan_file)
        text = render(plan)  # type: ignore[operator]
        if out_file is None:
            sys.stdout.write(text)
        else:
            write_atomic(out_file, text)
            click.echo(f"wrote {out_file}", err=True)

    return command


export.add_command(_table_command(
    "json", to_json, "The segment table of PLAN.json as JSON (with its schema_version)."))
export.add_command(_table_command(
    "csv", to_csv, "The segment table of PLAN.json as CSV (schema_version in every row)."))

