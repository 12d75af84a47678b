"""The clusters config (TOML): what to run for each plan job, and where each zone's
segments go on Slurm and Kubernetes.  Keys are checked strictly: an unknown key is
an error naming it.  Format and examples: docs/exports.md, examples/clusters.toml."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import RequestError
from planner.exports.common import ExportError, checkpoint_dirs, job_key
from planner.timeparse import duration

#: Slurm partition/account/cluster/qos names: what Slurm itself accepts, nothing that
#: could break out of an ``#SBATCH`` line.
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
SIGNALS = ("USR1", "USR2", "TERM", "INT", "HUP", "CONT")
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
    :func:`~planner.exports.common.job_key`: its slug and a hash of the exact name)."""

    command: tuple[str, ...] = ()
    resume_args: tuple[str, ...] = ("--resume", "{checkpoint}")
    checkpoint_dir: str = "checkpoints/{job}"
    checkpoint_lead_s: int = 600
    checkpoint_signal: str = "USR1"
    workdir: str | None = None
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def checkpoint_path(self, job: str) -> str:
        """``checkpoint_dir`` of plan job ``job``, ``{job}`` replaced."""
        return self.checkpoint_dir.replace("{job}", job_key(job))


@dataclass(frozen=True)
class SlurmZone:
    partition: str | None = None
    account: str | None = None
    cluster: str | None = None
    qos: str | None = None
    gpus_per_node: int | None = None
    gpu_flag: str = "gres"  # "gres": --gres=gpu:N per node; "gpus": --gpus=N per job


@dataclass(frozen=True)
class KubeZone:
    namespace: str = "default"
    node_affinity: tuple[tuple[str, tuple[str, ...]], ...] = ()
    queue: str | None = None
    cluster_queue: str | None = None
    gpus_per_node: int | None = None
    checkpoint_claim: str | None = None
    priority_class: str | None = None


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

    def check_plan_jobs(self, names: list[str], running: set[str]) -> None:
        """Refuse what would silently run the wrong thing for the plan's jobs ``names``:
        a name given twice, a ``[jobs."..."]`` table naming no plan job (its settings
        would be ignored: a trailing space made every segment run the default command),
        and two jobs with segments (``running``) sharing a checkpoint directory."""
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise ExportError(f"plan jobs[{i}]: name {name!r} is given to two jobs; "
                                  "job names must be unique for export (rename one and "
                                  "re-plan)")
            seen.add(name)
        unknown = [n for n in self.jobs if n not in seen]
        if unknown:
            raise ExportError(
                f"{self.source}: [jobs.{_toml_key(unknown[0])}] names no job of the plan "
                f"(found {unknown[0]!r}; the plan's jobs: {', '.join(map(repr, names))}); "
                "correct the name (spaces and case count) or remove the table")
        checkpoint_dirs({n: (self.job(n).checkpoint_path(n), self.job(n).workdir)
                         for n in names if n in running})

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
        f"add a [zones.{_toml_key(zone)}.{kind}] table to a clusters file and pass it with "
        "--config (or $GREENEPOCH_CLUSTERS; examples/clusters.toml shows the format)")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ExportError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ExportError(f"{where}: expected a string, found {value!r}")
    return value


