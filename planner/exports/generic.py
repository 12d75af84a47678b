"""Generic export: the plan's segment table for other schedulers, as JSON or CSV,
stamped with the plan's ``schema_version`` and id.  Past segments are kept."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from greenepoch.planner.exports.common import iso, plan_id, plan_segments
from greenepoch.planner.plan_doc import Plan

COLUMNS = ["schema_version", "plan_id", "job", "job_index", "segment", "zone", "start",
           "end", "duration_s", "gpus", "energy_kwh", "emissions_kg", "depends_on"]


def rows(plan: Plan) -> list[dict[str, Any]]:
    """One dict per segment; ``depends_on`` is the previous segment of the same job
    (``j<job_index>s<segment>``) or empty."""
    pid = plan_id(plan)
    version = plan.schema_version
    out = []
    for seg in plan_segments(plan):
        out.append({
            "schema_version": version, "plan_id": pid, "job": seg.job,
            "job_index": seg.job_index, "segment": seg.index, "zone": seg.zone,
            "start": iso(seg.start), "end": iso(seg.end), "duration_s": seg.duration_s,
            "gpus": seg.gpus, "energy_kwh": seg.energy_kwh, "emissions_kg": seg.emissions_kg,
            "depends_on": f"j{seg.job_index}s{seg.index - 1}" if seg.index else "",
        })
    return out


def to_json(plan: Plan) -> str:
    table = rows(plan)
    doc = {"schema_version": plan.schema_version, "plan_id": plan_id(plan),
           "columns": COLUMNS[2:],
           "segments": [{k: v for k, v in r.items() if k not in ("schema_version",
                                                                  "plan_id")}
                        for r in table]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def to_csv(plan: Plan) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(plan))
    return buf.getvalue()
