"""Slurm export: one sbatch script per plan segment, one per checkpoint move, and a
``submit.sh`` for the chain.

Per segment: ``--begin`` at its start (UTC; ``submit.sh`` runs sbatch with
``TZ=UTC``), ``--time`` covering it (whole minutes, rounded up) with ``--deadline`` 59
s after its end and ``--time-min=1`` (Slurm cuts the limit of every start, requeues
included, to end by the deadline; a start that cannot get a minute ends as DEADLINE),
GPUs (``--gres=gpu:N`` per node or ``--gpus=N``) and ``--nodes``,
partition/account/cluster/qos of its zone, ``--requeue``, and
``--comment=greenepoch:<plan>:<job>:<segment>`` which ``greenepoch slurm status`` uses
to find the segment again.

Launch (the zone's ``launcher``): "torchrun" and "srun" start the training with
``srun`` on every allocated node, the rendezvous (MASTER_ADDR: the allocation's
first host, MASTER_PORT, NODE_RANK, WORLD_SIZE) in the environment; the checkpoint
signal is ``--signal=<sig>@<lead>``, which Slurm sends to every process of the step
(checked on Slurm 22.05: every task of every node gets it).  "none" runs the command
once in the batch shell (one node), with ``--signal=B:<sig>@<lead>``: the batch shell
forwards it to the training.

Checkpoint moves: when consecutive segments of a job are in zones whose checkpoint
stores differ, a ``transfer-<segment script>`` job (1 task, no GPUs) on the
destination zone's cluster runs the job's ``checkpoint_copy`` in the window the plan
reserved (``--begin`` at the previous segment's end), and the next segment waits for
it (``afterok``).  ``submit.sh`` adds ``--dependency=afterany:<previous segment>``
(same cluster, or any with ``[slurm] federation = true``) and records job ids in
``job_ids.tsv``.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from greenepoch.planner.exports import torchrun
from greenepoch.planner.exports.common import (
    SUBMITTED,
    ExportError,
    Segment,
    checkpoint_dirs,
    iso,
    plan_id,
    plan_segments,
    require_future,
    slug,
    tail_s,
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


#: Prefix of a checkpoint move's script: ``transfer-<the next segment's script>``.
TRANSFER_PREFIX = "transfer-"
#: Step name of the copy in a transfer job's comment, after the segment.
TRANSFER_TAG = "transfer"


@dataclass(frozen=True)
class SlurmTransfer:
    """The checkpoint move before a segment: ``argv`` copies ``source`` (the previous
    zone's checkpoint_url) to ``destination`` (this zone's checkpoint_dir), from
    ``begin`` (the previous segment's end) to ``until`` (this segment's start)."""

    script: str
    from_zone: str
    begin: pd.Timestamp
    until: pd.Timestamp
    time_minutes: int
    source: str
    destination: str
    argv: tuple[str, ...]
    depends_on: str | None  # script of the previous segment when chained


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
    depends_on: str | None  # script of the job it waits for (segment or transfer)
    launcher: str = "none"
    checkpoint_dir: str = ""
    transfer: SlurmTransfer | None = None  # the checkpoint move it waits for (afterok)
    tail_s: int = 0  # run allowed past the planned end (the job's last segment)

    @property
    def dependency(self) -> str | None:
        """Slurm dependency type on ``depends_on``."""
        if self.depends_on is None:
            return None
        return "afterok" if self.transfer is not None else "afterany"


def comment(pid: str, seg: Segment, step: str = "") -> str:
    """``greenepoch:<plan>:<job>:<segment>``, ``:transfer`` added for the checkpoint move
    before the segment."""
    return f"{COMMENT_PREFIX}:{pid}:{seg.job_index}:{seg.index}" + (f":{step}" if step else "")


def parse_tag(text: str) -> tuple[str, int, int, str] | None:
    """Plan id, job index, segment and step ("segment" or "transfer") of a comment
    written by :func:`comment`; None for any other text."""
    parts = (text or "").split(":")
    if len(parts) not in (4, 5) or parts[0] != COMMENT_PREFIX:
        return None
    step = parts[4] if len(parts) == 5 else "segment"
    if step not in ("segment", TRANSFER_TAG):
        return None
    try:
        return parts[1], int(parts[2]), int(parts[3]), step
    except ValueError:
        return None


def parse_comment(text: str) -> tuple[str, int, int] | None:
    """Plan id, job index and segment of a segment's comment (None for a transfer's)."""
    tag = parse_tag(text)
    return None if tag is None or tag[3] != "segment" else tag[:3]


def gpu_request(gpus: int, zone: SlurmZone) -> tuple[int, str]:
    """Nodes and the GPU option: ``--gres=gpu:<per node>`` when the GPUs split evenly
    over ``ceil(gpus / gpus_per_node)`` nodes, otherwise ``--gpus=<total>``."""
    per_node = zone.gpus_per_node or gpus
    nodes = math.ceil(gpus / per_node)
    if zone.gpu_flag == "gres" and gpus % nodes == 0:
        return nodes, f"--gres=gpu:{gpus // nodes}"
    return nodes, f"--gpus={gpus}"


def deadline(seg: Segment, tail: int = 0) -> pd.Timestamp:
    """``--deadline``: the window end (plus ``tail`` s for a job's last segment,
    :func:`~planner.exports.common.tail_s`) plus 59 s, so that an on-time start keeps
    its whole ``--time`` (Slurm floors the cut limit to whole minutes), but never after
    the job's own deadline when the plan records it (a segment that ends at the job's
    deadline must not run into the 59 s past it)."""
    end = seg.end + pd.Timedelta(seconds=tail + DEADLINE_SLACK_S)
    return end if seg.job_deadline is None else min(end, seg.job_deadline)


def per_node(item: SlurmSegment) -> int | None:
    """GPUs on each node when the request fixes them (``--gres=gpu:N`` per node); None
    for ``--gpus=<total>``, which Slurm may spread unevenly."""
    if not item.gpu_option.startswith("--gres="):
        return None
    return item.segment.gpus // item.nodes


def store_differs(prev: SlurmZone, zone: SlurmZone, settings: JobSettings,
                  job: str) -> tuple[str, str] | None:
    """(source, destination) of the checkpoint move from zone ``prev`` to ``zone``;
    None when the destination already reads the source (one shared filesystem)."""
    src = prev.checkpoint_source(settings, job)
    dst = zone.checkpoint_path(settings, job)
    return None if src == dst else (src, dst)


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
    config.check_plan_jobs([job.name for job in plan.jobs])
    _check_zone_dirs(config, segments)
    out: list[SlurmSegment] = []
    previous: dict[int, SlurmSegment] = {}
    for seg in segments:
        zone = config.slurm_zone(seg.zone)
        settings = _settings(config, seg)
        nodes, gpu_option = gpu_request(seg.gpus, zone)
        launcher = zone.launcher_for(settings.command)
        if launcher == "none" and nodes > 1:
            raise ExportError(
                f"segment {seg.index} of job {seg.job!r} needs {nodes} nodes ({seg.gpus} GPUs) "
                f"in zone {seg.zone!r}, whose launcher is 'none' (the command runs once, on "
                f"the first node); set [zones.{json.dumps(seg.zone)}.slurm] launcher to "
                "'torchrun' or 'srun', or plan at most one node's GPUs there")
        if launcher == "torchrun":
            _check_torchrun(seg, settings.command, nodes)
        minutes = max(1, math.ceil(seg.duration_s / 60))
        lead = min(settings.lead_s(seg.save_s), minutes * 60, 65535)
        tail = tail_s(seg, lead)
        minutes = max(1, math.ceil((seg.duration_s + tail) / 60))
        prev = previous.get(seg.job_index)
        chained = prev is not None and (prev.zone.cluster == zone.cluster
                                        or config.slurm_federation)
        name = f"j{seg.job_index:02d}-{slug(seg.job, 40)}-s{seg.index:03d}.sbatch"
        move = None  # the checkpoint moves only between zones
        if prev is not None and prev.segment.zone != seg.zone:
            move = store_differs(prev.zone, zone, settings, seg.job)
        transfer = None
        if prev is not None and move is not None:
            transfer = _transfer(prev, seg, name, settings, move, chained)
        depends = transfer.script if transfer else prev.script if prev and chained else None
        item = SlurmSegment(seg, name, zone, nodes, gpu_option, minutes, lead, depends,
                            launcher, zone.checkpoint_path(settings, seg.job), transfer, tail)
        previous[seg.job_index] = item
        out.append(item)
    return out


def _check_torchrun(seg: Segment, command: tuple[str, ...], nodes: int) -> None:
    """Refuse a torchrun launch that cannot work: no torchrun to add the flags to, or
    ``--standalone`` on several nodes (each node would train alone)."""
    try:
        at = torchrun.insert_at(command)
    except ExportError as exc:
        raise ExportError(f"zone {seg.zone!r}, job {seg.job!r}: {exc}") from exc
    if nodes > 1 and "standalone" in torchrun.given_options(command, at):
        raise ExportError(
            f"segment {seg.index} of job {seg.job!r} runs on {nodes} nodes in zone "
            f"{seg.zone!r} but its torchrun command has --standalone (each node would "
            "train alone); remove --standalone: the export adds the rendezvous flags")


def _transfer(prev: SlurmSegment, seg: Segment, name: str, settings: JobSettings,
              move: tuple[str, str], chained: bool) -> SlurmTransfer:
    """The checkpoint move before segment ``seg`` (script ``name``) from ``prev``."""
    begin = prev.segment.end
    minutes = max(1, math.ceil((seg.start - begin).total_seconds() / 60))
    src, dst = move
    return SlurmTransfer(TRANSFER_PREFIX + name, prev.segment.zone, begin, seg.start, minutes,
                         src, dst, settings.copy_argv(seg.job, src, dst),
                         prev.script if chained else None)


def _check_zone_dirs(config: ClusterConfig, segments: list[Segment]) -> None:
    """Refuse two jobs sharing a checkpoint directory in the zones they run in (the
    zone's checkpoint_dir, else the job's)."""
    checkpoint_dirs(
        ((s.job, s.zone, config.slurm_zone(s.zone).checkpoint_path(config.job(s.job), s.job),
          config.job(s.job).workdir) for s in segments),
        hint=" or in [zones.<zone>.slurm] checkpoint_dir")


def _quote(text: str) -> str:
    return shlex.quote(text)


def _resume_words(args: tuple[str, ...]) -> str:
    """Bash words for the resume arguments, ``{checkpoint}`` -> ``"$latest"``."""
    words = []
    for arg in args:
        parts = arg.split("{checkpoint}")
        words.append('"$latest"'.join(_quote(p) if p else "" for p in parts) or "''")
    return " ".join(words)


def _header(name: str, begin: pd.Timestamp, minutes: int, until: pd.Timestamp,
            zone: SlurmZone, script: str, tag: str) -> list[str]:
    """``#SBATCH`` directives every job of the export has."""
    directives = [
        f"--job-name={name}",
        f"--begin={begin.strftime('%Y-%m-%dT%H:%M:%S')}",
        f"--time={minutes}",
        f"--deadline={until.strftime('%Y-%m-%dT%H:%M:%S')}",
        "--open-mode=append",
        f"--output=logs/{script.removesuffix('.sbatch')}-%j.out",
        f"--comment={tag}",
    ]
    for key in ("partition", "account", "qos"):
        if getattr(zone, key):
            directives.append(f"--{key}={getattr(zone, key)}")
    if zone.cluster:
        directives.append(f"--clusters={zone.cluster}")
    return [f"#SBATCH {d}" for d in directives]


