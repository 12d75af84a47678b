"""``greenepoch slurm status``: what the cluster holds (``squeue --json``) against the
plan.  Segments are found by their ``--comment=greenepoch:<plan>:<job>:<segment>``.

``squeue`` also lists jobs that ended (for ``MinJobAge``); only live jobs (pending,
running, requeued, ...) count as a segment's queue job. Drift, per planned segment:
``missing`` (no job at all and its window has not started), ``dead`` (its window has
not ended, no live job, and its newest ended job ended other than COMPLETED, e.g.
CANCELLED or FAILED), ``begin`` (eligible time differs from the planned start),
``gpus``, ``partition`` / ``account`` (against the config, when given), ``time`` (a
pending job's time limit shorter than the window), ``late`` (still pending after its
window started, with Slurm's reason), ``duplicate`` (several live jobs for one
segment). Live jobs of the plan that match no segment are reported as ``unplanned``.

Checkpoint moves (``transfer`` rows, before the segment they feed) are listed when
the queue holds one, or, given the clusters config, wherever the export made one
(then ``missing`` and ``dead`` apply to them too: a failed move leaves the next
segment pending for ever).  Segments are numbered from 0, as in the export.

A segment absent from squeue after its window started is not drift: it may have ended
early as planned (checkpoint signal) and been purged, or never run; squeue cannot tell
(its state is ``gone (finished or purged)``).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import param
from greenepoch.data.inputs import read_text
from greenepoch.data.timeparse import kind, shown
from greenepoch.planner.exports.common import ExportError, Segment, iso, plan_id, plan_segments
from greenepoch.planner.exports.config import ClusterConfig
from greenepoch.planner.exports.slurm import TRANSFER_TAG, gpu_request, parse_tag, store_differs
from greenepoch.planner.plan_doc import Plan

#: A pending job may wait this long past its planned start before it counts as late.
LATE_AFTER_S = 120

#: Base states of a job that has ended (squeue keeps them for MinJobAge).
ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
                   "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"})
#: Flags that mean the job runs again (e.g. PREEMPTED with requeue).
REQUEUE_FLAGS = frozenset({"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})


@dataclass
class SegmentStatus:
    job: str
    segment: int
    zone: str
    start: str
    end: str
    gpus: int
    slurm_job_id: int | None = None
    state: str = "not in queue"
    eligible: str | None = None
    ended: list[str] = field(default_factory=list)  # "<job id> <state>" of ended jobs
    drift: list[str] = field(default_factory=list)
    kind: str = "segment"  # or "transfer": the checkpoint move before the segment

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def squeue_json(env: dict[str, str] | None = None, timeout: float = 60) -> list[dict[str, Any]]:
    """The ``jobs`` of ``squeue --json``."""
    try:
        proc = subprocess.run(["squeue", "--json"], capture_output=True, text=True,
                              env=env or dict(os.environ), timeout=timeout)
    except FileNotFoundError as exc:
        raise ExportError("squeue is not installed or not on PATH; run this where the "
                          f"Slurm client works, or pass {param('squeue_file')} (a saved "
                          "'squeue --json' output)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"squeue --json did not answer within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        said = " / ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise ExportError(f"squeue --json failed (exit {proc.returncode}): {said or 'no message'}; "
                          f"check that slurmctld is reachable, or pass {param('squeue_file')} "
                          "(a saved 'squeue --json' output)")
    return parse_squeue(proc.stdout)


def read_squeue(squeue_file: str | Path) -> list[dict[str, Any]]:
    """The ``jobs`` of a saved ``squeue --json`` output (what :func:`squeue_json`
    would ask Slurm for)."""
    try:
        text = read_text(squeue_file)
    except (OSError, UnicodeDecodeError) as exc:  # binary junk is bad input too
        raise ExportError(f"{squeue_file}: cannot read ({exc})") from exc
    return parse_squeue(text)


def parse_squeue(text: str) -> list[dict[str, Any]]:
    try:
        jobs = json.loads(text)["jobs"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ExportError(f"cannot read squeue JSON ({exc}); expected the output of "
                          "'squeue --json'") from exc
    if not isinstance(jobs, list):
        raise ExportError("squeue JSON: 'jobs' is not a list")
    for i, job in enumerate(jobs):
        _check_job(job, f"squeue JSON jobs[{i}]")
    return jobs


#: Fields of a queue job that status reads: text, and numbers (Slurm 22.05 gives plain
#: numbers, later versions {"set": .., "infinite": .., "number": ..}).
_TEXT_FIELDS = ("comment", "name", "partition", "account", "state_reason", "tres_per_job",
                "tres_per_node")
_NUMBER_FIELDS = ("job_id", "eligible_time", "time_limit", "node_count")
_MAX_NUMBER = 2**32  # job ids, minutes, node counts, Unix seconds (to 2106) all fit


def _check_job(job: Any, where: str) -> None:
    """Refuse a queue entry of the wrong shape: skipping it would hide a segment's job
    (status would report it missing, or say nothing)."""
    fix = "expected the output of 'squeue --json'"
    if not isinstance(job, dict):
        raise ExportError(f"{where} = {shown(job)}: expected an object (a queue job), found "
                          f"{kind(job)}; {fix}")
    for key in _TEXT_FIELDS:
        value = job.get(key)
        if value is not None and not isinstance(value, str):
            raise ExportError(f"{where}.{key} = {shown(value)}: expected text, found "
                              f"{kind(value)}; {fix}")
    state = job.get("job_state")
    if state is not None and not (isinstance(state, str) or (
            isinstance(state, list) and all(isinstance(w, str) for w in state))):
        raise ExportError(f"{where}.job_state = {shown(state)}: expected text or a list of "
                          f"texts (e.g. \"PENDING\" or [\"PENDING\"]), found {kind(state)}; "
                          f"{fix}")
    for key in _NUMBER_FIELDS:
        value = job.get(key)
        number = value.get("number") if isinstance(value, dict) else value
        if value is None or number is None:
            continue
        if (isinstance(number, bool) or not isinstance(number, int | float)
                or not math.isfinite(number) or number != int(number)
                or not 0 <= number < _MAX_NUMBER):
            raise ExportError(f"{where}.{key} = {shown(value)}: expected a whole number from "
                              f"0 below 2**32 (or Slurm's {{\"number\": ...}}); {fix}")


def _number(value: Any) -> int | None:
    """Slurm 22.05 gives plain ints; later versions {"set":..,"number":..}."""
    if isinstance(value, dict):
        return int(value["number"]) if value.get("set", True) and "number" in value else None
    return int(value) if isinstance(value, int | float) else None


def _state(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value or "")


def is_live(job: dict[str, Any]) -> bool:
    """False for a job that has ended and will not run again."""
    words = set(_state(job.get("job_state")).replace(",", " ").split())
    return not (words & ENDED) or bool(words & REQUEUE_FLAGS)


def _job_id(job: dict[str, Any]) -> int:
    return _number(job.get("job_id")) or 0


def queued_gpus(job: dict[str, Any]) -> int | None:
    """Total GPUs a queue job asks for (per-node GRES times nodes, or per job)."""
    def count(tres: str) -> int | None:
        m = re.search(r"gpu(?::[^:,]+)?:(\d+)", tres or "")
        return int(m.group(1)) if m else None

    per_job = count(job.get("tres_per_job", ""))
    if per_job is not None:
        return per_job
    per_node = count(job.get("tres_per_node", ""))
    if per_node is not None:
        nodes = _number(job.get("node_count")) or 1
        return per_node * nodes
    return None


def compare(plan: Plan, jobs: list[dict[str, Any]], config: ClusterConfig | None = None,
            now: pd.Timestamp | None = None) -> tuple[list[SegmentStatus], list[dict[str, Any]]]:
    """Planned segments (and checkpoint moves) with their queue state and drift, and
    unplanned queue jobs.

    ``config``, when given, must map at least one of the plan's zones to Slurm: one
    that maps none (an empty file) would check nothing and look like no drift."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    pid = plan_id(plan)
    segments = plan_segments(plan)
    if config is not None:
        _require_slurm_zones(config, [s.zone for s in segments])
    by_key: dict[tuple[int, int], Segment] = {(s.job_index, s.index): s for s in segments}
    found: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    unplanned = []
    for job in jobs:
        tag = parse_tag(str(job.get("comment") or ""))
        if tag is None or tag[0] != pid:
            continue
        if (tag[1], tag[2]) in by_key and (tag[3] == "segment" or tag[2] > 0):
            found.setdefault(tag[1:], []).append(job)
        elif is_live(job):  # an ended stray job is history, not drift
            unplanned.append({"slurm_job_id": job.get("job_id"), "name": job.get("name"),
                              "comment": job.get("comment")})
    out = []
    for seg in segments:
        prev = by_key.get((seg.job_index, seg.index - 1))
        moves = found.get((seg.job_index, seg.index, TRANSFER_TAG), [])
        if prev is not None and (moves or _moved(config, prev, seg)):
            st = SegmentStatus(seg.job, seg.index, seg.zone, iso(prev.end), iso(seg.start), 0,
                               kind=TRANSFER_TAG)
            out.append(st)
            _queue_state(st, prev.end, seg.start, moves, now)
        st = SegmentStatus(seg.job, seg.index, seg.zone, iso(seg.start), iso(seg.end), seg.gpus)
        out.append(st)
        live = _queue_state(st, seg.start, seg.end,
                            found.get((seg.job_index, seg.index, "segment"), []), now)
        if live is not None:
            _request_drift(st, seg, live, config)
    return out, unplanned


