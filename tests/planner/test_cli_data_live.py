"""``greenepoch data pull / export / archive`` against the fake Electricity Maps and UK
Carbon Intensity APIs on 127.0.0.1 (tests/support/fake_electricitymaps.py, fake_ukci.py),
with a SQLite archive in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_electricitymaps as fem
import fake_ukci as fuk
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from fake_http import FakeServer, Reply
from greenepoch.data.archive.store import Archive
from greenepoch.data.intensity.readers import read_electricitymaps
from greenepoch.planner.cli.main import cli
from postgres import create_database, postgres_url  # noqa: F401 (session fixture)

TOKEN = "em-Secret-Token-5f2c"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The fake Electricity Maps at the real "now" (a ``mutate`` hook the test may set),
    a private config with a short HTTP budget, and the archive in tmp_path."""
    now = pd.Timestamp.now(tz="UTC")
    config = tmp_path / "config.toml"
    config.write_text('[live]\nproviders = ["electricitymaps"]\n'
                      "[http]\ntimeout_s = 2\nattempts = 1\ntotal_s = 3\n")
    config.chmod(0o600)
    hooks: dict[str, Any] = {}

    def mutate(route: str, body: Any) -> Any:
        hook = hooks.get(route)
        return hook(body) if hook else body

    archive = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    with FakeServer() as em, FakeServer() as uk:
        fem.serve(em, TOKEN, now=now, mutate=mutate)
        ukci = fuk.serve(uk, now=now)
        for name, value in {"ELECTRICITYMAPS_TOKEN": TOKEN,
                            "GREENEPOCH_ELECTRICITYMAPS_URL": em.url,
                            "GREENEPOCH_UKCI_URL": uk.url,
                            "GREENEPOCH_CONFIG": str(config),
                            "GREENEPOCH_ARCHIVE": archive}.items():
            monkeypatch.setenv(name, value)
        yield {"now": now, "archive": archive, "em": em, "hooks": hooks, "dir": tmp_path,
               "ukci": ukci}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def window(now: pd.Timestamp, days: float, back: float = 2) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = now.floor("h") - pd.Timedelta(days=back)
    return end - pd.Timedelta(days=days), end


def iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%MZ")


def pull(start: pd.Timestamp, end: pd.Timestamp, *extra: str, zones: str = "DE") -> Result:
    return run("data", "pull", "--provider", "electricitymaps", "--zones", zones,
               "--since", iso(start), "--until", iso(end), "--signal", "direct", *extra)


def one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenepoch: error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_pull_archives_what_the_provider_answered(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 3)
    result = pull(start, end, "--json", zones="DE,FR")
    assert result.exit_code == 0, result.output
    rows = {(r["zone"], r["kind"]): r for r in json.loads(result.output)}
    assert rows[("DE", "actual")]["new"] == 72 and rows[("DE", "actual")]["unchanged"] == 0
    assert rows[("FR", "actual")]["new"] == 72
    assert rows[("DE", "forecast")]["new"] > 0
    expected = fem.trace("DE", start, end, "60min", "direct")
    with Archive(env["archive"]) as archive:
        got = archive.actuals("DE", "direct")
        ahead = archive.forecast_at("DE", "direct", env["now"] + pd.Timedelta("1h"))
    assert got["value"].tolist() == expected["value"].tolist()
    assert got["estimated"].tolist() == expected["estimated"].tolist()
    assert list(got.index) == list(expected.index)
    assert set(got["provider"]) == {"electricitymaps"}
    assert ahead is not None and ahead.issued == fem.issued(env["now"])
    assert TOKEN not in result.output
    stored = Path(env["archive"].removeprefix("sqlite:///"))
    assert TOKEN.encode() not in b"".join(p.read_bytes() for p in stored.parent.glob("*.sqlite*"))


def test_a_second_pull_adds_nothing(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 2)
    assert pull(start, end, "--no-forecast").exit_code == 0
    with Archive(env["archive"]) as archive:
        before = archive.summary()
    result = pull(start, end, "--no-forecast", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["new"], row["changed"], row["unchanged"]) == (0, 0, 48)
    with Archive(env["archive"]) as archive:
        pd.testing.assert_frame_equal(archive.summary(), before)
    table = pull(start, end, "--no-forecast")
    assert "unchanged" in table.output and "archive: sqlite:///" in table.output


