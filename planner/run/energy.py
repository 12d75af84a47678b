"""Energy and emissions of a supervised run.

What is counted (docs/run.md, "Energy"):

* :class:`ConfiguredPower` (the default): ``gpus x power_kw`` (kW per GPU, the
  configured draw) while the training runs, zero while it is paused.  Only what the
  user configures is counted: GPUs at their configured draw, no host, network or
  cooling, no PUE; fold those into ``power_kw`` (e.g. 0.3 kW x PUE 1.2 = 0.36).
* :class:`NvmlPower` (extra ``nvml``, nvidia-ml-py): the sum of
  ``nvmlDeviceGetPowerUsage`` over the GPUs visible to the training
  (``CUDA_VISIBLE_DEVICES``, NVML indices or UUIDs; all GPUs when unset), sampled at
  each call and integrated with the trapezoid rule over the running time.  It measures
  whole boards (other processes on the same GPU included), the GPUs only (no PUE),
  and nothing while paused (the GPUs are free for other work then).  Without the
  package, a driver or a visible GPU, :func:`open_meter` falls back to
  :class:`ConfiguredPower` and says so once.

:class:`EnergyAccount` is the integrator the controller feeds once per interval (or per
part of an interval in one state): energy in kWh, and emissions in kg at the intensity
seen in that interval, ``kWh x g/kWh / 1000``.  Energy at an unknown intensity is kept
apart (``unknown_kwh``) and never charged at a guessed one.
"""

from __future__ import annotations

import importlib
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from greenepoch.data.errors import GreenEpochError, param


class PowerMeter(ABC):
    """The training's electrical draw in kW at the moment of the call."""

    name: str = ""

    @abstractmethod
    def draw_kw(self, running: bool) -> float:
        """The draw now (kW); zero when ``running`` is false."""

    @property
    def counts(self) -> str:
        """One sentence for the run log and report: what this meter counts."""
        return ""


@dataclass(frozen=True)
class ConfiguredPower(PowerMeter):
    """``gpus`` x ``power_kw`` (kW per GPU) while running, zero while paused."""

    gpus: int
    power_kw: float
    name: str = "configured"

    def __post_init__(self) -> None:
        if not (isinstance(self.gpus, int) and self.gpus >= 1):
            raise GreenEpochError(f"{param('gpus')} must be a whole number >= 1, "
                                  f"got {self.gpus!r}")
        if not (math.isfinite(self.power_kw) and self.power_kw >= 0):
            raise GreenEpochError(f"{param('power_kw')} must be a finite number of kW per "
                                  f"GPU >= 0, got {self.power_kw!r}")

    def draw_kw(self, running: bool) -> float:
        return self.gpus * self.power_kw if running else 0.0

    @property
    def counts(self) -> str:
        return (f"configured draw: {self.gpus} GPU(s) x {self.power_kw:g} kW while "
                "running, 0 while paused (GPUs only, no PUE unless folded into the power)")


Sampler = Callable[[], float]  # the summed draw of the training's GPUs now, in kW


class NvmlPower(PowerMeter):
    """Measured draw: ``sample()`` (kW) while running, zero while paused.

    Build it with :func:`open_meter` (which finds the training's GPUs through NVML); a
    plain callable may be given as ``sample`` (tests, other meters).  A sample that fails
    mid-run (a GPU lost, the driver reset) switches the meter to ``fallback`` for the
    rest of the run and leaves the reason in :attr:`failed`, for the log."""

    name = "nvml"

    def __init__(self, sample: Sampler, devices: Sequence[str] = (),
                 fallback: PowerMeter | None = None) -> None:
        self._sample = sample
        self.devices = tuple(devices)
        self.fallback = fallback
        self.failed: str | None = None

    def draw_kw(self, running: bool) -> float:
        if not running:
            return 0.0
        if self.failed is not None and self.fallback is not None:
            return self.fallback.draw_kw(True)
        try:
            kw = float(self._sample())
            if not (math.isfinite(kw) and kw >= 0):
                raise ValueError(f"an impossible draw of {kw!r} kW")
        except Exception as exc:  # NVMLError_* or a nonsense reading
            if self.fallback is None:
                raise GreenEpochError(f"NVML power reading failed: {exc}") from None
            self.failed = f"NVML power reading failed ({exc}); counting the configured draw"
            return self.fallback.draw_kw(True)
        return kw

    @property
    def counts(self) -> str:
        where = ", ".join(self.devices) or "all GPUs"
        return (f"measured through NVML: the summed board power of {where} while running, "
                "0 while paused (GPUs only, no PUE)")


