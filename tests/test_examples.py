"""Every example request plans end to end, and its plan keeps the request's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.pipeline import plan
from planner.request import load_request

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))
REQUESTS = [p for p in EXAMPLES if "[[jobs]]" in p.read_text() and "[sweep]" not in p.read_text()]


@pytest.mark.parametrize("path", REQUESTS, ids=[p.stem for p in REQUESTS])
def test_example_plans_on_embedded_default(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENEPOCH_DATA", raising=False)
    request = load_request(path)
    result = plan(request, data=None, oracle=True)
    assert result.doc["intensity"]["source"] == "synthetic"
    assert result.doc["solver"]["status"] in ("optimal", "feasible")
    for job, spec in zip(result.jobs, request.jobs, strict=True):
        assert job["name"] == spec.name
        assert job["segments"], f"{spec.name} got no segments"
        assert job["summary"]["finish"] <= spec.deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert all(seg["zone"] in spec.zones for seg in job["segments"])
        assert all(spec.gpus_min <= seg["gpus"] <= spec.gpus for seg in job["segments"])
        assert job["summary"]["emissions_kg"] <= job["baselines"]["run_now_home"][
            "emissions_kg"] + 1e-6 or request.policy.objective != "carbon"


@pytest.mark.realdata
def test_carbon_and_cost_example_uses_shared_prices(real_data: Path) -> None:
    request = load_request(Path(__file__).parents[1] / "examples" / "carbon_and_cost.toml")
    result = plan(request, data=real_data, oracle=True)
    summary = result.jobs[0]["summary"]
    assert summary["cost_usd"] is not None and summary["cost_usd"] > 0
