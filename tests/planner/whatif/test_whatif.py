"""What-if sweeps: spec expansion, rows against individual planner runs, views,
resume after interruption, local processes against serial, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import RequestError
from greenepoch.planner.pipeline import plan
from greenepoch.planner.whatif import (
    dominated,
    evaluate,
    load_spec,
    pareto_front,
    plan_row,
    read_results,
    run_sweep,
    slack_returns,
    threshold_curve,
    views,
)
from greenepoch.planner.whatif.spec import parse_spec, season_starts
from hypothesis import given, settings
from hypothesis import strategies as st
from signals import default_interrupts

# Short jobs, 1 h slots, two zones, a small time limit: each scenario plans in ~0.1 s.
SPEC = """
start = "2023-03-06T00:00:00Z"

[whatif]
starts_per_season = 1

[[jobs]]
name = "ft"
gpus = 8
duration = "3h"
gpu_power_kw = 0.7
deadline = "2023-03-07T00:00:00Z"
zones = ["DE"]
checkpoint_overhead = "10min"

[[zones]]
id = "DE"
capacity_gpus = 16

[policy]
time_limit = "5s"

[sweep]
zones = ["DE", ["ES", "DE"]]
months = ["2023-03", "2023-09"]
slack = ["0h", "12h", "36h"]
threshold = ["none", 120]
forecast = ["oracle"]
"""

NOT_COMPARED = ["seconds"]  # wall time: the only field that depends on where a row ran


def write_spec(tmp: Path, text: str = SPEC, name: str = "spec.toml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=NOT_COMPARED)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spec(tmp_path_factory.mktemp("whatif"))


@pytest.fixture(scope="module")
def serial(spec_path: Path, tmp_path_factory: pytest.TempPathFactory, real_data: Path):
    root = real_data
    out = tmp_path_factory.mktemp("serial") / "serial.jsonl"
    return run_sweep(load_spec(spec_path), out, data=str(root), workers=1, progress=False), root


# -- spec ------------------------------------------------------------------------------

def test_spec_expands_the_cross_product(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    scenarios = spec.scenarios("/data")
    assert len(scenarios) == 2 * 2 * 3 * 2
    assert [s.index for s in scenarios] == list(range(len(scenarios)))
    assert len({s.id for s in scenarios}) == len(scenarios)
    assert [s.id for s in load_spec(write_spec(tmp_path)).scenarios("/data")] == \
        [s.id for s in scenarios]  # stable: a rerun finds its rows
    assert {s.id for s in spec.scenarios(None)}.isdisjoint({s.id for s in scenarios})
    s = next(s for s in scenarios if s.zones == "ES+DE" and s.season == "2023-09"
             and s.slack_h == 12 and s.threshold == 120)
    job = s.request.jobs[0]
    assert s.start == pd.Timestamp("2023-09-01", tz="UTC") == job.release
    assert job.zones == ("ES", "DE") and job.home_zone == "ES"
    # run 3 h + one 10 min overhead, rounded up to the 1 h slot, then the slack
    assert job.deadline == job.release + pd.Timedelta("4h") + pd.Timedelta("12h")
    assert [z.id for z in s.request.zones] == ["ES", "DE"]
    assert s.request.zone("ES").capacity_gpus == 16  # copied from the base's first zone
    assert s.request.policy.threshold == 120
    assert s.labels()["start"] == "2023-09-01T00:00:00Z"


def test_spec_defaults_keep_the_base(tmp_path: Path) -> None:
    text = SPEC.split("[sweep]")[0] + '[sweep]\nforecast = ["oracle", "seasonal"]\n'
    scenarios = load_spec(write_spec(tmp_path, text)).scenarios()
    assert [s.forecast for s in scenarios] == ["oracle", "seasonal"]
    job = scenarios[0].request.jobs[0]
    assert job.deadline == pd.Timestamp("2023-03-07", tz="UTC")
    assert scenarios[0].season == "2023-03" and scenarios[0].zones == "DE"
    assert scenarios[0].threshold is None and scenarios[0].slack_h is None


def test_spec_request_from_file(tmp_path: Path) -> None:
    base = "\n".join(SPEC.split("[sweep]")[0].splitlines())
    base = base.replace("[whatif]\nstarts_per_season = 1\n", "")
    (tmp_path / "base.toml").write_text(base, encoding="utf-8")
    spec = load_spec(write_spec(tmp_path, '[whatif]\nrequest = "base.toml"\n'
                                '[sweep]\nquarters = ["2023Q2"]\n'))
    assert spec.scenarios()[0].start == pd.Timestamp("2023-04-01", tz="UTC")


def test_season_starts_spread_evenly() -> None:
    assert season_starts("2023Q1", 3) == [pd.Timestamp(d, tz="UTC")
                                          for d in ("2023-01-01", "2023-01-31", "2023-03-02")]
    assert season_starts("2024-02", 2)[1] == pd.Timestamp("2024-02-15", tz="UTC")


@pytest.mark.parametrize(("edit", "message"), [
    (("[sweep]", "[sweep]\nslak = [\"1h\"]"), "did you mean 'slack'"),
    (("months = [\"2023-03\", \"2023-09\"]", "months = [\"2023-13\"]"), "not a month"),
    (("months = [\"2023-03\", \"2023-09\"]", "months = [\"2023-03\"]\nstarts = [\"2023-03-01Z\"]"),
     "one of months, quarters or starts"),
    (("threshold = [\"none\", 120]", "threshold = [\"off\"]"), "gCO2eq/kWh or 'none'"),
    (("slack = [\"0h\", \"12h\", \"36h\"]", "slack = []"), "non-empty list"),
])
def test_spec_errors_name_the_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        load_spec(write_spec(tmp_path, SPEC.replace(*edit)))


def test_spec_forecast_names_checked() -> None:
    with pytest.raises(RequestError, match="unknown model 'nope'"):
        parse_spec({"start": "2023-03-06T00:00:00Z",
                    "jobs": [{"name": "a", "gpus": 1, "duration": "1h",
                              "deadline": "2023-03-07T00:00:00Z", "zones": ["DE"]}],
                    "zones": [{"id": "DE", "capacity_gpus": 1}],
                    "sweep": {"forecast": ["oracle", "nope"]}})


# -- rows against the planner ------------------------------------------------------------

@pytest.mark.realdata
def test_rows_match_individual_planner_runs(real_data: Path, tmp_path: Path) -> None:
    text = SPEC.replace('forecast = ["oracle"]', 'forecast = ["oracle", "seasonal"]')
    scenarios = load_spec(write_spec(tmp_path, text)).scenarios(str(real_data))
    picked = [s for s in scenarios if s.slack_h == 12 and s.season == "2023-09"]
    picked += [scenarios[0], scenarios[1]]
    assert {s.forecast for s in picked} == {"oracle", "seasonal"}
    assert {s.zones for s in picked} == {"DE", "ES+DE"}
    statuses = set()
    for s in picked:
        row = evaluate(s, str(real_data))
        statuses.add(row["status"])
        try:
            doc = plan(s.request, data=real_data, oracle=s.forecast == "oracle",
                       model=None if s.forecast == "oracle" else s.forecast).to_dict()
        except RequestError:  # pragma: no cover - the request is valid
            raise
        except Exception as exc:  # infeasible (hard threshold): the row says so
            assert row["status"] in ("infeasible", "error"), (row, exc)
            assert str(exc) == row["message"]
            continue
        assert row["status"] == "ok"
        expect = plan_row(doc)
        assert {k: row[k] for k in expect} == expect
        segs = [[j["name"], g["zone"], g["start"], g["end"], g["gpus"]]
                for j in doc["jobs"] for g in j["segments"]]
        assert row["segments"] == segs
        assert row["solver"] == doc["solver"]["status"]
        assert row["deadlines"] == {j.name: j.deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
                                    for j in s.request.jobs}
        assert row["slot"] == s.request.policy.slot
    assert "ok" in statuses


@pytest.mark.realdata
def test_row_metrics_follow_their_definitions(serial) -> None:
    result, _ = serial
    frame = result.frame
    ok = frame[frame["status"] == "ok"]
    # only a hard threshold can make a scenario infeasible, and the message says why
    assert frame.loc[frame["threshold"].isna(), "status"].eq("ok").all()
    failed = frame[frame["status"] != "ok"]
    assert failed["status"].eq("infeasible").all()
    assert failed["message"].str.contains("carbon threshold").all()
    assert np.allclose(ok["saving_kg"], ok["run_now_kg"] - ok["emissions_kg"], atol=2e-3)
    assert np.allclose(ok["savings_pct"], 100 * ok["saving_kg"] / ok["run_now_kg"], atol=2e-3)
    assert (ok["delay_p95_h"] >= ok["delay_mean_h"] - 1e-9).all()  # one job: equal
    # slack 0: the plan must run at once, so no delay beyond the slot rounding
    assert (ok.loc[ok["slack_h"] == 0, "delay_mean_h"] < 1).all()
    # waiting never costs carbon against running at once (oracle).  (Between two
    # positive slacks the reported emissions may rise slightly: the planner's objective
    # charges a partly used slot in full, the reported segments only the part used.)
    keys = ["zones", "season", "threshold"]
    for _, group in ok.groupby(keys, dropna=False):
        by = group.set_index("slack_h")["emissions_kg"]
        if 0.0 in by.index:
            assert (by <= by[0.0] + 1e-6).all()
    assert ok["cost_usd"].notna().all()  # DE and ES have day-ahead prices


# -- views ---------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
                min_size=1, max_size=25))
def test_pareto_front_has_no_dominated_point(points: list[tuple[int, int, int]]) -> None:
    frame = pd.DataFrame(points, columns=["emissions_kg", "delay_mean_h", "cost_usd"],
                         dtype=float)
    frame["status"] = "ok"
    frame["savings_pct"] = 0.0
    front = pareto_front(frame)
    values = front[["emissions_kg", "delay_mean_h", "cost_usd"]].to_numpy()
    everything = frame[["emissions_kg", "delay_mean_h", "cost_usd"]].to_numpy()
    for p in values:  # nothing in the whole set beats a front point
        assert not ((everything <= p).all(axis=1) & (everything < p).any(axis=1)).any()
    assert len({tuple(p) for p in values}) == len(values)  # exact ties shown once
    left_out = frame.drop(index=front.index)
    tied = 0
    for p in left_out[["emissions_kg", "delay_mean_h", "cost_usd"]].to_numpy():
        beaten = ((values <= p).all(axis=1) & (values < p).any(axis=1)).any()
        same = (values == p).all(axis=1).any()  # a tie of a front point
        assert beaten or same
        tied += int(same)
    assert int(front["ties"].sum()) == len(front) + tied


def test_dominated_small_case() -> None:
    pts = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2]], dtype=float)
    assert dominated(pts).tolist() == [False, False, True, False, False]


@pytest.mark.realdata
def test_views_of_a_sweep(serial) -> None:
    result, _ = serial
    frame = result.frame
    shown = views(frame)
    assert list(shown) == ["best zone and season", "carbon threshold trade-off",
                           "diminishing returns of slack", "carbon-time-cost Pareto front"]
    ranked = shown["best zone and season"]
    assert len(ranked) == 4 and ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["emissions_kg"].is_monotonic_increasing
    front = shown["carbon-time-cost Pareto front"]
    ok = frame[frame["status"] == "ok"]
    objectives = ["emissions_kg", "delay_mean_h", "cost_usd"]
    assert not dominated(front[objectives].to_numpy()).any()
    pts = ok[objectives].to_numpy()
    for p in front[objectives].to_numpy():
        assert not ((pts <= p).all(axis=1) & (pts < p).any(axis=1)).any()
    curve = threshold_curve(frame)
    assert curve["threshold"].isna().tolist() == [False, True]  # "none" sorts last
    slack = slack_returns(frame)
    assert slack["slack_h"].tolist() == [0.0, 12.0, 36.0]
    assert slack["savings_pct"].is_monotonic_increasing


# -- resume, parallel -------------------------------------------------------------------

@pytest.mark.realdata
def test_resume_after_interruption_gives_the_same_table(serial, spec_path: Path,
                                                        tmp_path: Path) -> None:
    full, root = serial
    out = tmp_path / "partial.jsonl"
    seen = []

    def stop_after_five(row: dict) -> None:
        seen.append(row["scenario_id"])
        if len(seen) == 5:
            raise KeyboardInterrupt

    spec = load_spec(spec_path)
    first = run_sweep(spec, out, data=str(root), workers=1, progress=False,
                      on_row=stop_after_five)
    assert first.interrupted and first.done == 5
    with open(out, "a", encoding="utf-8") as fh:
        fh.write('{"scenario_id": "torn')  # a line cut short by a hard kill
    _, kept = read_results(out)
    assert list(kept) == seen
    second = run_sweep(spec, out, data=str(root), workers=2, progress=False)
    assert not second.interrupted and second.reused == 5
    assert second.done == second.total == full.total
    pd.testing.assert_frame_equal(comparable(second.frame), comparable(full.frame))
    third = run_sweep(spec, out, data=str(root), workers=2, progress=False)
    assert third.reused == third.total and third.backend == "serial"


@pytest.mark.realdata
def test_processes_give_the_serial_rows(serial, spec_path: Path, tmp_path: Path) -> None:
    full, root = serial
    parallel = run_sweep(load_spec(spec_path), tmp_path / "p.jsonl", data=str(root),
                         workers=2, progress=False)
    assert parallel.backend == "processes"
    pd.testing.assert_frame_equal(comparable(parallel.frame), comparable(full.frame))


def test_results_file_of_another_sweep_is_refused(tmp_path: Path) -> None:
    from greenepoch.data.errors import GreenEpochError

    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"kind": "greenepoch-whatif", "version": 1, "base": "x",
                               "data": None, "signal": "direct"}) + "\n")
    spec = load_spec(write_spec(tmp_path))
    with pytest.raises(GreenEpochError, match="results of another sweep"):
        run_sweep(spec, out, workers=1, progress=False)


# -- CLI -------------------------------------------------------------------------------------

def _cli():
    from greenepoch.planner.cli.main import cli

    if "whatif" not in cli.commands:  # until planner/cli/main.py registers it
        from greenepoch.planner.cli.whatif_cmd import whatif

        cli.add_command(whatif)
    return cli


@pytest.mark.realdata
def test_cli_prints_the_views(serial, spec_path: Path, tmp_path: Path) -> None:
    _, root = serial
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(_cli(), ["whatif", str(spec_path), "--data", str(root), "--out",
                                      str(out), "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    for title in ("best zone and season", "carbon threshold trade-off",
                  "diminishing returns of slack", "carbon-time-cost Pareto front"):
        assert title in res.output
    assert "24 of 24 scenarios (0 from" in res.output
    again = CliRunner().invoke(_cli(), ["whatif", str(spec_path), "--data", str(root),
                                        "--out", str(out), "--json", "--quiet"])
    assert again.exit_code == 0
    records = json.loads(again.output)
    assert len(records) == 24 and {"scenario_id", "emissions_kg"} <= set(records[0])


def test_cli_bad_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write_spec(tmp_path, SPEC.replace("[sweep]", "[sweep]\nzone = [\"DE\"]"))
    res = CliRunner().invoke(_cli(), ["whatif", str(path), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0
    assert "did you mean 'zones'" in res.output


@pytest.mark.realdata
def test_ctrl_c_keeps_rows_and_rerun_resumes(real_data: Path, tmp_path: Path) -> None:
    """A real SIGINT to the command running 2 worker processes (384 scenarios, so that
    the sweep, 48 scenarios in 1.7 s now, is still running when the interrupt comes)."""
    text = SPEC.replace('slack = ["0h", "12h", "36h"]', 'slack = ["0h", "6h", "12h", "24h", '
                        '"36h", "48h"]').replace("starts_per_season = 1", "starts_per_season = 8")
    path = write_spec(tmp_path, text)
    out = tmp_path / "sig.jsonl"
    runner = ("import sys; from greenepoch.planner.cli.main import cli; "
              "from greenepoch.planner.cli.whatif_cmd "
              "import whatif\nif 'whatif' not in cli.commands: cli.add_command(whatif)\n"
              "sys.argv[0] = 'greenepoch'; cli()")
    args = [sys.executable, "-c", runner, "whatif", str(path), "--data", str(real_data),
            "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_interrupts)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 3:  # header + 2 rows
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=60)
    _header, rows = read_results(out)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    assert "Traceback" not in err
    assert 2 <= len(rows) < 384
    again = subprocess.run([*args, "--quiet"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"384 of 384 scenarios ({len(rows)} from" in again.stdout
    _, final = read_results(out)
    assert len(final) == 384


# -- results file: atomic header, torn last line, one run at a time, no orphans ---------------

HEADER = {"base": "b" * 64, "data": None, "signal": "direct", "seed": 0}


def _row(i: int) -> dict:
    return {"scenario_id": f"s{i}", "index": i, "status": "ok", "emissions_kg": float(i)}


def test_torn_last_line_is_cut_off_on_resume(tmp_path: Path) -> None:
    """A hard kill mid-write leaves half a row: reopening cuts it off, so the file is
    again one JSON document per line (it used to stay in the middle of the file)."""
    from greenepoch.planner.whatif.results import ResultStore

    out = tmp_path / "r.jsonl"
    with ResultStore(out, HEADER) as store:
        store.append(_row(0))
        store.append(_row(1))
    with open(out, "a", encoding="utf-8") as fh:
        fh.write('{"scenario_id": "s2", "ind')  # killed mid-write
    with ResultStore(out, HEADER) as store:
        assert list(store.rows) == ["s0", "s1"]
        store.append(_row(2))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line).get("scenario_id") for line in lines] == [None, "s0", "s1", "s2"]
    # killed between a whole row and its newline: the row is kept
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_row(3)))
    with ResultStore(out, HEADER) as store:
        assert list(store.rows) == ["s0", "s1", "s2", "s3"]
        store.append(_row(4))
    assert list(read_results(out)[1]) == ["s0", "s1", "s2", "s3", "s4"]
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


def _limited(code: str, limit: int) -> str:
    """Python source running ``code`` with files capped at ``limit`` bytes (a full disk:
    a write past it fails with EFBIG instead of killing the process)."""
    return ("import resource, signal, sys\n"
            "import matplotlib.pyplot\n"  # font cache read before the cap
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n" + code)


def test_header_write_is_atomic(tmp_path: Path) -> None:
    """A header write that fails half way (file size cap) leaves no results file, so
    the rerun starts cleanly (a torn header made it 'not a what-if results file')."""
    out = tmp_path / "r.jsonl"
    code = ("from greenepoch.planner.whatif.results import ResultStore\n"
            f"ResultStore(sys.argv[1], {HEADER!r})\n")
    failed = subprocess.run([sys.executable, "-c", _limited(code, 60), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "File too large" in failed.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left, and no lock file
    from greenepoch.planner.whatif.results import ResultStore

    with ResultStore(out, HEADER) as store:
        store.append(_row(0))
    assert list(read_results(out)[1]) == ["s0"]


def test_a_second_run_on_the_same_results_file_is_refused(tmp_path: Path) -> None:
    """A real second process on a results file in use: one line, exit 2, nothing run."""
    from greenepoch.planner.whatif.results import ResultStore

    spec = write_spec(tmp_path)
    out = tmp_path / "busy.jsonl"
    runner = ("import sys; from greenepoch.planner.cli.main import cli; "
              "from greenepoch.planner.cli.whatif_cmd "
              "import whatif\nif 'whatif' not in cli.commands: cli.add_command(whatif)\n"
              "sys.argv[0] = 'greenepoch'; cli()")
    with ResultStore(out, HEADER):  # held, as a running sweep holds it
        before = out.read_bytes()
        res = subprocess.run([sys.executable, "-c", runner, "whatif", str(spec), "--out",
                              str(out), "--workers", "1", "--quiet"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert res.stderr.startswith("greenepoch: error: ")
        assert f"{out} is in use by another whatif run (pid {os.getpid()})" in res.stderr
        assert "give another results file" in res.stderr
        assert out.read_bytes() == before
    # released on close: the lock is no longer held
    from greenepoch.planner.whatif.results import lock_path, lock_results

    lock_results(out).close()
    assert not lock_path(out).exists()


def test_a_finished_run_leaves_no_lock_file(tmp_path: Path) -> None:
    """The lock file went with the run (a stray ``r.jsonl.lock`` stayed beside results)."""
    from greenepoch.planner.whatif.results import ResultStore, lock_path

    out = tmp_path / "r.jsonl"
    with ResultStore(out, HEADER) as store:
        assert lock_path(out).read_text(encoding="ascii") == f"{os.getpid()}\n"
        store.append(_row(0))
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_a_lock_file_removed_by_its_finishing_holder_is_not_locked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that opened the lock file just before its holder finished (and removed it)
    must not lock the removed file: a third run would lock a new one beside it."""
    import fcntl

    from greenepoch.data.errors import GreenEpochError
    from greenepoch.planner.whatif.results import lock_path, lock_results

    out = tmp_path / "r.jsonl"
    holder = lock_results(out)
    real, calls = fcntl.flock, []

    def holder_finishes_first(fd: int, op: int) -> None:
        calls.append(fd)
        if len(calls) == 1:  # between this run's open and its flock
            holder.close()
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", holder_finishes_first)
    second = lock_results(out)
    monkeypatch.undo()
    assert len(calls) == 2  # the removed file, then the one now at the path
    with pytest.raises(GreenEpochError, match=f"in use by another whatif run \\(pid "
                                               f"{os.getpid()}\\)"):
        lock_results(out)
    second.close()
    assert not lock_path(out).exists()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.realdata
