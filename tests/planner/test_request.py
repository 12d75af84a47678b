"""Reading plan requests from TOML: the shipped example, every way to write a job, and
every mistake a user can make (each rejected with a message naming field and fix)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from greenepoch.data.errors import GreenEpochError, RequestError
from greenepoch.planner.model import DEFAULT_PUE, Job, PlanRequest, Policy
from greenepoch.planner.request import load_request

MINIMAL = Path(__file__).resolve().parents[2] / "examples" / "minimal.toml"
T0 = pd.Timestamp("2023-06-01T00:00:00Z")

JOB = """
start = "2023-06-01T00:00:00Z"

[[jobs]]
name = "ft"
gpus = 8
{job}

[[zones]]
id = "DE"
capacity_gpus = 16
{zone}

[[zones]]
id = "GB"
capacity_gpus = 16

{extra}
"""
WORK = 'gpu_hours = 64\ndeadline = "2023-06-02T00:00:00Z"\nzones = ["DE", "GB"]'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "request.toml"
    path.write_text(text, encoding="utf-8")
    return path


def request(tmp_path: Path, job: str = WORK, zone: str = "", extra: str = "") -> PlanRequest:
    return load_request(write(tmp_path, JOB.format(job=job, zone=zone, extra=extra)))


def rejected(tmp_path: Path, job: str = WORK, zone: str = "", extra: str = "") -> str:
    with pytest.raises(RequestError) as err:
        request(tmp_path, job, zone, extra)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "request.toml"))
    assert "\n" not in message
    return message


# --- the shipped example ---------------------------------------------------------------


def test_minimal_example_is_read_exactly_as_written():
    req = load_request(MINIMAL)
    assert req.start == T0
    (job,) = req.jobs
    assert job.name == "llm-pretrain"
    assert job.gpus == 64 and job.gpus_min == 64 and job.rigid
    assert job.gpu_hours == 6144
    assert job.run_hours_at_full_size == 96
    assert job.gpu_power_kw == 0.7
    assert job.release == T0
    assert job.deadline == pd.Timestamp("2023-06-08T00:00:00Z")
    assert job.zones == ("DE", "GB") and job.home_zone == "DE"
    assert job.checkpoint_overhead == pd.Timedelta("15min")
    assert job.max_interruptions == 20
    assert job.min_run == pd.Timedelta(0) and job.checkpoint_gb == 0
    assert [(z.id, z.capacity_gpus, z.pue) for z in req.zones] == [("DE", 128, 1.2),
                                                                  ("GB", 128, 1.2)]
    assert req.policy == Policy(objective="carbon", slot="1h", solver="highs",
                                time_limit=pd.Timedelta("60s"))
    assert req.policy.threshold is None and req.policy.threshold_mode == "hard"
    assert req.policy.mip_gap is None and req.policy.forecast == "default"
    # no mip_gap written: the plan picks it, 1e-4 on known intensities, 1 % on a forecast
    assert req.policy.settings_for(forecast=False).mip_gap == 1e-4
    assert req.policy.settings_for(forecast=True).mip_gap == 0.01
    assert req.end == job.deadline


def test_start_override_moves_the_whole_request():
    start = pd.Timestamp("2026-12-01T00:00:00Z")
    req = load_request(MINIMAL, start=start)
    delta = start - T0
    assert req.start == start
    assert req.jobs[0].release == T0 + delta
    assert req.jobs[0].deadline == pd.Timestamp("2023-06-08T00:00:00Z") + delta


def test_start_override_moves_capacity_steps(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(MINIMAL.read_text().replace(
        "capacity_gpus = 128\npue = 1.2\n\n[[zones]]\nid = \"GB\"",
        "capacity_gpus = 128\npue = 1.2\ncapacity_schedule = "
        "[{from = \"2023-06-03T00:00:00Z\", gpus = 64}]\n\n[[zones]]\nid = \"GB\"", 1))
    req = load_request(path, start=pd.Timestamp("2023-06-02T00:00:00Z"))
    (step,) = req.zones[0].capacity_schedule
    assert step == (pd.Timestamp("2023-06-04T00:00:00Z"), 64)


# --- ways to write a job -----------------------------------------------------------------


def test_defaults(tmp_path):
    req = request(tmp_path)
    (job,) = req.jobs
    assert job.release == T0  # release defaults to the plan start
    assert job.home_zone == "DE"  # the first of its zones
    assert job.gpu_power_kw == 1.0 and job.max_interruptions is None
    assert req.zones[0].pue == DEFAULT_PUE
    assert req.policy == Policy()


def test_duration_instead_of_gpu_hours(tmp_path):
    job = 'duration = "12h"\ndeadline = "2023-06-02T00:00:00Z"\nzones = ["DE"]'
    assert request(tmp_path, job).jobs[0].gpu_hours == 96  # 12 h x 8 GPUs


def test_gpu_hours_and_duration_together_are_rejected(tmp_path):
    message = rejected(tmp_path, WORK + '\nduration = "8h"')
    assert "give either 'gpu_hours' or 'duration', not both" in message


def test_neither_gpu_hours_nor_duration(tmp_path):
    job = 'deadline = "2023-06-02T00:00:00Z"\nzones = ["DE"]'
    assert "set 'gpu_hours' (work) or 'duration'" in rejected(tmp_path, job)


def test_elastic_job(tmp_path):
    job = request(tmp_path, WORK + "\ngpus_min = 2").jobs[0]
    assert (job.gpus, job.gpus_min, job.rigid) == (8, 2, False)


def test_gpus_min_above_gpus_is_rejected(tmp_path):
    message = rejected(tmp_path, WORK + "\ngpus_min = 9")
    assert "job 'ft': gpus_min = 9 must be between 1 and gpus = 8" in message


def test_durations_and_offsets(tmp_path):
    job = request(tmp_path, WORK + '\nrelease = "2023-06-01T08:00:00+02:00"\n'
                  'checkpoint_overhead = "10min"\nmin_run = "2h"\ntransfer_time = 900\n'
                  "checkpoint_gb = 120\nmax_interruptions = 3").jobs[0]
    assert job.release == pd.Timestamp("2023-06-01T06:00:00Z")
    assert str(job.release.tz) == "UTC"
    assert job.checkpoint_overhead == pd.Timedelta("10min")
    assert job.min_run == pd.Timedelta("2h")
    assert job.transfer_time == pd.Timedelta("15min")
    assert job.checkpoint_gb == 120 and job.max_interruptions == 3


def test_toml_datetimes_with_offset_are_accepted(tmp_path):
    job = WORK.replace('"2023-06-02T00:00:00Z"', "2023-06-02T00:00:00Z")
    assert request(tmp_path, job).jobs[0].deadline == pd.Timestamp("2023-06-02T00:00:00Z")


# --- zones and cloud regions -------------------------------------------------------------


def test_cloud_region_names_resolve_to_zones(tmp_path):
    job = ('gpu_hours = 64\ndeadline = "2023-06-02T00:00:00Z"\n'
           'zones = ["eu-central-1", "eu-west-2"]\nhome_zone = "eu-central-1"')
    req = request(tmp_path, job)
    assert req.jobs[0].zones == ("DE", "GB") and req.jobs[0].home_zone == "DE"


def test_zone_entries_may_use_cloud_region_names(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="").replace('id = "DE"', 'id = "eu-central-1"')
    req = load_request(write(tmp_path, text))
    assert [z.id for z in req.zones] == ["DE", "GB"]


def test_home_zone_not_among_zones_is_rejected(tmp_path):
    message = rejected(tmp_path, WORK + '\nhome_zone = "FR"')
    assert "home_zone 'FR' is not among its zones ['DE', 'GB']; add it to zones" in message


def test_job_zone_without_a_zones_entry_is_rejected(tmp_path):
    job = WORK.replace('["DE", "GB"]', '["DE", "FR"]')
    message = rejected(tmp_path, job)
    assert "job 'ft': zone(s) ['FR'] have no [[zones]] entry" in message
    assert "capacity_gpus" in message


def test_job_without_zones_is_rejected(tmp_path):
    job = 'gpu_hours = 64\ndeadline = "2023-06-02T00:00:00Z"'
    assert "jobs[0] ('ft'): set 'zones'" in rejected(tmp_path, job)


def test_zones_must_be_a_list(tmp_path):
    job = WORK.replace('["DE", "GB"]', '"DE"')
    assert "zones = 'DE': expected a list of zone ids" in rejected(tmp_path, job)


def test_zone_listed_twice_in_a_job(tmp_path):
    job = WORK.replace('["DE", "GB"]', '["DE", "eu-central-1"]')
    assert "zones lists a zone twice" in rejected(tmp_path, job)


def test_capacity_schedule(tmp_path):
    zone = ('capacity_schedule = [{from = "2023-06-01T06:00:00Z", gpus = 4},\n'
            '                     {from = "2023-06-01T18:00:00Z", gpus = 32}]')
    de = request(tmp_path, zone=zone).zones[0]
    assert de.capacity_schedule == ((pd.Timestamp("2023-06-01T06:00:00Z"), 4),
                                    (pd.Timestamp("2023-06-01T18:00:00Z"), 32))
    slots = pd.date_range(T0, periods=24, freq="1h", name="time")
    cap = de.capacity_at(slots).tolist()
    assert cap == [16] * 6 + [4] * 12 + [32] * 6


def test_capacity_schedule_step_with_a_typo(tmp_path):
    zone = 'capacity_schedule = [{from = "2023-06-01T06:00:00Z", gpu = 4}]'
    message = rejected(tmp_path, zone=zone)
    assert "zones[0] ('DE').capacity_schedule[0]: unknown key 'gpu'; did you mean 'gpus'?" \
        in message


def test_capacity_schedule_step_without_gpus(tmp_path):
    zone = 'capacity_schedule = [{from = "2023-06-01T06:00:00Z"}]'
    assert "capacity_schedule[0]: missing 'gpus'" in rejected(tmp_path, zone=zone)


def test_capacity_schedule_with_a_naive_time(tmp_path):
    zone = 'capacity_schedule = [{from = "2023-06-01T06:00:00", gpus = 4}]'
    message = rejected(tmp_path, zone=zone)
    assert "capacity_schedule[0].from" in message and "has no UTC offset" in message


# --- policy --------------------------------------------------------------------------------


def test_soft_carbon_threshold(tmp_path):
    extra = ('[policy]\ncarbon_threshold = 250\nthreshold_mode = "soft"\n'
             'threshold_penalty = 3\nslot = "15min"\nsolver = "cbc"\ntime_limit = "2min"\n'
             "mip_gap = 0")
    policy = request(tmp_path, extra=extra).policy
    assert policy.threshold == 250.0 and policy.threshold_mode == "soft"
    assert policy.threshold_penalty == 3.0
    assert policy.slot_length == pd.Timedelta("15min")
    assert policy.solver == "cbc" and policy.time_limit == pd.Timedelta("2min")
    assert policy.mip_gap == 0


def test_unknown_threshold_mode(tmp_path):
    message = rejected(tmp_path, extra='[policy]\nthreshold_mode = "strict"')
    assert "policy.threshold_mode = 'strict'; use 'hard' or 'soft'" in message


def test_carbon_plus_cost_needs_a_price_weight(tmp_path):
    message = rejected(tmp_path, extra='[policy]\nobjective = "carbon+cost"')
    assert "objective 'carbon+cost' needs price_weight" in message
    policy = request(tmp_path, extra='[policy]\nobjective = "carbon+cost"\nprice_weight = 0.5'
                     ).policy
    assert (policy.objective, policy.price_weight) == ("carbon+cost", 0.5)


# --- mistakes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "text", "message"), [
    ("job", WORK + "\ngpu_hour = 3", "jobs[0] ('ft'): unknown key 'gpu_hour'; did you mean "
                                     "'gpu_hours'?"),
    ("job", WORK + '\ncheckpoint_overhed = "5min"', "did you mean 'checkpoint_overhead'?"),
    ("zone", "capacity = 3", "zones[0] ('DE'): unknown key 'capacity'; did you mean "
                             "'capacity_gpus'?"),
    ("extra", '[policy]\ntreshold_mode = "soft"', "[policy]: unknown key 'treshold_mode'; "
                                                  "did you mean 'threshold_mode'?"),
    ("extra", "[polcy]\nslot = '1h'", "request: unknown key 'polcy'; did you mean 'policy'?"),
])
def test_unknown_keys_suggest_the_nearest(tmp_path, where, text, message):
    kwargs = {"job": {"job": text}, "zone": {"zone": text}, "extra": {"extra": text}}[where]
    got = rejected(tmp_path, **kwargs)
    assert message in got
    assert "(allowed: " in got


def test_unknown_key_without_a_near_match(tmp_path):
    message = rejected(tmp_path, WORK + "\nxyzzy = 1")
    assert "unknown key 'xyzzy' (allowed:" in message and "did you mean" not in message


@pytest.mark.parametrize("deadline", ['"2023-06-02T00:00:00"', "2023-06-02T00:00:00",
                                      "2023-06-02"])
def test_naive_times_are_rejected(tmp_path, deadline):
    job = WORK.replace('"2023-06-02T00:00:00Z"', deadline)
    message = rejected(tmp_path, job)
    assert "jobs[0] ('ft').deadline" in message
    assert "has no UTC offset; write it as e.g. 2023-06-01T00:00:00Z" in message


def test_naive_start_is_rejected(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="").replace(
        'start = "2023-06-01T00:00:00Z"', 'start = "2023-06-01 00:00"')
    with pytest.raises(RequestError, match="start: '2023-06-01 00:00' has no UTC offset"):
        load_request(write(tmp_path, text))


def test_unreadable_time(tmp_path):
    job = WORK.replace('"2023-06-02T00:00:00Z"', '"next tuesday"')
    assert "cannot read 'next tuesday' as a time" in rejected(tmp_path, job)


def test_deadline_before_release_is_rejected(tmp_path):
    message = rejected(tmp_path, WORK + '\nrelease = "2023-06-03T00:00:00Z"')
    assert ("job 'ft': deadline 2023-06-02T00:00:00+00:00 is not after release "
            "2023-06-03T00:00:00+00:00; move the deadline later") in message


def test_deadline_before_the_plan_start_is_rejected(tmp_path):
    job = WORK.replace("2023-06-02T00:00:00Z", "2023-05-31T00:00:00Z") + \
        '\nrelease = "2023-05-30T00:00:00Z"'
    assert "is before the plan start 2023-06-01T00:00:00+00:00" in rejected(tmp_path, job)


def test_negative_duration_is_rejected(tmp_path):
    message = rejected(tmp_path, WORK + '\ncheckpoint_overhead = "-5min"')
    assert "checkpoint_overhead: duration '-5min' must be zero or positive" in message


def test_job_rejects_negative_durations_when_built_directly():
    with pytest.raises(RequestError, match=r"job 'x': min_run = -1 days.* must be 0 or more"):
        Job(name="x", gpus=1, gpu_hours=1.0, release=T0, deadline=T0 + pd.Timedelta("1h"),
            zones=("DE",), home_zone="DE", min_run=pd.Timedelta("-1h"))


def test_duplicate_job_names(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="")
    text += '\n[[jobs]]\nname = "ft"\ngpus = 1\n' + WORK + "\n"
    with pytest.raises(RequestError, match=r"job name\(s\) \['ft'\] appear twice"):
        load_request(write(tmp_path, text))


def test_wrong_value_type_names_the_field(tmp_path):
    message = rejected(tmp_path, WORK.replace("gpu_hours = 64", 'gpu_hours = "lots"'))
    assert "jobs[0] ('ft').gpu_hours = 'lots': expected a number of GPU-hours, found text" \
        in message


def test_no_jobs(tmp_path):
    path = write(tmp_path, 'start = "2023-06-01T00:00:00Z"\n')
    with pytest.raises(RequestError, match="the request has no \\[\\[jobs\\]\\]"):
        load_request(path)


def test_missing_start(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="").replace('start = "2023-06-01T00:00:00Z"', "")
    with pytest.raises(RequestError, match=r"missing 'start'.*or give a plan start"):
        load_request(write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(RequestError, match="not valid TOML"):
        load_request(write(tmp_path, "[[jobs]\nname = 'x'"))
    with pytest.raises(RequestError, match="no such request file"):
        load_request(tmp_path / "absent.toml")


def test_request_errors_are_greenepoch_errors():
    assert issubclass(RequestError, GreenEpochError)


def test_prices_of_another_year_do_not_fill_the_plan():
    """Missing hours take the nearest known price only up to 3 h away."""
    from greenepoch.data.prices import hourly_prices

    known = pd.Series([50.0, 70.0], index=pd.DatetimeIndex(
        ["2022-12-31T22:00Z", "2022-12-31T23:00Z"], tz="UTC"))
    slots = pd.date_range("2023-01-01T00:00Z", periods=4, freq="1h")
    got = hourly_prices(known, slots)
    assert got.iloc[:3].tolist() == [70.0, 70.0, 70.0]
    assert np.isnan(got.iloc[3])


@pytest.mark.parametrize("value, message", [
    ("0", "gpus = 0: must be a whole number from 1 to 1000000"),
    ('"64"', "gpus = '64': expected a whole number, found text"),
    ("8.5", "gpus = 8.5: expected a whole number, found a fractional number"),
    ("true", "gpus = true: expected a whole number, found a boolean"),
    ("12345678901234567890", "gpus = 12345678901234567890: must be a whole number from 1 to "
                             "1000000"),
])
def test_gpus_must_be_a_positive_whole_number(tmp_path, value, message):
    text = JOB.format(job=WORK, zone="", extra="").replace("gpus = 8", f"gpus = {value}", 1)
    with pytest.raises(RequestError) as err:
        load_request(write(tmp_path, text))
    assert f"jobs[0] ('ft').{message}" in str(err.value)


def test_gpus_max_stands_for_gpus(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="").replace("gpus = 8", "gpus_max = 8\n"
                                                           "gpus_min = 4", 1)
    job = load_request(write(tmp_path, text)).jobs[0]
    assert (job.gpus, job.gpus_min) == (8, 4)


def test_a_duration_text_without_unit_is_refused(tmp_path):
    message = rejected(tmp_path, job=WORK + '\ncheckpoint_overhead = "15"')
    assert "checkpoint_overhead: '15' has no unit; write e.g. '15h', '15min' or '15s'" in message
    assert request(tmp_path, job=WORK + "\ncheckpoint_overhead = 900").jobs[0] \
        .checkpoint_overhead == pd.Timedelta("15min")  # a TOML number is seconds


# --- issue 13 item 5: booleans are booleans, counts whole, quantities finite numbers -----


@pytest.mark.parametrize("line, message", [
    ('allow_split = "false"', "jobs[0] ('ft').allow_split = 'false': expected a boolean, "
                              "found text; write true or false without quotes"),
    ("allow_split = 1", "jobs[0] ('ft').allow_split = 1: expected a boolean, found a whole "
                        "number"),
    ("max_interruptions = 2.7", "jobs[0] ('ft').max_interruptions = 2.7: expected a whole "
                                "number, found a fractional number"),
    ("max_interruptions = -1", "jobs[0] ('ft').max_interruptions = -1: must be a whole number "
                               "from 0 to"),
    ("gpus_min = 0", "jobs[0] ('ft').gpus_min = 0: must be a whole number from 1 to"),
    ("gpus_min = 4.5", "jobs[0] ('ft').gpus_min = 4.5: expected a whole number"),
    ("gpu_power_kw = true", "jobs[0] ('ft').gpu_power_kw = true: expected a number of kW per "
                            "GPU, found a boolean"),
    ('checkpoint_gb = "10"', "jobs[0] ('ft').checkpoint_gb = '10': expected a number of GB, "
                             "found text"),
    ("checkpoint_gb = nan", "jobs[0] ('ft').checkpoint_gb = nan: expected a finite number"),
    ("name = 5", "jobs[0].name = 5: expected text, found a whole number"),
])
def test_job_values_are_strictly_typed(tmp_path, line, message):
    job = WORK + "\n" + line
    if line.startswith("name"):
        job = WORK + "\n"
        text = JOB.format(job=job, zone="", extra="").replace('name = "ft"', line)
        with pytest.raises(RequestError) as err:
            load_request(write(tmp_path, text))
        assert message in str(err.value)
        return
    assert message in rejected(tmp_path, job=job)


@pytest.mark.parametrize("value, message", [
    ("true", "gpu_hours = true: expected a number of GPU-hours, found a boolean"),
    ("inf", "gpu_hours = inf: expected a finite number of GPU-hours"),
    ("nan", "gpu_hours = nan: expected a finite number of GPU-hours"),
    ("[64]", "gpu_hours = [64]: expected a number of GPU-hours, found a list"),
])
def test_gpu_hours_must_be_a_finite_number(tmp_path, value, message):
    assert f"jobs[0] ('ft').{message}" in rejected(
        tmp_path, WORK.replace("gpu_hours = 64", f"gpu_hours = {value}"))


@pytest.mark.parametrize("line, message", [
    ("capacity_gpus = 12.9", "zones[0] ('DE').capacity_gpus = 12.9: expected a whole number"),
    ('capacity_gpus = "16"', "zones[0] ('DE').capacity_gpus = '16': expected a whole number, "
                             "found text"),
    ('pue = "1.2"', "zones[0] ('DE').pue = '1.2': expected a number, found text"),
    ('capacity_schedule = [{from = "2023-06-01T12:00:00Z", gpus = 3.5}]',
     "zones[0] ('DE').capacity_schedule[0].gpus = 3.5: expected a whole number"),
    ('capacity_schedule = "soon"', "zones[0] ('DE').capacity_schedule = 'soon': expected a "
                                   "list of tables"),
])
def test_zone_values_are_strictly_typed(tmp_path, line, message):
    zone = line if line.startswith("capacity_schedule") or line.startswith("pue") else ""
    if line.startswith("capacity_gpus"):
        text = JOB.format(job=WORK, zone="", extra="").replace("capacity_gpus = 16", line, 1)
        with pytest.raises(RequestError) as err:
            load_request(write(tmp_path, text))
        assert message in str(err.value)
        return
    assert message in rejected(tmp_path, zone=zone)


def test_integral_floats_are_accepted_as_counts(tmp_path):
    text = JOB.format(job=WORK, zone="", extra="").replace("capacity_gpus = 16",
                                                           "capacity_gpus = 12.0", 1)
    got = load_request(write(tmp_path, text))
    assert got.zones[0].capacity_gpus == 12 and isinstance(got.zones[0].capacity_gpus, int)
    job = request(tmp_path, job=WORK + "\nmax_interruptions = 2.0").jobs[0]
    assert job.max_interruptions == 2 and isinstance(job.max_interruptions, int)


def test_toml_booleans_are_read_as_written(tmp_path):
    assert request(tmp_path, job=WORK + "\nallow_split = true").jobs[0].allow_split is True
    assert request(tmp_path, job=WORK + "\nallow_split = false").jobs[0].allow_split is False


@pytest.mark.parametrize("doc, message", [
    ("jobs = 5", "jobs: expected a list of tables ([[jobs]]), found a whole number"),
    ("jobs = [1, 2]", "jobs[0]: expected a table, found a whole number"),
    ("zones = \"DE\"", "zones: expected a list of tables ([[zones]]), found text"),
    ("policy = 3", "[policy]: expected a table, found a whole number"),
])
def test_tables_of_the_wrong_type(tmp_path, doc, message):
    path = write(tmp_path, 'start = "2023-06-01T00:00:00Z"\n' + doc + "\n")
    with pytest.raises(RequestError) as err:
        load_request(path)
    assert message in str(err.value)


def test_a_request_that_is_not_utf8(tmp_path):
    path = tmp_path / "request.toml"
    path.write_bytes(JOB.format(job=WORK + '\n# caf\xe9', zone="", extra="")
                     .encode("latin-1"))
    with pytest.raises(RequestError, match=r"request.toml: not a UTF-8 text file .*save the "
                                           r"request as UTF-8 TOML"):
        load_request(path)


# --- issue 13 item 7: settings that do nothing, implausible values --------------------


@pytest.mark.parametrize("extra, message", [
    ("[policy]\nprice_weight = 0.5", "[policy].price_weight = 0.5 does nothing with objective "
                                     "'carbon'; set objective = \"carbon+cost\""),
    ('[policy]\nthreshold_mode = "soft"', "[policy].threshold_mode = 'soft' does nothing "
                                          "without a carbon threshold; set carbon_threshold"),
    ("[policy]\nthreshold_penalty = 2", "[policy].threshold_penalty = 2 does nothing without "
                                        "a carbon threshold"),
    ("[policy]\ncarbon_threshold = 200\nthreshold_penalty = 2",
     "[policy].threshold_penalty = 2 does nothing with threshold_mode 'hard'; set "
     "threshold_mode = \"soft\""),
    ('[policy]\ncarbon_threshold = 200\nthreshold_mode = "soft"\nthreshold_penalty = -3',
     "[policy].threshold_penalty = -3: must be from 0 to 1e+06"),
    ('[policy]\ncarbon_threshold = 200\nthreshold_mode = "soft"\nthreshold_penalty = inf',
     "[policy].threshold_penalty = inf: expected a finite number"),
    ("[policy]\ncarbon_threshold = inf", "[policy].carbon_threshold = inf: expected a finite "
                                         "number of gCO2eq/kWh"),
    ('[policy]\nobjective = "carbon+cost"\nprice_weight = -1',
     "[policy].price_weight = -1: must be from 0 to 1e+06 kg CO2eq per USD"),
])
def test_idle_and_nonsense_policy_settings_are_refused(tmp_path, extra, message):
    assert message in rejected(tmp_path, extra=extra)


# --- QA pass: numbers that become objective coefficients are bounded ---------------------
# (1e308 as threshold_penalty overflowed to a nan objective in the solver)

SOFT = '[policy]\ncarbon_threshold = 200\nthreshold_mode = "soft"\n'
COST = '[policy]\nobjective = "carbon+cost"\n'


@pytest.mark.parametrize("extra, message", [
    (SOFT + "threshold_penalty = 1e308",
     "[policy].threshold_penalty = 1e+308: must be from 0 to 1e+06"),
    (SOFT + "threshold_penalty = 1000001", "[policy].threshold_penalty = 1000001: must be "
                                          "from 0 to 1e+06"),
    (COST + "price_weight = 1e308", "[policy].price_weight = 1e+308: must be from 0 to 1e+06 "
                                    "kg CO2eq per USD"),
])
def test_policy_coefficients_above_their_bound_are_refused(tmp_path, extra, message):
    assert message in rejected(tmp_path, extra=extra)


def test_policy_coefficients_at_their_bound_are_accepted(tmp_path):
    assert request(tmp_path, extra=SOFT + "threshold_penalty = 1e6") \
        .policy.threshold_penalty == 1e6
    assert request(tmp_path, extra=COST + "price_weight = 1e6").policy.price_weight == 1e6


@pytest.mark.parametrize("key, bound, shown, unit", [
    ("checkpoint_gb", 1e6, "1e+06", "GB"),
    ("egress_usd_per_gb", 1e3, "1000", "USD per GB"),
    ("transfer_kwh_per_gb", 1e3, "1000", "kWh per GB"),
])
def test_migration_numbers_are_bounded(tmp_path, key, bound, shown, unit):
    assert getattr(request(tmp_path, job=WORK + f"\n{key} = {bound!r}").jobs[0], key) == bound
    message = rejected(tmp_path, job=WORK + f"\n{key} = 1e308")
    assert f"jobs[0] ('ft').{key} = 1e+308: must be from 0 to {shown} {unit}" in message


def test_negative_threshold_penalty_is_refused_when_built_directly():
    with pytest.raises(RequestError, match=r"threshold_penalty = -1.0 must be a finite number, "
                                           r"0 or more"):
        Policy(threshold=200.0, threshold_mode="soft", threshold_penalty=-1.0)


def test_gpu_power_in_watts_is_refused_with_the_hint(tmp_path):
    message = rejected(tmp_path, job=WORK + "\ngpu_power_kw = 700")
    assert "gpu_power_kw = 700.0 kW per GPU is above the plausible 3 kW" in message
    assert "700 W, are 0.7 kW" in message
    assert request(tmp_path, job=WORK + "\ngpu_power_kw = 3").jobs[0].gpu_power_kw == 3.0


def test_gpus_and_gpus_max_together_are_refused(tmp_path):
    message = rejected(tmp_path, job=WORK + "\ngpus_max = 16")
    assert "jobs[0] ('ft'): give either 'gpus' or 'gpus_max'" in message


@pytest.mark.parametrize("value, found", [("01:30:00", "a time"), ("true", "a boolean"),
                                          ('["2h"]', "a list")])
def test_durations_are_text_or_seconds(tmp_path, value, found):
    message = rejected(tmp_path, job=WORK + f"\ncheckpoint_overhead = {value}")
    assert "jobs[0] ('ft').checkpoint_overhead = " in message
    assert f"expected a duration, found {found}; write text like '15min'" in message


# --- checkpoint saves, deadline margins, migration caps, GPU steps, resizes ------------

ELASTIC = WORK + "\ngpus_min = 4"  # 4 to 8 GPUs


def test_segment_keys_are_read(tmp_path):
    req = request(tmp_path, WORK + '\ncheckpoint_save = "10min"\ndeadline_margin = "2h"'
                  '\nmax_migrations = 1\nresize_overhead = "5min"',
                  extra='[policy]\ndeadline_margin = "1h"')
    job = req.jobs[0]
    assert job.checkpoint_save == pd.Timedelta("10min")
    assert job.max_migrations == 1 and job.resize_overhead == pd.Timedelta("5min")
    assert req.deadline_margin_of(job) == pd.Timedelta("2h")  # its own, not the policy's
    assert req.plan_deadline(job) == pd.Timestamp("2023-06-01T22:00:00Z")


def test_segment_keys_default_to_no_save_margin_cap_or_step(tmp_path):
    req = request(tmp_path)
    job = req.jobs[0]
    assert job.checkpoint_save == pd.Timedelta(0) and job.max_migrations is None
    assert job.resize_overhead is None  # a size change is a restart
    assert req.deadline_margin_of(job) == pd.Timedelta(0) and req.gpus_step(job) == 1


def test_policy_deadline_margin_holds_for_every_job(tmp_path):
    req = request(tmp_path, extra='[policy]\ndeadline_margin = "3h"')
    assert req.plan_deadline(req.jobs[0]) == pd.Timestamp("2023-06-01T21:00:00Z")


@pytest.mark.parametrize(("line", "message"), [
    ('checkpoint_save = 0.5', None),  # seconds: accepted
    ('checkpoint_save = "15"', "has no unit"),
    ('checkpoint_save = true', r"checkpoint_save = true: expected a duration"),
    ('checkpoint_save = "-1h"', "must be zero or positive"),
    ('deadline_margin = [1]', r"deadline_margin = \[1\]: expected a duration"),
    ('resize_overhead = "x"', "cannot read 'x' as a duration"),
    ("max_migrations = 1.5", r"max_migrations = 1.5: expected a whole number"),
    ("max_migrations = -1", "must be a whole number from 0"),
    ('max_migrations = "2"', "expected a whole number, found text"),
    ("gpus_step = 0", "gpus_step = 0: must be a whole number from 1"),
    ("gpus_step = true", "expected a whole number, found a boolean"),
])
def test_segment_keys_are_strictly_typed(tmp_path, line, message):
    if message is None:
        request(tmp_path, WORK + "\n" + line)
        return
    text = rejected(tmp_path, WORK + "\n" + line)
    assert "jobs[0] ('ft')." in text
    assert re.search(message, text), text


def test_zone_gpus_per_node_is_a_positive_count(tmp_path):
    assert "zones[0] ('DE').gpus_per_node = 0: must be a whole number from 1" in rejected(
        tmp_path, zone="gpus_per_node = 0")
    assert "expected a whole number" in rejected(tmp_path, zone='gpus_per_node = "8"')


def test_a_save_as_long_as_the_whole_run_is_refused(tmp_path):
    # 64 GPU-hours on 8 GPUs: an 8 h run
    text = rejected(tmp_path, WORK + '\ncheckpoint_save = "8h"')
    assert "checkpoint_save = 8 h is not shorter than the job's whole run (8 h at 8 GPUs)" \
        in text
    request(tmp_path, WORK + '\ncheckpoint_save = "7h"')
    assert "resize_overhead = 9 h is not shorter" in rejected(
        tmp_path, WORK + '\nresize_overhead = "9h"')


def test_a_margin_that_leaves_no_time_is_refused(tmp_path):
    text = rejected(tmp_path, WORK + '\ndeadline_margin = "24h"')
    assert "deadline_margin 24 h leaves no time to run" in text
    text = rejected(tmp_path, extra='[policy]\ndeadline_margin = "1 day"')
    assert "job 'ft': deadline_margin 24 h leaves no time to run" in text


def test_elastic_sizes_must_be_multiples_of_the_job_step(tmp_path):
    req = request(tmp_path, ELASTIC + "\ngpus_step = 4")
    assert req.gpus_step(req.jobs[0]) == 4
    text = rejected(tmp_path, WORK.replace("64", "60") + "\ngpus_min = 6\ngpus_step = 4")
    assert "gpus_min = 6 is not a multiple of gpus_step 4 (its gpus_step)" in text
    assert "use 4 or 8" in text
    assert "gpus = 8 is not a multiple of gpus_step 3 (its gpus_step); elastic sizes are " \
        "multiples of the step: use 6 or 9" in rejected(
            tmp_path, WORK + "\ngpus_min = 3\ngpus_step = 3")


def test_gpus_min_below_the_step_names_the_smallest_valid_size(tmp_path):
    text = rejected(tmp_path, WORK + "\ngpus_min = 2\ngpus_step = 4")
    assert "gpus_min = 2 is not a multiple of gpus_step 4" in text and "use 4" in text
    assert "use 0" not in text


def test_the_step_is_the_lcm_of_the_zones_gpus_per_node(tmp_path):
    def two_zones(job: str) -> Path:
        return write(tmp_path, f"""start = "2023-06-01T00:00:00Z"
