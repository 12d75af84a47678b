"""Issue 15 from the request to the plan JSON: checkpoint saves, deadline margins,
migration caps, GPU steps and resizes, as the planner plans and records them.

Hand-made intensities are gCO2eq/kWh on hourly slots from T0 (power 1 kW per GPU,
PUE 1); the first test plans on the embedded default data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from greenepoch.data.errors import InfeasibleError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import Intensities, build_problem, plan
from greenepoch.planner.plan import Plan, PlanError, assemble
from greenepoch.planner.request import load_request
from greenepoch.solvers.problem import SolveSettings
from greenepoch.solvers.solve import check_schedule, solve_problem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.planner.test_infeasible import data  # hourly frames from T0
from tests.planner.test_request import write  # the request text as a file

T0 = pd.Timestamp("2023-06-01T00:00:00Z")

#: 8 GPUs for 10 h of work, in a day whose zone has no GPUs from 06:00 to 18:00: the
#: job must pause, so its first run ends in a 30-minute checkpoint save
PAUSING = """
start = "2023-06-01T00:00:00Z"

[[jobs]]
name = "pausing"
gpus = 8
gpu_hours = 80
deadline = "2023-06-02T00:00:00Z"
zones = ["DE"]
checkpoint_overhead = "15min"
checkpoint_save = "30min"

[[zones]]
id = "DE"
capacity_gpus = 8
capacity_schedule = [{from = "2023-06-01T06:00:00Z", gpus = 0},
                     {from = "2023-06-01T18:00:00Z", gpus = 8}]
