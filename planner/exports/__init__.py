"""Exports of a plan to cluster schedulers: Slurm batch scripts, Kubernetes manifests,
and a generic segment table (JSON/CSV).

Every exporter reads a :class:`~planner.plan.Plan` and a :class:`ClusterConfig`, builds
all files in memory, and writes them with :func:`write_tree` (a temp dir renamed at
the end: nothing is written half-way).  User-given strings (job names, commands,
paths) are data: they are shell-quoted, YAML-serialised or rejected, never spliced.
Contracts: docs/exports.md.
"""

from greenepoch.planner.exports.common import ExportError, Segment, plan_id, plan_segments
from greenepoch.planner.exports.config import ClusterConfig, load_config

__all__ = ["ClusterConfig", "ExportError", "Segment", "load_config", "plan_id",
           "plan_segments"]
