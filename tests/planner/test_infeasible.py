"""Infeasible requests raise InfeasibleError with a message that names the job, the
bound that fails and the change that would fix it (numbers worked out by hand)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError, InfeasibleError
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.planner.model import Job, PlanRequest, Policy, Zone
from greenepoch.planner.pipeline import build_problem
from greenepoch.solvers.solve import solve_problem

T0 = pd.Timestamp("2023-06-01T00:00:00Z")
SIX = [500, 100, 400, 50, 300, 200]


def hours(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=n)


def data(values: Mapping[str, Sequence[float]]) -> IntensityData:
    n = len(next(iter(values.values())))
    index = pd.date_range(T0, periods=n, freq="1h", name="time")
    frame = pd.DataFrame(values, index=index, dtype=float)
    flags = pd.DataFrame(False, index=index, columns=frame.columns)
    return IntensityData(frame, flags, flags.copy(), "synthetic", "direct")


def job(name: str = "train", **kw: object) -> Job:
    fields: dict[str, object] = dict(
        name=name, gpus=2, gpu_hours=4.0, release=T0, deadline=hours(6), zones=("DE",),
        home_zone="DE", gpu_power_kw=1.0,
    )
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def infeasible(jobs: list[Job], values: Mapping[str, Sequence[float]] | None = None,
               zones: list[Zone] | None = None, **policy: object) -> str:
    """Plan the request and return the InfeasibleError's message."""
    zones = zones or [Zone("DE", capacity_gpus=8, pue=1.0)]
    req = PlanRequest(start=T0, jobs=tuple(jobs), zones=tuple(zones),
                      policy=Policy(**policy))  # type: ignore[arg-type]
    n = int((req.end - T0) / pd.Timedelta("1h"))
    values = values or {z.id: (SIX * 4)[:n] for z in zones}
    with pytest.raises(InfeasibleError) as err:
        solve_problem(build_problem(req, data(values)), req.policy.solve_settings)
    assert isinstance(err.value, GreenEpochError)
    message = str(err.value)
    assert message.startswith("infeasible: ")
    assert "\n" not in message
    return message


# --- deadline ------------------------------------------------------------------------


def test_deadline_before_the_fastest_completion():
    # 20 GPU-h at 2 GPUs = 10 h from 00:00, but the deadline is 06:00.
    message = infeasible([job(gpu_hours=20.0)])
    assert "job 'train' needs 10 slots of 1 h at 2 GPUs" in message
    assert "deadline 2023-06-01T06:00:00+00:00" in message
    assert "only 6 of the window's 6 slots are usable" in message
    assert "the window between release and deadline is too short" in message
    assert "latest deadline needed: 2023-06-01T10:00:00+00:00" in message


def test_deadline_needed_counts_the_restart_overhead():
    # 20 GPU-h + 15 min x 2 GPUs = 20.5 GPU-h -> 11 slots -> 11:00.
    message = infeasible([job(gpu_hours=20.0, checkpoint_overhead=pd.Timedelta("15min"))])
    assert "latest deadline needed: 2023-06-01T11:00:00+00:00" in message


def test_deadline_needed_skips_slots_without_capacity():
    # 8 GPU-h = 4 slots by 04:00, but DE has no GPUs from 01:00 to 03:00 (slots 1, 2);
    # a second job stretches the horizon to 12:00, so the usable slots after the
    # deadline are known: 0, 3, 4, 5 -> finished by 06:00.
    zones = [Zone("DE", capacity_gpus=8, pue=1.0,
                  capacity_schedule=((hours(1), 0), (hours(3), 8)))]
    message = infeasible([job(gpu_hours=8.0, deadline=hours(4)),
                          job("later", deadline=hours(12))], zones=zones)
    assert "job 'train'" in message and "'later'" not in message
    assert "capacity: fewer than 2 GPUs are free in 2 slots of every allowed zone" in message
    assert "latest deadline needed: 2023-06-01T06:00:00+00:00" in message


def test_no_whole_slot_between_release_and_deadline():
    message_re = r"job 'short': no whole 1h slot between release .* move the deadline later"
    req = PlanRequest(start=T0, jobs=(job("short", release=hours(0.25), deadline=hours(1)),
                                      job(deadline=hours(6))),
                      zones=(Zone("DE", capacity_gpus=8, pue=1.0),))
    with pytest.raises(InfeasibleError, match=message_re):
        build_problem(req, data({"DE": SIX}))


# --- carbon threshold ----------------------------------------------------------------


