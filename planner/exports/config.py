"""The clusters config (TOML): what to run for each plan job, and where each zone's
segments go on Slurm and Kubernetes.  Keys are checked strictly: an unknown key is
an error naming it.  Format and examples: docs/exports.md, examples/clusters.toml."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from greenepoch.data.errors import RequestError, param
from greenepoch.data.timeparse import boolean, count, duration, kind, shown, table, text
from greenepoch.planner.exports.common import ExportError, job_key
from greenepoch.planner.request import read_toml

#: Slurm partition/account/cluster/qos names: what Slurm itself accepts, nothing that
#: could break out of an ``#SBATCH`` line.
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
SIGNALS = ("USR1", "USR2", "TERM", "INT", "HUP", "CONT")
LAUNCHERS = ("torchrun", "srun", "none")
#: Checkpoint lead when neither the config nor the plan (``checkpoint_save_hours``) sets it.
DEFAULT_LEAD_S = 600
DEFAULT_COPY = ("rsync", "-a", "{src}/", "{dst}/")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_K8S_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class JobSettings:
    """How to run one plan job.  ``command`` is an argv list, never run by a shell;
    ``resume_args`` are appended when a checkpoint exists, ``{checkpoint}`` replaced
    by its path at run time; ``checkpoint_dir`` may hold ``{job}`` (the job's
    :func:`~planner.exports.common.job_key`: its slug and a hash of the exact name).
    ``checkpoint_lead_given`` says whether the config set ``checkpoint_lead`` (else the
    plan's checkpoint save time decides, :meth:`lead_s`); ``checkpoint_copy`` is the argv
    template of a checkpoint move (:meth:`copy_argv`)."""

    command: tuple[str, ...] = ()
    resume_args: tuple[str, ...] = ("--resume", "{checkpoint}")
    checkpoint_dir: str = "checkpoints/{job}"
    checkpoint_lead_s: int = DEFAULT_LEAD_S
    checkpoint_signal: str = "USR1"
    workdir: str | None = None
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    checkpoint_lead_given: bool = False
    checkpoint_copy: tuple[str, ...] = DEFAULT_COPY

    def checkpoint_path(self, job: str) -> str:
        """``checkpoint_dir`` of plan job ``job``, ``{job}`` replaced."""
        return self.checkpoint_dir.replace("{job}", job_key(job))

    def lead_s(self, save_s: int | None) -> int:
        """Seconds between the checkpoint signal and a segment's end: ``checkpoint_lead``
        when the config sets it, else the plan's save time ``save_s`` (from
        ``checkpoint_save_hours``, :attr:`Segment.save_s`), else 600 s (older plans)."""
        if self.checkpoint_lead_given or not save_s:
            return self.checkpoint_lead_s
        return save_s

    def copy_argv(self, job: str, src: str, dst: str) -> tuple[str, ...]:
        """``checkpoint_copy`` for plan job ``job``: ``{src}`` (the source zone's
        checkpoint_url), ``{dst}`` (the destination zone's checkpoint_dir) and ``{job}``
        replaced in one pass (a ``{dst}`` inside ``src`` stays as written)."""
        values = {"{src}": src, "{dst}": dst, "{job}": job_key(job)}
        return tuple(re.sub(r"\{(src|dst|job)\}", lambda m: values[m.group(0)], arg)
                     for arg in self.checkpoint_copy)


@dataclass(frozen=True)
class _CheckpointStore:
    """Where a zone's cluster keeps checkpoints: ``checkpoint_dir`` as the training sees
    it and ``checkpoint_url`` as a copy on another cluster reaches it (both may hold
    ``{job}``; None: the job's checkpoint_dir, a shared filesystem)."""

    checkpoint_dir: str | None = None
    checkpoint_url: str | None = None
    master_port: int = 29500

    def checkpoint_path(self, settings: JobSettings, job: str) -> str:
        """Plan job ``job``'s checkpoint directory on this zone's cluster."""
        if self.checkpoint_dir is None:
            return settings.checkpoint_path(job)
        return self.checkpoint_dir.replace("{job}", job_key(job))

    def checkpoint_source(self, settings: JobSettings, job: str) -> str:
        """Where a copy running on another cluster reads ``job``'s checkpoints here."""
        if self.checkpoint_url is None:
            return self.checkpoint_path(settings, job)
        return self.checkpoint_url.replace("{job}", job_key(job))


@dataclass(frozen=True)
class SlurmZone(_CheckpointStore):
    """A zone's Slurm cluster.  ``launcher`` None: chosen from the command
    (:meth:`launcher_for`)."""

    partition: str | None = None
    account: str | None = None
    cluster: str | None = None
    qos: str | None = None
    gpus_per_node: int | None = None
    gpu_flag: str = "gres"  # "gres": --gres=gpu:N per node; "gpus": --gpus=N per job
    launcher: str | None = None

    def launcher_for(self, command: tuple[str, ...]) -> str:
        """``launcher``, else "torchrun" when the command's first word is torchrun
        (any path), else "srun"."""
        if self.launcher is not None:
            return self.launcher
        first = command[0].rsplit("/", 1)[-1] if command else ""
        return "torchrun" if first == "torchrun" else "srun"


@dataclass(frozen=True)
class KubeZone(_CheckpointStore):
    """A zone's Kubernetes cluster; ``ephemeral_checkpoints``: the user accepts
    checkpoints on the container's ephemeral storage (no ``checkpoint_claim``)."""

    namespace: str = "default"
    node_affinity: tuple[tuple[str, tuple[str, ...]], ...] = ()
    queue: str | None = None
    cluster_queue: str | None = None
    gpus_per_node: int | None = None
    checkpoint_claim: str | None = None
    priority_class: str | None = None
    ephemeral_checkpoints: bool = False


@dataclass(frozen=True)
class ClusterConfig:
    """Parsed clusters config: job settings (defaults and per plan job) and zones."""

    defaults: JobSettings = field(default_factory=JobSettings)
    jobs: dict[str, JobSettings] = field(default_factory=dict)
    slurm: dict[str, SlurmZone] = field(default_factory=dict)
    kubernetes: dict[str, KubeZone] = field(default_factory=dict)
    slurm_federation: bool = False
    source: str = "(built-in defaults)"

    def job(self, name: str) -> JobSettings:
        return self.jobs.get(name, self.defaults)

    def check_plan_jobs(self, names: list[str]) -> None:
        """Refuse what would silently run the wrong thing for the plan's jobs ``names``
        (unique: the plan checks that): a ``[jobs."..."]`` table naming no plan job (its
        settings would be ignored: a trailing space made every segment run the default
        command).  Two jobs sharing a checkpoint directory are refused by each export,
        which knows the zones' own dirs (:func:`~planner.exports.common.checkpoint_dirs`)."""
        seen = set(names)
        unknown = [n for n in self.jobs if n not in seen]
        if unknown:
            raise ExportError(
                f"{self.source}: [jobs.{toml_key(unknown[0])}] names no job of the plan "
                f"(found {unknown[0]!r}; the plan's jobs: {', '.join(map(repr, names))}); "
                "correct the name (spaces and case count) or remove the table")

    def slurm_zone(self, zone: str, *, required: bool = True) -> SlurmZone:
        return _zone(self.slurm, zone, "slurm", self.source, required)

    def kube_zone(self, zone: str, *, required: bool = True) -> KubeZone:
        return _zone(self.kubernetes, zone, "kubernetes", self.source, required)


def _zone(table: dict[str, Any], zone: str, kind: str, source: str, required: bool) -> Any:
    if zone in table:
        return table[zone]
    if not required:
        return SlurmZone() if kind == "slurm" else KubeZone()
    known = ", ".join(sorted(table)) or "none"
    raise ExportError(
        f"zone {zone!r} has no {kind} cluster mapping in {source} (mapped zones: {known}); "
        f"add a [zones.{toml_key(zone)}.{kind}] table to a clusters file and pass it with "
        f"{param('config_file')} (or $GREENEPOCH_CLUSTERS; examples/clusters.toml shows the "
        "format)")


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'


def _check_keys(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ExportError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _typed(read: Any, value: Any, where: str, **kw: Any) -> Any:
    """``read`` (a :mod:`planner.timeparse` reader: one rule for every file GreenEpoch
    reads) with its error raised as an :class:`ExportError`."""
    try:
        return read(value, where, **kw)
    except RequestError as exc:
        raise ExportError(str(exc)) from exc


def _table(value: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = _typed(table, value, where)
    return out


def _str(value: Any, where: str, example: str = "'gpu'") -> str:
    out: str = _typed(text, value, where, example=example)
    return out


def _nonempty(value: Any, where: str, example: str) -> str:
    out = _str(value, where, example)
    if not out.strip():
        raise ExportError(f"{where} = {shown(value)}: must not be empty; write e.g. {example} "
                          "or leave the key out")
    return out


def _argv(value: Any, where: str) -> tuple[str, ...]:
    """An argv from a list of strings, or from a string split like a shell (no shell
    ever runs it: ``;``, ``$(...)`` and backticks stay literal)."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ExportError(f"{where}: cannot split {value!r} into arguments ({exc}); "
                              "write it as a list of strings") from exc
    if isinstance(value, list):
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise ExportError(f"{where}[{i}] = {shown(v)}: expected text, found {kind(v)}; "
                                  "every argument is a string (quote numbers: \"8\")")
        return tuple(value)
    raise ExportError(f"{where} = {shown(value)}: expected a list of strings (argv), found "
                      f"{kind(value)}; write e.g. [\"python\", \"train.py\"]")


def _positive_int(value: Any, where: str) -> int:
    out: int = _typed(count, value, where, low=1)
    return out


def _seconds(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ExportError(f"{where} = {shown(value)}: expected a duration, found a boolean; "
                          "write e.g. '10min'")
    td = _typed(duration, value, where)
    if td <= pd.Timedelta(0):
        raise ExportError(f"{where} = {shown(value)}: must be positive; write e.g. '10min'")
    if td % pd.Timedelta("1s"):
        raise ExportError(f"{where} = {shown(value)}: must be whole seconds (signals and "
                          "grace periods are set in seconds); write e.g. '90s' or '2min'")
    return int(td.total_seconds())


_JOB_KEYS = {"command", "resume_args", "checkpoint_dir", "checkpoint_lead",
             "checkpoint_signal", "workdir", "image", "env", "checkpoint_copy"}
_STORE_KEYS = {"checkpoint_dir", "checkpoint_url", "master_port"}


def _placeholders(value: str, allowed: tuple[str, ...], where: str, meaning: str) -> None:
    other = sorted(set(re.findall(r"\{[^{}]*\}", value)) - set(allowed))
    if other:
        raise ExportError(f"{where} = {shown(value)}: unknown placeholder {other[0]}; only "
                          f"{', '.join(allowed)} {'is' if len(allowed) == 1 else 'are'} "
                          f"replaced ({meaning})")


def _copy_argv(value: Any, where: str) -> tuple[str, ...]:
    argv = _argv(value, where)
    if not argv or not argv[0].strip():
        raise ExportError(f"{where}: must name a program; write e.g. "
                          '["rclone", "copy", "{src}", "{dst}"]')
    for arg in argv:
        _placeholders(arg, ("{src}", "{dst}", "{job}"), where,
                      "{src}: the source zone's checkpoint_url, {dst}: the destination "
                      "zone's checkpoint_dir, {job}: the job's key")
    return argv


def _store(table: dict[str, Any], where: str) -> dict[str, Any]:
    """The checkpoint-store and rendezvous keys every cluster kind shares."""
    kw: dict[str, Any] = {}
    for key, example in (("checkpoint_dir", "'/scratch/ckpt/{job}'"),
                         ("checkpoint_url", "'hpc-de:/scratch/ckpt/{job}'")):
        if key in table:
            kw[key] = _nonempty(table[key], f"{where}.{key}", example)
            _placeholders(kw[key], ("{job}",), f"{where}.{key}",
                          "the job's name as a unique file-safe key")
    if "master_port" in table:
        kw["master_port"] = _typed(count, table["master_port"], f"{where}.master_port",
                                   low=1024, high=65535)
    return kw


def _job_settings(value: Any, base: JobSettings, where: str) -> JobSettings:
    table = _table(value, where)
    _check_keys(table, _JOB_KEYS, where)
    kw: dict[str, Any] = {}
    if "command" in table:
        kw["command"] = _argv(table["command"], f"{where}.command")
        if not kw["command"]:
            raise ExportError(f"{where}.command: must not be empty")
    if "resume_args" in table:
        kw["resume_args"] = _argv(table["resume_args"], f"{where}.resume_args")
    for key, example in (("checkpoint_dir", "'checkpoints/{job}'"), ("workdir", "'/home/ml'"),
                         ("image", "'ghcr.io/org/train:1'")):
        if key in table:
            kw[key] = _nonempty(table[key], f"{where}.{key}", example)
    if "checkpoint_dir" in kw:
        _placeholders(kw["checkpoint_dir"], ("{job}",), f"{where}.checkpoint_dir",
                      "the job's name as a unique file-safe key")
    if "checkpoint_lead" in table:
        kw["checkpoint_lead_s"] = _seconds(table["checkpoint_lead"], f"{where}.checkpoint_lead")
        kw["checkpoint_lead_given"] = True
    if "checkpoint_copy" in table:
        kw["checkpoint_copy"] = _copy_argv(table["checkpoint_copy"], f"{where}.checkpoint_copy")
    if "checkpoint_signal" in table:
        given = _str(table["checkpoint_signal"], f"{where}.checkpoint_signal", "'USR1'")
        sig = given.upper().removeprefix("SIG")
        if sig not in SIGNALS:
            raise ExportError(f"{where}.checkpoint_signal = {shown(given)}: not one of "
                              f"{', '.join(SIGNALS)} (SIG prefix and case optional)")
        kw["checkpoint_signal"] = sig
    if "env" in table:
        env = _table(table["env"], f"{where}.env")
        for k, v in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise ExportError(f"{where}.env: {k!r} is not a valid environment variable "
                                  "name ([A-Za-z_][A-Za-z0-9_]*)")
            _str(v, f"{where}.env.{k}", "'offline' (quote numbers and booleans)")
        kw["env"] = tuple(sorted(env.items()))
    return JobSettings(**{**base.__dict__, **kw})


def _slurm_name(value: Any, where: str) -> str:
    text = _str(value, where)
    if not SLURM_NAME.fullmatch(text):
        raise ExportError(f"{where}: {text!r} is not a Slurm name "
                          "(letters, digits and _.@+- only)")
    return text


def _slurm_zone(value: Any, where: str) -> SlurmZone:
    table = _table(value, where)
    _check_keys(table, {"partition", "account", "cluster", "qos", "gpus_per_node",
                        "gpu_flag", "launcher"} | _STORE_KEYS, where)
    kw: dict[str, Any] = _store(table, where)
    for key in ("partition", "account", "cluster", "qos"):
        if key in table:
            kw[key] = _slurm_name(table[key], f"{where}.{key}")
    if "gpus_per_node" in table:
        kw["gpus_per_node"] = _positive_int(table["gpus_per_node"], f"{where}.gpus_per_node")
    if "gpu_flag" in table:
        if table["gpu_flag"] not in ("gres", "gpus"):
            raise ExportError(f"{where}.gpu_flag = {shown(table['gpu_flag'])}: expected "
                              "'gres' or 'gpus'")
        kw["gpu_flag"] = table["gpu_flag"]
    if "launcher" in table:
        if table["launcher"] not in LAUNCHERS:
            raise ExportError(f"{where}.launcher = {shown(table['launcher'])}: expected "
                              "'torchrun', 'srun' (the program reads Slurm's variables) or "
                              "'none' (single node)")
        kw["launcher"] = table["launcher"]
    return SlurmZone(**kw)


def _k8s_name(value: Any, where: str) -> str:
    text = _str(value, where, "'training'")
    if len(text) > 63 or not _K8S_NAME.fullmatch(text):
        raise ExportError(f"{where}: {text!r} is not a Kubernetes name "
                          "(lower-case letters, digits and '-', at most 63)")
    return text


def _kube_zone(value: Any, where: str) -> KubeZone:
    table = _table(value, where)
    _check_keys(table, {"namespace", "node_affinity", "queue", "cluster_queue",
                        "gpus_per_node", "checkpoint_claim", "priority_class",
                        "ephemeral_checkpoints"} | _STORE_KEYS, where)
    kw: dict[str, Any] = _store(table, where)
    if "ephemeral_checkpoints" in table:
        kw["ephemeral_checkpoints"] = _typed(boolean, table["ephemeral_checkpoints"],
                                             f"{where}.ephemeral_checkpoints")
    for key in ("namespace", "queue", "cluster_queue", "checkpoint_claim", "priority_class"):
        if key in table:
            kw[key] = _k8s_name(table[key], f"{where}.{key}")
    if "gpus_per_node" in table:
        kw["gpus_per_node"] = _positive_int(table["gpus_per_node"], f"{where}.gpus_per_node")
    if "node_affinity" in table:
        aff = _table(table["node_affinity"], f"{where}.node_affinity")
        terms = []
        for key, values in aff.items():
            vals = [values] if isinstance(values, str) else values
            if not _K8S_LABEL_KEY.fullmatch(key) or len(key) > 317:
                raise ExportError(f"{where}.node_affinity: {key!r} is not a label key")
            if not isinstance(vals, list) or not vals or not all(
                    isinstance(v, str) and len(v) <= 63 and _K8S_LABEL_VALUE.fullmatch(v)
                    for v in vals):
                raise ExportError(f"{where}.node_affinity.{key}: expected label value(s) "
                                  f"([A-Za-z0-9_.-], at most 63), found {values!r}")
            terms.append((key, tuple(vals)))
        kw["node_affinity"] = tuple(terms)
    return KubeZone(**kw)


def parse_config(doc: dict[str, Any], source: str = "(config)") -> ClusterConfig:
    """A :class:`ClusterConfig` from a parsed TOML document (strict keys)."""
    _check_keys(doc, {"defaults", "jobs", "zones", "slurm"}, source)
    defaults = _job_settings(doc.get("defaults", {}), JobSettings(), f"{source}: [defaults]")
    jobs = {}
    jobs_table = _table(doc.get("jobs", {}), f"{source}: [jobs]")
    for name, value in jobs_table.items():
        jobs[name] = _job_settings(value, defaults, f"{source}: [jobs.{toml_key(name)}]")
    slurm, kube = {}, {}
    for zone, value in _table(doc.get("zones", {}), f"{source}: [zones]").items():
        where = f"{source}: [zones.{toml_key(zone)}]"
        zone_table = _table(value, where)
        _check_keys(zone_table, {"slurm", "kubernetes"}, where)
        if "slurm" in zone_table:
            slurm[zone] = _slurm_zone(zone_table["slurm"], f"{where[:-1]}.slurm]")
        if "kubernetes" in zone_table:
            kube[zone] = _kube_zone(zone_table["kubernetes"], f"{where[:-1]}.kubernetes]")
    top = _table(doc.get("slurm", {}), f"{source}: [slurm]")
    _check_keys(top, {"federation"}, f"{source}: [slurm]")
    federation = _typed(boolean, top.get("federation", False), f"{source}: [slurm].federation")
    return ClusterConfig(defaults, jobs, slurm, kube, federation, source)


def load_config(config_file: str | Path | None) -> ClusterConfig:
    """Read a clusters TOML file; ``None`` (or ``""``, an empty $GREENEPOCH_CLUSTERS)
    gives the built-in defaults (no zone mapped).

    A missing, non-UTF-8 or malformed file is an :class:`ExportError` (the request
    reader's rules); another OS error (a folder, no permission) is raised as is."""
    if config_file is None or config_file == "":
        return ClusterConfig()
    try:
        doc = read_toml(Path(config_file), "clusters config")
    except RequestError as exc:
        raise ExportError(str(exc)) from exc
    return parse_config(doc, str(config_file))
