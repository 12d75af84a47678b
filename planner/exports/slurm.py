"""Slurm export: one sbatch script per plan segment and a ``submit.sh`` for the chain.

Per segment: ``--begin`` at its start (UTC; ``submit.sh`` runs sbatch with
``TZ=UTC``), ``--time`` covering it (whole minutes, rounded up) with ``--deadline`` 59
s after its end and ``--time-min=1`` (Slurm cuts the limit of every start, requeues
included, to end by the deadline; a start that cannot get a minute ends as DEADLINE),
GPUs (``--gres=gpu:N`` per node or ``--gpus=N``) and ``--nodes``,
partition/account/cluster/qos of its zone, ``--signal=B:USR1@<lead>`` (the batch shell
forwards the job's checkpoint signal to the training), ``--requeue``, and
``--comment=greenepoch:<plan>:<job>:<segment>`` which ``greenepoch slurm status`` uses
to find the segment again. ``submit.sh`` adds ``--dependency=afterany:<previous
segment>`` (same cluster, or any with ``[slurm] federation = true``) and records job
ids in ``job_ids.tsv``.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from greenepoch.planner.exports.common import (
    SUBMITTED,
    ExportError,
    Segment,
    iso,
    plan_id,
    plan_segments,
    require_future,
    slug,
    write_tree,
)
from greenepoch.planner.exports.config import ClusterConfig, JobSettings, SlurmZone
from greenepoch.planner.plan_doc import Plan

COMMENT_PREFIX = "greenepoch"
SUBMIT = "submit.sh"
JOB_IDS, LOGS = SUBMITTED  # "job_ids.tsv", "logs": kept by every re-export
INDEX = "export.json"
#: ``--deadline`` is this long after the window end (limits are whole minutes).
DEADLINE_SLACK_S = 59


@dataclass(frozen=True)
class SlurmSegment:
    """A segment with its Slurm request."""

    segment: Segment
    script: str          # file name of its sbatch script
    zone: SlurmZone
    nodes: int
    gpu_option: str      # e.g. "--gres=gpu:4" or "--gpus=6"
    time_minutes: int
    signal_lead_s: int
    depends_on: str | None  # script of the previous segment when chained


def comment(pid: str, seg: Segment) -> str:
    return f"{COMMENT_PREFIX}:{pid}:{seg.job_index}:{seg.index}"


def parse_comment(text: str) -> tuple[str, int, int] | None:
    parts = (text or "").split(":")
    if len(parts) != 4 or parts[0] != COMMENT_PREFIX:
        return None
    try:
        return parts[1], int(parts[2]), int(parts[3])
    except ValueError:
        return None


def gpu_request(gpus: int, zone: SlurmZone) -> tuple[int, str]:
    """Nodes and the GPU option: ``--gres=gpu:<per node>`` when the GPUs split evenly
    over ``ceil(gpus / gpus_per_node)`` nodes, otherwise ``--gpus=<total>``."""
    per_node = zone.gpus_per_node or gpus
    nodes = math.ceil(gpus / per_node)
    if zone.gpu_flag == "gres" and gpus % nodes == 0:
        return nodes, f"--gres=gpu:{gpus // nodes}"
    return nodes, f"--gpus={gpus}"


def deadline(seg: Segment) -> pd.Timestamp:
    """``--deadline``: the window end plus 59 s, so that an on-time start keeps its whole
    ``--time`` (Slurm floors the cut limit to whole minutes), but never after the job's
    own deadline when the plan records it (a segment that ends at the job's deadline
    must not run into the 59 s past it)."""
    end = seg.end + pd.Timedelta(seconds=DEADLINE_SLACK_S)
    return end if seg.job_deadline is None else min(end, seg.job_deadline)


def _settings(config: ClusterConfig, seg: Segment) -> JobSettings:
    settings = config.job(seg.job)
    if not settings.command:
        raise ExportError(
            f"job {seg.job!r} has no command to run; set [defaults] command or "
            f"[jobs.{json.dumps(seg.job)}] command in the clusters config")
    return settings


def plan_slurm(plan: Plan, config: ClusterConfig,
               now: pd.Timestamp | None = None) -> list[SlurmSegment]:
    """The Slurm request of every segment; raises before anything is written."""
    segments = plan_segments(plan)
    if not segments:
        raise ExportError("the plan has no segments to export")
    require_future(segments, now)
    config.check_plan_jobs([job.name for job in plan.jobs], {s.job for s in segments})
    out: list[SlurmSegment] = []
    previous: dict[int, SlurmSegment] = {}
    for seg in segments:
        zone = config.slurm_zone(seg.zone)
        settings = _settings(config, seg)
        nodes, gpu_option = gpu_request(seg.gpus, zone)
        minutes = max(1, math.ceil(seg.duration_s / 60))
        lead = min(settings.checkpoint_lead_s, minutes * 60, 65535)
        prev = previous.get(seg.job_index)
        depends = None
        if prev is not None and (prev.zone.cluster == zone.cluster or config.slurm_federation):
            depends = prev.script
        name = f"j{seg.job_index:02d}-{slug(seg.job, 40)}-s{seg.index:03d}.sbatch"
        item = SlurmSegment(seg, name, zone, nodes, gpu_option, minutes, lead, depends)
        previous[seg.job_index] = item
        out.append(item)
    return out


def _quote(text: str) -> str:
    return shlex.quote(text)


def _resume_words(args: tuple[str, ...]) -> str:
    """Bash words for the resume arguments, ``{checkpoint}`` -> ``"$latest"``."""
    words = []
    for arg in args:
        parts = arg.split("{checkpoint}")
        words.append('"$latest"'.join(_quote(p) if p else "" for p in parts) or "''")
    return " ".join(words)


def sbatch_script(item: SlurmSegment, pid: str, settings: JobSettings) -> str:
    """The batch script of one segment (bash)."""
    seg, zone = item.segment, item.zone
    ckpt = settings.checkpoint_path(seg.job)
    directives = [
        f"--job-name=ge-{slug(seg.job, 40)}-s{seg.index}",
        f"--begin={seg.start.strftime('%Y-%m-%dT%H:%M:%S')}",
        f"--time={item.time_minutes}",
        # every (re)start gets its limit cut to end by then (limits are whole minutes)
        f"--deadline={deadline(seg).strftime('%Y-%m-%dT%H:%M:%S')}",
        "--time-min=1",
        f"--nodes={item.nodes}",
        item.gpu_option,
        f"--signal=B:{settings.checkpoint_signal}@{item.signal_lead_s}",
        "--requeue",
        "--open-mode=append",
        f"--output=logs/{item.script.removesuffix('.sbatch')}-%j.out",
        f"--comment={comment(pid, seg)}",
    ]
    for key in ("partition", "account", "qos"):
        if getattr(zone, key):
            directives.append(f"--{key}={getattr(zone, key)}")
    if zone.cluster:
        directives.append(f"--clusters={zone.cluster}")
    env = {
        "GREENEPOCH_PLAN_ID": pid,
        "GREENEPOCH_JOB": seg.job,
        "GREENEPOCH_SEGMENT": str(seg.index),
        "GREENEPOCH_SEGMENTS": str(seg.count),
        "GREENEPOCH_ZONE": seg.zone,
        "GREENEPOCH_WINDOW_START": iso(seg.start),
        "GREENEPOCH_WINDOW_END": iso(seg.end),
        "GREENEPOCH_GPUS": str(seg.gpus),
        "GREENEPOCH_CHECKPOINT_DIR": ckpt,
        **({} if seg.job_deadline is None else {"GREENEPOCH_JOB_DEADLINE": iso(seg.job_deadline)}),
        **dict(settings.env),
    }
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH {d}" for d in directives]
    lines += [
        f"# greenepoch plan {pid}: job {json.dumps(seg.job)} segment {seg.index + 1} of "
        f"{seg.count}, zone {json.dumps(seg.zone)}",
        f"# window {iso(seg.start)} .. {iso(seg.end)} (UTC; submit with TZ=UTC, as "
        f"{SUBMIT} does)",
        "set -u",
    ]
    lines += [f"export {k}={_quote(v)}" for k, v in env.items()]
    if settings.workdir:
        lines.append(f"cd -- {_quote(settings.workdir)} || exit 1")
    lines += [
        'mkdir -p -- "$GREENEPOCH_CHECKPOINT_DIR"',
        "# resume from the newest entry of the checkpoint dir (dot-files ignored)",
        "latest=",
        'for f in "$GREENEPOCH_CHECKPOINT_DIR"/*; do',
        '    [ -e "$f" ] || continue',
        '    if [ -z "$latest" ] || [ "$f" -nt "$latest" ]; then latest=$f; fi',
        "done",
        'export GREENEPOCH_RESUME_FROM="$latest"',
        f"cmd=({' '.join(_quote(a) for a in settings.command)})",
    ]
    if settings.resume_args:
        lines.append(f'if [ -n "$latest" ]; then cmd+=({_resume_words(settings.resume_args)});'
                     " fi")
    sig = settings.checkpoint_signal
    lines += [
        'echo "greenepoch: segment $((GREENEPOCH_SEGMENT + 1))/$GREENEPOCH_SEGMENTS,'
        ' restart ${SLURM_RESTART_COUNT:-0}, resume from ${latest:-nothing}" >&2',
        "# job control on for the launch only: a background command of a non-interactive",
        "# shell would start with INT and QUIT ignored; it also gets its own process group",
        "set -m",
        '"${cmd[@]}" &',
        "child=$!",
        "set +m",
        f"trap 'echo \"greenepoch: {sig} received, asking the training to checkpoint\" >&2;"
        f" kill -s {sig} \"$child\" 2>/dev/null' {sig}",
        "trap 'kill -s TERM \"$child\" 2>/dev/null' TERM",
        "rc=0",
        "while :; do",
        '    wait "$child"; rc=$?',
        '    kill -0 "$child" 2>/dev/null || break  # wait was cut short by a signal',
        "done",
        'exit "$rc"',
    ]
    return "\n".join(lines) + "\n"


def submit_script(items: list[SlurmSegment], pid: str) -> str:
    """``submit.sh``: submit every segment in order, chaining with afterany."""
    var = {it.script: f"id_{it.segment.key}" for it in items}
    lines = [
        "#!/usr/bin/env bash",
        f"# Submit greenepoch plan {pid}: {len(items)} segment(s). Job ids go to {JOB_IDS}.",
        "# Times in the scripts are UTC: sbatch reads them with TZ=UTC.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "export TZ=UTC",
        'SBATCH="${SBATCH:-sbatch}"',
        f"mkdir -p {LOGS}",
        "# appended to: a re-export (--force) keeps the ids of earlier submissions",
        f"[ -s {JOB_IDS} ] || printf 'job_index\\tsegment\\tscript\\tslurm_job_id\\tcluster\\n'"
        f" > {JOB_IDS}",
        "submitted=()",
        "submit() {  # submit JOB SEGMENT SCRIPT [sbatch options...]",
        '    local job=$1 segment=$2 script=$3 out id cluster',
        "    shift 3",
        '    if ! out=$("$SBATCH" --parsable "$@" "$script"); then',
        '        echo "submit.sh: sbatch failed for $script; submitted so far:'
        ' ${submitted[*]:-none} (cancel with scancel)" >&2',
        "        exit 1",
        "    fi",
        '    id=${out%%;*}; cluster=""',
        '    [ "$id" = "$out" ] || cluster=${out#*;}',
        f"    printf '%s\\t%s\\t%s\\t%s\\t%s\\n' \"$job\" \"$segment\" \"$script\" \"$id\""
        f" \"$cluster\" >> {JOB_IDS}",
        '    submitted+=("$id")',
        '    REPLY=$id',
        "}",
    ]
    for it in items:
        seg = it.segment
        opts = []
        if it.depends_on:
            opts.append(f'--dependency=afterany:"${var[it.depends_on]}"')
        lines.append(f"# job {json.dumps(seg.job)} segment {seg.index + 1}/{seg.count}: "
                     f"{iso(seg.start)} .. {iso(seg.end)} in {json.dumps(seg.zone)}")
        lines.append(f"submit {seg.job_index} {seg.index} {it.script}"
                     + "".join(" " + o for o in opts))
        lines.append(f'{var[it.script]}=$REPLY')
    lines.append(f'echo "submitted ${{#submitted[@]}} job(s): ${{submitted[*]}}'
                 f' (ids in {JOB_IDS})"')
    return "\n".join(lines) + "\n"


def export_slurm(plan: Plan, config: ClusterConfig,
                 now: pd.Timestamp | None = None) -> dict[str, str]:
    """Every file of the Slurm export (relative name -> text); nothing written."""
    items = plan_slurm(plan, config, now)
    pid = plan_id(plan)
    files: dict[str, str] = {}
    for it in items:
        files[it.script] = sbatch_script(it, pid, _settings(config, it.segment))
    files[SUBMIT] = submit_script(items, pid)
    index = {
        "schema_version": plan.schema_version,
        "plan_id": pid,
        "scheduler": "slurm",
        "segments": [{
            "job": it.segment.job, "job_index": it.segment.job_index,
            "segment": it.segment.index, "zone": it.segment.zone,
            "start": iso(it.segment.start), "end": iso(it.segment.end),
            "gpus": it.segment.gpus, "nodes": it.nodes, "gpu_option": it.gpu_option,
            "time_minutes": it.time_minutes, "signal_lead_s": it.signal_lead_s,
            "deadline": iso(deadline(it.segment)),
            "job_deadline": None if it.segment.job_deadline is None
            else iso(it.segment.job_deadline),
            "script": it.script, "depends_on": it.depends_on,
            "comment": comment(pid, it.segment),
        } for it in items],
    }
    files[INDEX] = json.dumps(index, indent=2) + "\n"
    return files


def write_slurm(plan: Plan, config: ClusterConfig, out_dir: str | Path,
                now: pd.Timestamp | None = None, *, force: bool = False) -> Path:
    """Write the export to ``out_dir``; over a submitted one only with ``force``
    (:func:`~planner.exports.common.write_tree` keeps its job ids and logs)."""
    files = export_slurm(plan, config, now)
    scripts = frozenset(n for n in files if n.endswith((".sbatch", ".sh")))
    return write_tree(files, out_dir, executable=scripts, force=force)


def submit(out_dir: str | Path, env: dict[str, str] | None = None,
           timeout: float = 300) -> list[dict[str, str]]:
    """Run ``submit.sh`` of an export directory; return the rows it added to
    ``job_ids.tsv`` (rows of earlier submissions stay in the file)."""
    out = Path(out_dir)
    before = len(read_job_ids(out)) if (out / JOB_IDS).exists() else 0
    try:
        proc = subprocess.run(["bash", str(out / SUBMIT)], capture_output=True, text=True,
                              env=env, timeout=timeout)
    except FileNotFoundError as exc:
        raise ExportError(f"cannot run bash to submit ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"{out / SUBMIT} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ExportError(f"submitting failed: {detail[-1] if detail else 'no output'} "
                          f"(job ids submitted so far are in {out / JOB_IDS})")
    return read_job_ids(out)[before:]  # this submission's rows


def read_job_ids(out_dir: str | Path) -> list[dict[str, str]]:
    """The rows of ``job_ids.tsv`` (none when it is empty: submit.sh then writes the
    header)."""
    lines = (Path(out_dir) / JOB_IDS).read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]
