"""Kubernetes export: per segment a ``batch/v1`` CronJob firing at the window start
(default), or a ``batch/v1`` Job created suspended plus ``resume.sh`` that lifts the
suspension at each window start.  A Job sent to a Kueue queue cannot wait suspended
(Kueue lifts the suspension as soon as it admits the Job), so its file goes to
``at-window-start/`` and ``resume.sh`` creates it at its window start instead.

Either way the Job runs with ``activeDeadlineSeconds`` = window - grace period (the
pods get SIGTERM, checkpoint within ``terminationGracePeriodSeconds`` = the job's
checkpoint lead, and are gone by the window end), ``nvidia.com/gpu`` limits, a
required node affinity per zone, labels tying it to the plan
(``greenepoch.io/plan``, ``.../job-index``, ``.../segment``), the literal job name and
window in annotations, and optionally Kueue's ``kueue.x-k8s.io/queue-name`` label
(plus a ``LocalQueue`` when the zone names its ClusterQueue).  More GPUs than one
node holds become an Indexed Job with one pod per node.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from greenepoch.planner.exports.common import (
    ExportError,
    Segment,
    iso,
    plan_id,
    plan_segments,
    require_future,
    slug,
    write_tree,
)
from greenepoch.planner.exports.config import ClusterConfig, JobSettings, KubeZone
from greenepoch.planner.plan_doc import Plan

KINDS = ("cronjob", "job")
INDEX = "export.json"
RESUME = "resume.sh"
DEFERRED = "at-window-start"  # Jobs resume.sh creates at their window start (Kueue)
GPU = "nvidia.com/gpu"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

#: Run by ``sh -c`` with the argv as positional parameters (never spliced into the
#: script): $1 = number of command words, then the command, then the resume args
#: (used only when a checkpoint exists, ``{checkpoint}`` replaced by its path).
RESUME_SH = r"""n=$1; shift; total=$#
mkdir -p -- "$GREENEPOCH_CHECKPOINT_DIR"
latest=
for f in "$GREENEPOCH_CHECKPOINT_DIR"/*; do
  [ -e "$f" ] || continue
  if [ -z "$latest" ] || [ "$f" -nt "$latest" ]; then latest=$f; fi
done
export GREENEPOCH_RESUME_FROM="$latest"
i=0
while [ "$i" -lt "$total" ]; do
  a=$1; shift; i=$((i + 1))
  if [ "$i" -le "$n" ]; then set -- "$@" "$a"; continue; fi
  [ -n "$latest" ] || continue
  out=; rest=$a
  while :; do
    case $rest in
      *"{checkpoint}"*) out=$out${rest%%"{checkpoint}"*}$latest; rest=${rest#*"{checkpoint}"} ;;
      *) break ;;
    esac
  done
  set -- "$@" "$out$rest"
done
echo "greenepoch: resume from ${latest:-nothing}" >&2
exec "$@"
"""


def resource_name(pid: str, seg: Segment) -> str:
    """DNS-1123 name, at most 52 characters (CronJob limit)."""
    base = f"ge-{pid[:8]}-j{seg.job_index}-s{seg.index}"
    tail = slug(seg.job, 52, lower=True).replace("_", "-").replace(".", "-")
    name = f"{base}-{tail}"[:52].rstrip("-")
    return name


def _label_value(text: str) -> str:
    """A label value: at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends."""
    value = slug(text, 63).replace("_", "-")
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value) or "x"


def _literal(text: str) -> str:
    """``text`` escaped for a container's command, args or env value, which Kubernetes
    expands: ``$(VAR)`` becomes VAR's value and ``$$`` a single ``$``."""
    return text.replace("$", "$$")


def _cron(ts: pd.Timestamp) -> str:
    return f"{ts.minute} {ts.hour} {ts.day} {ts.month} *"


def _affinity(zone: KubeZone) -> dict[str, Any] | None:
    if not zone.node_affinity:
        return None
    exprs = [{"key": k, "operator": "In", "values": list(v)} for k, v in zone.node_affinity]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": exprs}]}}}


def job_spec(seg: Segment, pid: str, settings: JobSettings, zone: KubeZone,
             labels: dict[str, str], suspend: bool) -> dict[str, Any]:
    """The ``batch/v1`` JobSpec of one segment."""
    if not settings.image:
        raise ExportError(f"job {seg.job!r} has no container image; set [defaults] image or "
                          f"[jobs.{json.dumps(seg.job)}] image in the clusters config")
    if not settings.command:
        raise ExportError(f"job {seg.job!r} has no command to run; set [defaults] command "
                          f"or [jobs.{json.dumps(seg.job)}] command in the clusters config")
    grace = min(settings.checkpoint_lead_s, max(1, seg.duration_s // 2))
    per_node = zone.gpus_per_node or seg.gpus
    pods = math.ceil(seg.gpus / per_node)
    if seg.gpus % pods:
        raise ExportError(f"job {seg.job!r} segment {seg.index}: {seg.gpus} GPUs do not split "
                          f"evenly over {pods} pods of at most {per_node}; change "
                          "gpus_per_node of the zone")
    ckpt = settings.checkpoint_path(seg.job)
    env = {
        "GREENEPOCH_PLAN_ID": pid, "GREENEPOCH_JOB": seg.job,
        "GREENEPOCH_SEGMENT": str(seg.index), "GREENEPOCH_SEGMENTS": str(seg.count),
        "GREENEPOCH_ZONE": seg.zone, "GREENEPOCH_WINDOW_START": iso(seg.start),
        "GREENEPOCH_WINDOW_END": iso(seg.end), "GREENEPOCH_GPUS": str(seg.gpus),
        "GREENEPOCH_CHECKPOINT_DIR": ckpt,
        **({} if seg.job_deadline is None else {"GREENEPOCH_JOB_DEADLINE": iso(seg.job_deadline)}),
        **dict(settings.env),
    }
    container: dict[str, Any] = {
        "name": "train",
        "image": settings.image,
        # RESUME_SH stays as is: no "$$" and no "$(NAME)" a variable could match
        "command": ["/bin/sh", "-c", RESUME_SH, "greenepoch-resume",
                    str(len(settings.command)),
                    *map(_literal, (*settings.command, *settings.resume_args))],
        "env": [{"name": k, "value": _literal(v)} for k, v in env.items()],
        "resources": {"limits": {GPU: seg.gpus // pods}, "requests": {GPU: seg.gpus // pods}},
    }
    if settings.workdir:
        container["workingDir"] = settings.workdir
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace,
        "containers": [container],
    }
    affinity = _affinity(zone)
    if affinity:
        pod["affinity"] = affinity
    if zone.priority_class:
        pod["priorityClassName"] = zone.priority_class
    if zone.checkpoint_claim:
        container["volumeMounts"] = [{"name": "checkpoints", "mountPath": ckpt}]
        pod["volumes"] = [{"name": "checkpoints",
                           "persistentVolumeClaim": {"claimName": zone.checkpoint_claim}}]
    spec: dict[str, Any] = {
        "suspend": suspend,
        "activeDeadlineSeconds": max(1, seg.duration_s - grace),
        "backoffLimit": 3,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
    }
    if pods > 1:
        spec.update(completionMode="Indexed", completions=pods, parallelism=pods)
    return spec


def manifests(plan: Plan, config: ClusterConfig, kind: str = "cronjob",
              now: pd.Timestamp | None = None) -> dict[str, list[dict[str, Any]]]:
    """File name -> Kubernetes objects; raises before anything is written."""
    if kind not in KINDS:
        raise ExportError(f"unknown Kubernetes kind {kind!r}; use one of {', '.join(KINDS)}")
    segments = plan_segments(plan)
    if not segments:
        raise ExportError("the plan has no segments to export")
    require_future(segments, now)
    config.check_plan_jobs([job.name for job in plan.jobs], {s.job for s in segments})
    pid = plan_id(plan)
    files: dict[str, list[dict[str, Any]]] = {}
    queues: dict[tuple[str, str], str] = {}
    for seg in segments:
        zone = config.kube_zone(seg.zone)
        settings = config.job(seg.job)
        name = resource_name(pid, seg)
        labels = {
            "app.kubernetes.io/managed-by": "greenepoch",
            "greenepoch.io/plan": pid,
            "greenepoch.io/job-index": str(seg.job_index),
            "greenepoch.io/segment": str(seg.index),
            "greenepoch.io/zone": _label_value(seg.zone),
        }
        annotations = {
            "greenepoch.io/job-name": seg.job, "greenepoch.io/zone": seg.zone,
            "greenepoch.io/window-start": iso(seg.start),
            "greenepoch.io/window-end": iso(seg.end), "greenepoch.io/gpus": str(seg.gpus),
        }
        job_labels = dict(labels)
        if zone.queue:
            job_labels[KUEUE_QUEUE_LABEL] = zone.queue
            if zone.cluster_queue:
                queues[(zone.namespace, zone.queue)] = zone.cluster_queue
        meta = {"name": name, "namespace": zone.namespace, "labels": job_labels,
                "annotations": annotations}
        if kind == "job":
            obj: dict[str, Any] = {
                "apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": job_spec(seg, pid, settings, zone, labels, suspend=True)}
        else:
            # with Kueue the Job must be created suspended: Kueue unsuspends on admission
            spec = job_spec(seg, pid, settings, zone, labels, suspend=bool(zone.queue))
            obj = {
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {**meta, "labels": labels},
                "spec": {
                    "schedule": _cron(seg.start),
                    "timeZone": "Etc/UTC",
                    "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": max(10, min(300, seg.duration_s // 4)),
                    "successfulJobsHistoryLimit": 1,
                    "failedJobsHistoryLimit": 1,
                    "jobTemplate": {"metadata": {"labels": job_labels,
                                                 "annotations": annotations},
                                    "spec": spec},
                }}
        deferred = kind == "job" and bool(zone.queue)
        files[f"{DEFERRED}/{name}.yaml" if deferred else f"{name}.yaml"] = [obj]
    for (namespace, queue), cluster_queue in sorted(queues.items()):
        files[f"localqueue-{namespace}-{queue}.yaml"] = [{
            "apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
            "metadata": {"name": queue, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "greenepoch"}},
            "spec": {"clusterQueue": cluster_queue},
        }]
    return files


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a dict shared by two places twice, not as an ``&id001`` anchor + alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objs, Dumper=_NoAliasDumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=False, width=1 << 20)


def resume_script(objs: dict[str, list[dict[str, Any]]], pid: str) -> str:
    """``resume.sh``: at each window start, unsuspend that Job, or create it when it goes
    through a Kueue queue (its file is under ``at-window-start/``).  Jobs whose window
    is over are skipped; a rerun (after a restart) leaves Jobs it finds created alone."""
    lines = [
        "#!/usr/bin/env bash",
        f"# Start each Job of greenepoch plan {pid} at its window start: lift the",
        f"# suspension of the Jobs applied with 'kubectl apply -f .', create those in {DEFERRED}/",
        "# (Kueue would admit them at once). Keep it running (e.g. in a tmux); safe to rerun.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        'KUBECTL="${KUBECTL:-kubectl}"',
        "# at_start START END NAME: sleep until START; false (with a note) once END has passed",
        "at_start() {",
        '  local wait_s=$(( $1 - $(date +%s) ))',
        '  [ "$wait_s" -le 0 ] || sleep "$wait_s"',
        '  if [ "$(date +%s)" -ge "$2" ]; then',
        '    echo "greenepoch: skipping $3: its window is over" >&2; return 1',
        "  fi",
        "}",
        "# create_job FILE: an object that already exists (an earlier run made it) is fine",
        "create_job() {",
        '  "$KUBECTL" create -f "$1" && return 0',
        '  if "$KUBECTL" get -f "$1" >/dev/null; then',
        '    echo "greenepoch: $1 already exists; left as is" >&2; return 0',
        "  fi",
        '  echo "greenepoch: could not create $1; fix the error above and rerun $0" >&2',
        "  exit 1",
        "}",
    ]
    jobs = [(file, o) for file, group in objs.items() for o in group if o["kind"] == "Job"]
    jobs.sort(key=lambda fo: fo[1]["metadata"]["annotations"]["greenepoch.io/window-start"])
    for file, o in jobs:
        meta = o["metadata"]
        ann = meta["annotations"]
        start, end = (int(pd.Timestamp(ann[f"greenepoch.io/window-{k}"]).timestamp())
                      for k in ("start", "end"))
        what = shlex.quote(f"Job {meta['name']} (window ends {ann['greenepoch.io/window-end']})")
        if file.startswith(f"{DEFERRED}/"):
            action = f"create_job {shlex.quote(file)}"
        else:  # patching an unsuspended Job again changes nothing
            action = (f'"$KUBECTL" patch job {shlex.quote(meta["name"])} -n '
                      f"{shlex.quote(meta['namespace'])} --type=merge "
                      "-p '{\"spec\":{\"suspend\":false}}'")
        lines.append(f"if at_start {start} {end} {what}; then {action}; fi")
    return "\n".join(lines) + "\n"


def export_k8s(plan: Plan, config: ClusterConfig, kind: str = "cronjob",
               now: pd.Timestamp | None = None) -> dict[str, str]:
    """Every file of the Kubernetes export (relative name -> text); nothing written."""
    objs = manifests(plan, config, kind, now)
    pid = plan_id(plan)
    files = {name: to_yaml(group) for name, group in objs.items()}
    if kind == "job":
        files[RESUME] = resume_script(objs, pid)
    files[INDEX] = json.dumps({
        "schema_version": plan.schema_version, "plan_id": pid,
        "scheduler": "kubernetes", "kind": kind, "files": sorted(objs),
    }, indent=2) + "\n"
    return files


def write_k8s(plan: Plan, config: ClusterConfig, out_dir: str | Path, kind: str = "cronjob",
              now: pd.Timestamp | None = None, *, force: bool = False) -> Path:
    """Write the export to ``out_dir`` (all or nothing, :func:`write_tree`); an earlier
    export that was submitted is replaced only with ``force``."""
    files = export_k8s(plan, config, kind, now)
    return write_tree(files, out_dir, executable=frozenset({RESUME}), force=force)
