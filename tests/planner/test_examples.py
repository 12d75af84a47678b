"""Every example request plans end to end, and its plan keeps the request's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from greenepoch.data.errors import RequestError
from greenepoch.planner.pipeline import plan
from greenepoch.planner.plan import PlanStatus
from greenepoch.planner.request import load_request

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))
REQUESTS = [p for p in EXAMPLES if "[[jobs]]" in p.read_text() and "[sweep]" not in p.read_text()]


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_example_plans_on_embedded_default(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    request = load_request(path)
    if request.policy.objective == "carbon+cost":  # the embedded default has no prices
        with pytest.raises(RequestError, match="objective 'carbon\\+cost' needs electricity "
                                               "prices for every zone a job may run in"):
            plan(request, data=None, oracle=True)
        return
    result = plan(request, data=None, oracle=True)
    assert result.intensity is not None and result.intensity.source == "synthetic"
    assert result.solver is not None
    assert result.solver.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE)
    for job, spec in zip(result.jobs, request.jobs, strict=True):
        assert job.name == spec.name
        assert (job.release, job.deadline, job.gpu_hours) == (spec.release, spec.deadline,
                                                              spec.gpu_hours)
        assert job.segments, f"{spec.name} got no segments"
        assert job.summary is not None and job.summary.finish is not None
        assert job.summary.finish <= spec.deadline
        assert all(seg.zone in spec.zones for seg in job.segments)
        assert all(spec.gpus_min <= seg.gpus <= spec.gpus for seg in job.segments)
        assert job.baselines is not None
        assert job.summary.emissions_kg <= job.baselines["run_now_home"].emissions_kg + 1e-6 \
            or request.policy.objective != "carbon"


@pytest.mark.realdata
def test_carbon_and_cost_example_uses_shared_prices(real_data: Path) -> None:
    request = load_request(Path(__file__).parents[2] / "examples" / "carbon_and_cost.toml")
    result = plan(request, data=real_data, oracle=True)
    summary = result.jobs[0].summary
    assert summary is not None and summary.cost_usd is not None and summary.cost_usd > 0


@pytest.mark.realdata
def test_carbon_and_cost_refuses_a_zone_without_prices(real_data: Path, tmp_path: Path) -> None:
    """GB has no price file: under carbon+cost it would look free, so the request is refused."""
    text = (Path(__file__).parents[2] / "examples" / "carbon_and_cost.toml").read_text()
    request_file = tmp_path / "r.toml"
    request_file.write_text(text.replace('"US-CAL-CISO"', '"GB"'))
    with pytest.raises(RequestError, match=r"none \(over the whole horizon\) for GB: give"):
        plan(load_request(request_file), data=real_data, oracle=True)


@pytest.mark.realdata
def test_cost_is_null_when_the_plan_runs_where_prices_are_unknown(real_data: Path) -> None:
    """Under the carbon objective a zone without prices is allowed; the job's cost is then
    reported only when it ran where prices are known (DE has them, GB not)."""
    request = load_request(Path(__file__).parents[2] / "examples" / "minimal.toml")
    assert set(request.jobs[0].zones) == {"DE", "GB"}
    job = plan(request, data=real_data, oracle=True).jobs[0]
    assert job.summary is not None
    in_gb = any(seg.zone == "GB" for seg in job.segments)
    assert (job.summary.cost_usd is None) == in_gb
    if not in_gb:
        assert job.summary.cost_usd > 0