def _exports(env: dict[str, str]) -> list[str]:
    return [f"export {k}={_quote(v)}" for k, v in env.items()]


def launch_options(item: SlurmSegment) -> tuple[list[str], list[str]]:
    """The allocation's task directives and the ``srun`` options of the step: one task
    per node for torchrun, one per GPU for srun (``--ntasks`` when the GPUs do not
    split evenly over the nodes)."""
    if item.launcher == "torchrun":
        return ["--ntasks-per-node=1"], ["--ntasks-per-node=1"]
    even = per_node(item)
    tasks = f"--ntasks-per-node={even}" if even else f"--ntasks={item.segment.gpus}"
    return [tasks], [tasks]


def _torchrun_words(item: SlurmSegment, command: tuple[str, ...]) -> tuple[int, list[str]]:
    """Insertion point and the torchrun options to add (bash words, expanded in the
    step so that each node reads its own SLURM_NODEID)."""
    at = torchrun.insert_at(command)
    given = torchrun.given_options(command, at)
    even = per_node(item)
    values = {"nnodes": '"$SLURM_NNODES"', "node-rank": '"$SLURM_NODEID"',
              "master-addr": '"$MASTER_ADDR"', "master-port": '"$MASTER_PORT"',
              "nproc-per-node": str(even) if even else '"$SLURM_GPUS_ON_NODE"'}
    return at, torchrun.missing_flags(given, values)


