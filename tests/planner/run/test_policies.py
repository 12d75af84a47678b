"""The ``threshold`` and ``plan`` policies of ``greenepoch run`` against hand-computed
traces (issue 17): hysteresis, minimum run and pause, the deadline guard (with and
without reported progress), unknown intensity, and a plan made by ``greenepoch plan``.

A trace feeds one intensity per 15-min step to a policy and carries its decisions
forward as a controller would: a changed decision starts a new state at that step, and
each running step does ``gpus x 0.25`` GPU-hours of work.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from greenepoch.data.errors import GreenEpochError, RequestError
from greenepoch.planner.cli.main import cli
from greenepoch.planner.plan_doc import Plan
from greenepoch.planner.run.model import Decision, Observation, RunJob, RunPolicy
from greenepoch.planner.run.policies import PlanPolicy, ThresholdPolicy, make_policy

ROOT = Path(__file__).resolve().parents[3]
T0 = pd.Timestamp("2023-06-01T00:00Z")
STEP = pd.Timedelta("15min")


def at(k: float) -> pd.Timestamp:
    return T0 + k * STEP


def observe(k: int, intensity: float | None, *, running: bool, since: int = 0,
            done: float = 0.0, progress: float | None = None) -> Observation:
    return Observation(now=at(k), interval=STEP, intensity=intensity, provenance="test actual",
                       stale=False, forecast=None, issued=None, running=running,
                       since=at(since), done_gpu_h=done, progress=progress)


def trace(policy: RunPolicy, intensities: list[float | None], *, running: bool,
          done: float = 0.0, progress: float | None = None) -> list[Decision]:
    """Decisions at steps 0, 1, ... (the state at step 0 began at step 0)."""
    since, out = 0, []
    for k, g in enumerate(intensities):
        d = policy.decide(observe(k, g, running=running, since=since, done=done,
                                  progress=progress))
        if d.run != running:
            running, since = d.run, k
        if running:
            done += policy.job.gpus * 0.25
        out.append(d)
    return out


def runs(decisions: list[Decision]) -> str:
    return "".join("R" if d.run else "P" for d in decisions)


# -- threshold: hysteresis ---------------------------------------------------------------
def test_hysteresis_pauses_above_380_and_resumes_at_or_below_300() -> None:
    policy = ThresholdPolicy(RunJob(), 380, 300, min_run="0min", min_pause="0min")
    got = trace(policy, [350, 390, 360, 310, 300, 290, 385, 370], running=True, done=1.0)
    assert runs(got) == "RPPPRRPP"
    assert [d.reason for d in got] == [
        "intensity 350 <= pause level 380",
        "intensity 390 > pause level 380",
        "intensity 360 > resume level 300",
        "intensity 310 > resume level 300",
        "intensity 300 <= resume level 300",
        "intensity 290 <= pause level 380",
        "intensity 385 > pause level 380",
        "intensity 370 > resume level 300",
    ]


def test_without_resume_level_the_pause_level_is_both() -> None:
    policy = ThresholdPolicy(RunJob(), 380, min_run="0min", min_pause="0min")
    got = trace(policy, [350, 390, 380.5, 360, 385], running=True, done=1.0)
    assert runs(got) == "RPPRP"
    assert got[2].reason == "intensity 380.5 > resume level 380"
    assert got[3].reason == "intensity 360 <= resume level 380"


# -- threshold: minimum run and pause ------------------------------------------------------
def test_min_run_1h_keeps_a_young_run_through_high_intensity() -> None:
    policy = ThresholdPolicy(RunJob(), 380, min_run="1h", min_pause="0min")
    got = trace(policy, [300, 400, 400, 400, 400, 400], running=False)
    assert runs(got) == "RRRRPP"  # started at step 0: 1 h old at step 4
    assert got[1].reason == ("intensity 400 > pause level 380, but the run is 15 min old "
                             "< min run 1 h")
    assert got[3].reason.endswith("the run is 45 min old < min run 1 h")
    assert got[4].reason == "intensity 400 > pause level 380"


def test_min_pause_30min_keeps_a_young_pause_through_low_intensity() -> None:
    policy = ThresholdPolicy(RunJob(), 380, 300, min_run="0min", min_pause="30min")
    got = trace(policy, [400, 250, 250, 250], running=True, done=1.0)
    assert runs(got) == "PPRR"  # paused at step 0: 30 min old at step 2
    assert got[1].reason == ("intensity 250 <= resume level 300, but the pause is 15 min old "
                             "< min pause 30 min")
    assert got[2].reason == "intensity 250 <= resume level 300"


def test_a_training_that_never_ran_starts_without_waiting_min_pause() -> None:
    policy = ThresholdPolicy(RunJob(), 380, 300, min_pause="2h")
    assert runs(trace(policy, [250], running=False)) == "R"
    # the same low intensity, after a pause of a training that did run: it waits
    assert not policy.decide(observe(1, 250, running=False, since=0, done=0.5)).run


# -- threshold: the deadline guard ---------------------------------------------------------
# 8 GPU-hours on 2 GPUs (4 h), deadline at 08:00 less a 1 h margin (07:00), 0.5 h restart:
# at step k, pausing one more interval is unaffordable when 4 + 0.5 > (7 - k/4) - 1/4,
# i.e. k > 9: the guard fires at step 10 (02:30), with 4.50 h left.
GUARDED = RunJob(gpus=2, gpu_hours=8.0, deadline=T0 + pd.Timedelta("8h"), restart_h=0.5,
                 margin=pd.Timedelta("1h"))


def test_deadline_guard_resumes_at_the_hand_computed_step() -> None:
    policy = ThresholdPolicy(GUARDED, 380, min_run="0min", min_pause="0min")
    got = trace(policy, [500.0] * 16, running=False)
    assert runs(got) == "P" * 10 + "R" * 6
    assert got[9].reason == "intensity 500 > resume level 380"
    assert got[10].reason == ("deadline guard: 4.00 h of work + 0.50 h restart > 4.50 h left "
                              "to 2023-06-01T07:00:00Z less one 15 min interval")
    # it keeps the run going: at step 11, 3.75 h of work are left and 4.25 h
    assert got[11].reason.startswith("deadline guard: 3.75 h of work + 0.50 h restart > "
                                     "4.25 h left")


def test_deadline_guard_overrides_min_pause() -> None:
    # paused with 2 of 8 GPU-hours done: 3 h of work; 3 + 0.5 > 6.75 - k/4 when k > 13
    policy = ThresholdPolicy(GUARDED, 380, 300, min_run="0min", min_pause="4h")
    got = trace(policy, [250.0] * 15, running=False, done=2.0)
    assert runs(got) == "P" * 14 + "R"
    assert got[13].reason.endswith("but the pause is 3 h 15 min old < min pause 4 h")
    assert got[14].reason.startswith("deadline guard: 3.00 h of work + 0.50 h restart > "
                                     "3.50 h left")


def test_deadline_guard_reads_the_reported_progress_before_the_work_counted() -> None:
    # progress 0.25 of 8 GPU-hours: 6 GPU-h = 3 h left (the 1 GPU-h counted would say
    # 3.5 h and fire at step 12): fires at step 14, as above
    policy = ThresholdPolicy(GUARDED, 380, min_run="0min", min_pause="0min")
    got = trace(policy, [500.0] * 15, running=False, done=1.0, progress=0.25)
    assert runs(got) == "P" * 14 + "R"
    assert got[14].reason.startswith("deadline guard: 3.00 h of work")


def test_deadline_guard_keeps_a_late_run_running_above_the_pause_level() -> None:
    policy = ThresholdPolicy(GUARDED, 380, min_run="0min")
    d = policy.decide(observe(20, 900, running=True, since=10, done=4.0))
    assert d.run and d.reason.startswith("deadline guard: 2.00 h of work")


def test_no_guard_without_deadline_or_without_knowing_the_work() -> None:
    for job in (RunJob(gpus=2, gpu_hours=8.0),
                RunJob(gpus=2, deadline=T0 + pd.Timedelta("2h"))):
        policy = ThresholdPolicy(job, 380, min_run="0min")
        assert not policy.decide(observe(4, 500, running=True, done=1.0)).run


def test_remaining_work_from_progress_or_configured_gpu_hours() -> None:
    with_total = ThresholdPolicy(RunJob(gpus=4, gpu_hours=8.0), 380)
    without = ThresholdPolicy(RunJob(gpus=4), 380)
    assert with_total.remaining_gpu_h(observe(0, 1, running=True, done=3.0)) == 5.0
    assert with_total.remaining_gpu_h(observe(0, 1, running=True, done=9.0)) == 0.0
    assert with_total.remaining_gpu_h(observe(0, 1, running=True, done=3.0,
                                              progress=0.25)) == 6.0
    assert with_total.remaining_h(observe(0, 1, running=True, done=3.0, progress=0.25)) == 1.5
    # no total: extrapolated from the work done, unknown before any progress
    assert without.remaining_gpu_h(observe(0, 1, running=True, done=2.0, progress=0.25)) == 6.0
    assert without.remaining_gpu_h(observe(0, 1, running=True, done=0.0, progress=0.0)) is None
    assert without.remaining_gpu_h(observe(0, 1, running=True, done=2.0)) is None


# -- threshold: unknown intensity -----------------------------------------------------------
def test_unknown_intensity_keeps_the_current_state() -> None:
    policy = ThresholdPolicy(RunJob(), 380, 300, min_run="0min", min_pause="0min")
    got = trace(policy, [None, 400, None, None, 250], running=True, done=1.0)
    assert runs(got) == "RPPPR"
    assert got[0].reason == "intensity unknown (test actual): keep running"
    assert got[2].reason == "intensity unknown (test actual): stay paused"


def test_unknown_intensity_still_meets_the_deadline() -> None:
    policy = ThresholdPolicy(GUARDED, 380)
    assert policy.decide(observe(10, None, running=False)).reason.startswith("deadline guard")


# -- threshold: bad options ------------------------------------------------------------------
@pytest.mark.parametrize(("options", "said"), [
    ({"pause_above": 300, "resume_below": 400}, "`resume_below` = 400 g/kWh is above "
                                                "`pause_above` = 300"),
    ({"pause_above": -1}, "`pause_above` = -1: must be 0 or more g/kWh"),
    ({"pause_above": "high"}, "`pause_above` = 'high': expected a number of g/kWh"),
    ({"pause_above": 380, "min_run": "soon"}, "`min_run`: cannot read 'soon' as a duration"),
    ({"pause_above": 380, "min_pause": pd.Timedelta("-1h")}, "`min_pause` = -1 days"),
])
def test_bad_threshold_options_are_one_clear_error(options: dict[str, object],
                                                    said: str) -> None:
    with pytest.raises(RequestError, match="^" + re.escape(said)):
        ThresholdPolicy(RunJob(), **options)  # type: ignore[arg-type]


# -- the model's invariants --------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "said"), [
    ({"gpus": 0}, "`gpus` = 0"), ({"gpus": True}, "`gpus` = True"),
    ({"power_kw": 0.0}, "`power_kw` = 0.0"), ({"gpu_hours": float("nan")}, "`gpu_hours` = nan"),
    ({"deadline": pd.Timestamp("2023-06-02")}, "`deadline` = Timestamp('2023-06-02 00:00:00')"),
    ({"restart_h": -0.1}, "`restart_h` = -0.1"),
    ({"margin": pd.Timedelta("-1h")}, "`margin` = "),
])
def test_run_job_invariants_name_the_parameter(fields: dict[str, object], said: str) -> None:
    with pytest.raises(RequestError, match="^" + re.escape(said)):
        RunJob(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "said"), [
    ({"now": pd.Timestamp("2023-06-01")}, "Observation.now"),
    ({"since": at(1)}, "Observation.since = 2023-06-01 00:15:00+00:00: is after now"),
    ({"interval": pd.Timedelta(0)}, "`interval` = "),
    ({"intensity": -5.0}, "Observation.intensity = -5.0"),
    ({"progress": 1.5}, "Observation.progress = 1.5"),
    ({"done_gpu_h": -1.0}, "Observation.done_gpu_h = -1.0"),
    ({"issued": at(1)}, "Observation.issued = 2023-06-01 00:15:00+00:00: is after now"),
    ({"forecast": pd.Series([1.0], index=pd.DatetimeIndex(["2023-06-01"]))},
     "Observation.forecast: must be indexed by UTC times"),
])
def test_observation_invariants_name_the_field(fields: dict[str, object], said: str) -> None:
    base = {"now": T0, "interval": STEP, "intensity": 300.0, "provenance": "", "stale": False,
            "forecast": None, "issued": None, "running": True, "since": T0, "done_gpu_h": 0.0,
            "progress": None}
    with pytest.raises(RequestError, match="^" + re.escape(said)):
        Observation(**{**base, **fields})  # type: ignore[arg-type]


# -- plan: a plan made by `greenepoch plan` ------------------------------------------------------
@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/minimal.toml planned with perfect foresight on the embedded default."""
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GREENEPOCH_DATA", raising=False)
        result = CliRunner().invoke(cli, ["plan", str(ROOT / "examples" / "minimal.toml"),
                                          "--oracle", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_plan_policy_runs_exactly_inside_the_jobs_segments(plan_file: Path) -> None:
    plan = Plan.from_json(plan_file)
    job = plan.job("llm-pretrain")
    zone = job.segments[0].zone
    mine = [s for s in job.segments if s.zone == zone]
    policy = PlanPolicy(RunJob(gpus=64, gpu_hours=6144.0, zone=zone), plan, "llm-pretrain")
    # every 15 min from the release to the plan's end: running time = the segments' length
    steps = pd.date_range(job.segments[0].start, max(s.end for s in job.segments),
                          freq=STEP, inclusive="left")
    ran = 0
    for now in steps:
        d = policy.decide(plan_obs(now))
        inside = any(s.start <= now < s.end for s in mine)
        assert d.run == inside, (now, d.reason)
        ran += d.run
    assert ran * STEP == sum((s.end - s.start for s in mine), pd.Timedelta(0))
    raw = json.loads(plan_file.read_text())["jobs"][0]["segments"]  # times as written
    here = [r for r in raw if r["zone"] == zone]
    assert policy.decide(plan_obs(mine[0].start)).reason == \
        f"plan segment 1 of {len(mine)} in {zone}: {here[0]['start']} to {here[0]['end']}"
    assert mine[1].start > mine[0].end  # the oracle pauses the job at least once
    assert policy.decide(plan_obs(mine[0].end)).reason == \
        f"no plan segment in {zone} now; next {here[1]['start']}"


def plan_obs(now: pd.Timestamp, done: float = 0.0) -> Observation:
    return Observation(now, STEP, 500.0, "", False, None, None, False, T0, done, None)


def test_plan_policy_runs_after_the_plan_ends_while_work_remains(plan_file: Path) -> None:
    plan = Plan.from_json(plan_file)
    job = plan.job("llm-pretrain")
    end = max(s.end for s in job.segments)
    policy = PlanPolicy(RunJob(gpus=64, gpu_hours=6144.0), plan, "llm-pretrain",
                        zone=job.segments[0].zone)
    d = policy.decide(plan_obs(end, done=6000.0))
    assert d.run and d.reason == "plan ended, work remains (144.00 GPU-h by the estimate)"


def test_plan_policy_refuses_a_job_or_zone_the_plan_lacks(plan_file: Path) -> None:
    plan = Plan.from_json(plan_file)
    zones = ", ".join(dict.fromkeys(s.zone for s in plan.job("llm-pretrain").segments))
    for name, zone in (("nope", zones.split(", ")[0]), ("llm-pretrain", "FR")):
        with pytest.raises(RequestError) as err:
            PlanPolicy(RunJob(), plan, name, zone)
        assert str(err.value) == (f"the plan has no segments of `job_name` {name!r} in `zone` "
                                  f"{zone!r}; it has: llm-pretrain in {zones}")


def _two_zone_plan() -> Plan:
    def seg(zone: str, start: str, end: str) -> dict[str, object]:
        return {"zone": zone, "start": start, "end": end, "gpus": 8}
    return Plan.from_dict({"schema_version": "1.0", "jobs": [
        {"name": "a", "segments": [seg("DE", "2023-06-01T01:00:00Z", "2023-06-01T02:00:00Z"),
                                   seg("FR", "2023-06-01T03:00:00Z", "2023-06-01T05:00:00Z")]},
        {"name": "b", "segments": []}]})


def test_plan_policy_follows_its_zone_only_and_says_where_the_plan_went() -> None:
    policy = PlanPolicy(RunJob(gpus=8, gpu_hours=24.0, zone="DE"), _two_zone_plan(), "a")
    got = [policy.decide(observe(k, 100, running=False)) for k in range(0, 24, 2)]
    # 00:00 P, 00:30 P, 01:00 R, 01:30 R, then 02:00 .. 04:30 P (FR's turn), 05:00 on R
    assert runs(got) == "PPRRPPPPPPRR"
    assert got[0].reason == "no plan segment in DE now; next 2023-06-01T01:00:00Z"
    assert got[2].reason == ("plan segment 1 of 1 in DE: 2023-06-01T01:00:00Z to "
                             "2023-06-01T02:00:00Z")
    assert got[4].reason == ("no plan segment in DE now; the plan continues elsewhere until "
                             "2023-06-01T05:00:00Z")
    assert got[10].reason == "plan ended, work remains (24.00 GPU-h by the estimate)"


def test_plan_policy_runs_between_segments_when_the_deadline_needs_it() -> None:
    # DE runs 01:00-02:00 only; deadline 06:00 less 1 h; 2 of 4 wall hours left at 02:00
    # (progress 0.5 of 16 GPU-h on 4 GPUs): 2 + 0 > (3 - j/4) - 1/4 at step j after 02:00
    # when j > 3: the guard fires at 03:00
    job = RunJob(gpus=4, gpu_hours=16.0, deadline=T0 + pd.Timedelta("6h"), zone="DE")
    policy = PlanPolicy(job, _two_zone_plan(), "a")
    got = [policy.decide(observe(k, 100, running=False, done=8.0, progress=0.5))
           for k in range(8, 14)]
    assert runs(got) == "PPPPRR"
    assert got[4].reason == ("deadline guard: 2.00 h of work + 0.00 h restart > 2.00 h left to "
                             "2023-06-01T05:00:00Z less one 15 min interval")


def test_plan_policy_after_the_end_with_unknown_work() -> None:
    policy = PlanPolicy(RunJob(zone="FR"), _two_zone_plan(), "a")
    assert policy.decide(observe(20, None, running=True, done=3.0)).reason == \
        "plan ended, work remains"


# -- the factory ----------------------------------------------------------------------------------
def test_make_policy_builds_each_policy_by_name(plan_file: Path) -> None:
    job = RunJob(gpus=64, gpu_hours=6144.0, zone="GB")
    threshold = make_policy("threshold", job, pause_above=380, resume_below=None,
                            min_run="2h")
    assert isinstance(threshold, ThresholdPolicy)
    assert (threshold.resume_below, threshold.min_run) == (380, pd.Timedelta("2h"))
    zone = Plan.from_json(plan_file).job("llm-pretrain").segments[0].zone
    plan = make_policy("plan", job, plan=str(plan_file), job_name="llm-pretrain", zone=zone)
    assert isinstance(plan, PlanPolicy) and plan.zone == zone


@pytest.mark.parametrize(("name", "options", "said"), [
    ("greedy", {}, "`policy` = 'greedy': not a policy; choose one of threshold, plan, replan"),
    ("threshold", {}, "policy threshold needs `pause_above`"),
    ("threshold", {"pause_above": 1, "plan": "p.json"},
     "policy threshold takes no `plan`; it takes `pause_above`, `resume_below`, `min_run`, "
     "`min_pause`"),
    ("plan", {"job_name": "a"}, "policy plan needs `plan`"),
])
def test_make_policy_refuses_bad_names_and_options(name: str, options: dict[str, object],
                                                   said: str) -> None:
    with pytest.raises(RequestError) as err:
        make_policy(name, RunJob(), **options)
    assert str(err.value) == said


def test_make_policy_plan_from_a_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(GreenEpochError, match="plan"):
        make_policy("plan", RunJob(), plan=tmp_path / "none.json", job_name="a", zone="DE")


def test_make_policy_imports_replan_only_when_asked() -> None:
    replan = pytest.importorskip("greenepoch.planner.run.replan")
    assert issubclass(replan.ReplanPolicy, RunPolicy)
