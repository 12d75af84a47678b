"""Fitted forecast models kept on disk (planner/forecast_cache.py) and the plan's use of them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from greenepoch.forecasts.base import Forecaster
from greenepoch.forecasts.registry import get_model
from greenepoch.planner.forecast_cache import MIN_FIT_HISTORY, fit_cutoff, fitted_model, week_start

from tests.forecasts.test_forecasts import synthetic

START = pd.Timestamp("2023-02-23T05:00:00Z")  # a Thursday; its week starts 2023-02-20
MONDAY = pd.Timestamp("2023-02-20T00:00:00Z")


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts real fits (cache misses)."""
    calls: list[int] = []
    original = Forecaster.fit

    def counted(self: Forecaster, history: pd.DataFrame) -> Forecaster:
        calls.append(len(history))
        return original(self, history)

    monkeypatch.setattr(Forecaster, "fit", counted)
    return calls


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GREENEPOCH_CACHE", str(tmp_path))
    return tmp_path


def history() -> pd.DataFrame:
    data = synthetic(days=60)
    return data[data.index < START]


def test_week_start_and_cutoff() -> None:
    assert week_start(START) == MONDAY
    assert week_start(MONDAY) == MONDAY
    assert fit_cutoff(START, MONDAY - MIN_FIT_HISTORY) == MONDAY
    # too little history before the Monday: fit on everything before the start
    assert fit_cutoff(START, MONDAY - MIN_FIT_HISTORY + pd.Timedelta("1h")) == START
    # a model that wants less history than MIN_FIT_HISTORY only needs its own
    assert fit_cutoff(START, MONDAY - pd.Timedelta("8D"), pd.Timedelta("8D")) == MONDAY
    assert fit_cutoff(START, MONDAY - pd.Timedelta("7D"), pd.Timedelta("8D")) == START


def test_second_fit_comes_from_the_cache(cache: Path, fits: list[int]) -> None:
    notes: list[str] = []
    first = fitted_model("climatology", history(), MONDAY, progress=notes.append)
    again = fitted_model("climatology", history(), MONDAY, progress=notes.append)
    assert len(fits) == 1 and fits[0] == int((history().index < MONDAY).sum())
    assert len(list((cache / "forecasts").glob("climatology-*.pkl"))) == 1
    assert "fitting forecast model 'climatology'" in notes[0] and "from" in notes[-1]
    horizon = pd.Timedelta("48h")
    pd.testing.assert_frame_equal(first.predict(START, horizon, data=history()),
                                  again.predict(START, horizon, data=history()))


def test_new_data_before_the_cutoff_refits_after_it_only_moves_lags(
        cache: Path, fits: list[int]) -> None:
    base = history()
    model = fitted_model("mean7d", base, MONDAY)
    later = base.copy()
    later.loc[later.index >= MONDAY, "DE"] += 50.0  # observed after the fit, before the start
    reused = fitted_model("mean7d", later, MONDAY)
    assert len(fits) == 1
    horizon = pd.Timedelta("24h")
    moved = reused.predict(START, horizon, data=later)
    # the lags read the new observations: as a fresh fit on the same window would
    fresh = get_model("mean7d")
    window = (later.index >= MONDAY - fresh.history_needed) & (later.index < MONDAY)
    fresh.fit(later[window])
    pd.testing.assert_frame_equal(moved, fresh.predict(START, horizon, data=later))
    assert (moved["DE"]["mean"] > model.predict(START, horizon, data=base)["DE"]["mean"]).all()
    assert len(fits) == 2  # the fresh fit above
    outside = base.copy()
    outside.iloc[0, 0] += 1.0  # older than the fitted window (history_needed before it)
    fitted_model("mean7d", outside, MONDAY)
    assert len(fits) == 2
    revised = base.copy()
    revised.loc[MONDAY - pd.Timedelta("1h"), "DE"] += 1.0  # inside the fitted window
    fitted_model("mean7d", revised, MONDAY)
    assert len(fits) == 3 and len(list((cache / "forecasts").glob("*.pkl"))) == 2