def test_hard_threshold_excluding_too_many_slots():
    # 6 GPU-h at 2 GPUs = 3 slots; under 150 g/kWh only slots 1 (100) and 3 (50) are
    # left.  The third cleanest slot is 212.34 -> threshold needed 212.4 (rounded up).
    values = {"DE": [500, 100, 400, 50, 300, 212.34]}
    message = infeasible([job(gpu_hours=6.0)], values, threshold=150.0)
    assert "job 'train' needs 3 slots" in message
    assert "only 2 of the window's 6 slots are usable" in message
    assert "the carbon threshold 150 g/kWh excludes 4 slots" in message
    assert "threshold needed: 212.4 g/kWh" in message
    assert "capacity" not in message


def test_threshold_needed_uses_the_cleanest_zone_of_each_slot():
    # Per slot the cleaner of DE and FR: [180, 100, 400, 50, 300, 200]; the third
    # cleanest is FR's 180 at 00:00.
    values = {"DE": SIX, "FR": [180, 600, 600, 600, 600, 600]}
    zones = [Zone("DE", capacity_gpus=8, pue=1.0), Zone("FR", capacity_gpus=8, pue=1.0)]
    message = infeasible([job(gpu_hours=6.0, zones=("DE", "FR"))], values, zones,
                         threshold=150.0)
    assert "threshold needed: 180 g/kWh" in message


def test_threshold_needed_ignores_slots_without_capacity():
    # Slot 1 (100) has no GPUs: the third usable slot under the threshold is 300.
    zones = [Zone("DE", capacity_gpus=8, pue=1.0,
                  capacity_schedule=((hours(1), 0), (hours(2), 8)))]
    message = infeasible([job(gpu_hours=6.0)], {"DE": SIX}, zones, threshold=150.0)
    assert "threshold needed: 300 g/kWh" in message


def test_hard_threshold_suggests_a_later_deadline_when_one_exists():
    # 'train' (3 slots by 06:00) sees under 150 only slots 1 and 3; the horizon runs to
    # 12:00 for 'later', and the next slot under 150 is 07:00 (100) -> deadline 08:00.
    message = infeasible([job(gpu_hours=6.0), job("later", deadline=hours(12))],
                         threshold=150.0)
    assert "threshold needed: 200 g/kWh" in message
    assert "or keep the threshold and move the deadline to 2023-06-01T08:00:00+00:00" in message


def test_soft_threshold_never_makes_a_request_infeasible():
    req = PlanRequest(start=T0, jobs=(job(gpu_hours=6.0),),
                      zones=(Zone("DE", capacity_gpus=8, pue=1.0),),
                      policy=Policy(threshold=10.0, threshold_mode="soft"))
    out = solve_problem(build_problem(req, data({"DE": SIX})), req.policy.solve_settings)
    assert out.schedule.gpus.sum() == 6


# --- capacity --------------------------------------------------------------------------


def test_capacity_shared_too_thin_between_two_jobs():
    # 4 GPUs in DE; 'a' and 'b' each need 4 GPUs for 2 of the 3 slots: 4 > 3.
    jobs = [job("a", gpus=4, gpu_hours=8.0, deadline=hours(3)),
            job("b", gpus=4, gpu_hours=8.0, deadline=hours(3))]
    message = infeasible(jobs, zones=[Zone("DE", capacity_gpus=4, pue=1.0)])
    assert "capacity shared too thin" in message
    assert "jobs 'a', 'b' each fit alone but not together" in message
    assert "16 GPU-hours of work" in message and "12 GPU-hours of capacity" in message
    assert "between 2023-06-01T00:00:00+00:00 and 2023-06-01T03:00:00+00:00" in message
    assert "raise capacity_gpus" in message


def test_job_too_big_for_any_zone():
    message = infeasible([job(gpus=16, gpu_hours=16.0)])
    assert "job 'train' needs 1 slots of 1 h at 16 GPUs" in message
    assert "capacity: fewer than 16 GPUs are free in 6 slots of every allowed zone" in message


def test_elastic_job_too_big_even_at_its_smallest():
    message = infeasible([job(gpus=16, gpus_min=12, gpu_hours=16.0)])
    assert "job 'train'" in message and "room for 0 GPU-hours" in message
    assert "no allowed zone ever has 12 GPUs free" in message
    assert "move the deadline" not in message


def test_elastic_job_short_of_room_at_reduced_size():
    # 8 GPUs free of 16 wanted: 6 slots x 8 GPUs = 48 GPU-h < 60 GPU-h.
    message = infeasible([job(gpus=16, gpus_min=8, gpu_hours=60.0)])
    assert "room for 48 GPU-hours" in message


# --- interruptions and run length ----------------------------------------------------

