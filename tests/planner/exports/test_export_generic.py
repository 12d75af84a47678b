"""``greenepoch export json|csv``: the segment table with the plan's schema version."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
from export_fixtures import hostile, plan_doc, run_cli, segment
from greenepoch.planner.exports.generic import COLUMNS
from greenepoch.planner.plan import SCHEMA_VERSION

START = pd.Timestamp("2023-06-01T07:00:00Z")  # past segments are fine for tables
NAME = hostile("/nonexistent/canary")


def _plan(tmp_path):
    doc = plan_doc({NAME: [segment("DE", START, 60, 8), segment("GB", START + pd.Timedelta("3h"),
                                                                  30, 4)],
                    "b": [segment("DE", START, 15, 1)]})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


def test_json_table(tmp_path):
    result = run_cli(["export", "json", str(_plan(tmp_path))])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert len(doc["plan_id"]) == 12
    segs = doc["segments"]
    assert [s["job"] for s in segs] == [NAME, NAME, "b"]
    assert segs[1] == {"job": NAME, "job_index": 0, "segment": 1, "zone": "GB",
                       "start": "2023-06-01T10:00:00Z", "end": "2023-06-01T10:30:00Z",
                       "duration_s": 1800, "gpus": 4, "energy_kwh": 1.5, "emissions_kg": 0.25,
                       "depends_on": "j0s0"}
    assert doc["columns"] == list(segs[0])


def test_csv_table_roundtrips_hostile_names(tmp_path):
    out = tmp_path / "segments.csv"
    result = run_cli(["export", "csv", str(_plan(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == COLUMNS
    assert {r["schema_version"] for r in rows} == {SCHEMA_VERSION}
    assert rows[0]["job"] == NAME and rows[2]["job"] == "b"
    assert [r["depends_on"] for r in rows] == ["", "j0s0", ""]


def test_unknown_schema_version_exit_2(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**plan_doc({"a": []}), "schema_version": "9.9"}))
    out = tmp_path / "t.csv"
    result = run_cli(["export", "csv", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "schema_version '9.9' is not supported" in result.stderr
    assert not out.exists()


def test_out_over_the_plan_itself_is_refused(tmp_path):
    plan = _plan(tmp_path)
    before = plan.read_bytes()
    for fmt in ("json", "csv"):
        result = run_cli(["export", fmt, str(plan), "--out", str(tmp_path / "." / "plan.json")])
        assert result.exit_code == 2, result.output
        assert "is the plan file itself" in result.stderr
        assert result.stderr.count("\n") == 1
    assert plan.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]
