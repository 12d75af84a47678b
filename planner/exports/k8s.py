"""Kubernetes export: per segment a ``batch/v1`` CronJob firing at the window start
(default), or a ``batch/v1`` Job created suspended plus ``resume.sh`` that lifts the
suspension at each window start.  A Job sent to a Kueue queue cannot wait suspended
(Kueue lifts the suspension as soon as it admits the Job), so its file goes to
``at-window-start/`` and ``resume.sh`` creates it at its window start instead.

Either way the Job runs with ``activeDeadlineSeconds`` = window - grace period (the
pods get SIGTERM, checkpoint within ``terminationGracePeriodSeconds`` = the job's
checkpoint lead, and are gone by the window end; a job's last segment, which the plan
ends without a save, runs up to the lead past its window instead, so SIGTERM comes at
its planned end, never past the job's deadline), ``nvidia.com/gpu`` limits, a
required node affinity per zone, labels tying it to the plan
(``greenepoch.io/plan``, ``.../job-index``, ``.../segment``), the literal job name and
window in annotations, and optionally Kueue's ``kueue.x-k8s.io/queue-name`` label
(plus a ``LocalQueue`` when the zone names its ClusterQueue).

More GPUs than one node holds become an Indexed Job of equal pods (:func:`pod_layout`)
with a headless Service as the pods' ``subdomain``: pod ``i`` is reachable as
``<job name>-i.<service>``, so every pod gets the rendezvous (``MASTER_ADDR`` = pod 0,
``NODE_RANK`` = its completion index, ``NNODES``, ``WORLD_SIZE``, ``MASTER_PORT``) and a
``torchrun`` command gets the matching flags.  An Indexed Job (not a JobSet) because a
CronJob can only create Jobs, Kueue admits Jobs without further setup, and no JobSet
controller is needed on the cluster.  A segment following one in another zone gets
the checkpoint copied (:data:`COPY_SH`): by a transfer Job (no GPU) in the window the
plan reserved between the two segments, when the zone has a claim the pods will see,
and by its pods' initContainer, which copies only what the transfer did not.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from greenepoch.planner.exports import torchrun
from greenepoch.planner.exports.common import (
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
from greenepoch.planner.exports.config import ClusterConfig, JobSettings, KubeZone, toml_key
from greenepoch.planner.exports.k8s_validate import CRON_JOB_SUFFIX
from greenepoch.planner.plan_doc import Plan

KINDS = ("cronjob", "job")
INDEX = "export.json"
RESUME = "resume.sh"
DEFERRED = "at-window-start"  # Jobs resume.sh creates at their window start (Kueue)
GPU = "nvidia.com/gpu"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Set on its pods by the Job controller: the Job's name and, in an Indexed Job, the
#: pod's completion index (read through the downward API).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
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

#: The checkpoint copy of a segment whose checkpoint is in another zone (its transfer
#: Job and its pods' initContainer), run by ``sh -c`` with $1 = "all" (every pod copies
#: into its own storage) or "first" (the transfer Job or pod 0 copies into the shared
#: claim unless that is done, the others wait for its marker), then the copy argv (never
#: spliced into the script).  The dot-file marker is invisible to RESUME_SH's scan.
COPY_SH = r"""mode=$1; shift
mkdir -p -- "$GREENEPOCH_CHECKPOINT_DIR"
marker="$GREENEPOCH_CHECKPOINT_DIR/.greenepoch-copied-$GREENEPOCH_PLAN_ID-$GREENEPOCH_SEGMENT"
if [ "$mode" = first ] && [ -e "$marker" ]; then
  echo "greenepoch: the checkpoint was copied already" >&2; exit 0
fi
if [ "$mode" = first ] && [ "$NODE_RANK" != 0 ]; then
  echo "greenepoch: waiting for pod 0 to copy the checkpoint" >&2
  until [ -e "$marker" ]; do sleep 5; done
  exit 0