def _argv(value: Any, where: str) -> tuple[str, ...]:
    """An argv from a list of strings, or from a string split like a shell (no shell
    ever runs it: ``;``, ``$(...)`` and backticks stay literal)."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ExportError(f"{where}: cannot split {value!r} into arguments ({exc}); "
                              "write it as a list of strings") from exc
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ExportError(f"{where}: expected a list of strings (argv), found {value!r}")


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExportError(f"{where}: expected a positive integer, found {value!r}")
    return value


def _seconds(value: Any, where: str) -> int:
    try:
        td = duration(value, where)
    except RequestError as exc:
        raise ExportError(str(exc)) from exc
    if td <= pd.Timedelta(0):
        raise ExportError(f"{where}: duration {value!r} must be positive")
    return int(td.total_seconds())


_JOB_KEYS = {"command", "resume_args", "checkpoint_dir", "checkpoint_lead",
             "checkpoint_signal", "workdir", "image", "env"}


def _job_settings(table: dict[str, Any], base: JobSettings, where: str) -> JobSettings:
    if not isinstance(table, dict):
        raise ExportError(f"{where}: expected a table")
    _check_keys(table, _JOB_KEYS, where)
    kw: dict[str, Any] = {}
    if "command" in table:
        kw["command"] = _argv(table["command"], f"{where}.command")
        if not kw["command"]:
            raise ExportError(f"{where}.command: must not be empty")
    if "resume_args" in table:
        kw["resume_args"] = _argv(table["resume_args"], f"{where}.resume_args")
    for key in ("checkpoint_dir", "workdir", "image"):
        if key in table:
            kw[key] = _str(table[key], f"{where}.{key}")
    if "checkpoint_lead" in table:
        kw["checkpoint_lead_s"] = _seconds(table["checkpoint_lead"], f"{where}.checkpoint_lead")
    if "checkpoint_signal" in table:
        sig = _str(table["checkpoint_signal"], f"{where}.checkpoint_signal").upper()
        sig = sig.removeprefix("SIG")
        if sig not in SIGNALS:
            raise ExportError(f"{where}.checkpoint_signal: {sig!r} is not one of "
                              f"{', '.join(SIGNALS)}")
        kw["checkpoint_signal"] = sig
    if "env" in table:
        env = table["env"]
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ExportError(f"{where}.env: expected a table of strings")
        for k in env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise ExportError(f"{where}.env: {k!r} is not a valid environment variable "
                                  "name ([A-Za-z_][A-Za-z0-9_]*)")
        kw["env"] = tuple(sorted(env.items()))
    return JobSettings(**{**base.__dict__, **kw})


def _slurm_name(value: Any, where: str) -> str:
    text = _str(value, where)
    if not SLURM_NAME.fullmatch(text):
        raise ExportError(f"{where}: {text!r} is not a Slurm name "
                          "(letters, digits and _.@+- only)")
    return text


def _slurm_zone(table: dict[str, Any], where: str) -> SlurmZone:
    _check_keys(table, {"partition", "account", "cluster", "qos", "gpus_per_node",
                        "gpu_flag"}, where)
    kw: dict[str, Any] = {}
    for key in ("partition", "account", "cluster", "qos"):
        if key in table:
            kw[key] = _slurm_name(table[key], f"{where}.{key}")
    if "gpus_per_node" in table:
        kw["gpus_per_node"] = _positive_int(table["gpus_per_node"], f"{where}.gpus_per_node")
    if "gpu_flag" in table:
        if table["gpu_flag"] not in ("gres", "gpus"):
            raise ExportError(f"{where}.gpu_flag: expected 'gres' or 'gpus', "
                              f"found {table['gpu_flag']!r}")
        kw["gpu_flag"] = table["gpu_flag"]
    return SlurmZone(**kw)


def _k8s_name(value: Any, where: str) -> str:
    text = _str(value, where)
    if len(text) > 63 or not _K8S_NAME.fullmatch(text):
        raise ExportError(f"{where}: {text!r} is not a Kubernetes name "
                          "(lower-case letters, digits and '-', at most 63)")
    return text


def _kube_zone(table: dict[str, Any], where: str) -> KubeZone:
    _check_keys(table, {"namespace", "node_affinity", "queue", "cluster_queue",
                        "gpus_per_node", "checkpoint_claim", "priority_class"}, where)
    kw: dict[str, Any] = {}
    for key in ("namespace", "queue", "cluster_queue", "checkpoint_claim", "priority_class"):
        if key in table:
            kw[key] = _k8s_name(table[key], f"{where}.{key}")
    if "gpus_per_node" in table:
        kw["gpus_per_node"] = _positive_int(table["gpus_per_node"], f"{where}.gpus_per_node")
    if "node_affinity" in table:
        aff = table["node_affinity"]
        if not isinstance(aff, dict):
            raise ExportError(f"{where}.node_affinity: expected a table of label = value(s)")
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
    jobs_table = doc.get("jobs", {})
    if not isinstance(jobs_table, dict):
        raise ExportError(f"{source}: [jobs] must be a table of tables keyed by plan job name")
    for name, table in jobs_table.items():
        jobs[name] = _job_settings(table, defaults, f"{source}: [jobs.{_toml_key(name)}]")
    slurm, kube = {}, {}
    for zone, table in (doc.get("zones") or {}).items():
        where = f"{source}: [zones.{_toml_key(zone)}]"
        if not isinstance(table, dict):
            raise ExportError(f"{where}: expected a table")
        _check_keys(table, {"slurm", "kubernetes"}, where)
        if "slurm" in table:
            slurm[zone] = _slurm_zone(table["slurm"], f"{where[:-1]}.slurm]")
        if "kubernetes" in table:
            kube[zone] = _kube_zone(table["kubernetes"], f"{where[:-1]}.kubernetes]")
    top = doc.get("slurm", {})
    _check_keys(top, {"federation"}, f"{source}: [slurm]")
    federation = top.get("federation", False)
    if not isinstance(federation, bool):
        raise ExportError(f"{source}: [slurm].federation: expected true or false")
    return ClusterConfig(defaults, jobs, slurm, kube, federation, source)


def load_config(path: str | Path | None) -> ClusterConfig:
    """Read a clusters TOML file; ``None`` gives the built-in defaults (no zone mapped)."""
    if path is None:
        return ClusterConfig()
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the clusters config ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ExportError(f"{path}: not valid TOML ({exc})") from exc
    return parse_config(doc, str(path))