def test_sigkill_of_the_parent_leaves_no_worker_and_frees_the_results(
        real_data: Path, tmp_path: Path) -> None:
    """kill -9 of a sweep on 2 worker processes: the workers exit within seconds (they
    used to block forever), the lock dies with the run, and a rerun resumes."""
    import psutil

    text = SPEC.replace('slack = ["0h", "12h", "36h"]', 'slack = ["0h", "6h", "12h", "24h", '
                        '"36h", "48h"]')
    path = write_spec(tmp_path, text)
    out = tmp_path / "kill.jsonl"
    runner = ("import sys; from greenepoch.planner.cli.main import cli; "
              "from greenepoch.planner.cli.whatif_cmd "
              "import whatif\nif 'whatif' not in cli.commands: cli.add_command(whatif)\n"
              "sys.argv[0] = 'greenepoch'; cli()")
    args = [sys.executable, "-c", runner, "whatif", str(path), "--data", str(real_data),
            "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            if len(workers) >= 2 and out.exists() and \
                    len(out.read_text().splitlines()) >= 2:  # header + a row
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 2, "the sweep ended before the kill"
        # a concurrent run on the same --out is refused while this one holds it
        busy = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert busy.returncode == 2 and "is in use by another whatif run" in busy.stderr
        proc.kill()  # SIGKILL: no cleanup runs in the parent
        proc.wait(timeout=30)
        gone_by = time.monotonic() + 10
        while time.monotonic() < gone_by and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived their parent"
    finally:
        for pid in workers:  # only what this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, rows = read_results(out)
    again = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert f"48 of 48 scenarios ({len(rows)} from" in again.stdout


def test_results_file_with_bytes_that_are_not_utf8_is_read(tmp_path: Path) -> None:
    """A crash can leave a last line of bytes that are not UTF-8: reading skipped it
    only after a UnicodeDecodeError traceback; now it is a torn line like any other."""
    from greenepoch.planner.whatif.results import ResultStore

    out = tmp_path / "r.jsonl"
    with ResultStore(out, HEADER) as store:
        store.append(_row(0))
    with open(out, "ab") as fh:
        fh.write(b'{"scenario_id": "s1", "zones": "\xc3')  # cut inside a character
    assert list(read_results(out)[1]) == ["s0"]
    with ResultStore(out, HEADER) as store:
        store.append(_row(1))
    assert list(read_results(out)[1]) == ["s0", "s1"]
    out.read_text(encoding="utf-8")  # the torn bytes are gone
