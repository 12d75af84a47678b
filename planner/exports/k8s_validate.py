"""Strict offline validation of Kubernetes manifests.

Core kinds (Job, CronJob, ...) against the official JSON schemas of the pinned
Kubernetes version :data:`KUBERNETES_VERSION` (PyPI ``kubernetes-validate``, strict
variant: undeclared properties are errors).  Custom resources (Kueue, JobSet) against
the ``openAPIV3Schema`` of their CRD, made strict the same way: every object schema
that declares ``properties`` gets ``additionalProperties: false`` unless it sets
``x-kubernetes-preserve-unknown-fields`` (the API server would drop such fields
silently).  The schemas leave label syntax and DNS names unchecked, so every
``metadata.labels`` (and a Service's ``selector``) is also checked against the API
server's rules for label keys and values, and the names the pods of a multi-pod Job
get (:func:`dns_errors`) against the DNS rules that would fail them at pod creation.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from greenepoch.planner.exports.common import ExportError

#: The Kubernetes version manifests are validated against.
KUBERNETES_VERSION = "1.30.0"

#: A label value, and the name part of a label key (at most 63 characters each).
LABEL_NAME = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
#: The optional prefix of a label key: a DNS-1123 subdomain (at most 253 characters).
LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_RULE = "at most 63 of [A-Za-z0-9_.-], beginning and ending with a letter or digit"
#: A DNS-1123 label (a pod's subdomain and hostname), and a DNS-1035 one (a Service name).
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: What a CronJob appends to its name for each Job it creates: ``-`` and the scheduled
#: time in minutes since 1970 (8 digits until the year 2160).
CRON_JOB_SUFFIX = 9


def label_errors(obj: Any, path: str = "") -> list[str]:
    """Every invalid label key or value in ``metadata.labels`` anywhere in ``obj`` and
    in a Service's ``spec.selector``, as ``"<path>: <problem>"``."""
    out: list[str] = []
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        maps = [("metadata/labels", meta.get("labels") if isinstance(meta, dict) else None)]
        if obj.get("kind") == "Service" and isinstance(obj.get("spec"), dict):
            maps.append(("spec/selector", obj["spec"].get("selector")))
        pairs = [(f"{path}{at}/{key}", key, value) for at, labels in maps
                 if isinstance(labels, dict) for key, value in labels.items()]
        for where, key, value in pairs:
            prefix, slash, name = str(key).rpartition("/")
            if slash and (len(prefix) > 253 or not LABEL_PREFIX.fullmatch(prefix)):
                out.append(f"{where}: key prefix {prefix!r} must be a lowercase DNS subdomain")
            if not name or len(name) > 63 or not LABEL_NAME.fullmatch(name):
                out.append(f"{where}: key name {name!r} must be {_LABEL_RULE}")
            if not isinstance(value, str) or len(value) > 63 or not LABEL_NAME.fullmatch(value):
                out.append(f"{where}: value {value!r} must be a string of {_LABEL_RULE}")
        for k, v in obj.items():
            out += label_errors(v, f"{path}{k}/")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += label_errors(v, f"{path}{i}/")
    return out


def _at(node: Any, *keys: str) -> dict[str, Any]:
    """``node[keys[0]][keys[1]]...`` when every step is a mapping, else ``{}`` (the
    schema check reports wrong types)."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def dns_errors(obj: dict[str, Any]) -> list[str]:
    """Names the API server checks only when it creates the pods, as
    ``"<path>: <problem>"``: a Service's name (DNS-1035 label), a Job's pod
    ``subdomain`` (DNS-1123 label), and an Indexed Job's pod hostnames
    ``<Job name>-<index>`` (at most 63 characters; a CronJob's Jobs are named after it
    plus :data:`CRON_JOB_SUFFIX` characters)."""
    out: list[str] = []
    name = str(_at(obj, "metadata").get("name", ""))
    if obj.get("kind") == "Service" and (len(name) > 63 or not DNS_1035_LABEL.fullmatch(name)):
        out.append(f"metadata/name: {name!r} must be a DNS-1035 label (at most 63 of "
                   "[a-z0-9-], beginning with a letter)")
    where, job = "spec", _at(obj, "spec")
    if obj.get("kind") == "CronJob":
        where, job = "spec/jobTemplate/spec", _at(obj, "spec", "jobTemplate", "spec")
        name += "x" * CRON_JOB_SUFFIX
    elif obj.get("kind") != "Job":
        return out
    sub = _at(job, "template", "spec").get("subdomain")
    if sub is not None and (len(str(sub)) > 63 or not DNS_1123_LABEL.fullmatch(str(sub))):
        out.append(f"{where}/template/spec/subdomain: {sub!r} must be a DNS-1123 label "
                   "(at most 63 of [a-z0-9-])")
    pods = job.get("completions")
    if job.get("completionMode") == "Indexed" and isinstance(pods, int) and pods > 0:
        host = f"{name}-{pods - 1}"
        if len(host) > 63:
            out.append(f"metadata/name: the pods' hostnames (<Job name>-<index>, e.g. "
                       f"{host!r}) would be longer than 63 characters; shorten the name")
    return out


def strict_schema(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema that rejects undeclared properties."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def _crd_schemas(crd_dir: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict schema, from every CRD YAML (or JSON) in crd_dir."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(crd_dir).glob("*")):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        text = path.read_text(encoding="utf-8")
        docs = [json.loads(text)] if path.suffix == ".json" else list(
            yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    out[(f"{group}/{version['name']}", kind)] = strict_schema(schema)
    return out


def validate(obj: dict[str, Any], crd_dir: str | Path | None = None,
             version: str = KUBERNETES_VERSION) -> str:
    """Validate one object strictly; return what it was checked against.

    Raises :class:`ExportError` naming the object, the failing path and the reason.
    """
    try:
        import jsonschema
        import kubernetes_validate
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ExportError("manifest validation needs the 'kubernetes-validate' package "
                          "(pip install kubernetes-validate)") from exc
    what = f"{obj.get('kind')} {_at(obj, 'metadata').get('name')!r}"
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    bad_labels = label_errors(obj)
    if bad_labels:
        raise ExportError(f"{what}: invalid label at {bad_labels[0]} (the API server would "
                          "reject it)")
    bad_names = dns_errors(obj)
    if bad_names:
        raise ExportError(f"{what}: invalid name at {bad_names[0]} (the API server would "
                          "reject it or the pods)")
    if crd_dir is not None and key in _crd_schemas(str(crd_dir)):
        schema = _crd_schemas(str(crd_dir))[key]
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj),
                        key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = "/".join(map(str, err.absolute_path)) or "(root)"
            raise ExportError(f"{what}: invalid against the {key[0]} {key[1]} CRD at "
                              f"{where}: {err.message}")
        return f"CRD {key[0]} {key[1]}"
    try:
        checked = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(root)"
        raise ExportError(f"{what}: invalid for Kubernetes {version} at {where}: "
                          f"{exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ExportError(f"{what}: no schema for {key[0]} {key[1]} in Kubernetes {version} "
                          "nor in the CRDs given") from exc
    return f"Kubernetes {checked} {key[0]} {key[1]}"