def _moved(config: ClusterConfig | None, prev: Segment, seg: Segment) -> bool:
    """True when the export makes a checkpoint move between ``prev`` and ``seg``."""
    if config is None or prev.zone == seg.zone:
        return False
    return store_differs(config.slurm_zone(prev.zone, required=False),
                         config.slurm_zone(seg.zone, required=False),
                         config.job(seg.job), seg.job) is not None


def _queue_state(st: SegmentStatus, start: pd.Timestamp, end: pd.Timestamp,
                 matched: list[dict[str, Any]], now: pd.Timestamp) -> dict[str, Any] | None:
    """State and drift of a planned step (window ``start`` .. ``end``) from its queue
    jobs ``matched``; returns its live queue job, if any."""
    matched = sorted(matched, key=_job_id)
    queued = [j for j in matched if is_live(j)]
    ended = [j for j in matched if not is_live(j)]
    st.ended = [f"{j.get('job_id')} {_state(j.get('job_state'))}" for j in ended]
    if not queued:
        _no_live_job(st, start, end, ended, now)
        return None
    if len(queued) > 1:
        ids = ", ".join(str(j.get("job_id")) for j in queued)
        st.drift.append(f"duplicate: {len(queued)} live queue jobs ({ids})")
    job = queued[-1]
    st.slurm_job_id = job.get("job_id")
    st.state = _state(job.get("job_state"))
    eligible = _number(job.get("eligible_time"))
    if eligible:
        when = pd.Timestamp(eligible, unit="s", tz="UTC")
        st.eligible = iso(when)
        if "PENDING" in st.state and when != start:
            delta = int((when - start).total_seconds())
            st.drift.append(f"begin: eligible {iso(when)}, planned {iso(start)} "
                            f"({delta:+d} s)")
    if "PENDING" in st.state and (now - start).total_seconds() > LATE_AFTER_S:
        st.drift.append(f"late: still pending after its window started "
                        f"(reason {job.get('state_reason', '?')})")
    return job