def _step(item: SlurmSegment, settings: JobSettings) -> str:
    """The bash program each task of the srun step runs: the training's argv arrives as
    its positional parameters (never spliced into the text)."""
    sig = settings.checkpoint_signal
    lines = ['export NODE_RANK="$SLURM_NODEID"']
    if item.launcher == "srun":
        lines.append('export RANK="$SLURM_PROCID" LOCAL_RANK="$SLURM_LOCALID" '
                     'WORLD_SIZE="$SLURM_NTASKS"')
        lines.append('exec "$@"')
        return "; ".join(lines)
    at, words = _torchrun_words(item, settings.command)
    if sig in ("USR1", "USR2"):
        # Slurm signals every process of the step: torchrun's agent would die of it (it
        # handles TERM, INT and HUP only); ignored here, its workers set their handler
        lines.append(f'trap "" {sig}')
    args = " ".join(words)
    lines.append(f'exec "${{@:1:{at}}}"' + (f" {args}" if args else "")
                 + f' "${{@:{at + 1}}}"')
    return "; ".join(lines)


def sbatch_script(item: SlurmSegment, pid: str, settings: JobSettings) -> str:
    """The batch script of one segment (bash)."""
    seg, zone = item.segment, item.zone
    sig = settings.checkpoint_signal
    on_nodes = item.launcher != "none"
    lines = ["#!/bin/bash"]
    lines += _header(f"ge-{slug(seg.job, 40)}-s{seg.index}", seg.start, item.time_minutes,
                     deadline(seg, item.tail_s), zone, item.script, comment(pid, seg))
    tasks, srun_opts = launch_options(item) if on_nodes else ([], [])
    lines += [f"#SBATCH {d}" for d in [
        # every (re)start gets its limit cut to end by the deadline (whole minutes)
        "--time-min=1",
        f"--nodes={item.nodes}",
        item.gpu_option,
        *tasks,
        # srun steps: Slurm signals every task; batch shell only: it forwards
        f"--signal={'' if on_nodes else 'B:'}{sig}@{item.signal_lead_s}",
        "--requeue",
    ]]
    env = {
        "GREENEPOCH_PLAN_ID": pid,
        "GREENEPOCH_JOB": seg.job,
        "GREENEPOCH_SEGMENT": str(seg.index),
        "GREENEPOCH_SEGMENTS": str(seg.count),
        "GREENEPOCH_ZONE": seg.zone,
        "GREENEPOCH_WINDOW_START": iso(seg.start),
        "GREENEPOCH_WINDOW_END": iso(seg.end),
        "GREENEPOCH_GPUS": str(seg.gpus),
        "GREENEPOCH_CHECKPOINT_DIR": item.checkpoint_dir,
        **({} if seg.job_deadline is None else {"GREENEPOCH_JOB_DEADLINE": iso(seg.job_deadline)}),
        **dict(settings.env),
    }
    lines += [
        f"# greenepoch plan {pid}: job {json.dumps(seg.job)} segment {seg.index} (of 0.."
        f"{seg.count - 1}), zone {json.dumps(seg.zone)}, launcher {item.launcher}",
        f"# window {iso(seg.start)} .. {iso(seg.end)} (UTC; submit with TZ=UTC, as "
        f"{SUBMIT} does)",
        "set -u",
    ]
    lines += _exports(env)
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
    lines.append('echo "greenepoch: segment $GREENEPOCH_SEGMENT (of 0..$((GREENEPOCH_SEGMENTS'
                 ' - 1))), restart ${SLURM_RESTART_COUNT:-0}, resume from ${latest:-nothing}"'
                 " >&2")
    if on_nodes:
        lines += [
            "# rendezvous: the first host of the allocation is the master",
            'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            'if [ -z "$MASTER_ADDR" ]; then echo "greenepoch: no host in'
            ' SLURM_JOB_NODELIST=${SLURM_JOB_NODELIST:-}" >&2; exit 1; fi',
            f"export MASTER_ADDR MASTER_PORT={zone.master_port} NNODES=\"$SLURM_NNODES\""
            f" WORLD_SIZE={seg.gpus}",
            f"launch=(srun {' '.join(srun_opts)} --kill-on-bad-exit=1 bash -c "
            f"{_quote(_step(item, settings))} greenepoch-step)",
        ]
        start, sig_lines = '"${launch[@]}" "${cmd[@]}" &', []
    else:
        start = '"${cmd[@]}" &'
        sig_lines = [f"trap 'echo \"greenepoch: {sig} received, asking the training to "
                     f"checkpoint\" >&2; kill -s {sig} \"$child\" 2>/dev/null' {sig}"]
    lines += [
        # the traps come first: a signal in the instant after the launch must not be lost
        # (the training is started with the default handlers of the trapped signals)
        *sig_lines,
        "trap 'kill -s TERM \"$child\" 2>/dev/null' TERM",
        "# job control on for the launch only: a background command of a non-interactive",
        "# shell would start with INT and QUIT ignored; it also gets its own process group",
        "set -m",
        start,
        "child=$!",
        "set +m",
        "rc=0",
        "while :; do",
        '    wait "$child"; rc=$?',
        '    kill -0 "$child" 2>/dev/null || break  # wait was cut short by a signal',
        "done",
        'exit "$rc"',
    ]
    return "\n".join(lines) + "\n"