"""


def job(**kw: object) -> Job:
    fields: dict[str, object] = dict(
        name="train", gpus=2, gpu_hours=4.0, release=T0, deadline=T0 + pd.Timedelta("8h"),
        zones=("DE",), home_zone="DE")
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def plan_doc(jobs: list[Job], judged: IntensityData, zones: list[Zone] | None = None,
             **policy: object) -> dict:
    """The plan JSON (as written) of a request planned on ``judged``."""
    req = PlanRequest(start=T0, jobs=tuple(jobs),
                      zones=tuple(zones or [Zone("DE", capacity_gpus=8, pue=1.0)]),
                      policy=Policy(mip_gap=0.0, **policy))  # type: ignore[arg-type]
    problem = build_problem(req, judged)
    out = solve_problem(problem, SolveSettings(mip_gap=0.0))
    assert check_schedule(problem, out.schedule) == []
    made = assemble(req, problem, out, Intensities(judged, None, "oracle", None), 0.0)
    text = made.to_json()
    assert Plan.from_json(text).to_json() == text
    return json.loads(text)


def work_arithmetic(doc: dict) -> float:
    """GPU-hours the segments run less those the plan says are lost."""
    return sum(s["gpu_hours"] for s in doc["segments"]) - doc["summary"]["lost_gpu_hours"]


def test_a_pausing_job_saves_at_the_end_of_every_segment_but_the_last(tmp_path: Path):
    made = plan(load_request(write(tmp_path, PAUSING)), data=None, oracle=True)
    (doc,) = json.loads(made.to_json())["jobs"]
    segs = doc["segments"]
    assert len(segs) >= 2  # 6 h before the gap cannot hold 10 h of work
    assert [s["save_hours"] for s in segs] == [0.5] * (len(segs) - 1) + [0.0]
    assert doc["checkpoint_save_hours"] == 0.5
    summary = doc["summary"]
    assert summary["interruptions"] == len(segs) - 1
    lost = 8 * (0.25 * len(segs) + 0.5 * (len(segs) - 1))  # at 8 GPUs
    assert summary["lost_gpu_hours"] == pytest.approx(lost)
    assert summary["overhead_hours"] == pytest.approx(lost / 8)
    assert work_arithmetic(doc) == pytest.approx(80.0, abs=1e-3)
    assert summary["energy_kwh"] == pytest.approx(
        sum(s["gpu_hours"] for s in segs) * 1.0 * 1.2, abs=1e-2)  # default PUE
    # the save is in the segment: it ends when its work and its save are done
    first = segs[0]
    hours = (pd.Timestamp(first["end"]) - pd.Timestamp(first["start"])) / pd.Timedelta("1h")
    assert first["gpu_hours"] == pytest.approx(8 * hours)


def test_run_now_pays_a_save_before_each_wait():
    from greenepoch.planner.plan import run_now_runs

    req = PlanRequest(T0, (job(gpus=4, gpu_hours=16.0, checkpoint_save=pd.Timedelta("30min"),
                               deadline=T0 + pd.Timedelta("10h")),),
                      (Zone("DE", 4, 1.0, ((T0 + pd.Timedelta("2h"), 0),
                                           (T0 + pd.Timedelta("4h"), 4))),))
    problem = build_problem(req, data({"DE": [100.0] * 10}))
    runs, finish, done = run_now_runs(problem, problem.jobs[0], 0)
    # 2 h run, a wait, then 2 h of work again plus the save lost before the wait
    assert done and runs.sum() == pytest.approx(16.0 + 4 * 0.5)
    assert finish == T0 + pd.Timedelta("6.5h")


def test_the_plan_ends_by_deadline_less_its_margin():
    cleanest_last = data({"DE": [500.0] * 6 + [10.0] * 2})
    free = plan_doc([job()], cleanest_last)["jobs"][0]
    assert free["summary"]["finish"] == "2023-06-01T08:00:00Z"  # the margin matters
    for jobs, policy in (([job(deadline_margin=pd.Timedelta("2h"))], {}),
                         ([job()], {"deadline_margin": pd.Timedelta("2h")})):
        doc = plan_doc(jobs, cleanest_last, **policy)["jobs"][0]
        assert pd.Timestamp(doc["summary"]["finish"]) <= T0 + pd.Timedelta("6h")
        assert all(pd.Timestamp(s["end"]) <= T0 + pd.Timedelta("6h") for s in doc["segments"])
        assert doc["deadline"] == "2023-06-01T08:00:00Z"  # the real deadline is kept
        assert doc["deadline_margin_hours"] == 2.0


def test_a_margin_the_slots_cannot_meet_is_infeasible_naming_it():
    req = PlanRequest(T0, (job(deadline=T0 + pd.Timedelta("90min"),
                               deadline_margin=pd.Timedelta("1h")),),
                      (Zone("DE", 8, 1.0),))
    with pytest.raises(InfeasibleError, match="less its deadline_margin"):
        build_problem(req, data({"DE": [100.0] * 2}))


def test_max_migrations_zero_keeps_a_two_zone_job_home():
    judged = data({"DE": [500.0] * 8, "NO": [20.0] * 8})
    zones = [Zone("DE", 8, 1.0), Zone("NO", 8, 1.0)]
    two = dict(zones=("DE", "NO"), home_zone="DE")
    moved = plan_doc([job(**two)], judged, zones)["jobs"][0]
    assert {s["zone"] for s in moved["segments"]} == {"NO"}  # uncapped: it moves
    assert moved["max_migrations"] is None
    home = plan_doc([job(**two, max_migrations=0)], judged, zones)["jobs"][0]
    assert {s["zone"] for s in home["segments"]} == {"DE"}
    assert home["summary"]["migrations"] == 0 and home["max_migrations"] == 0


def test_a_size_change_is_a_restart_unless_the_job_resizes_in_place():
    # 8 GPUs for two clean hours, then only 4: the elastic job (4 or 8) runs 8 then 4
    zones = [Zone("DE", 8, 1.0, ((T0 + pd.Timedelta("2h"), 4),))]
    judged = data({"DE": [10.0] * 4 + [900.0] * 4})
    elastic = dict(gpus=8, gpus_min=4, gpus_step=4, gpu_hours=20.0,
                   checkpoint_overhead=pd.Timedelta("6min"),
                   checkpoint_save=pd.Timedelta("12min"))
    restart = plan_doc([job(**elastic)], judged, zones)["jobs"][0]
    assert [s["gpus"] for s in restart["segments"]] == [8, 4]
    assert restart["resize_overhead_hours"] is None
    assert restart["summary"]["interruptions"] == 1  # the size change restarts the job
    assert [s["save_hours"] for s in restart["segments"]] == [0.2, 0.0]
    assert restart["summary"]["lost_gpu_hours"] == pytest.approx(8 * (2 * 0.1 + 0.2))
    assert work_arithmetic(restart) == pytest.approx(20.0, abs=1e-3)
    in_place = plan_doc([job(**elastic, resize_overhead=pd.Timedelta("3min"))], judged,
                        zones)["jobs"][0]
    assert [s["gpus"] for s in in_place["segments"]] == [8, 4]
    assert in_place["summary"]["interruptions"] == 0
    assert [s["save_hours"] for s in in_place["segments"]] == [0.0, 0.0]
    # one start, one resize at the larger size (8 GPUs)
    assert in_place["summary"]["lost_gpu_hours"] == pytest.approx(8 * 0.1 + 8 * 0.05)
    assert in_place["resize_overhead_hours"] == 0.05
    assert work_arithmetic(in_place) == pytest.approx(20.0, abs=1e-3)


@st.composite
def stepped_requests(draw: st.DrawFn) -> tuple[PlanRequest, IntensityData, int]:
    """A small elastic job over one or two zones, some with GPUs per node."""
    ids = ["DE", "NO"][: draw(st.integers(1, 2))]
    nodes = [draw(st.sampled_from([None, 1, 2, 4])) for _ in ids]
    own = draw(st.sampled_from([None, None, 2, 3]))
    given_nodes = [n for n in nodes if n is not None]
    step = own or (math.lcm(*given_nodes) if given_nodes else 1)
    top = draw(st.integers(2, 4))
    low = draw(st.integers(1, top - 1))
    n_slots = draw(st.integers(4, 10))
    zones = [Zone(z, capacity_gpus=draw(st.sampled_from([3, 4, 6, 8, 12, 16])), pue=1.0,
                  gpus_per_node=n,
                  capacity_schedule=((T0 + pd.Timedelta(hours=draw(st.integers(1, n_slots))),
                                      draw(st.sampled_from([0, 2, 5, 8]))),))
             for z, n in zip(ids, nodes, strict=True)]
    gpus = step * top
    work = round(draw(st.floats(0.1, 0.5)) * gpus * n_slots, 2) or 1.0
    elastic = job(gpus=gpus, gpus_min=step * low, gpu_hours=work, zones=tuple(ids),
                  deadline=T0 + pd.Timedelta(hours=n_slots), gpus_step=own,
                  checkpoint_overhead=pd.Timedelta(draw(st.sampled_from(["0min", "6min"]))),
                  checkpoint_save=pd.Timedelta(draw(st.sampled_from(["0min", "6min"]))),
                  resize_overhead=draw(st.sampled_from([None, pd.Timedelta("3min")])))
    req = PlanRequest(T0, (elastic,), tuple(zones), Policy(mip_gap=0.0))
    values = {z: draw(st.lists(st.integers(0, 900), min_size=n_slots, max_size=n_slots))
              for z in ids}
    return req, data(values), step


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(stepped_requests())
def test_every_segment_size_is_a_multiple_of_the_step(case):
    req, judged, step = case
    assert req.gpus_step(req.jobs[0]) == step
    problem = build_problem(req, judged)
    try:
        out = solve_problem(problem, SolveSettings(mip_gap=0.0))
    except InfeasibleError:
        return
    made = assemble(req, problem, out, Intensities(judged, None, "oracle", None), 0.0)
    (doc,) = made.to_dict()["jobs"]
    assert doc["gpus_step"] == step
    sizes = [s["gpus"] for s in doc["segments"]]
    assert sizes and all(size % step == 0 for size in sizes)
    assert all(req.jobs[0].gpus_min <= size <= req.jobs[0].gpus for size in sizes)
    assert (out.schedule.gpus[0] % step == 0).all()
    assert work_arithmetic(doc) == pytest.approx(req.jobs[0].gpu_hours,
                                                 abs=1e-3 * len(sizes))


def test_older_plans_read_with_the_defaults():
    old = Plan.from_dict({"schema_version": "1.0", "jobs": [{"name": "a", "segments": [
        {"zone": "DE", "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z",
         "gpus": 8}]}]})
    (job_,) = old.jobs
    assert (job_.save_h, job_.margin_h, job_.step) == (0.0, 0.0, 1)
    assert job_.max_migrations is None and job_.resize_overhead_hours is None
    assert job_.segments[0].save_hours is None
    assert "save_hours" not in old.to_json()  # nothing added on the way
    with pytest.raises(PlanError, match=r"jobs\[0\]\.gpus_step = 0"):
        Plan.from_dict({"schema_version": "1.0", "jobs": [{"name": "a", "segments": [],
                                                           "gpus_step": 0}]})