GAPPY = [Zone("DE", capacity_gpus=2, pue=1.0,
              capacity_schedule=tuple((hours(t), 0 if t % 2 else 2) for t in range(6)))]


def test_max_interruptions_too_low():
    # GPUs only in slots 0, 2, 4: 2 slots of work need 2 runs, i.e. one interruption.
    message = infeasible([job(max_interruptions=0)], zones=GAPPY)
    assert "job 'train' has enough usable slots, but not in few enough runs" in message
    assert "max_interruptions = 0" in message
    assert "raise max_interruptions to at least 1" in message


def test_restart_overhead_eats_short_free_stretches():
    # 3 slots of 2 GPUs with a 30 min restart each: 3 runs deliver 6 - 3 = 3 < 4 GPU-h.
    message = infeasible([job(max_interruptions=5, checkpoint_overhead=pd.Timedelta("30min"))],
                         zones=GAPPY)
    assert "job 'train' has enough usable slots, but not in few enough runs" in message
    assert ("hold at most 3 of the 4 GPU-hours after a restart overhead (1 GPU-hours) each"
            in message)
    assert "shorter minimum run" not in message


def test_restart_overhead_counts_without_an_interruption_limit():
    # the same without max_interruptions: still infeasible, for the same reason (it
    # fell through to a message blaming every limit at once)
    message = infeasible([job(checkpoint_overhead=pd.Timedelta("30min"))], zones=GAPPY)
    assert "not in few enough runs: max_interruptions = unlimited" in message
    assert ("hold at most 3 of the 4 GPU-hours after a restart overhead (1 GPU-hours) each"
            in message)


def test_min_run_longer_than_any_free_stretch():
    message = infeasible([job(min_run=pd.Timedelta("2h"))], zones=GAPPY)
    assert "not in few enough runs" in message
    assert "min_run = 2 slot(s)" in message
    assert "free stretches of at least min_run hold at most 0 of the 4 GPU-hours" in message
    assert "use a shorter minimum run" in message


def test_the_job_with_too_few_interruptions_is_named_not_capacity():
    # 'a' in DE cannot fit in one run; 'b' in FR is fine; they share nothing.
    zones = [*GAPPY, Zone("FR", capacity_gpus=8, pue=1.0)]
    message = infeasible([job("a", max_interruptions=0), job("b", zones=("FR",),
                                                            home_zone="FR")], zones=zones)
    assert "job 'a' has enough usable slots, but not in few enough runs" in message
    assert "capacity shared too thin" not in message
    assert "'b'" not in message


def test_threshold_needed_counts_the_runs_it_leaves():
    # SIX = [500, 100, 400, 50, 300, 200], 3 slots of work, no interruption allowed.
    # Room alone: 3 slots under 200 (slots 1, 3, 5), but in three runs; one run of three
    # needs slots 3-5 (50, 300, 200): threshold 300.
    message = infeasible([job(gpu_hours=6.0, max_interruptions=0)], threshold=150.0)
    assert "threshold needed: 300 g/kWh" in message
    # ... and that threshold is enough
    req = PlanRequest(start=T0, jobs=(job(gpu_hours=6.0, max_interruptions=0),),
                      zones=(Zone("DE", capacity_gpus=8, pue=1.0),),
                      policy=Policy(threshold=300.0))
    outcome = solve_problem(build_problem(req, data({"DE": SIX})), req.policy.solve_settings)
    assert outcome.schedule.starts(0) == 1


def test_threshold_needed_pays_a_restart_per_scattered_slot():
    # SIX = [500, 100, 400, 50, 300, 200], 4 GPU-h at 2 GPUs, 1 GPU-h per start, no
    # interruption limit.  Under 200: slots 1, 3, 5 apart, 6 - 3 = 3 < 4; under 300:
    # slot 1 and run 3-5, the run alone gives 6 - 1 = 5: threshold 300.
    overhead = {"checkpoint_overhead": pd.Timedelta("30min")}
    message = infeasible([job(**overhead)], threshold=150.0)
    assert "threshold needed: 300 g/kWh" in message
    message = infeasible([job(**overhead)], threshold=200.0)
    assert "not in few enough runs: max_interruptions = unlimited" in message
    assert "threshold needed: 300 g/kWh" in message
    req = PlanRequest(start=T0, jobs=(job(**overhead),),
                      zones=(Zone("DE", capacity_gpus=8, pue=1.0),), policy=Policy(threshold=300.0))
    outcome = solve_problem(build_problem(req, data({"DE": SIX})), req.policy.solve_settings)
    assert outcome.schedule.starts(0) >= 1