def _request_drift(st: SegmentStatus, seg: Segment, job: dict[str, Any],
                   config: ClusterConfig | None) -> None:
    """A segment's queue job against what the export asked for (GPUs, time, nodes and,
    given the config, partition and account)."""
    gpus = queued_gpus(job)
    if gpus is not None and gpus != seg.gpus:
        st.drift.append(f"gpus: {gpus} requested, {seg.gpus} planned")
    limit = _number(job.get("time_limit"))
    # a started job's limit is cut to end by the window end (--deadline)
    if (limit is not None and "PENDING" in st.state
            and limit < math.ceil(seg.duration_s / 60)):
        st.drift.append(f"time: limit {limit} min shorter than the {seg.duration_s} s "
                        "window")
    if config is not None and seg.zone in config.slurm:
        zone = config.slurm[seg.zone]
        for field_name in ("partition", "account"):
            want, got = getattr(zone, field_name), job.get(field_name) or None
            if want and got != want:
                st.drift.append(f"{field_name}: {got!r} in the queue, {want!r} in the "
                                "config")
        nodes, _ = gpu_request(seg.gpus, zone)
        got_nodes = _number(job.get("node_count"))
        if got_nodes is not None and got_nodes != nodes:
            st.drift.append(f"nodes: {got_nodes} in the queue, {nodes} planned")


def _require_slurm_zones(config: ClusterConfig, zones: list[str]) -> None:
    if not zones or any(z in config.slurm for z in zones):
        return
    wanted = ", ".join(dict.fromkeys(zones))
    raise ExportError(
        f"{config.source}: maps none of the plan's zones ({wanted}) to a Slurm cluster, so "
        "partition, account and nodes cannot be checked; add a [zones.<zone>.slurm] table "
        "for them (examples/clusters.toml shows the format), or compare without a clusters "
        "config")


def _no_live_job(st: SegmentStatus, start: pd.Timestamp, end: pd.Timestamp,
                 ended: list[dict[str, Any]], now: pd.Timestamp) -> None:
    """State and drift of a planned step without a live queue job."""
    if ended:
        last = ended[-1]
        st.slurm_job_id = last.get("job_id")
        st.state = _state(last.get("job_state"))
        if end > now and "COMPLETED" not in st.state.split(","):
            what = "checkpoint move (the next segment waits for it)" \
                if st.kind == TRANSFER_TAG else "segment"
            st.drift.append(f"dead: job {st.slurm_job_id} ended {st.state} and no live job "
                            f"is left for this {what}; resubmit its sbatch script")
    elif end <= now:
        st.state = "gone (window over)"
    elif start <= now:
        # ended early after the checkpoint signal and purged (MinJobAge), or never ran:
        # squeue cannot tell, so this is not drift
        st.state = "gone (finished or purged)"
    else:
        st.drift.append("missing: not in the queue although its window has not started")