def test_long_pulls_go_in_chunks_the_api_accepts(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 25)
    result = pull(start, end, "--no-forecast", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["new"] == 25 * 24
    asked = [s for s in env["em"].requests if s.path.endswith("/past-range")]
    assert len(asked) == 3


def _corrupt_point(body: dict[str, Any]) -> dict[str, Any]:
    body["data"][1]["carbonIntensity"] = "n/a"
    return body


def test_a_malformed_answer_writes_nothing(env: dict[str, Any]) -> None:
    env["hooks"]["past-range"] = _corrupt_point
    start, end = window(env["now"], 3)
    line = one_error(pull(start, end))
    assert "electricitymaps" in line and "nothing was archived" in line
    with Archive(env["archive"]) as archive:
        assert archive.summary().empty


def test_a_failure_after_good_chunks_keeps_them_and_says_so(env: dict[str, Any]) -> None:
    answered = []

    def second_bad(body: dict[str, Any]) -> dict[str, Any]:
        answered.append(1)
        if len(answered) == 2:
            body["data"] = list(reversed(body["data"]))  # out of order
        return body

    env["hooks"]["past-range"] = second_bad
    start, end = window(env["now"], 15)
    line = one_error(pull(start, end, "--no-forecast"))
    assert "240 row(s) from earlier answers are archived" in line
    with Archive(env["archive"]) as archive:
        assert int(archive.summary()["rows"].sum()) == 240


def test_a_refused_request_is_one_error_line(env: dict[str, Any]) -> None:
    env["em"].fail(Reply(400, {"status": "error", "message": "Zone 'DE' is not available"}))
    start, end = window(env["now"], 3)
    line = one_error(pull(start, end))
    assert "HTTP 400" in line and "nothing was archived" in line


@pytest.mark.parametrize(("args", "expect"), [
    (("--since", "2026-01-01T00:00"), "no UTC offset"),
    (("--since", "yesterday-ish"), "cannot read"),
    (("--since", "2026-01-02T00:00Z", "--until", "2026-01-01T00:00Z"), "must be after"),
    (("--zones", " , "), "empty"),
    (("--signal", "marginal"), "electricitymaps serves the direct and lca signals"),
    (("--provider", "nope"), "Invalid value for '--provider'"),
])
def test_bad_input_is_one_error_line(env: dict[str, Any], args: tuple[str, ...],
                                     expect: str) -> None:
    base = {"--provider": "electricitymaps", "--zones": "DE", "--since": "2026-01-01T00:00Z",
            "--until": "2026-01-02T00:00Z"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    line = one_error(run("data", "pull", *[x for kv in base.items() for x in kv]))
    assert expect in line
    assert not Path(env["archive"].removeprefix("sqlite:///")).exists()


def test_a_since_in_the_future_without_until_says_so(env: dict[str, Any]) -> None:
    later = (pd.Timestamp.now(tz="UTC") + pd.Timedelta("2D")).strftime("%Y-%m-%dT%H:%MZ")
    line = one_error(run("data", "pull", "--provider", "electricitymaps", "--zones", "DE",
                         "--since", later))
    assert "is not in the past" in line and "--until" not in line  # not given
    assert not env["em"].requests


def test_missing_token_names_the_variable(env: dict[str, Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN")
    start, end = window(env["now"], 1)
    line = one_error(pull(start, end))
    assert "ELECTRICITYMAPS_TOKEN" in line
    assert not env["em"].requests


def test_export_writes_what_the_readers_read(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 3)
    assert pull(start, end, "--no-forecast").exit_code == 0
    out = env["dir"] / "exports"
    result = run("data", "export", "--zones", "DE", "--since", iso(start), "--until", iso(end),
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote ")
    data = read_electricitymaps(out)
    expected = fem.trace("DE", start, end, "60min", "direct")
    assert data.values["DE"].tolist() == expected["value"].tolist()
    assert data.estimated["DE"].tolist() == expected["estimated"].tolist()


def test_export_refusals_write_nothing(env: dict[str, Any]) -> None:
    out = env["dir"] / "exports"
    start, end = window(env["now"], 1)
    Archive(env["archive"]).close()  # an empty archive (a missing one is its own error)
    line = one_error(run("data", "export", "--zones", "DE", "--since", iso(start),
                         "--until", iso(end), "--out", str(out), "--signal", "marginal"))
    assert "marginal" in line
    line = one_error(run("data", "export", "--zones", "DE", "--since", iso(start),
                         "--until", iso(end), "--out", str(out)))
    assert "greenepoch data pull" in line
    assert not out.exists()


def test_reading_commands_never_create_an_archive(env: dict[str, Any]) -> None:
    """data archive and data export only read: a SQLite file that is not there stays
    absent (a typo in --archive must not leave an empty database behind)."""
    missing = env["dir"] / "typo.sqlite"
    url = f"sqlite:///{missing}"
    shown = run("data", "archive", "--archive", url)
    assert shown.exit_code == 0 and "is empty" in shown.output
    assert json.loads(run("data", "archive", "--archive", url, "--json").output) == []
    start, end = window(env["now"], 1)
    line = one_error(run("data", "export", "--zones", "DE", "--since", iso(start),
                         "--until", iso(end), "--out", str(env["dir"] / "x"),
                         "--archive", url))
    assert str(missing) in line and "greenepoch data pull" in line
    assert not missing.exists()


def test_archive_shows_the_summary_and_archive_overrides_the_env(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 1)
    assert pull(start, end).exit_code == 0
    table = run("data", "archive")
    assert table.exit_code == 0, table.output
    assert "electricitymaps" in table.output and "forecast" in table.output
    rows = json.loads(run("data", "archive", "--json").output)
    assert {(r["zone"], r["kind"], r["rows"]) for r in rows} >= {("DE", "actual", 24)}
    other = f"sqlite:///{env['dir'] / 'other.sqlite'}"
    empty = run("data", "archive", "--archive", other)
    assert empty.exit_code == 0 and "is empty" in empty.output
    line = one_error(run("data", "archive", "--archive",
                         "postgresql://team:hunter2-pw@127.0.0.1:9/archive"))
    assert "hunter2-pw" not in line and "***" in line


def test_ukci_half_hours_are_archived_and_exported_as_hours(env: dict[str, Any]) -> None:
    start, end = window(env["now"], 2)
    result = run("data", "pull", "--provider", "ukci", "--zones", "GB", "--since", iso(start),
                 "--until", iso(end), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["kind"]: r for r in json.loads(result.output)}
    assert rows["actual"]["new"] == 96 and rows["actual"]["provider"] == "ukci"
    assert rows["forecast"]["new"] > 0
    expected = fuk.trace("GB", start, end, now=env["now"])["actual"]
    with Archive(env["archive"]) as archive:
        got = archive.actuals("GB", "direct")
    assert got["value"].tolist() == expected.tolist()
    assert set(got["step"]) == {pd.Timedelta("30min")}
    out = env["dir"] / "gb"
    assert run("data", "export", "--zones", "GB", "--since", iso(start), "--until", iso(end),
               "--out", str(out)).exit_code == 0
    hourly = read_electricitymaps(out).values["GB"]
    pairs = expected.to_numpy().reshape(-1, 2).mean(axis=1)
    assert hourly.tolist() == pairs.tolist()  # the energy-weighted mean of each hour
    assert len(hourly) == 48


def test_a_malformed_ukci_answer_writes_nothing(env: dict[str, Any]) -> None:
    env["ukci"].override("/intensity/", Reply(200, {"data": [{"from": "yesterday"}]}))
    start, end = window(env["now"], 1)
    line = one_error(run("data", "pull", "--provider", "ukci", "--zones", "GB", "--since",
                         iso(start), "--until", iso(end)))
    assert "ukci" in line and "nothing was archived" in line
    with Archive(env["archive"]) as archive:
        assert archive.summary().empty


@pytest.mark.postgres
def test_pull_into_a_postgresql_archive(env: dict[str, Any], postgres_url: str) -> None:  # noqa: F811
    url = create_database(postgres_url, "cli_pull")
    start, end = window(env["now"], 1)
    for _ in range(2):  # the second pull adds nothing
        result = pull(start, end, "--no-forecast", "--json", "--archive", url)
        assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["unchanged"] == 24
    shown = run("data", "archive", "--archive", url)
    assert "postgresql+psycopg://greenepoch:***@" in shown.output
    assert url.split(":")[2].split("@")[0] not in shown.output  # the password
    assert not Path(env["archive"].removeprefix("sqlite:///")).exists()  # --archive won