def transfer_script(item: SlurmSegment, pid: str, settings: JobSettings) -> str:
    """The batch script of the checkpoint move before segment ``item`` (bash): one task,
    no GPUs, on the destination zone's cluster; the copy's argv is quoted word by word
    (never run by a shell's parser)."""
    seg, move = item.segment, item.transfer
    assert move is not None
    # the copy may end up to 59 s after the next segment's start (whole minutes), but
    # Slurm must be able to start it at its begin time
    until = max(move.until, move.begin + pd.Timedelta(minutes=move.time_minutes))
    lines = ["#!/bin/bash"]
    lines += _header(f"ge-{slug(seg.job, 40)}-t{seg.index}", move.begin, move.time_minutes,
                     until + pd.Timedelta(seconds=DEADLINE_SLACK_S), item.zone, move.script,
                     comment(pid, seg, TRANSFER_TAG))
    lines += ["#SBATCH --nodes=1", "#SBATCH --ntasks=1"]
    lines += [
        f"# greenepoch plan {pid}: job {json.dumps(seg.job)}, checkpoint move from zone "
        f"{json.dumps(move.from_zone)} to {json.dumps(seg.zone)} before segment {seg.index}",
        f"# window {iso(move.begin)} .. {iso(move.until)} (UTC)",
        "set -u",
    ]
    lines += _exports({"GREENEPOCH_PLAN_ID": pid, "GREENEPOCH_JOB": seg.job,
                       "GREENEPOCH_SEGMENT": str(seg.index), "GREENEPOCH_ZONE": seg.zone,
                       "GREENEPOCH_FROM_ZONE": move.from_zone,
                       "GREENEPOCH_CHECKPOINT_SOURCE": move.source,
                       "GREENEPOCH_CHECKPOINT_DIR": move.destination, **dict(settings.env)})
    if settings.workdir:
        lines.append(f"cd -- {_quote(settings.workdir)} || exit 1")
    lines += [
        'mkdir -p -- "$GREENEPOCH_CHECKPOINT_DIR" || exit 1',
        'echo "greenepoch: copying the checkpoint of $GREENEPOCH_FROM_ZONE to'
        ' $GREENEPOCH_ZONE" >&2',
        f"exec {' '.join(_quote(a) for a in move.argv)}",
    ]
    return "\n".join(lines) + "\n"


