"""Every command's file inputs fed malformed files (issue 13 item 6).

docs/cli.md promises that bad input is one line ``greenepoch: error: ...`` on stderr
and exit code 2, never a traceback, and no output file left behind.  Each file slot
of each command (a request, a spec, a spec's base request, a zone's price file, a
plan JSON, a clusters config, a saved squeue output, a replay jobs CSV, a data
export) is fed the same kinds of malformed files: empty, random bytes, text that is
not UTF-8, and well-formed files holding values of the wrong types.  The files are
made here, by hand; nothing is mocked: the real CLI reads them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.request import JOB_KEYS, POLICY_KEYS, ZONE_KEYS, parse_request
from greenepoch.planner.whatif.spec import SWEEP_KEYS, WHATIF_KEYS, parse_spec

#: A request that plans (used where another file slot is the malformed one).
REQUEST = """
start = "2023-03-06T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
deadline = "2023-03-07T00:00:00Z"
zones = ["DE"]

[[zones]]
id = "DE"
capacity_gpus = 16
{zone}

[policy]
time_limit = "5s"
"""

RANDOM = random.Random(13).randbytes(600)

#: Malformed contents shared by every format.
COMMON: dict[str, bytes] = {
    "empty": b"",
    "random-bytes": RANDOM,
    "nul-bytes": b"\x00" * 64,
}

#: Per format: text that is not UTF-8, and well-formed files of the wrong types.
TOML_BAD: dict[str, bytes] = {
    **COMMON,
    "not-utf8": REQUEST.format(zone="").encode() + b'# caf\xe9 \xff\n',
    "jobs-not-tables": b'start = "2023-03-06T00:00:00Z"\njobs = [1, 2]\n',
    "jobs-a-string": b'start = "2023-03-06T00:00:00Z"\njobs = "ft"\n',
    "start-a-number": b"start = 5\n",
    "gpu-hours-inf": REQUEST.format(zone="").replace('duration = "3h"',
                                                    "gpu_hours = inf").encode(),
    "gpus-20-digits": REQUEST.format(zone="").replace("gpus = 8",
                                                      "gpus = 12345678901234567890").encode(),
    "allow-split-text": REQUEST.format(zone="").replace(
        'zones = ["DE"]', 'zones = ["DE"]\nallow_split = "false"').encode(),
    "zones-a-table": b'start = "2023-03-06T00:00:00Z"\n[zones]\nid = "DE"\n',
    "policy-a-list": REQUEST.format(zone="").replace("[policy]\ntime_limit = \"5s\"",
                                                     "policy = [1]").encode(),
    "threshold-penalty-negative": REQUEST.format(zone="").replace(
        'time_limit = "5s"', 'carbon_threshold = 200\nthreshold_mode = "soft"\n'
        "threshold_penalty = -1").encode(),
}

SPEC_BAD: dict[str, bytes] = {
    **TOML_BAD,
    "seed-text": REQUEST.format(zone="").encode() + b'[whatif]\nseed = "abc"\n'
                                                    b'[sweep]\nslack = ["0h"]\n',
    "starts-per-season-text": REQUEST.format(zone="").encode()
    + b'[whatif]\nstarts_per_season = "x"\n[sweep]\nmonths = ["2023-03"]\n',
    "whatif-a-number": REQUEST.format(zone="").encode() + b"whatif = 3\n",
    "threshold-axis-bool": REQUEST.format(zone="").encode() + b"[sweep]\nthreshold = [true]\n",
    "request-a-number": b"[whatif]\nrequest = 5\n",
}

JSON_BAD: dict[str, bytes] = {
    **COMMON,
    "not-utf8": b'{"schema_version": "1.0", "jobs": [{"name": "caf\xe9"}]}',
    "a-list": b"[1, 2, 3]",
    "a-string": b'"plan"',
    "jobs-a-number": b'{"schema_version": "1.0", "zones": [], "jobs": 5}',
    "job-not-an-object": b'{"schema_version": "1.0", "zones": [], "jobs": [1]}',
    "job-without-segments": b'{"schema_version": "1.0", "zones": [], "jobs": [{"name": "a"}]}',
    "segments-wrong-types": json.dumps({
        "schema_version": "1.0", "zones": [], "jobs": [{"name": 1, "segments": [
            {"zone": 5, "start": "soon", "end": None, "gpus": "many", "energy_kwh": "x",
             "emissions_kg": []}]}]}).encode(),
    "segment-gpus-huge": json.dumps({
        "schema_version": "1.0", "zones": [], "jobs": [{"name": "a", "segments": [
            {"zone": "DE", "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z",
             "gpus": 10 ** 20, "energy_kwh": 1.0, "emissions_kg": 1.0}]}]}).encode(),
    "segment-start-naive": json.dumps({
        "schema_version": "1.0", "zones": [], "jobs": [{"name": "a", "segments": [
            {"zone": "DE", "start": "2030-01-01T00:00:00", "end": "2030-01-01T01:00:00",
             "gpus": 8, "energy_kwh": 1.0, "emissions_kg": 1.0}]}]}).encode(),
}



def _plan_head(**change: object) -> bytes:
    """A plan document complete enough for the report, with ``change`` applied."""
    seg = {"zone": "DE", "start": "2023-03-06T00:00:00Z", "end": "2023-03-06T02:00:00Z",
           "gpus": 8, "energy_kwh": 1.5, "emissions_kg": 0.25}
    doc: dict[str, object] = {
        "schema_version": "1.0", "start": "2023-03-06T00:00:00Z", "zones": ["DE"],
        "intensity": {"signal": "direct", "source": "synthetic", "mode": "oracle",
                      "model": None},
        "solver": {"name": "highs", "status": "optimal"},
        "jobs": [{"name": "a", "segments": [seg], "summary": {"emissions_kg": 0.25},
                  "baselines": {}, "savings_pct": 1.0}]}
    doc.update(change)
    return json.dumps(doc).encode()


WHATIF_HEADER = json.dumps({"kind": "greenepoch-whatif", "version": 1, "base": "x",
                            "data": None, "signal": "direct"}).encode() + b"\n"
REPORT_BAD: dict[str, bytes] = {
    **JSON_BAD,
    "plan-start-text": _plan_head(start="soon"),
    "plan-zones-a-number": _plan_head(zones=5),
    "plan-intensity-a-string": _plan_head(intensity="direct"),
    "plan-summary-a-string": _plan_head(jobs=[{"name": "a", "segments": [], "summary": "x",
                                               "baselines": {}}]),
    "results-row-wrong-types": WHATIF_HEADER + b'{"scenario_id": "a", "status": 5}\n',
    "results-rows-not-objects": WHATIF_HEADER + b"[1, 2]\n",
    "results-binary-tail": WHATIF_HEADER + RANDOM,
}

#: An existing --out a sweep would resume (empty is fine: a new results file).
RESUME_BAD: dict[str, bytes] = {
    "random-bytes": RANDOM,
    "nul-bytes": COMMON["nul-bytes"],
    "not-utf8": WHATIF_HEADER + b'{"scenario_id": "caf\xe9"}\n',
    "a-plan-json": _plan_head(),
    "another-sweep": WHATIF_HEADER,
}

CSV_HEADER = b"name,zone,submit,gpus,duration_h,deadline\n"
CSV_BAD: dict[str, bytes] = {
    **COMMON,
    "not-utf8": CSV_HEADER + b"caf\xe9,DE,2023-03-01T00:00:00Z,8,2,2023-03-02T00:00:00Z\n",
    "gpus-text": CSV_HEADER + b"a,DE,2023-03-01T00:00:00Z,many,2,2023-03-02T00:00:00Z\n",
    "gpus-20-digits": CSV_HEADER
    + b"a,DE,2023-03-01T00:00:00Z,12345678901234567890,2,2023-03-02T00:00:00Z\n",
    "gpus-fractional": CSV_HEADER + b"a,DE,2023-03-01T00:00:00Z,8.5,2,2023-03-02T00:00:00Z\n",
    "duration-inf": CSV_HEADER + b"a,DE,2023-03-01T00:00:00Z,8,inf,2023-03-02T00:00:00Z\n",
    "slack-inf": b"name,zone,submit,gpus,duration_h,slack_h\n"
                 b"a,DE,2023-03-01T00:00:00Z,8,2,inf\n",
    "power-in-watts": b"name,zone,submit,gpus,duration_h,slack_h,gpu_power_kw\n"
                      b"a,DE,2023-03-01T00:00:00Z,8,2,4,700\n",
    "ragged": CSV_HEADER + b'a,"DE\n',
}


def future_plan() -> bytes:
    start = pd.Timestamp.now(tz="UTC").floor("h") + pd.Timedelta(days=2)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return json.dumps({"schema_version": "1.0", "created_by": "tests", "zones": ["DE"],
                       "jobs": [{"name": "ft", "segments": [
                           {"zone": "DE", "start": start.strftime(iso),
                            "end": (start + pd.Timedelta("2h")).strftime(iso), "gpus": 8,
                            "energy_kwh": 1.5, "emissions_kg": 0.25}]}]}).encode()


CLUSTERS_BAD: dict[str, bytes] = {
    **COMMON,
    "not-utf8": b'[defaults]\ncommand = ["python", "caf\xe9.py"]\n',
    "defaults-a-list": b"defaults = [1]\n",
    "command-a-number": b"[defaults]\ncommand = 5\n",
    "gpus-per-node-text": b'[defaults]\ncommand = ["x"]\n[zones.DE.slurm]\ncluster = "c"\n'
                          b'partition = "p"\ngpus_per_node = "eight"\n',
    "gpus-per-node-fractional": b'[defaults]\ncommand = ["x"]\n[zones.DE.slurm]\n'
                                b'cluster = "c"\npartition = "p"\ngpus_per_node = 7.5\n',
}

SQUEUE_BAD: dict[str, bytes] = {
    **COMMON,
    "not-utf8": b'{"jobs": [{"name": "caf\xe9"}]}',
    "a-list": b"[1]",
    "jobs-a-number": b'{"jobs": 5}',
    "job-wrong-types": b'{"jobs": [{"job_id": "x", "name": 5, "comment": [], '
                       b'"job_state": 3}]}',
}

Argv = Callable[[Path, Path], list[str]]


def _with(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path
    return make


def _spec_with_base(bad: Path, tmp: Path) -> list[str]:
    spec = tmp / "spec.toml"
    spec.write_text(f'[whatif]\nrequest = "{bad.name}"\n[sweep]\nslack = ["0h"]\n',
                    encoding="utf-8")
    return ["whatif", str(spec), "--out", str(tmp / "out.jsonl"), "--workers", "1"]


def _price_file(bad: Path, tmp: Path) -> list[str]:
    request = tmp / "request.toml"
    request.write_text(REQUEST.format(zone=f'price_file = "{bad.name}"'), encoding="utf-8")
    return ["plan", str(request), "--out", str(tmp / "out.json")]


def _data_export(bad: Path, tmp: Path) -> list[str]:
    """The malformed file as the DE export of a --data folder the plan reads."""
    folder = tmp / "data" / "electricitymaps"
    folder.mkdir(parents=True)
    (folder / "DE_2023_hourly.csv").write_bytes(bad.read_bytes())
    request = tmp / "request.toml"
    request.write_text(REQUEST.format(zone=""), encoding="utf-8")
    return ["plan", str(request), "--data", str(tmp / "data"), "--oracle",
            "--out", str(tmp / "out.json")]


def _resumed_results(bad: Path, tmp: Path) -> list[str]:
    """The malformed file as the existing --out results file a sweep would resume."""
    spec = tmp / "spec.toml"
    spec.write_text(REQUEST.format(zone="") + '[sweep]\nslack = ["0h"]\n', encoding="utf-8")
    return ["whatif", str(spec), "--out", str(bad), "--workers", "1"]


def _plan_file(tmp: Path) -> Path:
    return _with("good-plan.json", future_plan())(tmp)


#: (slot, malformed contents, argv builder given the malformed file and tmp_path)
SLOTS: list[tuple[str, dict[str, bytes], Argv]] = [
    ("plan REQUEST", TOML_BAD,
     lambda bad, tmp: ["plan", str(bad), "--out", str(tmp / "out.json")]),
    ("plan price_file", CSV_BAD, _price_file),
    ("plan --data export", CSV_BAD, _data_export),
    ("whatif SPEC", SPEC_BAD,
     lambda bad, tmp: ["whatif", str(bad), "--out", str(tmp / "out.jsonl"), "--workers", "1"]),
    ("whatif [whatif].request", TOML_BAD, _spec_with_base),
    ("whatif --out (resumed)", RESUME_BAD, _resumed_results),
    ("report SOURCE", REPORT_BAD,
     lambda bad, tmp: ["report", str(bad), "--out", str(tmp / "out.html")]),
    ("export slurm PLAN", JSON_BAD, lambda bad, tmp: ["export", "slurm", str(bad), "--dry-run"]),
    ("export k8s PLAN", JSON_BAD, lambda bad, tmp: ["export", "k8s", str(bad), "--dry-run"]),
    ("export json PLAN", JSON_BAD,
     lambda bad, tmp: ["export", "json", str(bad), "--out", str(tmp / "out.json")]),
    ("export csv PLAN", JSON_BAD,
     lambda bad, tmp: ["export", "csv", str(bad), "--out", str(tmp / "out.csv")]),
    ("export slurm --config", CLUSTERS_BAD,
     lambda bad, tmp: ["export", "slurm", str(_plan_file(tmp)), "--dry-run", "--config",
                       str(bad)]),
    ("export k8s --config", CLUSTERS_BAD,
     lambda bad, tmp: ["export", "k8s", str(_plan_file(tmp)), "--dry-run", "--config",
                       str(bad)]),
    ("slurm status PLAN", JSON_BAD,
     lambda bad, tmp: ["slurm", "status", str(bad), "--squeue-json",
                       str(_with("q.json", b'{"jobs": []}')(tmp))]),
    ("slurm status --squeue-json", SQUEUE_BAD,
     lambda bad, tmp: ["slurm", "status", str(_plan_file(tmp)), "--squeue-json", str(bad)]),
    ("replay --jobs", CSV_BAD,
     lambda bad, tmp: ["replay", "--jobs", str(bad), "--zones", "DE", "--from", "2023-03-01",
                       "--until", "2023-03-03", "--policies", "run-now"]),
    ("data check PATH", CSV_BAD, lambda bad, tmp: ["data", "check", str(bad)]),
]


CASES = [
    pytest.param(slot, kind, contents[kind], argv, id=f"{slot}::{kind}")
    for slot, contents, argv in SLOTS for kind in contents
]


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)  # the synthetic default
    monkeypatch.delenv("GREENEPOCH_CLUSTERS", raising=False)
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("slot, kind, content, argv", CASES)
def test_malformed_file_is_one_error_line_and_exit_2(
        slot: str, kind: str, content: bytes, argv: Argv, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    csv = {"plan price_file", "plan --data export", "replay --jobs", "data check PATH"}
    suffix = (".csv" if slot in csv else ".jsonl" if "resumed" in slot
              else ".json" if "PLAN" in slot or "squeue" in slot or slot == "report SOURCE"
              else ".toml")
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(content)
    args = argv(bad, tmp_path)
    before = set(tmp_path.iterdir())
    result = _run(args, monkeypatch)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{slot} [{kind}] raised {result.exception!r}")
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), result.stderr
    # a results file's lock stays beside it by design (planner/whatif/results.py)
    after = {p for p in tmp_path.iterdir() if not p.name.endswith(".jsonl.lock")}
    assert after == before, "a failed command left a file behind"


def test_malformed_request_message_names_field_value_and_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The promised contents of the one line, for the issue's examples."""
    bad = tmp_path / "request.toml"
    bad.write_bytes(TOML_BAD["gpu-hours-inf"])
    result = _run(["plan", str(bad), "--out", str(tmp_path / "p.json")], monkeypatch)
    assert result.stderr == (f"greenepoch: error: {bad}: jobs[0] ('ft').gpu_hours = inf: "
                             "expected a finite number of GPU-hours; write e.g. "
                             "gpu_hours = 512\n")
    spec = tmp_path / "spec.toml"
    spec.write_bytes(SPEC_BAD["seed-text"])
    result = _run(["whatif", str(spec), "--out", str(tmp_path / "r.jsonl")], monkeypatch)
    assert result.stderr == (f"greenepoch: error: {spec}: [whatif].seed = 'abc': expected a whole "
                             "number, found text; write e.g. seed = 0\n")


