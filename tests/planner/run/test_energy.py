"""Energy and emissions of a run (planner/run/energy.py), hand-computed.

No GPU or NVML driver is present here: the NVML path is tested through its fallback
(the real nvidia-ml-py on a machine without the driver) and the integration through a
sampling function injected as a plain callable.  Measured power on a real GPU was not
exercised (docs/run.md, "Energy").
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from greenepoch.data.errors import GreenEpochError
from greenepoch.planner.run.energy import (
    ConfiguredPower,
    EnergyAccount,
    NvmlPower,
    emissions_kg,
    open_meter,
    visible_devices,
)


def test_configured_power_counts_running_time_only() -> None:
    meter = ConfiguredPower(gpus=4, power_kw=0.3)
    assert meter.draw_kw(True) == pytest.approx(1.2)
    assert meter.draw_kw(False) == 0.0
    # 4 GPUs x 0.3 kW x 2.5 h = 3.0 kWh; at 400 g/kWh: 1.2 kg
    assert EnergyAccount(meter).add(2.5 * 3600, True, 400.0) == pytest.approx((3.0, 1.2))
    assert emissions_kg(3.0, 400.0) == pytest.approx(1.2)
    assert "no PUE" in meter.counts


@pytest.mark.parametrize(("gpus", "power"), [(0, 0.3), (1.5, 0.3), (1, -0.1),
                                             (1, float("nan"))])
def test_configured_power_refuses_nonsense(gpus: int, power: float) -> None:
    with pytest.raises(GreenEpochError, match=r"gpus|power_kw"):
        ConfiguredPower(gpus, power)


def test_account_charges_each_span_at_its_own_intensity() -> None:
    """15-min spans of 2 GPUs x 0.4 kW = 0.2 kWh each: running at 300, paused at 500
    (nothing), running at 100, running at an unknown intensity.
    Energy 0.6 kWh; emissions 0.2 x 300/1000 + 0.2 x 100/1000 = 0.08 kg; 0.2 kWh unknown."""
    account = EnergyAccount(ConfiguredPower(2, 0.4))
    assert account.add(900, True, 300.0) == pytest.approx((0.2, 0.06))
    assert account.add(900, False, 500.0) == (0.0, 0.0)
    assert account.add(900, True, 100.0) == pytest.approx((0.2, 0.02))
    assert account.add(900, True, None) == pytest.approx((0.2, 0.0))
    assert account.energy_kwh == pytest.approx(0.6)
    assert account.emissions_kg == pytest.approx(0.08)
    assert account.unknown_kwh == pytest.approx(0.2)
    assert account.running_s == 2700


def test_account_continues_from_saved_totals() -> None:
    """A supervisor restarted from its state file carries on from the logged totals."""
    account = EnergyAccount(ConfiguredPower(1, 0.3), energy_kwh=1.5, emissions_kg=0.6)
    account.add(3600, True, 200.0)  # + 0.3 kWh, + 0.06 kg
    assert (account.energy_kwh, account.emissions_kg) == pytest.approx((1.8, 0.66))


def test_measured_power_is_integrated_by_the_trapezoid_rule() -> None:
    """Samples 0.30, 0.50, 0.40 kW at the ends of three running spans of 1 h; the first
    span has no earlier sample (0.30 x 1 h), then (0.30+0.50)/2, (0.50+0.40)/2: 1.15 kWh.
    A pause drops the series: the span after it starts from its own sample (0.20 x 0.5 h)."""
    samples = iter([0.30, 0.50, 0.40, 0.20])
    meter = NvmlPower(lambda: next(samples), devices=["0"])
    account = EnergyAccount(meter)
    for _ in range(3):
        account.add(3600, True, 1000.0)
    assert account.energy_kwh == pytest.approx(0.30 + 0.40 + 0.45)
    assert account.emissions_kg == pytest.approx(1.15)
    account.add(1800, False, 1000.0)  # paused: no sample is taken
    account.add(1800, True, 1000.0)
    assert account.energy_kwh == pytest.approx(1.15 + 0.10)


def test_a_failing_sample_falls_back_once_and_says_why() -> None:
    calls = []

    def broken() -> float:
        calls.append(1)
        raise RuntimeError("GPU is lost")

    meter = NvmlPower(broken, fallback=ConfiguredPower(1, 0.3))
    assert meter.draw_kw(True) == pytest.approx(0.3)
    assert meter.draw_kw(True) == pytest.approx(0.3)
    assert len(calls) == 1  # not asked again
    assert meter.failed is not None and "GPU is lost" in meter.failed
    with pytest.raises(GreenEpochError, match="NVML power reading failed"):
        NvmlPower(lambda: -1.0).draw_kw(True)


def test_nvml_absent_here_falls_back_to_the_configured_draw_with_one_note() -> None:
    """The real nvidia-ml-py without a driver (this machine): configured draw, one note."""
    meter, note = open_meter("nvml", gpus=2, power_kw=0.3)
    assert meter == ConfiguredPower(2, 0.3)
    assert note is not None and "counting the configured draw instead" in note
    assert note.count("\n") == 0


def test_nvml_not_installed_and_simulated_time_fall_back(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # an import of it fails
    meter, note = open_meter("nvml", gpus=1, power_kw=0.3)
    assert isinstance(meter, ConfiguredPower)
    assert note is not None and "greenepoch[nvml]" in note
    meter, note = open_meter("nvml", gpus=1, power_kw=0.3, simulate=True)
    assert isinstance(meter, ConfiguredPower) and note is not None and "simulated" in note
    assert open_meter("configured", gpus=1, power_kw=0.3) == (ConfiguredPower(1, 0.3), None)
    with pytest.raises(GreenEpochError, match="'configured' or 'nvml'"):
        open_meter("rapl", gpus=1, power_kw=0.3)


def fake_nvml(milliwatts: dict[str, int]) -> SimpleNamespace:
    """The four NVML calls open_meter makes, over boards named by index and UUID."""
    order = list(milliwatts)
    return SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: len(order),
        nvmlDeviceGetHandleByIndex=lambda i: order[i],
        nvmlDeviceGetHandleByUUID=lambda u: u,
        nvmlDeviceGetPowerUsage=lambda h: milliwatts[h])


def test_nvml_sums_the_boards_the_training_sees() -> None:
    boards = {"GPU-a": 250_000, "GPU-b": 300_000, "GPU-c": 100_000}  # mW
    meter, note = open_meter("nvml", gpus=3, power_kw=0.3, environ={}, nvml=fake_nvml(boards))
    assert isinstance(meter, NvmlPower) and note is None
    assert meter.draw_kw(True) == pytest.approx(0.65)
    assert meter.draw_kw(False) == 0.0
    env = {"CUDA_VISIBLE_DEVICES": "0,GPU-c"}
    meter, note = open_meter("nvml", gpus=1, power_kw=0.3, environ=env,
                             nvml=fake_nvml(boards))
    assert meter.draw_kw(True) == pytest.approx(0.35)  # board 0 (GPU-a) + GPU-c
    assert note is not None and "NVML sees 2 GPU(s)" in note
    meter, note = open_meter("nvml", gpus=1, power_kw=0.3,
                             environ={"CUDA_VISIBLE_DEVICES": ""}, nvml=fake_nvml(boards))
    assert isinstance(meter, ConfiguredPower) and "no GPU is visible" in str(note)


def test_visible_devices() -> None:
    assert visible_devices({}) is None
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "1, GPU-x"}) == ["1", "GPU-x"]