fi
echo "greenepoch: copying the checkpoint from the previous zone" >&2
"$@" || { echo "greenepoch: the checkpoint copy failed (exit $?)" >&2; exit 1; }
: > "$marker"
"""


def resource_name(pid: str, seg: Segment, limit: int = 52, kind: str = "s") -> str:
    """DNS-1123 name, at most ``limit`` characters (52: the CronJob limit); ``kind``
    "s" for the segment, "t" for the transfer Job before it."""
    base = f"ge-{pid[:8]}-j{seg.job_index}-{kind}{seg.index}"
    tail = slug(seg.job, 52, lower=True).replace("_", "-").replace(".", "-")
    name = f"{base}-{tail}"[:limit].rstrip("-")
    return name


def pod_layout(gpus: int, per_node: int | None) -> tuple[int, int]:
    """(pods, GPUs per pod) of a segment on ``gpus`` GPUs: equal pods of at most
    ``per_node``, as few as divide ``gpus`` (12 on 8-GPU nodes: 2 x 6; 75: 15 x 5;
    a prime such as 13: 13 x 1).  One pod template serves every pod of an Indexed Job,
    so the sizes cannot differ; whole nodes (the planner's ``gpus_step``) give
    ``gpus / per_node`` full pods."""
    if not per_node or gpus <= per_node:
        return 1, gpus
    pods = next(p for p in range(math.ceil(gpus / per_node), gpus + 1) if gpus % p == 0)
    return pods, gpus // pods


def _pod_name_limit(pods: int) -> int:
    """The longest resource name whose pods' hostnames (``<Job name>-<index>``, the
    Job named after a CronJob plus ``-<minutes>``) stay a 63-character DNS label."""
    return min(52, 63 - CRON_JOB_SUFFIX - 1 - len(str(pods - 1)))


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


@dataclass(frozen=True)
class Layout:
    """How one segment runs: ``pods`` pods of ``gpus_per_pod`` GPUs, named ``name``;
    ``service`` the headless Service (pods' subdomain) when there are several pods;
    ``checkpoint_dir`` the zone's; ``copy`` the checkpoint move from the previous
    segment's zone (argv, None when there is none); ``transfer`` the Job copying it
    in the plan's transfer window, from ``transfer_start`` (the previous segment's end)
    to the segment's start (None without a move into a claim, or without a gap)."""

    name: str
    pods: int
    gpus_per_pod: int
    service: str | None
    checkpoint_dir: str
    copy: tuple[str, ...] | None = None
    transfer: str | None = None
    transfer_start: pd.Timestamp | None = None


def _torchrun_at(command: tuple[str, ...]) -> int | None:
    """Where torchrun's own options go (after ``torchrun``, any path, or after
    ``-m torch.distributed.run``); None when the command starts neither."""
    try:
        return torchrun.insert_at(command)
    except ExportError:
        return None


def _torchrun(command: tuple[str, ...], seg: Segment, layout: Layout,
              port: int) -> tuple[int, tuple[str, ...]]:
    """Where to insert and which rendezvous flags (those torchrun's options in the
    command do not give; their ``$(VAR)`` are the pod's rendezvous variables)."""
    at = _torchrun_at(command) if layout.pods > 1 else None
    if at is None:
        return 0, ()
    given = torchrun.given_options(command, at)
    if "standalone" in given:
        raise ExportError(f"job {seg.job!r} segment {seg.index}: the command passes "
                          f"--standalone to torchrun, which would start {layout.pods} "
                          "separate trainings on the segment's pods; remove it (the export "
                          "adds the multi-node rendezvous flags)")
    values = {"nnodes": str(layout.pods), "node-rank": "$(NODE_RANK)",
              "master-addr": "$(MASTER_ADDR)", "master-port": str(port),
              "nproc-per-node": str(layout.gpus_per_pod)}  # $(...): set by the kubelet
    return at, tuple(torchrun.missing_flags(given, values))


