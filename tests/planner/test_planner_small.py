"""Hand-checkable planning instances with exact expected schedules, and the Plan JSON
contract.

Intensities are gCO2eq/kWh, power 1 kW per GPU and PUE 1 unless stated, so one
GPU-hour in a slot of intensity ``I`` emits ``I / 1000`` kg CO2eq.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import Intensities, build_problem
from greenepoch.planner.plan import SCHEMA_VERSION, Plan, assemble
from greenepoch.solvers.dp import best_plan, job_slot_cost
from greenepoch.solvers.heuristics import exact_applies
from greenepoch.solvers.problem import JobSpec, PlanningProblem, SolveSettings
from greenepoch.solvers.schedule import (
    Schedule,
    emissions_kg,
    move_charges,
    objective,
    transfer_kg,
    trim_excess,
)
from greenepoch.solvers.solve import Outcome, check_schedule, solve_problem

T0 = pd.Timestamp("2023-06-01T00:00:00Z")
SIX = [500, 100, 400, 50, 300, 200]
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def spec(**kw: object) -> JobSpec:
    """A rigid 2-GPU job needing 4 GPU-hours at 1 kW per GPU, in zone 0, slots 0..5
    (``gpus_min`` defaults to ``gpus``: rigid)."""
    fields: dict[str, object] = dict(
        name="a", gpus=2, gpus_min=2, work=4.0, power_kw=1.0, first=0, last=5, zones=(0,),
        home=0, overhead_h=0.0, max_starts=None, min_run_slots=1, checkpoint_gb=0.0,
        egress_usd_per_gb=0.0, transfer_slots=0, transfer_kwh_per_gb=0.0, allow_split=False,
    )
    fields.update(kw)
    if "gpus_min" not in kw:
        fields["gpus_min"] = fields["gpus"]
    return JobSpec(**fields)  # type: ignore[arg-type]


def problem(intensity: list, jobs: list[JobSpec], capacity: list | None = None,
            pue: list[float] | None = None, **kw: object) -> PlanningProblem:
    """Hourly slots from T0; ``intensity`` is one row per zone (or a flat row)."""
    values = np.atleast_2d(np.asarray(intensity, dtype=float))
    n_zones, n_slots = values.shape
    cap = np.full((n_zones, n_slots), 100) if capacity is None else np.atleast_2d(capacity)
    return PlanningProblem(
        slots=pd.date_range(T0, periods=n_slots, freq="1h", name="time"), slot_h=1.0,
        zones=tuple(f"Z{i}" for i in range(n_zones)), jobs=tuple(jobs), intensity=values,
        pue=np.ones(n_zones) if pue is None else np.asarray(pue, dtype=float),
        capacity=np.asarray(cap, dtype=np.int64), price=None, **kw,  # type: ignore[arg-type]
    )


def solve(p: PlanningProblem, **policy: object) -> Outcome:
    out = solve_problem(p, SolveSettings(mip_gap=0.0, **policy))  # type: ignore[arg-type]
    assert check_schedule(p, out.schedule) == []
    return out


def held_slots(out: Outcome, j: int = 0) -> list[int]:
    return np.flatnonzero(out.schedule.gpus[j].sum(axis=0)).tolist()


def held_zones(out: Outcome, j: int = 0) -> list[int]:
    return sorted({int(z) for z in np.flatnonzero(out.schedule.gpus[j].sum(axis=1))})


def data(values: Mapping[str, Sequence[float]], freq: str = "1h") -> IntensityData:
    n = len(next(iter(values.values())))
    index = pd.date_range(T0, periods=n, freq=freq, name="time")
    frame = pd.DataFrame(values, index=index, dtype=float)
    flags = pd.DataFrame(False, index=index, columns=frame.columns)
    return IntensityData(frame, flags, flags.copy(), "synthetic", "direct")


def job(**kw: object) -> Job:
    fields: dict[str, object] = dict(
        name="train", gpus=2, gpu_hours=4.0, release=T0, deadline=T0 + pd.Timedelta("6h"),
        zones=("DE",), home_zone="DE", gpu_power_kw=1.0,
    )
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def request(jobs: list[Job], zones: list[Zone] | None = None, **policy: object) -> PlanRequest:
    zones = zones or [Zone("DE", capacity_gpus=8, pue=1.0)]
    return PlanRequest(start=T0, jobs=tuple(jobs), zones=tuple(zones),
                       policy=Policy(mip_gap=0.0, **policy))  # type: ignore[arg-type]


def plan_of(req: PlanRequest, judged: IntensityData) -> tuple[Plan, PlanningProblem]:
    p = build_problem(req, judged)
    out = solve(p)
    return assemble(req, p, out, Intensities(judged, None, "oracle", None), 0.0), p


# --- the MILP on hand-checkable instances -------------------------------------------


def test_cleanest_two_slots():
    p = problem(SIX, [spec()])
    out = solve(p)
    assert held_slots(out) == [1, 3]
    assert out.schedule.gpus[0, 0].tolist() == [0, 2, 0, 2, 0, 0]
    assert out.schedule.run[0, 0].tolist() == [0, 2, 0, 2, 0, 0]
    assert emissions_kg(p, out.schedule, 0) == pytest.approx((100 + 50) * 2 / 1000)
    assert out.solution.objective == pytest.approx(0.3)
    assert out.method == "milp"
    assert out.solution.status.value == "optimal"


def test_power_and_pue_scale_emissions():
    p = problem(SIX, [spec(power_kw=0.7)], pue=[1.2])
    out = solve(p)
    assert held_slots(out) == [1, 3]
    assert emissions_kg(p, out.schedule, 0) == pytest.approx(150 * 2 * 0.7 * 1.2 / 1000)


def test_checkpoint_overhead_makes_one_contiguous_run_cheaper():
    # 3 GPU-h of work at 2 GPUs; the last slot held runs only what is left.  Without
    # overhead, slots 1 and 3 (the latter half run) cost 2 x 100 + 1 x 50 = 250, less
    # than (3, 4) at 2 x 50 + 1 x 160 = 260.  Each start costing 0.5 h x 2 GPUs = 1 GPU-h,
    # the pair (3, 4) delivers 4 - 1 = 3 for 2 x (50 + 160) = 420, less than any plan
    # with two starts (the best, {1, 3, 4}, costs 2 x 100 + 2 x 50 + 1 x 160 = 460).
    costs = [500, 100, 400, 50, 160, 600]
    free = problem(costs, [spec(work=3.0)])
    without = solve(free)
    assert held_slots(without) == [1, 3]
    assert emissions_kg(free, without.schedule, 0) == pytest.approx(0.25)
    p = problem(costs, [spec(work=3.0, overhead_h=0.5)])
    out = solve(p)
    assert held_slots(out) == [3, 4]
    assert out.schedule.starts(0) == 1
    assert out.schedule.work_done(p, 0) == pytest.approx(3.0)
    assert emissions_kg(p, out.schedule, 0) == pytest.approx((50 + 160) * 2 / 1000)


def test_overhead_can_force_more_slots():
    # 4 GPU-h with 1 GPU-h per start: two runs need 3 slots ({1, 3, 4}: 6 - 2 = 4, cost
    # 2 x 450); one run needs 3 too ({3, 4, 5}, its last slot half run: 2 x 350 + 400).
    p = problem([500, 100, 400, 50, 300, 400], [spec(overhead_h=0.5)])
    out = solve(p)
    assert held_slots(out) == [1, 3, 4]
    assert out.schedule.starts(0) == 2
    assert objective(p, out.schedule) == pytest.approx((100 + 50 + 300) * 2 / 1000)


TWO_ZONES = [[300, 300, 300, 300], [100, 100, 100, 100]]


def test_free_migration_moves_to_the_cleaner_zone():
    p = problem(TWO_ZONES, [spec(last=3, zones=(0, 1))])
    out = solve(p)
    assert held_zones(out) == [1]
    assert out.schedule.moves(0, home=0) == [(1, held_slots(out)[0])]


def test_cheap_checkpoint_transfer_still_moves():
    # 10 GB x 0.06 kWh/GB at 100 g/kWh = 0.06 kg, far below the 0.8 kg saved.
    p = problem(TWO_ZONES, [spec(last=3, zones=(0, 1), checkpoint_gb=10.0,
                                 transfer_kwh_per_gb=0.06)])
    out = solve(p)
    assert held_zones(out) == [1]
    assert objective(p, out.schedule) == pytest.approx(0.4 + 0.06)


def test_checkpoint_moves_while_paused_at_the_cleanest_slot():
    # run slot 0 at home, then slots 4 and 5 in Z1; the 100 GB x 0.06 kWh/GB transfer
    # takes a slot, so it may leave in slots 1..3 and goes at Z1's 5 g/kWh (slot 2):
    # 0.1 + 0.01 + 0.01 + 6 x 5 / 1000 = 0.15 kg, and the plan charges it there too
    p = problem([[100, 900, 900, 900, 900, 900], [900, 900, 5, 900, 10, 10]],
                [spec(gpus=1, work=3.0, zones=(0, 1), checkpoint_gb=100.0,
                      transfer_kwh_per_gb=0.06, transfer_slots=1)])
    out = solve(p)
    assert out.schedule.gpus[0].tolist() == [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]]
    assert move_charges(p, out.schedule, 0) == [(1, 2)]
    assert transfer_kg(p, out.schedule, 0) == pytest.approx(0.03)
    assert out.solution.objective == pytest.approx(0.15)
    assert objective(p, out.schedule) == pytest.approx(0.15)


def test_costly_checkpoint_transfer_keeps_the_job_home():
    # 1000 GB x 0.06 kWh/GB at 100 g/kWh = 6 kg to move, for 0.8 kg saved: stay home.
    p = problem(TWO_ZONES, [spec(last=3, zones=(0, 1), checkpoint_gb=1000.0,
                                 transfer_kwh_per_gb=0.06)])
    out = solve(p)
    assert held_zones(out) == [0]
    assert objective(p, out.schedule) == pytest.approx(4 * 300 / 1000)


def test_cheap_egress_still_moves():
    # 100 GB x 0.02 USD/GB = 2 USD, weighted 0.1 kg/USD = 0.2 kg < 0.8 kg saved.
    p = problem(TWO_ZONES, [spec(last=3, zones=(0, 1), checkpoint_gb=100.0,
                                 egress_usd_per_gb=0.02)], price_weight=0.1)
    assert held_zones(solve(p)) == [1]


def test_costly_egress_keeps_the_job_home():
    # 2 USD weighted 1 kg/USD = 2 kg > 0.8 kg saved.
    p = problem(TWO_ZONES, [spec(last=3, zones=(0, 1), checkpoint_gb=100.0,
                                 egress_usd_per_gb=0.02)], price_weight=1.0)
    assert held_zones(solve(p)) == [0]


# Z0 is cleaner on the grid (100) but wasteful (PUE 3: 300 per GPU-hour);
# Z1 is dirtier (200) but efficient (PUE 1): the planner prefers Z1.
PUE_CASE = dict(intensity=[[100] * 4, [200] * 4], pue=[3.0, 1.0])


def test_hard_threshold_applies_to_grid_intensity():
    jobs = [spec(last=3, zones=(0, 1))]
    assert held_zones(solve(problem(jobs=jobs, **PUE_CASE))) == [1]  # type: ignore[arg-type]
    p = problem(jobs=jobs, threshold=150.0, **PUE_CASE)  # type: ignore[arg-type]
    out = solve(p)
    assert held_zones(out) == [0]
    assert objective(p, out.schedule) == pytest.approx(4 * 300 / 1000)


def test_hard_threshold_excludes_slots_and_forces_interruptions():
    # Without a threshold the overhead case runs (3, 4); at 250 g/kWh slot 4 (300) is
    # out, no two adjacent slots remain, and three separate starts deliver 6 - 3 = 3.
    p = problem([500, 100, 400, 50, 300, 250], [spec(work=3.0, overhead_h=0.5)],
                threshold=250.0)
    out = solve(p)
    assert held_slots(out) == [1, 3, 5]
    assert out.schedule.starts(0) == 3
    assert (p.intensity[0, held_slots(out)] <= 250).all()
    assert emissions_kg(p, out.schedule, 0) == pytest.approx((100 + 50 + 250) * 2 / 1000)


@pytest.mark.parametrize(("penalty", "zone"), [(1.0, 1), (3.0, 0)])
def test_soft_threshold_changes_the_choice_only_with_a_high_penalty(penalty, zone):
    # Z1 costs (200 + penalty x 50) / 1000 per GPU-hour against Z0's 300 / 1000:
    # the choice flips when the penalty exceeds 2.
    p = problem(jobs=[spec(last=3, zones=(0, 1))], threshold=150.0, threshold_mode="soft",
                threshold_penalty=penalty, **PUE_CASE)  # type: ignore[arg-type]
    out = solve(p)
    assert held_zones(out) == [zone]
    # the penalty steers the plan but is not reported as emissions
    assert emissions_kg(p, out.schedule, 0) == pytest.approx(4 * (300 if zone == 0 else 200)
                                                             / 1000)


def test_shared_capacity_pushes_one_job_to_worse_slots():
    # One job's worth of GPUs per slot.  'a' may run in 0..3, 'b' in 3..5; both want
    # slot 3 (50).  a->1, b->3 costs 150; a->3, b->5 would cost 250.
    jobs = [spec(name="a", work=2.0, last=3), spec(name="b", work=2.0, first=3)]
    p = problem(SIX, jobs, capacity=[[2] * 6])
    out = solve(p)
    assert held_slots(out, 0) == [1]
    assert held_slots(out, 1) == [3]
    assert objective(p, out.schedule) == pytest.approx((100 + 50) * 2 / 1000)
    assert out.schedule.gpus.sum(axis=0).max() <= 2


def test_elastic_job_shrinks_into_clean_slots():
    # 4 GPU-h; only 2 GPUs are free in the clean slots 0 and 1.
    p = problem([100, 100, 500, 500, 500, 500], [spec(gpus=4, gpus_min=2)],
                capacity=[[2, 2, 4, 4, 4, 4]])
    out = solve(p)
    assert out.schedule.gpus[0, 0].tolist() == [2, 2, 0, 0, 0, 0]
    assert emissions_kg(p, out.schedule, 0) == pytest.approx(0.4)
    rigid = problem([100, 100, 500, 500, 500, 500], [spec(gpus=4)],
                    capacity=[[2, 2, 4, 4, 4, 4]])
    assert emissions_kg(rigid, solve(rigid).schedule, 0) == pytest.approx(2.0)


def test_elastic_job_runs_when_capacity_is_below_its_full_size():
    # Never 8 GPUs free, but 4 are: the elastic job is feasible at 4 GPUs.
    p = problem(SIX, [spec(gpus=8, gpus_min=4, work=8.0)], capacity=[[4] * 6])
    out = solve(p)
    assert out.schedule.gpus[0, 0].tolist() == [0, 4, 0, 4, 0, 0]


def test_split_job_may_hold_two_zones_in_one_slot():
    # 4 GPU-h in a 2-slot window: both zones in slot 0 (1 + 2) beat slot 0 + slot 1.
    p = problem([[1, 100], [2, 100]], [spec(last=1, zones=(0, 1), allow_split=True)])
    assert not exact_applies(p)  # the per-slot cleanest zone would pay 1 + 100
    out = solve(p)
    assert out.schedule.gpus[0].tolist() == [[2, 0], [2, 0]]
    assert objective(p, out.schedule) == pytest.approx((1 + 2) * 2 / 1000)


NINE = [100, 900, 100, 950, 200, 200, 900, 150, 150]


def test_unlimited_interruptions_take_the_cheapest_slots():
    out = solve(problem(NINE, [spec(work=8.0, last=8)]))
    assert held_slots(out) == [0, 2, 7, 8]


def test_max_interruptions_zero_forces_one_window():
    p = problem(NINE, [spec(work=8.0, last=8, max_starts=1)])
    out = solve(p)
    assert held_slots(out) == [5, 6, 7, 8]
    assert out.schedule.starts(0) == 1


def test_min_run_keeps_runs_long():
    p = problem(NINE, [spec(work=8.0, last=8, min_run_slots=2)])
    out = solve(p)
    assert held_slots(out) == [4, 5, 7, 8]
    assert out.schedule.starts(0) == 2


def test_partial_last_slot_is_trimmed_in_the_dearest_slot():
    p = problem(SIX, [spec(work=5.0)])
    out = solve(p)
    assert held_slots(out) == [1, 3, 5]
    assert out.schedule.run[0, 0].tolist() == [0, 2, 0, 2, 0, 1]
    assert emissions_kg(p, out.schedule, 0) == pytest.approx((200 + 100 + 200) / 1000)


def test_window_is_respected():
    p = problem(SIX, [spec(first=2, last=4)])
    assert held_slots(solve(p)) == [3, 4]


def test_plan_minimises_the_emissions_it_reports():
    # one run of 2.1 GPU-h: (0, 1, 2) holds 102 g/kWh-slots but runs only a tenth of
    # slot 2, 12 g in all; (3, 4, 5) would run 50 + 50 + 0.1 x 1 = 100.1 g
    p = problem([1, 1, 100, 50, 50, 1], [spec(gpus=1, gpus_min=1, work=2.1, max_starts=1)])
    for solver in ("highs", "cbc"):
        out = solve(p, solver=solver)
        assert held_slots(out) == [0, 1, 2]
        assert emissions_kg(p, out.schedule, 0) == pytest.approx((1 + 1 + 0.1 * 100) / 1000)
        assert out.solution.objective == pytest.approx(emissions_kg(p, out.schedule, 0))
    found = best_plan(p, p.jobs[0], job_slot_cost(p, p.jobs[0]))
    assert found is not None
    assert found[0] == pytest.approx(0.012)
    assert np.flatnonzero(found[1] >= 0).tolist() == [0, 1, 2]


# --- through the request and the plan document ---------------------------------------


def test_release_and_deadline_become_the_slot_window():
    # release 01:30 rounds up to slot 2, deadline 05:30 down to the end of slot 4
    req = request([job(release=T0 + pd.Timedelta("90min"),
                       deadline=T0 + pd.Timedelta("330min"))])
    p = build_problem(req, data({"DE": SIX}))
    assert (p.jobs[0].first, p.jobs[0].last) == (2, 4)
    plan, _ = plan_of(req, data({"DE": SIX}))
    segs = plan.to_dict()["jobs"][0]["segments"]
    assert [(s["start"], s["end"]) for s in segs] == [
        ("2023-06-01T03:00:00Z", "2023-06-01T05:00:00Z")
    ]


def test_plan_segment_end_is_trimmed_inside_the_last_slot():
    plan, _ = plan_of(request([job(gpu_hours=5.0)]), data({"DE": SIX}))
    segs = plan.to_dict()["jobs"][0]["segments"]
    assert [(s["start"], s["end"], s["gpus"]) for s in segs] == [
        ("2023-06-01T01:00:00Z", "2023-06-01T02:00:00Z", 2),
        ("2023-06-01T03:00:00Z", "2023-06-01T04:00:00Z", 2),
        ("2023-06-01T05:00:00Z", "2023-06-01T05:30:00Z", 2),
    ]
    assert [s["energy_kwh"] for s in segs] == [2.0, 2.0, 1.0]
    assert plan.to_dict()["jobs"][0]["summary"]["finish"] == "2023-06-01T05:30:00Z"
    assert plan.to_dict()["jobs"][0]["summary"]["emissions_kg"] == pytest.approx(0.5)


def test_equal_slots_trim_the_end_of_the_run():
    # Flat intensity: the excess comes off the run's last slot, not its first.
    # 5 GPU-h + 0.5 GPU-h overhead in 3 slots of 2 GPUs: the last slot runs 1.5 GPU-h.
    req = request([job(gpu_hours=5.0, checkpoint_overhead=pd.Timedelta("15min"),
                       deadline=T0 + pd.Timedelta("3h"))])
    plan, _ = plan_of(req, data({"DE": [100, 100, 100]}))
    (seg,) = plan.to_dict()["jobs"][0]["segments"]
    assert (seg["start"], seg["end"]) == ("2023-06-01T00:00:00Z", "2023-06-01T02:45:00Z")
    assert seg["energy_kwh"] == pytest.approx(5.5)


def test_segment_ends_when_the_work_is_done_not_when_the_gpus_are_released():
    # min_run = 3 h holds all three slots for 2 GPU-h of work; trimming empties the two
    # dearer ones, so the job is done at 01:00 although its GPUs stay reserved to 03:00.
    req = request([job(gpu_hours=2.0, min_run=pd.Timedelta("3h"),
                       deadline=T0 + pd.Timedelta("3h"))])
    plan, _ = plan_of(req, data({"DE": [10, 100, 20]}))
    (seg,) = plan.to_dict()["jobs"][0]["segments"]
    assert (seg["start"], seg["end"]) == ("2023-06-01T00:00:00Z", "2023-06-01T01:00:00Z")
    assert plan.to_dict()["jobs"][0]["summary"]["finish"] == "2023-06-01T01:00:00Z"
    assert plan.to_dict()["jobs"][0]["summary"]["emissions_kg"] == pytest.approx(2 * 10 / 1000)


def test_quarter_hour_slots():
    values = np.repeat(SIX, 4).astype(float)
    values[14:16] = 60  # 03:00-03:30 the cleanest half hour
    values = values.tolist()
    req = request([job(gpus=4, gpu_hours=2.0)], slot="15min")
    p = build_problem(req, data({"DE": values}, freq="15min"))
    assert p.slot_h == 0.25 and p.n_slots == 24
    plan, _ = plan_of(req, data({"DE": values}, freq="15min"))
    (seg,) = plan.to_dict()["jobs"][0]["segments"]
    assert (seg["start"], seg["end"]) == ("2023-06-01T03:00:00Z", "2023-06-01T03:30:00Z")
    assert plan.to_dict()["jobs"][0]["summary"]["emissions_kg"] == pytest.approx(2.0 * 50 / 1000)


def _two_zone_plan(checkpoint_gb: float = 10.0) -> Plan:
    zones = [Zone("DE", capacity_gpus=8, pue=1.0), Zone("FR", capacity_gpus=8, pue=1.0)]
    req = request([job(zones=("DE", "FR"), checkpoint_gb=checkpoint_gb)], zones)
    judged = data({"DE": SIX, "FR": [600, 600, 600, 600, 20, 600]})
    plan, _ = plan_of(req, judged)
    return plan


def test_plan_json_contract(tmp_path):
    plan = _two_zone_plan()
    doc = plan.to_dict()
    assert doc["schema_version"] == SCHEMA_VERSION
    assert set(doc["intensity"]) >= {"source", "signal", "mode", "model"}
    assert doc["intensity"] == {"source": "synthetic", "signal": "direct", "mode": "oracle",
                                "model": None}
    assert set(doc["solver"]) >= {"name", "status", "objective", "bound", "gap", "seconds"}
    assert doc["solver"]["name"] == "highs" and doc["solver"]["status"] == "optimal"
    assert doc["solver"]["gap"] == pytest.approx(0.0, abs=1e-6)
    (j,) = doc["jobs"]
    assert set(j) >= {"name", "segments", "summary", "baselines", "savings_pct"}
    assert set(j["summary"]) >= {"emissions_kg", "energy_kwh", "finish", "interruptions",
                                 "migrations"}
    assert set(j["baselines"]["run_now_home"]) >= {"emissions_kg", "finish"}
    assert set(j["baselines"]["run_now_best_zone"]) >= {"zone", "emissions_kg", "finish"}
    for seg in j["segments"]:
        assert set(seg) == {"zone", "start", "end", "gpus", "energy_kwh", "emissions_kg",
                            "gpu_hours", "save_hours"}
        assert ISO_Z.match(seg["start"]) and ISO_Z.match(seg["end"])
        assert seg["end"] > seg["start"]
    for stamp in (doc["start"], j["summary"]["finish"], j["baselines"]["run_now_home"]["finish"],
                  j["baselines"]["run_now_best_zone"]["finish"]):
        assert ISO_Z.match(stamp)
    # 2 GPUs at 03:00 in DE (50), then FR at 04:00 (20): one migration, one interruption
    assert [(s["zone"], s["start"]) for s in j["segments"]] == [
        ("DE", "2023-06-01T03:00:00Z"), ("FR", "2023-06-01T04:00:00Z")]
    assert j["summary"]["migrations"] == 1
    assert j["summary"]["interruptions"] == 1
    transfer = j["summary"]["transfer_emissions_kg"]
    assert transfer == pytest.approx(10 * 0.06 * 20 / 1000, abs=1e-3)
    segs = sum(s["emissions_kg"] for s in j["segments"])
    assert j["summary"]["emissions_kg"] == pytest.approx(segs + transfer, abs=1e-6)
    assert j["summary"]["energy_kwh"] == pytest.approx(sum(s["energy_kwh"] for s in j["segments"]))
    assert j["summary"]["emissions_kg"] == pytest.approx((2 * 50 + 2 * 20) / 1000 + 0.012)
    # run now at home: 4 GPU-h from 00:00 -> 2 x 500 + 2 x 100 g
    home = j["baselines"]["run_now_home"]
    assert home["emissions_kg"] == pytest.approx(1.2)
    assert home["finish"] == "2023-06-01T02:00:00Z"
    assert j["baselines"]["run_now_best_zone"]["zone"] == "DE"
    assert j["savings_pct"] == pytest.approx(100 * (1.2 - 0.152) / 1.2, abs=0.01)
    # round trip through a file
    path = tmp_path / "plan.json"
    plan.to_json(path)
    assert Plan.from_json(path).to_dict() == json.loads(json.dumps(doc))
    csv = tmp_path / "plan.csv"
    plan.to_csv(csv)
    assert len(pd.read_csv(csv)) == len(j["segments"])


def test_baseline_that_cannot_finish_is_null_not_nan(tmp_path):
    # Split over two zones the job does 8 GPU-h in 2 h; run now in one zone it cannot.
    zones = [Zone("DE", capacity_gpus=2, pue=1.0), Zone("FR", capacity_gpus=2, pue=1.0)]
    req = request([job(gpu_hours=8.0, zones=("DE", "FR"), allow_split=True,
                       deadline=T0 + pd.Timedelta("2h"))], zones)
    plan, _ = plan_of(req, data({"DE": [100, 200], "FR": [50, 60]}))
    (j,) = plan.to_dict()["jobs"]
    assert j["summary"]["emissions_kg"] == pytest.approx((200 + 400 + 100 + 120) / 1000)
    assert j["baselines"]["run_now_home"]["emissions_kg"] is None
    assert j["baselines"]["run_now_best_zone"]["emissions_kg"] is None
    assert j["savings_pct"] is None
    json.dumps(plan.to_dict(), allow_nan=False)  # strict JSON
    plan.to_json(tmp_path / "plan.json")
    assert Plan.from_json(tmp_path / "plan.json").to_dict() == plan.to_dict()


def test_plan_rejects_unknown_schema_version(tmp_path):
    doc = _two_zone_plan().to_dict()
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**doc, "schema_version": "9.9"}), encoding="utf-8")
    with pytest.raises(GreenEpochError, match=r"schema_version '9\.9' is not supported.*"
                                              r"reads '1\.0'.*re-create the plan"):
        Plan.from_json(path)
    path.write_text(json.dumps({k: v for k, v in doc.items() if k != "schema_version"}),
                    encoding="utf-8")
    with pytest.raises(GreenEpochError, match="schema_version None is not supported"):
        Plan.from_json(path)


def test_plan_rejects_unreadable_json(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(GreenEpochError, match="cannot read plan JSON"):
        Plan.from_json(path)


def test_trim_releases_restarts_that_do_no_work():
    # A time-limited incumbent may end in a restart that runs only its overhead
    # (1 GPU-h): trimming releases it, so the plan has one run and costs less.
    p = problem([100, 100, 100, 500, 900, 500], [spec(overhead_h=0.5)])
    plan = Schedule.empty(p)
    plan.gpus[0, 0, [0, 1, 2, 4]] = 2
    plan.run[0, 0, [0, 1, 2]] = 2.0
    plan.run[0, 0, 4] = 1.0
    before = objective(p, plan)
    trim_excess(p, plan, 0)
    assert np.flatnonzero(plan.gpus[0].sum(axis=0)).tolist() == [0, 1, 2]
    assert plan.starts(0) == 1 and plan.work_done(p, 0) == pytest.approx(4.0)
    assert plan.run[0, 0, :3].tolist() == [2.0, 2.0, 1.0]
    assert objective(p, plan) == pytest.approx(before - 0.9 - 0.1)


def test_run_now_baseline_waits_where_the_zone_cannot_hold_the_job():
    from greenepoch.planner.plan import run_now

    # 2 GPUs, 4 GPU-h, 1 GPU-h per start; the zone holds no GPUs in slot 1
    p = problem([100, 900, 200, 300, 400, 500], [spec(overhead_h=0.5)],
                capacity=[[8, 0, 8, 8, 8, 8]])
    kg, finish = run_now(p, p.jobs[0], 0, p.intensity)
    # 4 + 1 GPU-h from slot 0; the resumption after slot 1 pays 1 GPU-h again: 2 GPU-h
    # in each of slots 0, 2 and 3, nothing in slot 1
    assert kg == pytest.approx((2 * 100 + 2 * 200 + 2 * 300) / 1000)
    assert finish == p.slots[3] + pd.Timedelta("1h")
    never = problem([100] * 6, [spec()], capacity=[[0] * 6])
    assert np.isnan(run_now(never, never.jobs[0], 0, never.intensity)[0])