def visible_devices(environ: dict[str, str] | None = None) -> list[str] | None:
    """The GPUs the training sees: ``CUDA_VISIBLE_DEVICES`` split on commas (NVML
    indices or UUIDs), None when it is unset (every GPU), [] when it is empty."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _nvml_sampler(nvml: Any, devices: list[str] | None) -> tuple[Sampler, list[str]]:
    """A sampler summing ``nvmlDeviceGetPowerUsage`` (mW) over ``devices``."""
    nvml.nvmlInit()
    if devices is None:
        devices = [str(i) for i in range(nvml.nvmlDeviceGetCount())]
    handles = [nvml.nvmlDeviceGetHandleByIndex(int(d)) if d.isdigit()
               else nvml.nvmlDeviceGetHandleByUUID(d) for d in devices]
    if not handles:
        raise RuntimeError("no GPU is visible to the training")

    def sample() -> float:
        return sum(float(nvml.nvmlDeviceGetPowerUsage(h)) for h in handles) / 1e6  # mW->kW

    sample()  # a driver that cannot read power fails here, not mid-run
    return sample, devices


def open_meter(kind: str, *, gpus: int, power_kw: float, simulate: bool = False,
               environ: dict[str, str] | None = None,
               nvml: Any = None) -> tuple[PowerMeter, str | None]:
    """The meter for ``kind`` (``configured`` or ``nvml``) and a note when NVML was asked
    but the configured draw is used instead (no package, no driver, no visible GPU, or
    ``simulate``: measured power means nothing in simulated time).  ``nvml``: the NVML
    module (default: ``import pynvml`` from nvidia-ml-py)."""
    configured = ConfiguredPower(gpus, power_kw)
    if kind == "configured":
        return configured, None
    if kind != "nvml":
        raise GreenEpochError(f"the power meter must be 'configured' or 'nvml', got {kind!r}")
    fallback = f"; counting the configured draw instead ({gpus} GPU(s) x {power_kw:g} kW)"
    if simulate:
        return configured, ("NVML power is not measured in simulated time" + fallback)
    try:
        module = nvml if nvml is not None else importlib.import_module("pynvml")
        sample, devices = _nvml_sampler(module, visible_devices(environ))
    except ImportError:
        return configured, ("NVML power needs nvidia-ml-py (pip install "
                            "'greenepoch[nvml]')" + fallback)
    except Exception as exc:  # NVMLError_* (no driver, no GPU, not supported), bad ids
        return configured, f"NVML power unavailable ({exc or type(exc).__name__})" + fallback
    note = None
    if len(devices) != gpus:
        note = (f"NVML sees {len(devices)} GPU(s) for the training, {gpus} configured; "
                "measuring the ones it sees")
    return NvmlPower(sample, devices, fallback=configured), note


def emissions_kg(kwh: float, intensity: float) -> float:
    """kWh at ``intensity`` g/kWh, in kg: ``kWh x g/kWh / 1000``."""
    return kwh * intensity / 1000.0


@dataclass
class EnergyAccount:
    """Cumulative energy and emissions of a run, fed by :meth:`add` per span of time.

    A span in which the training ran is charged the trapezoid of the draw at its start
    (the previous running sample) and at its end (sampled now); the first span after a
    start or resume has no earlier sample and takes the one at its end.  Constant meters
    (:class:`ConfiguredPower`) make that ``power x time``."""

    meter: PowerMeter
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    unknown_kwh: float = 0.0  # energy at an intensity nobody knew: not in emissions_kg
    running_s: float = 0.0
    _last_kw: float | None = field(default=None, repr=False)

    def add(self, seconds: float, running: bool, intensity: float | None) -> tuple[float, float]:
        """Charge ``seconds`` in one state at ``intensity`` (g/kWh, None when unknown);
        returns that span's (kWh, kg)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"a span of {seconds!r} s")  # the controller's bug
        if intensity is not None and not (math.isfinite(intensity) and intensity >= 0):
            raise ValueError(f"an intensity of {intensity!r} g/kWh")  # feeds check theirs
        if not running:
            self._last_kw = None  # a resume starts a new series of samples
            return 0.0, 0.0
        now_kw = self.meter.draw_kw(True)
        start_kw = now_kw if self._last_kw is None else self._last_kw
        self._last_kw = now_kw
        kwh = (start_kw + now_kw) / 2 * seconds / 3600.0
        self.energy_kwh += kwh
        self.running_s += seconds
        if intensity is None:
            self.unknown_kwh += kwh
            return kwh, 0.0
        kg = emissions_kg(kwh, intensity)
        self.emissions_kg += kg
        return kwh, kg