def _env(seg: Segment, pid: str, settings: JobSettings, zone: KubeZone,
         layout: Layout) -> list[dict[str, Any]]:
    """The container environment: the checkpoint contract, the user's ``env``, then the
    rendezvous (which replaces user values of the same names)."""
    plain = {
        "GREENEPOCH_PLAN_ID": pid, "GREENEPOCH_JOB": seg.job,
        "GREENEPOCH_SEGMENT": str(seg.index), "GREENEPOCH_SEGMENTS": str(seg.count),
        "GREENEPOCH_ZONE": seg.zone, "GREENEPOCH_WINDOW_START": iso(seg.start),
        "GREENEPOCH_WINDOW_END": iso(seg.end), "GREENEPOCH_GPUS": str(seg.gpus),
        "GREENEPOCH_GPUS_PER_POD": str(layout.gpus_per_pod),
        "GREENEPOCH_CHECKPOINT_DIR": layout.checkpoint_dir,
        **({} if seg.job_deadline is None else {"GREENEPOCH_JOB_DEADLINE": iso(seg.job_deadline)}),
        **dict(settings.env),
    }
    rendezvous = {"NNODES": str(layout.pods), "WORLD_SIZE": str(seg.gpus),
                  "MASTER_PORT": str(zone.master_port)}
    for key in (*rendezvous, "NODE_RANK", "MASTER_ADDR", "GREENEPOCH_K8S_JOB_NAME"):
        plain.pop(key, None)
    env = [{"name": k, "value": _literal(v)} for k, v in {**plain, **rendezvous}.items()]
    if layout.service is None:
        return [*env, {"name": "NODE_RANK", "value": "0"},
                {"name": "MASTER_ADDR", "value": "127.0.0.1"}]

    def field(path: str) -> dict[str, Any]:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    # Kubernetes expands $(NAME) in a value with the variables listed before it
    return [
        *env,
        {"name": "NODE_RANK", **field(f"metadata.annotations['{INDEX_ANNOTATION}']")},
        {"name": "GREENEPOCH_K8S_JOB_NAME", **field(f"metadata.labels['{JOB_NAME_LABEL}']")},
        {"name": "MASTER_ADDR", "value": f"$(GREENEPOCH_K8S_JOB_NAME)-0.{layout.service}"},
    ]


