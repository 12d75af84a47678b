"""What every exporter shares: the segment list of a plan, its id, names safe for
schedulers, the future-only check and the all-or-nothing writer."""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from greenepoch.data.errors import GreenEpochError, param
from greenepoch.planner.plan_doc import Plan, iso

#: Marker file in every export directory: only such a directory may be replaced.
MARKER = ".greenepoch-export"
#: What submitting an export adds to it (Slurm's ``submit.sh``): the record of what was
#: submitted.  A re-export keeps them (and needs ``force``); nothing deletes them.
SUBMITTED = ("job_ids.tsv", "logs")


class ExportError(GreenEpochError):
    """A plan cannot be exported as asked (config, zone mapping, timing, output dir)."""


@dataclass(frozen=True)
class Segment:
    """One planned run: job ``job`` (the user's name, any text) in ``zone`` from
    ``start`` to ``end`` (tz-aware UTC) on ``gpus`` GPUs.  ``index`` counts from 0
    within the job; ``job_index`` is the job's position in the plan; ``job_deadline``
    the job's requested deadline (None in plans written before it was recorded);
    ``save_s`` the job's checkpoint save time in whole seconds (:func:`checkpoint_save_s`)."""

    job: str
    job_index: int
    index: int
    count: int
    zone: str
    start: pd.Timestamp
    end: pd.Timestamp
    gpus: int
    energy_kwh: float
    emissions_kg: float
    job_deadline: pd.Timestamp | None = None
    save_s: int | None = None

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def key(self) -> str:
        """Stable id inside a plan: ``j<job_index>s<index>``."""
        return f"j{self.job_index}s{self.index}"


def tail_s(seg: Segment, lead_s: int) -> int:
    """Seconds the export lets the job's last segment run past its planned end: the
    plan counts no checkpoint save there (it ends when the work is done), so the
    checkpoint signal, ``lead_s`` before the limit, comes at the planned end instead
    of ``lead_s`` before it; 0 for every other segment (each ends in a save the plan
    counts), never past the job's deadline (``deadline_margin`` leaves room), and 0 in
    plans that do not record the deadline (written before it was: they export as
    before)."""
    if seg.index != seg.count - 1 or seg.job_deadline is None:
        return 0
    return max(0, min(lead_s, int((seg.job_deadline - seg.end).total_seconds())))


def plan_segments(plan: Plan) -> list[Segment]:
    """Every segment of the plan, jobs in plan order, segments by start time (the plan
    checked both when it was read, :meth:`Plan.from_dict`)."""
    return [Segment(job.name, j, k, len(job.segments), seg.zone, seg.start, seg.end, seg.gpus,
                    float(seg.energy_kwh or 0.0), float(seg.emissions_kg or 0.0), job.deadline,
                    checkpoint_save_s(job))
            for j, job in enumerate(plan.jobs) for k, seg in enumerate(job.segments)]


def checkpoint_save_s(job: object) -> int | None:
    """A plan job's ``checkpoint_save_hours`` in whole seconds (rounded up), None when
    the plan does not give a positive one (plans written before the planner recorded
    it).  Read from the field when the plan reader has one, else from the document's
    unknown keys (``extra``), so exports work with plans of either version."""
    value = getattr(job, "checkpoint_save_hours", None)
    if value is None:
        value = getattr(job, "extra", {}).get("checkpoint_save_hours")
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        return None
    return min(math.ceil(value * 3600 - 1e-6), 7 * 86400)


def plan_id(plan: Plan) -> str:
    """12 hex digits identifying the plan document (sha256 of its canonical JSON)."""
    canon = json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


def require_future(segments: list[Segment], now: pd.Timestamp | None = None) -> None:
    """Raise when a segment starts in the past: a scheduler cannot honour its window."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    past = [s for s in segments if s.start < now]
    if past:
        s = past[0]
        raise ExportError(
            f"segment {s.index} of job {s.job!r} starts at {iso(s.start)}, before now "
            f"({iso(now)}); {len(past)} segment(s) are in the past. Re-plan from now "
            "('greenepoch plan ... --start <now>') and export the new plan")


def slug(text: str, limit: int = 40, lower: bool = False) -> str:
    """A name made of ``[A-Za-z0-9_.-]`` from any text (never empty).  Many texts share
    a slug (``team/a b`` and ``team-a-b``; every non-ASCII name is ``job``): use
    :func:`job_key` where the name must stay apart from every other."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.lower() if lower else text).strip("-.")
    return out[:limit].strip("-.") or "job"