def test_unreadable_file_is_refitted(cache: Path, fits: list[int]) -> None:
    fitted_model("climatology", history(), MONDAY)
    (path,) = (cache / "forecasts").glob("*.pkl")
    path.write_bytes(b"not a pickle")
    notes: list[str] = []
    model = fitted_model("climatology", history(), MONDAY, progress=notes.append)
    assert len(fits) == 2 and "cannot read" in notes[0]
    assert model.predict(START, pd.Timedelta("6h"), data=history()).notna().all().all()
    assert path.read_bytes() != b"not a pickle"


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  fits: list[int]) -> None:
    monkeypatch.setenv("GREENEPOCH_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fitted_model("mean7d", history(), MONDAY)
    fitted_model("mean7d", history(), MONDAY)
    assert len(fits) == 2 and not any(tmp_path.rglob("*.pkl"))


REQUEST = """
start = "2023-02-23T05:00:00Z"

[[jobs]]
name = "train"
gpus = 8
gpu_hours = 96
release = "2023-02-23T05:00:00Z"
deadline = "2023-02-26T05:00:00Z"
zones = ["DE", "NO"]
home_zone = "DE"

[[zones]]
id = "DE"
capacity_gpus = 16

[[zones]]
id = "NO"
capacity_gpus = 16

[policy]
forecast = "mean7d"
"""


def test_plan_forecast_reads_up_to_the_start_and_never_past_it(
        tmp_path: Path, cache: Path, fits: list[int]) -> None:
    from greenepoch.planner.pipeline import load_intensities
    from greenepoch.planner.request import load_request

    from tests.forecasts.test_forecasts_backtest import write_exports

    (tmp_path / "req.toml").write_text(REQUEST)
    request = load_request(str(tmp_path / "req.toml"))
    data = synthetic(days=70)

    def judged(values: pd.DataFrame) -> pd.DataFrame:
        folder = tmp_path / f"data{len(fits)}-{abs(hash(values.to_numpy().tobytes()))}"
        folder.mkdir()
        write_exports(folder, values)
        return load_intensities(request, data=str(folder)).judged.values

    plain = judged(data)
    future = data.copy()
    future.loc[future.index >= START, :] *= 3.0  # what happens after the start
    pd.testing.assert_frame_equal(judged(future), plain)
    recent = data.copy()
    recent.loc[(recent.index >= MONDAY) & (recent.index < START), "DE"] += 40.0
    moved = judged(recent)
    assert (moved["DE"] > plain["DE"] + 1.0).all()  # the lags reach the start
    pd.testing.assert_series_equal(moved["NO"], plain["NO"])
    assert len(fits) == 1, fits  # all three plans used the fit made before the Monday


def test_least_recently_used_files_are_pruned(cache: Path, fits: list[int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    import greenepoch.planner.forecast_cache as fc

    monkeypatch.setattr(fc, "MAX_FILES", 2)
    base = history()
    variants = []
    for k in range(3):
        h = base.copy()
        h.iloc[-200, 0] += k  # a different fitted window each time
        variants.append(h)
    folder = cache / "forecasts"
    fitted_model("mean7d", variants[0], MONDAY)
    fitted_model("mean7d", variants[1], MONDAY)
    (first,) = [f for f in folder.glob("*.pkl")
                if f.name.endswith(f"{fc.history_key('mean7d', _window(variants[0]))}.pkl")]
    old = time.time() - 100
    for f in folder.glob("*.pkl"):
        os.utime(f, (old, old))
    fitted_model("mean7d", variants[0], MONDAY)  # a cache hit marks it recently used
    assert len(fits) == 2
    fitted_model("mean7d", variants[2], MONDAY)  # a third fit: the least recent goes
    kept = sorted(f.name for f in folder.glob("*.pkl"))
    assert len(kept) == 2 and first.name in kept


def test_files_beyond_the_byte_limit_are_pruned_the_newest_stays(
        cache: Path, fits: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    import greenepoch.planner.forecast_cache as fc

    base = history()
    variants = []
    for k in range(3):
        h = base.copy()
        h.iloc[-200, 0] += k  # a different fitted window each time
        variants.append(h)
    folder = cache / "forecasts"
    fitted_model("mean7d", variants[0], MONDAY)
    (first,) = folder.glob("*.pkl")
    size = first.stat().st_size
    monkeypatch.setattr(fc, "MAX_BYTES", 2 * size + size // 2)  # two files fit, not three
    old = time.time() - 100
    os.utime(first, (old, old))
    fitted_model("mean7d", variants[1], MONDAY)
    assert len(list(folder.glob("*.pkl"))) == 2
    fitted_model("mean7d", variants[2], MONDAY)  # a third: the least recently used goes
    kept = list(folder.glob("*.pkl"))
    assert len(kept) == 2 and first not in kept
    monkeypatch.setattr(fc, "MAX_BYTES", size // 2)  # smaller than any one file
    fitted_model("mean7d", variants[0], MONDAY)
    (only,) = folder.glob("*.pkl")  # the one just written stays
    assert only.name.endswith(f"{fc.history_key('mean7d', _window(variants[0]))}.pkl")
    assert len(fits) == 4


def _window(h: pd.DataFrame) -> pd.DataFrame:
    needed = get_model("mean7d").history_needed
    return h[(h.index >= MONDAY - needed) & (h.index < MONDAY)]


def test_plan_records_the_model_default_stands_for(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import greenepoch.forecasts.registry
    from greenepoch.planner.pipeline import load_intensities
    from greenepoch.planner.request import load_request

    from tests.forecasts.test_forecasts_backtest import write_exports

    monkeypatch.setattr(greenepoch.forecasts.registry, "DEFAULT_MODEL", "mean7d")  # quick to fit
    (tmp_path / "req.toml").write_text(REQUEST)
    write_exports(tmp_path, synthetic(days=70))
    got = load_intensities(load_request(str(tmp_path / "req.toml")), data=str(tmp_path),
                           model="default")
    assert got.model == "mean7d"


def test_cache_files_are_written_by_planner_atomic(cache: Path, fits: list[int]) -> None:
    """The one writer of every output: staged beside the target, renamed, mode 0644
    (the cache's own tempfile writer left 0600 files); nothing staged is left over."""
    fitted_model("mean7d", history(), MONDAY)
    (path,) = (cache / "forecasts").glob("*.pkl")
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in (cache / "forecasts").iterdir()] == [path.name]


def test_a_cache_file_that_cannot_be_written_is_a_note_not_an_error(
        cache: Path, fits: list[int]) -> None:
    """A guard (it held before too): planner.atomic's refusal is a GreenEpochError, not
    an OSError, and must stay a note."""
    fitted_model("mean7d", history(), MONDAY)
    (path,) = (cache / "forecasts").glob("*.pkl")
    path.unlink()
    path.mkdir()  # the target name is taken by a folder: planner.atomic refuses it
    notes: list[str] = []
    model = fitted_model("mean7d", history(), MONDAY, progress=notes.append)
    assert "not cached" in notes[-1] and "is a directory" in notes[-1].lower()
    assert model.predict(START, pd.Timedelta("6h"), data=history()).notna().all().all()


def test_default_folder_is_the_platform_user_cache(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """platformdirs: the XDG folder on Linux, where a relative $XDG_CACHE_HOME is ignored
    (the XDG spec; the hand-written lookup put the cache under the working directory)."""
    import sys

    from greenepoch.planner.forecast_cache import cache_dir

    if sys.platform != "linux":
        pytest.skip("the XDG rules are Linux's; platformdirs picks macOS/Windows folders")
    monkeypatch.delenv("GREENEPOCH_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "greenepoch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_dir() == tmp_path / ".cache" / "greenepoch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / ".cache" / "greenepoch"
    monkeypatch.setenv("GREENEPOCH_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_key_is_the_same_for_equal_frames_of_any_memory_layout() -> None:
    """The guarantee joblib.Memory lacks: a frame of one block per zone (as the reader
    returns) and its copy (one 2-D block) are equal and key the same, so they are not
    refitted (joblib.hash told them apart, on real data too)."""
    from greenepoch.planner.forecast_cache import history_key

    base = history()
    split = pd.concat([base[[c]] for c in base.columns], axis=1)  # one block per column
    merged = split.copy()  # copying consolidates the blocks
    pd.testing.assert_frame_equal(merged, split)
    assert history_key("mean7d", merged) == history_key("mean7d", split)
    assert history_key("mean7d", split) != history_key("seasonal", split)
    later = split.copy()
    later.index = later.index + pd.Timedelta("1h")
    assert history_key("mean7d", later) != history_key("mean7d", split)