def job_spec(seg: Segment, pid: str, settings: JobSettings, zone: KubeZone,
             labels: dict[str, str], suspend: bool, layout: Layout) -> dict[str, Any]:
    """The ``batch/v1`` JobSpec of one segment."""
    if not settings.image:
        raise ExportError(f"job {seg.job!r} has no container image; set [defaults] image or "
                          f"[jobs.{json.dumps(seg.job)}] image in the clusters config")
    if not settings.command:
        raise ExportError(f"job {seg.job!r} has no command to run; set [defaults] command "
                          f"or [jobs.{json.dumps(seg.job)}] command in the clusters config")
    grace = min(settings.lead_s(seg.save_s), max(1, seg.duration_s // 2))
    window = seg.duration_s + tail_s(seg, grace)
    env = _env(seg, pid, settings, zone, layout)
    at, flags = _torchrun(settings.command, seg, layout, zone.master_port)
    command = tuple(map(_literal, settings.command))
    command = (*command[:at], *flags, *command[at:])
    container: dict[str, Any] = {
        "name": "train",
        "image": settings.image,
        # RESUME_SH stays as is: no "$$" and no "$(NAME)" a variable could match
        "command": ["/bin/sh", "-c", RESUME_SH, "greenepoch-resume", str(len(command)),
                    *command, *map(_literal, settings.resume_args)],
        "env": env,
        "resources": {"limits": {GPU: layout.gpus_per_pod},
                      "requests": {GPU: layout.gpus_per_pod}},
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace,
        "containers": [container],
    }
    if layout.copy is not None:
        # after the transfer Job, or when it failed or there was none: copy here, once
        pod["initContainers"] = [_copy_container(settings, zone, layout.copy, env)]
    if layout.service is not None:
        pod["subdomain"] = layout.service
    _place(pod, settings, zone, layout.checkpoint_dir)
    if zone.priority_class:
        pod["priorityClassName"] = zone.priority_class
    spec: dict[str, Any] = {
        "suspend": suspend,
        "activeDeadlineSeconds": max(1, window - grace),
        "backoffLimit": 3,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
    }
    if layout.pods > 1:
        spec.update(completionMode="Indexed", completions=layout.pods, parallelism=layout.pods)
    return spec


def _copy_container(settings: JobSettings, zone: KubeZone, argv: tuple[str, ...],
                    env: list[dict[str, Any]]) -> dict[str, Any]:
    """A container running the checkpoint copy ``argv`` (:data:`COPY_SH`): with a claim
    every pod sees one volume, so one copies and the others wait; else each copies."""
    mode = "first" if zone.checkpoint_claim else "all"
    return {"name": "checkpoint-copy", "image": settings.image,
            "command": ["/bin/sh", "-c", COPY_SH, "greenepoch-copy", mode,
                        *map(_literal, argv)],
            "env": env}


def _place(pod: dict[str, Any], settings: JobSettings, zone: KubeZone, ckpt: str) -> None:
    """The pod's working directory, node affinity and checkpoint claim (mounted at the
    zone's checkpoint dir in every container)."""
    containers = (*pod.get("initContainers", ()), *pod["containers"])
    for c in containers if settings.workdir else ():
        c["workingDir"] = settings.workdir
    affinity = _affinity(zone)
    if affinity:
        pod["affinity"] = affinity
    if zone.checkpoint_claim:
        for c in containers:
            c["volumeMounts"] = [{"name": "checkpoints", "mountPath": ckpt}]
        pod["volumes"] = [{"name": "checkpoints",
                           "persistentVolumeClaim": {"claimName": zone.checkpoint_claim}}]


def transfer_spec(seg: Segment, pid: str, settings: JobSettings, zone: KubeZone,
                  labels: dict[str, str], suspend: bool, layout: Layout) -> dict[str, Any]:
    """The JobSpec of the transfer Job before ``seg``: one pod, no GPU, running the
    copy in the transfer window the plan reserved and stopped a minute before the
    segment starts (its pod 0 copies what is left, never at the same time)."""
    assert layout.copy is not None and layout.transfer_start is not None
    window_s = int((seg.start - layout.transfer_start).total_seconds())
    env = [{"name": k, "value": _literal(v)} for k, v in {
        "GREENEPOCH_PLAN_ID": pid, "GREENEPOCH_JOB": seg.job,
        "GREENEPOCH_SEGMENT": str(seg.index), "GREENEPOCH_ZONE": seg.zone,
        "GREENEPOCH_CHECKPOINT_DIR": layout.checkpoint_dir, "NODE_RANK": "0",
        **dict(settings.env)}.items()]
    pod: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 10,
                           "containers": [_copy_container(settings, zone, layout.copy, env)]}
    _place(pod, settings, zone, layout.checkpoint_dir)
    return {"suspend": suspend,
            "activeDeadlineSeconds": max(1, window_s - min(60, window_s // 2)),
            "backoffLimit": 3,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}


def headless_service(layout: Layout, namespace: str, labels: dict[str, str],
                     port: int) -> dict[str, Any]:
    """The headless Service giving the pods of a multi-pod segment stable DNS names
    (``<Job name>-<index>.<service>``), published before the pods are ready so the
    rendezvous can start while they come up."""
    selector = {k: labels[k] for k in ("greenepoch.io/plan", "greenepoch.io/job-index",
                                       "greenepoch.io/segment")}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": layout.service, "namespace": namespace, "labels": labels},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": selector,
                     "ports": [{"name": "rendezvous", "port": port, "targetPort": port}]}}


def _require_storage(seg: Segment, zone: KubeZone) -> None:
    if zone.checkpoint_claim or zone.ephemeral_checkpoints:
        return
    raise ExportError(
        f"zone {seg.zone!r} has no checkpoint_claim: job {seg.job!r} segment {seg.index} "
        "would keep its checkpoints on the container's ephemeral storage, lost when the pod "
        f"ends; set checkpoint_claim = '<PVC name>' in [zones.{toml_key(seg.zone)}.kubernetes], "
        "or ephemeral_checkpoints = true there to accept that")


def _copy(seg: Segment, prev: Segment | None, config: ClusterConfig,
          settings: JobSettings, dst: str) -> tuple[str, ...] | None:
    """The checkpoint move before ``seg``: none for a job's first segment, one in the
    zone of the previous, or when the previous zone's checkpoints were ephemeral (no
    claim, no checkpoint_url: nothing left to copy) or are this very directory."""
    if prev is None or prev.zone == seg.zone:
        return None
    source = config.kube_zone(prev.zone)
    if not source.checkpoint_claim and source.checkpoint_url is None:
        return None
    src = source.checkpoint_source(settings, seg.job)
    return None if src == dst else settings.copy_argv(seg.job, src, dst)


def layouts(plan: Plan, config: ClusterConfig) -> dict[str, Layout]:
    """Segment key (:attr:`Segment.key`) -> its :class:`Layout`; raises when a zone
    keeps checkpoints on ephemeral storage unasked, or two jobs share a zone's
    checkpoint directory."""
    pid = plan_id(plan)
    out: dict[str, Layout] = {}
    prev: Segment | None = None
    dirs: list[tuple[str, str, str, str | None]] = []
    for seg in plan_segments(plan):
        zone = config.kube_zone(seg.zone)
        settings = config.job(seg.job)
        _require_storage(seg, zone)
        pods, per_pod = pod_layout(seg.gpus, zone.gpus_per_node)
        name = resource_name(pid, seg, _pod_name_limit(pods))
        ckpt = zone.checkpoint_path(settings, seg.job)
        dirs.append((seg.job, seg.zone, ckpt, settings.workdir))
        same_job = prev is not None and prev.job_index == seg.job_index
        move = _copy(seg, prev if same_job else None, config, settings, ckpt)
        # a transfer Job needs the claim (pods see what it copies) and time before seg
        early = move is not None and zone.checkpoint_claim is not None \
            and prev is not None and prev.end < seg.start
        out[seg.key] = Layout(
            name, pods, per_pod, name if pods > 1 else None, ckpt, move,
            resource_name(pid, seg, kind="t") if early else None,
            prev.end if early and prev is not None else None)
        prev = seg
    checkpoint_dirs(dirs, hint=" or in [zones.<zone>.kubernetes] checkpoint_dir")
    return out


def manifests(plan: Plan, config: ClusterConfig, kind: str = "cronjob",
              now: pd.Timestamp | None = None) -> dict[str, list[dict[str, Any]]]:
    """File name -> Kubernetes objects; raises before anything is written."""
    return _manifests(plan, config, kind, now)[0]


def _manifests(plan: Plan, config: ClusterConfig, kind: str, now: pd.Timestamp | None
               ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Layout]]:
    """:func:`manifests` and the segments' :func:`layouts` they were built from."""
    if kind not in KINDS:
        raise ExportError(f"unknown Kubernetes kind {kind!r}; use one of {', '.join(KINDS)}")
    segments = plan_segments(plan)
    if not segments:
        raise ExportError("the plan has no segments to export")
    require_future(segments, now)
    config.check_plan_jobs([job.name for job in plan.jobs])
    pid = plan_id(plan)
    plans = layouts(plan, config)
    files: dict[str, list[dict[str, Any]]] = {}
    queues: dict[tuple[str, str], str] = {}
    for seg in segments:
        zone = config.kube_zone(seg.zone)
        settings = config.job(seg.job)
        layout = plans[seg.key]
        name = layout.name
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
        # with Kueue the Job must be created suspended: Kueue unsuspends on admission
        spec = job_spec(seg, pid, settings, zone, labels,
                        kind == "job" or bool(zone.queue), layout)
        obj = _scheduled(kind, meta, labels, spec, seg.start, seg.duration_s)
        if layout.transfer is not None and layout.transfer_start is not None:
            t_labels = {**{k: v for k, v in labels.items() if k != "greenepoch.io/segment"},
                        "greenepoch.io/transfer-to-segment": str(seg.index)}
            t_meta = {"name": layout.transfer, "namespace": zone.namespace, "labels": t_labels,
                      "annotations": {**annotations, "greenepoch.io/gpus": "0",
                                      "greenepoch.io/window-start": iso(layout.transfer_start),
                                      "greenepoch.io/window-end": iso(seg.start)}}
            t_spec = transfer_spec(seg, pid, settings, zone, t_labels, kind == "job", layout)
            window_s = int((seg.start - layout.transfer_start).total_seconds())
            files[f"{layout.transfer}.yaml"] = [
                _scheduled(kind, t_meta, t_labels, t_spec, layout.transfer_start, window_s)]
        group = [obj]
        if layout.service is not None:
            group.insert(0, headless_service(layout, zone.namespace, labels, zone.master_port))
        deferred = kind == "job" and bool(zone.queue)
        files[f"{DEFERRED}/{name}.yaml" if deferred else f"{name}.yaml"] = group
    for (namespace, queue), cluster_queue in sorted(queues.items()):
        files[f"localqueue-{namespace}-{queue}.yaml"] = [{
            "apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
            "metadata": {"name": queue, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "greenepoch"}},
            "spec": {"clusterQueue": cluster_queue},
        }]
    return files, plans