def job_key(name: str) -> str:
    """A file-safe name that is different for every job name: its slug (at most 40
    characters), ``-`` and the first 10 hex digits of the sha256 of the exact name
    (UTF-8).  ``{job}`` in ``checkpoint_dir`` becomes this."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"{slug(name, 40)}-{digest}"


def checkpoint_dirs(dirs: Iterable[tuple[str, str, str, str | None]], hint: str = "") -> None:
    """Refuse two jobs sharing a checkpoint directory (one would resume the other's).

    ``dirs`` holds, for every job and zone it runs in, ``(job, zone, checkpoint dir
    with {job} replaced, workdir)``: what the export writes into that zone's scripts.
    A relative dir is taken inside the workdir (jobs without one share the submit
    directory).  Directories compare across zones too (zones may share a filesystem:
    a zone's ``checkpoint_url`` defaults to its dir).  Raises :class:`ExportError`
    naming both jobs and their zones; ``hint`` names where the zone's dir is set."""
    seen: dict[str, tuple[str, str]] = {}
    for name, zone, ckpt, workdir in dirs:
        where = posixpath.normpath(posixpath.join(workdir or "", ckpt))
        other, other_zone = seen.setdefault(where, (name, zone))
        if other != name:
            zones = (f"zone {zone!r}" if zone == other_zone
                     else f"zones {other_zone!r} and {zone!r}")
            raise ExportError(
                f"{zones}: jobs {other!r} and {name!r} would share the checkpoint directory "
                f"{where!r} (checkpoint_dir {ckpt!r}), so one would resume from the other's "
                "checkpoint; put {job} in checkpoint_dir (in [defaults] or both "
                f"[jobs.\"...\"] tables{hint}) or give each job its own checkpoint_dir")


def write_tree(files: Mapping[str, str | bytes], out_dir: str | Path,
               executable: frozenset[str] = frozenset(), *, force: bool = False) -> Path:
    """Write ``files`` (relative path -> content) as directory ``out_dir``, all or nothing.

    Files go to a temp dir beside ``out_dir`` which is renamed into place at the end.
    An existing ``out_dir`` is replaced only when empty or written by an earlier export
    (it holds :data:`MARKER`); otherwise :class:`ExportError`.  An earlier export that
    was submitted (it holds an entry of :data:`SUBMITTED`) is replaced only with
    ``force``, and those entries are moved into the new directory, never deleted.
    """
    target = Path(out_dir)
    kept: list[str] = []
    if target.exists():
        if not target.is_dir():
            raise ExportError(f"{param('out_dir')} {target}: exists and is not a directory; "
                              "pick a new directory name")
        if any(target.iterdir()) and not (target / MARKER).exists():
            raise ExportError(f"{param('out_dir')} {target}: directory exists, is not empty "
                              "and was not written by 'greenepoch export'; pick a new or empty "
                              "directory")
        kept = [n for n in SUBMITTED if os.path.lexists(target / n)]
        if kept and not force:
            found = " and ".join(kept)
            raise ExportError(
                f"{param('out_dir')} {target}: holds {found} of a submitted export, the only "
                f"record of the jobs it submitted; pick a new directory, or pass "
                f"{param('force')} to replace "
                f"the scripts and keep {found} (cancel the submitted jobs first if the new "
                "plan replaces them)")
    clash = sorted({rel.split("/")[0] for rel in files} & set(SUBMITTED))
    if clash:
        raise ExportError(f"export file {clash[0]!r} would replace the submission record")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise ExportError(f"{param('out_dir')} {target}: parent directory {parent} does not "
                          "exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.tmp-", dir=parent))
    moved: list[str] = []
    try:
        for rel, content in {**files, MARKER: "written by greenepoch export\n"}.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            if rel in executable:
                path.chmod(0o755)
        tmp.chmod(0o755)
        for name in kept:  # the submission record moves into the new export
            os.rename(target / name, tmp / name)
            moved.append(name)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.old-", dir=parent))
            os.rename(target, old / "x")
        try:
            os.rename(tmp, target)
        except OSError:
            if old is not None:  # put the earlier export back
                os.rename(old / "x", target)
            raise
        moved = []  # in place with the new export
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        for name in moved:  # back into the earlier export, which is in place again
            os.rename(tmp / name, target / name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
