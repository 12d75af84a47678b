"""Plans the planner produced from valid requests always export, and the export agrees
with the plan (issue 15): random small requests (rigid and elastic jobs, zones with
GPUs per node, checkpoint saves, migration caps, resizes as restarts or in place) are
planned on the embedded default, read back from their JSON, and exported to Slurm and
Kubernetes with a clusters config whose nodes match the request's ``gpus_per_node``."""

from __future__ import annotations

import math

import pandas as pd
from export_fixtures import now_floor
from greenepoch.data.intensity.source import ClimatologySource
from greenepoch.planner.exports.config import parse_config
from greenepoch.planner.exports.k8s import manifests, pod_layout
from greenepoch.planner.exports.slurm import plan_slurm
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import plan
from greenepoch.planner.plan_doc import Plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

H = pd.Timedelta("1h")
PER_NODE = {"DE": 4, "GB": 8}


def _config() -> dict:
    zones = {z: {"slurm": {"partition": "gpu", "gpus_per_node": n, "launcher": "torchrun"},
                 "kubernetes": {"gpus_per_node": n, "checkpoint_claim": f"ckpt-{z.lower()}"}}
             for z, n in PER_NODE.items()}
    return {"defaults": {"command": ["torchrun", "train.py"], "image": "train:1",
                         "checkpoint_dir": "/ckpt/{job}"},
            "zones": zones}


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    start = now_floor() + 2 * H
    jobs = []
    for i in range(draw(st.integers(1, 2))):
        elastic = draw(st.booleans())
        nodes = draw(st.integers(1, 3))
        gpus = 8 * nodes  # a multiple of both zones' node sizes
        run_h = draw(st.integers(2, 8))
        zones = draw(st.sampled_from([("DE",), ("GB",), ("DE", "GB"), ("GB", "DE")]))
        jobs.append(Job(
            name=f"job{i}", gpus=gpus, gpus_min=8 if elastic else 0,
            gpu_hours=float(gpus * run_h), release=start,
            deadline=start + (run_h + draw(st.integers(2, 24))) * H,
            zones=zones, home_zone=zones[0],
            checkpoint_overhead=pd.Timedelta(minutes=draw(st.sampled_from([0, 10]))),
            checkpoint_save=pd.Timedelta(minutes=draw(st.sampled_from([0, 6, 20]))),
            checkpoint_gb=draw(st.sampled_from([0.0, 50.0])),
            max_migrations=draw(st.sampled_from([None, 0, 1])) if len(zones) > 1 else None,
            resize_overhead=draw(st.sampled_from([None, pd.Timedelta("5min")])),
            max_interruptions=draw(st.sampled_from([None, 3]))))
    zones = tuple(Zone(z, capacity_gpus=64, gpus_per_node=n) for z, n in PER_NODE.items())
    return PlanRequest(start=start, jobs=tuple(jobs), zones=zones,
                       policy=Policy(time_limit=pd.Timedelta("10s")))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_plan_of_a_valid_request_exports_and_agrees(request: PlanRequest) -> None:
    made = plan(request, data=ClimatologySource(seed=1), oracle=True)
    back = Plan.from_json(made.to_json())
    config = parse_config(_config())
    by_job = {job.name: job for job in request.jobs}
    items = plan_slurm(back, config)
    objects = manifests(back, config)
    assert objects
    for item in items:
        seg, job = item.segment, by_job[item.segment.job]
        step = request.gpus_step(job) if job.gpus_min else 1
        assert seg.gpus % step == 0 and seg.gpus <= job.gpus
        assert item.nodes == math.ceil(seg.gpus / PER_NODE[seg.zone])
        planned = back.jobs[seg.job_index].segments[seg.index]
        save_s = round(job.checkpoint_save / pd.Timedelta("1s"))
        if planned.save_hours:  # a segment that ends in a save: signalled that long before
            assert round(planned.save_hours * 3600) == save_s
            assert item.signal_lead_s == min(save_s, item.time_minutes * 60)
            assert item.tail_s == 0
        if seg.index == seg.count - 1:  # no save planned: the signal comes at the end
            assert not planned.save_hours
            room = (job.deadline - seg.end) / pd.Timedelta("1s")
            assert item.tail_s == min(item.signal_lead_s, room)
            limit = seg.start + pd.Timedelta(minutes=item.time_minutes)
            assert limit >= seg.end + pd.Timedelta(seconds=item.tail_s)
        pods, per_pod = pod_layout(seg.gpus, PER_NODE[seg.zone])
        assert pods * per_pod == seg.gpus and per_pod <= PER_NODE[seg.zone]