def _scheduled(kind: str, meta: dict[str, Any], labels: dict[str, str],
               spec: dict[str, Any], start: pd.Timestamp, window_s: int) -> dict[str, Any]:
    """A Job (``kind`` "job") or a CronJob firing at ``start`` for ``spec``; ``meta``
    goes on the Job, the CronJob gets ``labels`` (no Kueue queue label)."""
    if kind == "job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {**meta, "labels": labels},
        "spec": {
            "schedule": _cron(start),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": max(10, min(300, window_s // 4)),
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": meta["labels"],
                                         "annotations": meta["annotations"]},
                            "spec": spec},
        }}


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
    objs, plans = _manifests(plan, config, kind, now)
    pid = plan_id(plan)
    files = {name: to_yaml(group) for name, group in objs.items()}
    if kind == "job":
        files[RESUME] = resume_script(objs, pid)
    files[INDEX] = json.dumps({
        "schema_version": plan.schema_version, "plan_id": pid,
        "scheduler": "kubernetes", "kind": kind, "files": sorted(objs),
        "segments": _index_rows(plan, plans, objs),
    }, indent=2) + "\n"
    return files


def _index_rows(plan: Plan, plans: dict[str, Layout],
                objs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One ``export.json`` row per segment (numbered from 0 within its job, as in the
    labels and ``GREENEPOCH_SEGMENT``): its file, pods and checkpoint move."""
    file_of = {o["metadata"]["name"]: f for f, group in objs.items() for o in group}
    rows = []
    for seg in plan_segments(plan):
        layout = plans[seg.key]
        rows.append({
            "job": seg.job, "job_index": seg.job_index, "segment": seg.index,
            "zone": seg.zone, "start": iso(seg.start), "end": iso(seg.end), "gpus": seg.gpus,
            "name": layout.name, "file": file_of[layout.name], "pods": layout.pods,
            "gpus_per_pod": layout.gpus_per_pod, "service": layout.service,
            "checkpoint_dir": layout.checkpoint_dir,
            "checkpoint_copy": None if layout.copy is None else list(layout.copy),
            "transfer": None if layout.transfer is None or layout.transfer_start is None else {
                "name": layout.transfer, "file": file_of[layout.transfer],
                "start": iso(layout.transfer_start), "end": iso(seg.start)}})
    return rows


def write_k8s(plan: Plan, config: ClusterConfig, out_dir: str | Path, kind: str = "cronjob",
              now: pd.Timestamp | None = None, *, force: bool = False) -> Path:
    """Write the export to ``out_dir`` (all or nothing, :func:`write_tree`); an earlier
    export that was submitted is replaced only with ``force``."""
    files = export_k8s(plan, config, kind, now)
    return write_tree(files, out_dir, executable=frozenset({RESUME}), force=force)
