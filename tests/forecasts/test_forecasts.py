"""Contract tests over every registered forecaster, plus small-data unit tests."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
from greenepoch.forecasts.base import STATS, ForecastError
from greenepoch.forecasts.registry import available, get_model

ZONES = ["DE", "NO"]
ISSUE = pd.Timestamp("2023-02-10T00:00:00Z")


def synthetic(days: int = 60, seed: int = 0, start: str = "2023-01-01") -> pd.DataFrame:
    """Two zones with a daily cycle, a weekly cycle and AR noise (gCO2eq/kWh)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days * 24, freq="1h", tz="UTC", name="time")
    hour = index.hour.to_numpy()
    dow = index.day_of_week.to_numpy()
    noise = np.cumsum(rng.normal(0, 3, size=(len(index), 2)), axis=0) * 0.3
    de = 350 + 80 * np.sin(2 * np.pi * (hour - 6) / 24) - 30 * (dow >= 5) + noise[:, 0]
    no = 20 + 5 * np.cos(2 * np.pi * hour / 24) + noise[:, 1] * 0.1
    return pd.DataFrame({"DE": np.maximum(de, 1), "NO": np.maximum(no, 0.5)}, index=index)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data: pd.DataFrame) -> dict[str, object]:
    history = data[data.index < ISSUE]
    return {name: get_model(name).fit(history) for name in available()}


@pytest.mark.parametrize("name", available())
def test_contract_shape_index_quantiles(name: str, fitted: dict, data: pd.DataFrame) -> None:
    out = fitted[name].predict(ISSUE, pd.Timedelta("96h"))
    assert isinstance(out.index, pd.DatetimeIndex)
    assert str(out.index.tz) == "UTC" and out.index.name == "time"
    assert out.index[0] == ISSUE and len(out) == 96
    assert list(out.columns) == [(z, s) for z in ZONES for s in STATS]
    assert not out.isna().to_numpy().any()
    assert (out.to_numpy() >= 0).all()
    for z in ZONES:
        p10, p50, p90 = (out[(z, q)].to_numpy() for q in ("p10", "p50", "p90"))
        assert (p10 <= p50 + 1e-9).all() and (p50 <= p90 + 1e-9).all()
    # the planner's pipeline reads the mean this way
    assert list(out.xs("mean", axis=1, level=1).columns) == ZONES


@pytest.mark.parametrize("name", available())
def test_no_look_ahead(name: str, fitted: dict, data: pd.DataFrame) -> None:
    model = fitted[name]
    before = model.predict(ISSUE, pd.Timedelta("14D"), data=data)
    altered = data.copy()
    altered.loc[altered.index >= ISSUE] *= 3.0
    after = model.predict(ISSUE, pd.Timedelta("14D"), data=altered)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("name", available())
def test_no_look_ahead_batch_and_delay(name: str, fitted: dict, data: pd.DataFrame) -> None:
    model = fitted[name]
    values = data.to_numpy()
    issue = int((ISSUE - data.index[0]) / pd.Timedelta("1h"))
    last = np.array([issue - 1 - 6, issue - 1 - 6 - 24])  # 6 h reporting delay
    a = model.predict_batch(values, data.index[0], last, 7, 48)
    changed = values.copy()
    changed[issue - 6:] += 500.0
    b = model.predict_batch(changed, data.index[0], last, 7, 48)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", available())
def test_batch_matches_public_predict(name: str, fitted: dict, data: pd.DataFrame) -> None:
    model = fitted[name]
    issue = int((ISSUE - data.index[0]) / pd.Timedelta("1h"))
    batch = model.predict_batch(data.to_numpy(), data.index[0], np.array([issue - 1]), 1, 48)[0]
    frame = model.predict(ISSUE, pd.Timedelta("48h"), data=data)
    for s, stat in enumerate(STATS):
        np.testing.assert_allclose(batch[:, :, s], frame.xs(stat, axis=1, level=1).to_numpy())


def test_fit_does_not_mutate(data: pd.DataFrame) -> None:
    history = data[data.index < ISSUE]
    copy = history.copy()
    get_model("climatology").fit(history)
    pd.testing.assert_frame_equal(history, copy)


def test_baselines_by_hand(data: pd.DataFrame) -> None:
    history = data[data.index < ISSUE]
    h = pd.Timedelta("48h")
    last = history.iloc[-1]
    persistence = get_model("persistence").fit(history).predict(ISSUE, h)
    assert np.allclose(persistence.xs("mean", axis=1, level=1).to_numpy(), last.to_numpy())
    yesterday = get_model("yesterday").fit(history).predict(ISSUE, h)
    day_before = history.iloc[-24:].to_numpy()
    assert np.allclose(yesterday.xs("mean", axis=1, level=1).to_numpy(),
                       np.vstack([day_before, day_before]))
    week = get_model("last_week").fit(history).predict(ISSUE, h)
    assert np.allclose(week.xs("mean", axis=1, level=1).to_numpy(), history.iloc[-168:-120])
    mean7 = get_model("mean7d").fit(history).predict(ISSUE, pd.Timedelta("24h"))
    expected = history.iloc[-168:].to_numpy().reshape(7, 24, 2).mean(axis=0)
    assert np.allclose(mean7.xs("mean", axis=1, level=1).to_numpy(), expected)