def submit_script(items: list[SlurmSegment], pid: str) -> str:
    """``submit.sh``: submit every checkpoint move and segment in order, a segment after
    the move it waits for (``afterok``) or after the previous segment (``afterany``)."""
    var = {it.script: f"id_{it.segment.key}" for it in items}
    var.update({it.transfer.script: f"id_{it.segment.key}t" for it in items if it.transfer})
    moves = sum(1 for it in items if it.transfer)
    lines = [
        "#!/usr/bin/env bash",
        f"# Submit greenepoch plan {pid}: {len(items)} segment(s) and {moves} checkpoint "
        f"move(s). Job ids go to {JOB_IDS}.",
        "# Times in the scripts are UTC: sbatch reads them with TZ=UTC.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "export TZ=UTC",
        'SBATCH="${SBATCH:-sbatch}"',
        f"mkdir -p {LOGS}",
        "# appended to: a re-export (--force) keeps the ids of earlier submissions",
        f"[ -s {JOB_IDS} ] || printf 'job_index\\tsegment\\tscript\\tslurm_job_id\\tcluster"
        f"\\tkind\\n' > {JOB_IDS}",
        "submitted=()",
        "submit() {  # submit KIND JOB SEGMENT SCRIPT [sbatch options...]",
        '    local kind=$1 job=$2 segment=$3 script=$4 out id cluster',
        "    shift 4",
        '    if ! out=$("$SBATCH" --parsable "$@" "$script"); then',
        '        echo "submit.sh: sbatch failed for $script; submitted so far:'
        ' ${submitted[*]:-none} (cancel with scancel)" >&2',
        "        exit 1",
        "    fi",
        '    id=${out%%;*}; cluster=""',
        '    [ "$id" = "$out" ] || cluster=${out#*;}',
        f"    printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$job\" \"$segment\" \"$script\""
        f" \"$id\" \"$cluster\" \"$kind\" >> {JOB_IDS}",
        '    submitted+=("$id")',
        '    REPLY=$id',
        "}",
    ]

    def submit(kind: str, seg: Segment, script: str, after: str | None, how: str) -> None:
        dep = f' --dependency={how}:"${var[after]}"' if after else ""
        lines.append(f"submit {kind} {seg.job_index} {seg.index} {script}{dep}")
        lines.append(f"{var[script]}=$REPLY")

    for it in items:
        seg, move = it.segment, it.transfer
        if move is not None:
            lines.append(f"# job {json.dumps(seg.job)}: checkpoint move "
                         f"{json.dumps(move.from_zone)} -> {json.dumps(seg.zone)}: "
                         f"{iso(move.begin)} .. {iso(move.until)}")
            submit(TRANSFER_TAG, seg, move.script, move.depends_on, "afterany")
        lines.append(f"# job {json.dumps(seg.job)} segment {seg.index} (of 0..{seg.count - 1}):"
                     f" {iso(seg.start)} .. {iso(seg.end)} in {json.dumps(seg.zone)}")
        submit("segment", seg, it.script, it.depends_on, it.dependency or "afterany")
    lines.append(f'echo "submitted ${{#submitted[@]}} job(s): ${{submitted[*]}}'
                 f' (ids in {JOB_IDS})"')
    return "\n".join(lines) + "\n"