[[jobs]]
name = "ft"
gpus = 12
gpu_hours = 64
deadline = "2023-06-02T00:00:00Z"
{job}
[[zones]]
id = "DE"
capacity_gpus = 16
gpus_per_node = 2
[[zones]]
id = "GB"
capacity_gpus = 16
gpus_per_node = 3
""")

    both = 'zones = ["DE", "GB"]\n'
    req = load_request(two_zones(both + "gpus_min = 6"))
    assert req.gpus_step(req.jobs[0]) == 6  # lcm(2, 3): whole nodes in both zones
    with pytest.raises(RequestError, match=r"gpus_min = 4 is not a multiple of gpus_step 6 "
                       r"\(from gpus_per_node of its zones: DE 2, GB 3\); elastic sizes are "
                       r"multiples of the step: use 6$"):
        load_request(two_zones(both + "gpus_min = 4"))
    own = load_request(two_zones(both + "gpus_min = 4\ngpus_step = 4"))  # its own wins
    assert own.gpus_step(own.jobs[0]) == 4
    de = load_request(two_zones('zones = ["DE"]\ngpus_min = 4'))  # only its zones count
    assert de.gpus_step(de.jobs[0]) == 2


def test_a_rigid_job_is_not_held_to_the_step(tmp_path):
    req = request(tmp_path, zone="gpus_per_node = 16")
    assert req.jobs[0].rigid and req.gpus_step(req.jobs[0]) == 16  # 8 GPUs: exports place it


def test_job_and_policy_bounds_hold_when_built_directly():
    end = T0 + pd.Timedelta("1D")
    base = dict(name="a", gpus=8, gpu_hours=16.0, release=T0, deadline=end, zones=("DE",),
                home_zone="DE")
    for bad, message in [(dict(checkpoint_save=pd.Timedelta("2h")), "not shorter"),
                         (dict(checkpoint_save=pd.Timedelta("-1h")), "must be 0 or more"),
                         (dict(max_migrations=-1), "max_migrations must be 0 or more"),
                         (dict(gpus_step=0), "gpus_step = 0 must be 1 or more"),
                         (dict(gpus_min=4, gpus_step=3), "not a multiple of gpus_step 3"),
                         (dict(deadline_margin=pd.Timedelta("1D")), "leaves no time"),
                         (dict(resize_overhead=pd.Timedelta("-1s")), "must be 0 or more")]:
        with pytest.raises(RequestError, match=message):
            Job(**base, **bad)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match=r"policy\.deadline_margin"):
        Policy(deadline_margin=pd.Timedelta("-1h"))
    from greenepoch.planner.model import Zone

    with pytest.raises(RequestError, match="gpus_per_node = 0 must be 1 or more"):
        Zone("DE", 8, gpus_per_node=0)
    job = Job(**base, gpus_min=4)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="gpus_min = 4 is not a multiple of gpus_step 8"):
        PlanRequest(T0, (job,), (Zone("DE", 8, gpus_per_node=8),))
    with pytest.raises(RequestError, match="deadline_margin 24 h leaves no time"):
        PlanRequest(T0, (job,), (Zone("DE", 8),), Policy(deadline_margin=pd.Timedelta("1D")))