def test_conformal_coverage_on_stationary_noise() -> None:
    rng = np.random.default_rng(3)
    index = pd.date_range("2022-01-01", periods=24 * 200, freq="1h", tz="UTC", name="time")
    frame = pd.DataFrame({"X": 100 + rng.normal(0, 10, len(index))}, index=index)
    model = get_model("climatology").fit(frame.iloc[: 24 * 150])
    out = model.predict(index[24 * 150], pd.Timedelta("49D"), data=frame)
    truth = frame["X"].iloc[24 * 150: 24 * 199].to_numpy()
    inside = (truth >= out[("X", "p10")]) & (truth <= out[("X", "p90")])
    assert 0.72 < inside.mean() < 0.88


def test_errors_say_what_to_do(data: pd.DataFrame) -> None:
    with pytest.raises(ForecastError, match="available"):
        get_model("nope")
    with pytest.raises(ForecastError, match="not fitted"):
        get_model("mean7d").predict(ISSUE, pd.Timedelta("1h"))
    with pytest.raises(ForecastError, match="at least 27 days"):
        get_model("gbm").fit(data.iloc[: 24 * 10])
    naive = data.tz_localize(None)
    with pytest.raises(ForecastError, match="tz-aware"):
        get_model("mean7d").fit(naive)
    with pytest.raises(ForecastError, match="tz-aware"):
        get_model("mean7d").fit(data).predict(pd.Timestamp("2023-02-01"), pd.Timedelta("1h"))


def test_default_and_seasonal_registered() -> None:
    assert "seasonal" in available()
    assert get_model("default").name in available()


def test_seasonal_short_history_like_the_pipeline(data: pd.DataFrame) -> None:
    history = data[(data.index < ISSUE) & (data.index >= ISSUE - pd.Timedelta("7D"))]
    out = get_model("seasonal").fit(history).predict(ISSUE, pd.Timedelta("24h"))
    assert out.shape == (24, 8)


def test_blend_block_demean_and_weight_interpolation() -> None:
    from greenepoch.forecasts.base import BUCKETS_H
    from greenepoch.forecasts.blend import Blend, _block_demean

    x = np.arange(2 * 5, dtype=float).reshape(1, 10)
    x[0, 9] = np.nan
    out = _block_demean(x, 4)  # blocks [0-3], [4-7], [8, nan]: each centred on its own mean
    assert np.allclose(out[0, :8], [-1.5, -0.5, 0.5, 1.5] * 2)
    assert out[0, 8] == 0 and np.isnan(out[0, 9])

    m = Blend()
    m.zones_ = ["A"]
    w = np.zeros((1, len(BUCKETS_H), 3))
    w[0, :, 0] = np.linspace(1, 0, len(BUCKETS_H))
    w[0, :, 1] = 1 - w[0, :, 0]
    m.weights_ = w
    lo = np.concatenate([[0], BUCKETS_H[:-1]])
    centres = ((lo + BUCKETS_H) / 2)[:-1]
    at = m._weights_at(np.concatenate([centres, [0.5, 1000.0]]))
    assert np.allclose(at[: len(centres), 0], w[0, : len(centres)])  # exact at bucket centres
    assert np.allclose(at[-2, 0], w[0, 0]) and np.allclose(at[-1, 0], w[0, len(centres) - 1])
    dense = m._weights_at(np.arange(0.5, 336))
    assert np.allclose(dense.sum(axis=-1), 1)  # still convex
    assert np.abs(np.diff(dense[:, 0, 0])).max() < 0.1  # no steps at bucket edges


def test_gbm_bagging_averages_its_models(data: pd.DataFrame) -> None:
    from greenepoch.forecasts.gbm import GradientBoosting

    history = data[data.index < ISSUE]
    bagged = GradientBoosting().fit(history)
    assert len(bagged.models_) == bagged.n_models == 2
    issue = int((ISSUE - data.index[0]) / pd.Timedelta("1h"))
    last = np.array([issue - 1])
    values = data.to_numpy()
    both = bagged._point_batch(values, data.index[0], last, 1, 48)
    singles = []
    for member, trees in zip(bagged.models_, bagged.trees_, strict=True):
        bagged.models_, bagged.trees_ = [member], [trees]
        singles.append(bagged._point_batch(values, data.index[0], last, 1, 48))
    np.testing.assert_allclose(both, np.mean(singles, axis=0))
    assert not np.allclose(singles[0], singles[1])  # fitted on different days