def _transfer_entry(it: SlurmSegment, pid: str) -> dict[str, object]:
    move = it.transfer
    assert move is not None
    return {"job": it.segment.job, "job_index": it.segment.job_index,
            "segment": it.segment.index, "from_zone": move.from_zone, "zone": it.segment.zone,
            "begin": iso(move.begin), "until": iso(move.until),
            "time_minutes": move.time_minutes, "source": move.source,
            "destination": move.destination, "argv": list(move.argv),
            "script": move.script, "depends_on": move.depends_on,
            "comment": comment(pid, it.segment, TRANSFER_TAG)}


def export_slurm(plan: Plan, config: ClusterConfig,
                 now: pd.Timestamp | None = None) -> dict[str, str]:
    """Every file of the Slurm export (relative name -> text); nothing written."""
    items = plan_slurm(plan, config, now)
    pid = plan_id(plan)
    files: dict[str, str] = {}
    for it in items:
        settings = _settings(config, it.segment)
        files[it.script] = sbatch_script(it, pid, settings)
        if it.transfer is not None:
            files[it.transfer.script] = transfer_script(it, pid, settings)
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
            "deadline": iso(deadline(it.segment, it.tail_s)), "tail_s": it.tail_s,
            "job_deadline": None if it.segment.job_deadline is None
            else iso(it.segment.job_deadline),
            "script": it.script, "depends_on": it.depends_on,
            "comment": comment(pid, it.segment),
            "launcher": it.launcher, "master_port": it.zone.master_port,
            "checkpoint_dir": it.checkpoint_dir, "dependency": it.dependency,
            "transfer": None if it.transfer is None else it.transfer.script,
        } for it in items],
        "transfers": [_transfer_entry(it, pid) for it in items if it.transfer is not None],
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