def test_well_formed_inputs_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures the malformed cases are built around are valid themselves, so each
    case fails for the malformation alone."""
    plan = _plan_file(tmp_path)
    result = _run(["export", "csv", str(plan)], monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 2  # header and one segment
    queue = _with("q.json", b'{"jobs": []}')(tmp_path)
    result = _run(["slurm", "status", str(plan), "--squeue-json", str(queue)], monkeypatch)
    assert result.exit_code == 0, result.output
    request = tmp_path / "request.toml"
    request.write_text(REQUEST.format(zone=""), encoding="utf-8")
    result = _run(["plan", str(request), "--out", str(tmp_path / "p.json")], monkeypatch)
    assert result.exit_code == 0, result.output


#: Values of every TOML type, hostile ones included (times, dates, nested lists).
HOSTILE = [True, False, "x", "", math.inf, -math.inf, math.nan, -1, 0, 12.9, 10 ** 20, 10 ** 400,
           -10 ** 20, 1e308, "1e400", "none", [], [1], ["DE", "DE"], [[]], {}, {"a": 1},
           dt.datetime(2023, 3, 6), dt.datetime(2023, 3, 6, tzinfo=dt.UTC), dt.date(2023, 3, 6),
           dt.time(1, 2)]
BASE_DOC: dict[str, Any] = {
    "start": "2023-03-06T00:00:00Z",
    "jobs": [{"name": "ft", "gpus": 8, "duration": "3h", "deadline": "2023-03-07T00:00:00Z",
              "zones": ["DE"]}],
    "zones": [{"id": "DE", "capacity_gpus": 16}], "policy": {"time_limit": "5s"}}


def _outcome(parse: Callable[[], object]) -> str | None:
    """None when ``parse`` succeeds or refuses with a GreenEpochError, else what broke."""
    try:
        parse()
    except GreenEpochError:
        return None
    except Exception as exc:  # the point: nothing else may escape
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("table, keys", [("jobs", JOB_KEYS), ("zones", ZONE_KEYS),
                                         ("policy", POLICY_KEYS), ("top", {"start"})])
def test_every_request_key_takes_any_toml_value_without_a_traceback(
        table: str, keys: set[str], tmp_path: Path) -> None:
    """Each key of each request table set to each hostile value: either read, or one
    GreenEpochError (the CLI's exit 2), never another exception (a traceback)."""
    broke = []
    for key in sorted(keys):
        for value in HOSTILE:
            doc = copy.deepcopy(BASE_DOC)
            target = {"jobs": doc["jobs"][0], "zones": doc["zones"][0],
                      "policy": doc["policy"], "top": doc}[table]
            target[key] = value
            problem = _outcome(partial(parse_request, doc, tmp_path))
            if problem:
                broke.append(f"{table}.{key} = {value!r}: {problem}")
    assert not broke, "\n".join(broke)


@pytest.mark.parametrize("table, keys", [("whatif", WHATIF_KEYS), ("sweep", SWEEP_KEYS)])
def test_every_spec_key_takes_any_toml_value_without_a_traceback(
        table: str, keys: set[str], tmp_path: Path) -> None:
    broke = []
    for key in sorted(keys):
        for value in HOSTILE + [[v] for v in HOSTILE]:
            doc = copy.deepcopy(BASE_DOC)
            doc[table] = {key: value}
            if table == "whatif" and key != "request":
                doc["sweep"] = {"slack": ["0h"]}
            problem = _outcome(partial(parse_spec, doc, tmp_path))
            if problem:
                broke.append(f"[{table}].{key} = {value!r}: {problem}")
    assert not broke, "\n".join(broke)