@pytest.mark.parametrize("name", ["gbm", "blend", "climatology", "mean7d"])
def test_point_steps_agree_with_the_full_horizon(name: str, fitted: dict,
                                                 data: pd.DataFrame) -> None:
    """The calibration scores a subset of steps through ``_point_steps``: its values
    are those of ``_point_batch`` at the same steps."""
    model = fitted[name]
    values = data.to_numpy()
    last = np.array([24 * 30 - 1, 24 * 35 + 6])
    steps = model._calibration_steps(240)
    full = model._point_batch(values, data.index[0], last, 1, 240)
    np.testing.assert_allclose(model._point_steps(values, data.index[0], last, 1, steps),
                               full[:, steps], rtol=1e-9)


def test_calibration_scores_48h_densely_then_rotating_hours() -> None:
    model = get_model("blend")
    model.per_hour_ = 1
    steps = model._calibration_steps(336)
    assert list(steps[:48]) == list(range(48))
    assert len(steps) < 336 / 3 + 1  # a third of the predictions of scoring every slot
    later = steps[steps >= 48]
    assert set(np.diff(later)) == {5}
    assert set(later % 24) == set(range(24))  # every hour of the day is scored beyond 48 h
    model.per_hour_ = 4  # 15-min slots: the same hours
    assert list(model._calibration_steps(336 * 4)) == list(
        np.concatenate([np.arange(192), np.arange(192, 336 * 4, 20)]))


def test_block_demean_on_scored_steps_only() -> None:
    from greenepoch.forecasts.blend import _block_demean

    x = np.array([[1.0, 3.0, 10.0, 20.0]])
    steps = np.array([0, 2, 4, 7])  # blocks of 4: steps 0 and 2 in the first, 4 and 7 next
    assert np.allclose(_block_demean(x, 4, steps), [[-1, 1, -5, 5]])


def test_gbm_learns_from_the_latest_train_days_only() -> None:
    from greenepoch.forecasts.gbm import GradientBoosting

    long = synthetic(days=420, seed=3, start="2022-01-01")
    model = GradientBoosting()
    model.train_days = 100  # the rule, on a history of 420 days less the 91 held out
    model.fit(long)
    held_out = long.index[-1] - pd.Timedelta("91D")
    assert model.train_from_ >= held_out - pd.Timedelta("101D")
    assert model.train_from_ > long.index[0] + pd.Timedelta("200D")
    assert GradientBoosting.train_days == 365


def test_numpy_trees_predict_what_scikit_learn_predicts(fitted: dict,
                                                        data: pd.DataFrame) -> None:
    """A cached model predicts small batches with forecasts.trees (no scikit-learn
    import): the same values as the regressors, missing and unknown zones included."""
    model = fitted["gbm"]
    last = np.arange(24 * 20, 24 * 40, 13) - 1
    X, *_ = model._features(data.to_numpy(), data.index[0], last, 1, np.arange(200))
    X = X[:, model._keep()][:, : model._n_base()].astype(float)
    X[:50, 0] = 7  # a zone code the model never saw: scikit-learn treats it as missing
    X[50:100, 0] = np.nan
    X[100:150, 6] = np.nan  # a missing numeric feature
    assert len(model.trees_) == len(model.models_) == 2
    for trees, regressor in zip(model.trees_, model.models_, strict=True):
        np.testing.assert_allclose(trees.predict(X), regressor.predict(X), rtol=1e-12,
                                   atol=1e-12)


def test_a_pickled_model_predicts_without_importing_scikit_learn(
        fitted: dict, data: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pickle
    import subprocess
    import sys

    path = tmp_path / "blend.pkl"
    path.write_bytes(pickle.dumps(fitted["blend"]))
    expected = fitted["blend"].predict(ISSUE, pd.Timedelta("96h"), data=data)
    code = (
        "import pickle, sys, pandas as pd\n"
        f"m = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"data = pd.read_pickle({str(tmp_path / 'data.pkl')!r})\n"
        f"out = m.predict(pd.Timestamp({str(ISSUE)!r}), pd.Timedelta('96h'), data=data)\n"
        f"out.to_pickle({str(tmp_path / 'out.pkl')!r})\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('sklearn', 'scipy')))\n"
        # many forecasts (a replay): past the walk budget scikit-learn takes over
        "import greenepoch.forecasts.gbm as G\n"
        "G.WALK_BUDGET = 500\n"
        "outs = [m.predict(pd.Timestamp(%r), pd.Timedelta('96h'), data=data) for _ in range(4)]\n"
        "print('sklearn.ensemble' in sys.modules)\n"
        f"pd.to_pickle(outs, {str(tmp_path / 'outs.pkl')!r})\n" % str(ISSUE)
    )
    data.to_pickle(tmp_path / "data.pkl")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), expected,
                                  rtol=1e-12)
    for out in pd.read_pickle(tmp_path / "outs.pkl"):
        pd.testing.assert_frame_equal(out, expected, rtol=1e-12)
