"""The run-now fallback of forecast plans (issue 13 item 18) and the forecast MIP gap
(item 15): a job whose expected saving is under MIN_EXPECTED_SAVING, or not robust at
P90, runs now at home; a plan on a forecast stops at FORECAST_MIP_GAP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import (
    EXACT_MIP_GAP,
    FORECAST_MIP_GAP,
    Job,
    PlanRequest,
    Policy,
    Zone,
)
from greenepoch.planner.pipeline import Intensities, build_problem
from greenepoch.planner.plan import MIN_EXPECTED_SAVING, Plan, assemble
from greenepoch.solvers.solve import solve_problem

T0 = pd.Timestamp("2023-06-01T00:00:00Z")
INDEX = pd.date_range(T0, periods=6, freq="1h", name="time")


def _data(values: pd.DataFrame) -> IntensityData:
    flags = pd.DataFrame(False, index=INDEX, columns=values.columns)
    return IntensityData(values, flags, flags.copy(), "real", "direct")


def _plan(saving: float, fallback: bool = True) -> Plan:
    """One job, home A at 100 g/kWh, B at 100 x (1 - ``saving``) (no checkpoint to
    move, so the optimum runs in B and expects to save ``saving``); the forecast's P90
    is 1.2x the mean everywhere (robust), and what happened is the forecast."""
    frame = pd.DataFrame({"A": [100.0] * 6, "B": [100.0 * (1 - saving)] * 6}, index=INDEX)
    job = Job(name="train", gpus=2, gpu_hours=4.0, release=T0, deadline=T0 + pd.Timedelta("6h"),
              zones=("A", "B"), home_zone="A", gpu_power_kw=1.0, checkpoint_gb=0.0)
    zones = (Zone("A", 8, pue=1.0), Zone("B", 8, pue=1.0))
    request = PlanRequest(start=T0, jobs=(job,), zones=zones, policy=Policy(mip_gap=0.0))
    problem = build_problem(request, _data(frame), np.zeros((2, 6)))
    outcome = solve_problem(problem, request.policy.solve_settings)
    intensities = Intensities(_data(frame), _data(frame), "forecast", "test",
                              {"p10": 0.8 * frame, "p90": 1.2 * frame})
    return assemble(request, problem, outcome, intensities, 0.0, fallback=fallback)


def test_a_small_expected_saving_falls_back_to_running_now() -> None:
    doc = _plan(saving=0.05).to_dict()["jobs"][0]
    s = doc["summary"]
    assert s["fallback"]["to"] == "run_now_home"
    assert s["fallback"]["reason"].startswith("it expects to save 5.0 % against running now, "
                                              "under the 10 % a forecast plan needs")
    assert s["fallback"]["expected_kg"] == pytest.approx(0.38)  # 4 kWh x 95 g/kWh
    assert [seg["zone"] for seg in doc["segments"]] == ["A"]
    assert s["emissions_kg"] == pytest.approx(0.4)  # running now: 4 kWh x 100 g/kWh


@pytest.mark.parametrize("saving", [0.12, 0.3])
def test_a_robust_saving_of_ten_percent_or_more_is_kept(saving: float) -> None:
    doc = _plan(saving=saving).to_dict()["jobs"][0]
    assert "fallback" not in doc["summary"] and doc["robust"] is True
    assert {seg["zone"] for seg in doc["segments"]} == {"B"}
    assert doc["savings_pct"] == pytest.approx(100 * saving)
    assert MIN_EXPECTED_SAVING == 0.10


def test_no_fallback_keeps_a_small_saving() -> None:
    doc = _plan(saving=0.05, fallback=False).to_dict()["jobs"][0]
    assert "fallback" not in doc["summary"]
    assert {seg["zone"] for seg in doc["segments"]} == {"B"}


def test_forecast_plans_stop_at_the_forecast_gap_unless_the_request_sets_one() -> None:
    assert Policy().solve_settings.mip_gap == EXACT_MIP_GAP == 1e-4
    assert Policy().settings_for(forecast=True).mip_gap == FORECAST_MIP_GAP == 0.01
    assert Policy().settings_for(forecast=False).mip_gap == EXACT_MIP_GAP
    assert Policy(mip_gap=0.002).settings_for(forecast=True).mip_gap == 0.002
    assert Policy(mip_gap=0.0).settings_for(forecast=True).mip_gap == 0.0


def test_the_pipeline_solves_forecast_plans_to_the_forecast_gap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped demo request planned on the embedded default: a forecast plan hands
    the solver FORECAST_MIP_GAP, an oracle plan EXACT_MIP_GAP."""
    import greenepoch.solvers.solve as solve
    from greenepoch import demo_request
    from greenepoch.planner import pipeline

    gaps: list[float] = []
    real = solve.solve_problem

    def spy(problem, settings, *args, **kwargs):  # type: ignore[no-untyped-def]
        gaps.append(settings.mip_gap)
        return real(problem, settings, *args, **kwargs)

    monkeypatch.setattr(solve, "solve_problem", spy)
    request = demo_request()
    pipeline.plan(request, oracle=True)
    pipeline.plan(request, model="seasonal")
    assert gaps == [EXACT_MIP_GAP, FORECAST_MIP_GAP]
