"""Per-zone climatology of carbon intensity and a generator of synthetic hourly traces.

This is the embedded default: with no data folder, GreenEpoch plans on traces drawn
from the shipped climatology (``source='synthetic'``).  For the hour ``t`` of a zone
(month ``m``, weekday ``d``, hour of day ``h``, all UTC), in gCO2eq/kWh::

    x_t = A_year(a + (b - a) / (1 + exp(-y_t))),   y_t = M(t) + W[d, h] + S(t) * Q(g_t)

* ``A_year``: quantile map from the reference climate (the latest calibrated year) to
  a calibrated year's distribution; identity for later years, so the stored climate
  is what a future year looks like (grids change fast: DE 2023 is 25 % below 2022 and
  swings more, so neither a scale nor a shift maps one year onto the other);
* ``a, b``: bounds a little beyond the observed range; working on the logit ``y``
  keeps traces inside them and shrinks the spread near either end (windy nights in
  GB, hydro hours in NO, coal-only hours in DE);
* ``M(t)``, ``S(t)**2``: month x hour mean and residual variance of ``y``, linear
  between mid-months (the mean through nodes that keep monthly means: no month-end steps);
* ``W``: weekday x hour effect (mean 0 over the week), kept only where it explains at
  least ``WEEKLY_MIN_SHARE`` of the residual variance;
* ``g_t = sqrt(w) s_t + sqrt(1 - w) q_t``: unit-variance latent noise; ``s`` is a slow
  AR(1) (weather regimes over days), ``q`` solves ``(1 - phi B)**2 (1 - Phi B**24) q = e``
  (smooth hour-to-hour changes, and a diurnal pattern that persists from day to day);
  fitted to the autocorrelation of the residuals' normal scores;
* ``Q``: the residuals' empirical quantiles at normal scores ``SCORES`` (skew, tails).

Only whole calendar years (UTC) are used.  ``mean`` and ``std`` (gCO2eq/kWh by
month x hour, in the reference climate) are plain statistics of the data, kept to
describe the zone and to check synthetic years against.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.intensity.frame import MAX_INTENSITY, SIGNALS, SLOTS, IntensityData
from greenepoch.data.intensity.resample import resample
from greenepoch.data.shipped import shipped_file
from scipy.signal import lfilter
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

FORMAT_VERSION = 1
# the average signals; the climatology has no marginal (MOER) trace: marginal values
# only come from a provider (WattTime) or from files holding them
CLIMATOLOGY_SIGNALS = tuple(s for s in SIGNALS if s != "marginal")
CREATED_BY = "greenepoch data calibrate"
SCORES = np.linspace(-3.5, 3.5, 29)  # normal scores at which residual quantiles are kept
WEEKLY_MIN_SHARE = 0.02
YEAR_MIN_DAYS = 360  # a calendar year with less data is left out of the calibration
YEAR_PROBS = np.round(np.r_[0, 0.001, 0.005, 0.01, 0.02, np.arange(1, 20) / 20,
                            0.98, 0.99, 0.995, 0.999, 1], 3)  # per-year quantiles kept
CLIP_MARGIN = 0.1  # synthetic values may leave the observed range by this share of it
LOGIT_PAD = 0.1  # gCO2eq/kWh from the logit bounds to the clipping range (zeros stay finite)
BURN_IN_H = 24 * 120  # hours simulated and dropped so the day-to-day part is stationary;
# also the length of the impulse responses that give its variance and autocorrelation

FIT_LAGS = np.array([1, 2, 3, 4, 6, 8, 10, 12, 15, 18, 21, 24, 30, 36, 48, 60, 72, 96, 120,
                     168, 240, 336])  # hours
FIT_WEIGHTS = np.where(np.isin(FIT_LAGS, (1, 24)), 300.0, 1.0)  # match lags 1 h and 24 h
TAU_SLOW_GRID_H = np.geomspace(4.0, 4000.0, 50)
TAU_FAST_GRID_H = np.geomspace(0.5, 48.0, 40)
DAY_CORR_GRID = np.linspace(0.0, 0.9, 19)

# Averaging a line through mid-month nodes over a month gives 3/4 of its node plus
# 1/8 of each neighbour; inverting that makes the interpolation keep monthly means.
_BLEND = 0.75 * np.eye(12) + 0.125 * (np.roll(np.eye(12), 1, 0) + np.roll(np.eye(12), -1, 0))
_UNBLEND = np.linalg.inv(_BLEND)


@dataclass(frozen=True)
class _Calendar:
    """Calendar features of an hourly UTC index, as arrays."""

    i0: np.ndarray  # month node before the hour (0-11)
    i1: np.ndarray  # month node after it
    frac: np.ndarray  # position between the two, 0..1
    month: np.ndarray  # 0-11
    hour: np.ndarray  # 0-23
    weekday: np.ndarray  # 0 = Monday
    year: np.ndarray


def _read_only(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.array(value, dtype=float)
    if array.shape != shape or not np.isfinite(array).all():
        raise DataError(f"climatology field {name!r} must be finite of shape {shape}, "
                        f"found shape {array.shape}; re-run greenepoch data calibrate")
    array.setflags(write=False)
    return array


def _calendar(index: pd.DatetimeIndex) -> _Calendar:
    month = index.month.to_numpy() - 1
    hour = index.hour.to_numpy()
    within = ((index.day.to_numpy() - 1) * 24 + hour + 0.5) / (index.days_in_month.to_numpy() * 24)
    pos = month + within - 0.5
    base = np.floor(pos).astype(int)
    return _Calendar(base % 12, (base + 1) % 12, pos - base, month, hour,
                     index.day_of_week.to_numpy(), index.year.to_numpy())


def _seasonal(cells: np.ndarray, cal: _Calendar, keep_mean: bool = True) -> np.ndarray:
    """Month x hour ``cells`` (12, 24) as an hourly curve, linear between mid-months.

    With ``keep_mean`` the nodes are chosen so that each month keeps its mean;
    without, the nodes are the cells themselves (the curve stays between them).
    """
    nodes = _UNBLEND @ cells if keep_mean else cells
    return nodes[cal.i0, cal.hour] * (1 - cal.frac) + nodes[cal.i1, cal.hour] * cal.frac


def _cell_mean(x: np.ndarray, cal: _Calendar) -> np.ndarray:
    key = cal.month * 24 + cal.hour
    counts = np.bincount(key, minlength=288)
    if counts.min() == 0:
        missing = sorted({int(k) // 24 + 1 for k in np.flatnonzero(counts == 0)})
        raise DataError(
            f"calibration needs every month of the year, months {missing} have no data; "
            "pass at least one full year of hourly data"
        )
    return (np.bincount(key, x, 288) / counts).reshape(12, 24)


def _acf(x: np.ndarray, lags: Iterable[int]) -> np.ndarray:
    """Sample autocorrelation of ``x`` at ``lags``."""
    dev = x - x.mean()
    var = float(dev @ dev) / len(dev)
    return np.array([float(dev[:-k] @ dev[k:]) / (len(dev) - k) / var for k in lags])


def _score_acf(z: np.ndarray, lags: Iterable[int]) -> np.ndarray:
    """Autocorrelation of the normal scores of ``z`` (robust to outliers and skew)."""
    return _acf(ndtri((rankdata(z) - 0.5) / len(z)), lags)


def _y_expected(y_mean: np.ndarray, y_weekly: np.ndarray | None, cal: _Calendar) -> np.ndarray:
    weekly = 0.0 if y_weekly is None else y_weekly[cal.weekday, cal.hour]
    return _seasonal(y_mean, cal) + weekly


def _y_scale(y_std: np.ndarray, cal: _Calendar) -> np.ndarray:
    return np.sqrt(_seasonal(y_std**2, cal, keep_mean=False))


def _logit(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    low, high = bounds
    return np.log((x - low) / (high - x))


def _expit(y: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    low, high = bounds
    return low + (high - low) / (1.0 + np.exp(-y))


def _year_map(x: np.ndarray, year_quantiles: Mapping[int, np.ndarray], years: np.ndarray,
              to_reference: bool) -> np.ndarray:
    """Quantile-map each hour's value between its year and the reference (latest) year.

    A year uses the map of the latest calibrated year not after it (the earliest
    for years before them), so years after the reference are left as they are.
    """
    known = np.array(sorted(year_quantiles))
    pick = known[np.clip(np.searchsorted(known, years, side="right") - 1, 0, None)]
    reference = _strictly_increasing(year_quantiles[int(known[-1])])
    out = np.array(x, dtype=float)
    for year in np.unique(pick[pick != known[-1]]):
        rows = pick == year
        own = _strictly_increasing(year_quantiles[int(year)])
        source, target = (own, reference) if to_reference else (reference, own)
        out[rows] = np.interp(x[rows], source, target)
    return out


def _strictly_increasing(q: np.ndarray) -> np.ndarray:
    """Quantiles with ties (rounding, plateaus) nudged apart so they can be interpolated."""
    return np.maximum.accumulate(q) + np.arange(len(q)) * 1e-6


def _fast_poly(tau_fast_h: float, day_corr: float) -> np.ndarray:
    """Denominator of ``(1 - phi B)**2 (1 - Phi B**24)``, ``phi = exp(-1 / tau)``."""
    phi = np.exp(-1.0 / tau_fast_h)
    seasonal = np.zeros(25)
    seasonal[[0, 24]] = 1.0, -day_corr
    return np.convolve([1.0, -2 * phi, phi**2], seasonal)


def _impulse(poly: np.ndarray) -> np.ndarray:
    pulse = np.zeros(BURN_IN_H)
    pulse[0] = 1.0
    return lfilter([1.0], poly, pulse)


@functools.cache
def _fast_acf_grid() -> np.ndarray:
    """Autocorrelation at ``FIT_LAGS`` of the fast part, per (tau_fast, day_corr)."""
    out = np.empty((len(TAU_FAST_GRID_H), len(DAY_CORR_GRID), len(FIT_LAGS)))
    for i, tau in enumerate(TAU_FAST_GRID_H):
        for j, corr in enumerate(DAY_CORR_GRID):
            h = _impulse(_fast_poly(tau, corr))
            out[i, j] = [h[:-k] @ h[k:] for k in FIT_LAGS]
            out[i, j] /= h @ h
    return out


@dataclass(frozen=True, eq=False)
class ZoneClimatology:
    """Calibrated statistics of one zone; arrays are read-only.

    Attributes
    ----------
    mean, std : ndarray (12, 24)
        Mean and standard deviation by month x hour of day (UTC), gCO2eq/kWh, in
        the reference climate (the latest calibrated year).
    y_mean, y_std : ndarray (12, 24)
        Mean of the logit ``y`` and its residual standard deviation.
    y_weekly : ndarray (7, 24) or None
        Additive weekday (0 = Monday) x hour effect on ``y``, mean 0 over the week.
    y_bounds : tuple of float
        Bounds ``(a, b)`` of the logit, gCO2eq/kWh in the reference climate.
    year_quantiles : mapping of int to ndarray (29,)
        Quantiles of each calibrated year at probabilities ``YEAR_PROBS``, gCO2eq/kWh.
    w_slow, tau_slow_h, tau_fast_h, day_corr : float
        Latent noise: weight and time constant (hours) of the slow part, time
        constant of the fast part and its day-to-day correlation.
    quantiles : ndarray (29,)
        Standardised-residual quantiles at the normal scores ``SCORES``.
    acf_1h, acf_24h : float
        Measured lag-1 h and lag-24 h autocorrelation of the residuals' normal scores.
    min_g_per_kwh, max_g_per_kwh : float
        Observed range, gCO2eq/kWh.
    years, hours, estimated_share, files :
        Calibration years, hourly rows used, provider-estimated share, source files.
    """

    mean: np.ndarray
    std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    y_weekly: np.ndarray | None
    y_bounds: tuple[float, float]
    year_quantiles: Mapping[int, np.ndarray]
    w_slow: float
    tau_slow_h: float
    tau_fast_h: float
    day_corr: float
    quantiles: np.ndarray
    acf_1h: float
    acf_24h: float
    min_g_per_kwh: float
    max_g_per_kwh: float
    years: tuple[int, ...]
    hours: int
    estimated_share: float
    files: str

    def __post_init__(self) -> None:
        shapes = {"mean": (12, 24), "std": (12, 24), "y_mean": (12, 24),
                  "y_std": (12, 24), "y_weekly": (7, 24), "quantiles": SCORES.shape}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is None and name == "y_weekly":
                continue
            object.__setattr__(self, name, _read_only(value, shape, name))
        quantiles = {int(y): _read_only(q, YEAR_PROBS.shape, f"year_quantiles[{y}]")
                     for y, q in self.year_quantiles.items()}
        object.__setattr__(self, "year_quantiles", MappingProxyType(quantiles))
        if not quantiles or not self.y_bounds[0] < self.y_bounds[1]:
            raise DataError("climatology fields 'year_quantiles' or 'y_bounds' are invalid; "
                            "re-run greenepoch data calibrate")

    def _standardise(self, x: np.ndarray, cal: _Calendar) -> np.ndarray:
        y = _logit(_year_map(x, self.year_quantiles, cal.year, True), self.y_bounds)
        return (y - _y_expected(self.y_mean, self.y_weekly, cal)) / _y_scale(self.y_std, cal)

    def _bounds(self) -> tuple[float, float]:
        margin = CLIP_MARGIN * (self.max_g_per_kwh - self.min_g_per_kwh)
        return (max(0.0, self.min_g_per_kwh - margin),
                min(MAX_INTENSITY, self.max_g_per_kwh + margin))

    def _latent(self, seeds: tuple[int, ...], n: int) -> np.ndarray:
        """Unit-variance sum of the slow AR(1) and the fast day-correlated part.

        Each part has its own random stream, so the first hours of a trace do not
        depend on how many hours are drawn.
        """
        slow_rng, fast_rng = (np.random.default_rng([*seeds, part]) for part in (0, 1))
        phi = np.exp(-1.0 / self.tau_slow_h)
        start, shocks = slow_rng.standard_normal(), slow_rng.standard_normal(n)
        slow, _ = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], shocks, zi=[phi * start])
        poly = _fast_poly(self.tau_fast_h, self.day_corr)
        gain = np.sqrt(np.sum(_impulse(poly) ** 2))
        fast = lfilter([1.0 / gain], poly, fast_rng.standard_normal(n + BURN_IN_H))[BURN_IN_H:]
        return np.sqrt(self.w_slow) * slow + np.sqrt(1 - self.w_slow) * fast

    def _synthesize(self, cal: _Calendar, seeds: tuple[int, ...]) -> np.ndarray:
        z = np.interp(self._latent(seeds, len(cal.hour)), SCORES, self.quantiles)
        y = _y_expected(self.y_mean, self.y_weekly, cal) + _y_scale(self.y_std, cal) * z
        x = _year_map(_expit(y, self.y_bounds), self.year_quantiles, cal.year, False)
        return np.clip(x, *self._bounds())


@dataclass(frozen=True, eq=False)
class Climatology:
    """Per-zone climatologies of one signal, as calibrated from real data.

    Attributes
    ----------
    zones : mapping of zone id to :class:`ZoneClimatology`
    signal : {'direct', 'lca'}
    years : tuple of int
        Calendar years of the data it was calibrated on.
    created_by : str
    """

    zones: Mapping[str, ZoneClimatology]
    signal: str
    years: tuple[int, ...]
    created_by: str = CREATED_BY

    def __post_init__(self) -> None:
        check_signal(self.signal)
        object.__setattr__(self, "zones", MappingProxyType(dict(self.zones)))

    def standardise(self, data: IntensityData) -> pd.DataFrame:
        """Standardised residuals of hourly ``data`` per zone (what the latent noise models)."""
        hourly = data if data.step == SLOTS["1h"] else resample(data, "1h")
        _check_zones(self, hourly.zones)
        cal = _calendar(pd.DatetimeIndex(hourly.values.index))
        return pd.DataFrame(
            {z: self.zones[z]._standardise(hourly.values[z].to_numpy(), cal) for z in hourly.zones},
            index=hourly.values.index,
        )

    def residual_acf(self, data: IntensityData, lags: Iterable[int] = (1, 24)) -> pd.DataFrame:
        """Autocorrelation of the residuals' normal scores, one row per zone, one column per lag."""
        z = self.standardise(data)
        lags = list(lags)
        return pd.DataFrame([_score_acf(z[c].to_numpy(), lags) for c in z.columns],
                            index=z.columns, columns=lags)

    def to_json(self, path: str | Path) -> None:
        """Write the climatology as compact JSON, one line per zone (atomically)."""
        from greenepoch.data.atomic import write_atomic

        write_atomic(path, self.json_text())

    def json_text(self) -> str:
        """The text :meth:`to_json` writes."""
        return _dumps(_to_dict(self))

    @classmethod
    def from_json(cls, path: str | Path) -> Climatology:
        """Read a climatology written by :meth:`to_json`."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read a climatology ({exc}); "
                            "re-create it with greenepoch data calibrate") from exc
        return _from_dict(doc, str(path))


# ---------------------------------------------------------------- calibration


def calibrate(data: IntensityData,
              progress: Callable[[str], None] | None = None) -> Climatology:
    """Calibrate a climatology per zone on the whole calendar years (UTC) in ``data``.

    Parameters
    ----------
    data : IntensityData
        Intensities of the direct or lca signal at any step; finer data is averaged
        to hours by the energy-weighted rule.
    progress : callable, optional
        Called with each zone id once that zone is fitted.
    """
    check_signal(data.signal)
    hourly = data if data.step == SLOTS["1h"] else resample(data, "1h")
    whole = _whole_years(pd.DatetimeIndex(hourly.values.index))
    values = hourly.values[whole]
    share = hourly.estimated[whole].mean()
    cal = _calendar(pd.DatetimeIndex(values.index))
    zones = {}
    for z in hourly.zones:
        zones[z] = _calibrate_zone(values[z].to_numpy(dtype=float), cal, float(share[z]),
                                   _describe_files(hourly.files, z))
        if progress is not None:
            progress(z)
    years = tuple(sorted({int(y) for y in np.unique(cal.year)}))
    return Climatology(zones, hourly.signal, years)


def _whole_years(index: pd.DatetimeIndex) -> np.ndarray:
    """Mask of the hours in calendar years (UTC) covered for at least ``YEAR_MIN_DAYS``."""
    counts = pd.Series(index.year).value_counts()
    whole = counts.index[counts >= YEAR_MIN_DAYS * 24]
    if whole.empty:
        raise DataError(
            f"calibration needs at least one whole calendar year (UTC) of hourly data, "
            f"found {index[0]} .. {index[-1]}; pass whole years, e.g. 2023-01-01 .. 2024-01-01"
        )
    return np.asarray(index.year.isin(whole))


def _calibrate_zone(x: np.ndarray, cal: _Calendar, estimated_share: float,
                    files: str) -> ZoneClimatology:
    year_quantiles = {int(y): np.quantile(x[cal.year == y], YEAR_PROBS)
                      for y in np.unique(cal.year)}
    flat = _year_map(x, year_quantiles, cal.year, True)
    mean = _cell_mean(flat, cal)
    std = np.sqrt(_cell_mean((flat - mean[cal.month, cal.hour]) ** 2, cal))
    margin = CLIP_MARGIN * (flat.max() - flat.min())
    bounds = (max(0.0, flat.min() - margin) - LOGIT_PAD, flat.max() + margin + LOGIT_PAD)
    y = _logit(flat, bounds)
    y_mean = _cell_mean(y, cal)
    y_weekly = _weekly_effect(y - _seasonal(y_mean, cal), cal)
    resid = y - _y_expected(y_mean, y_weekly, cal)
    y_std = np.sqrt(_cell_mean(resid**2, cal))
    z = resid / _y_scale(y_std, cal)
    acf = _score_acf(z, FIT_LAGS)
    acf_1h, acf_24h = acf[np.searchsorted(FIT_LAGS, [1, 24])]
    return ZoneClimatology(
        mean, std, y_mean, y_std, y_weekly, (float(bounds[0]), float(bounds[1])),
        year_quantiles, *_fit_noise(acf), np.quantile(z, ndtr(SCORES)), float(acf_1h),
        float(acf_24h), float(x.min()), float(x.max()), tuple(sorted(year_quantiles)), len(x),
        estimated_share, files,
    )


def _weekly_effect(resid: np.ndarray, cal: _Calendar) -> np.ndarray | None:
    """Weekday x hour mean of ``resid`` (centred), or None if it explains too little."""
    key = cal.weekday * 24 + cal.hour
    effect = (np.bincount(key, resid, 168) / np.bincount(key, minlength=168)).reshape(7, 24)
    effect -= effect.mean(axis=0)
    before = np.var(resid)
    after = np.var(resid - effect[cal.weekday, cal.hour])
    return effect if before > 0 and 1 - after / before >= WEEKLY_MIN_SHARE else None


def _fit_noise(acf: np.ndarray) -> tuple[float, float, float, float]:
    """Fit ``w exp(-k / tau_slow) + (1 - w) rho_fast(k)`` to ``acf`` at ``FIT_LAGS``.

    Weighted least squares over the grids of ``tau_slow``, ``tau_fast`` and
    ``day_corr``, ``w`` solved in closed form for each; returns
    ``(w, tau_slow_h, tau_fast_h, day_corr)``.
    """
    slow = np.exp(-FIT_LAGS / TAU_SLOW_GRID_H[:, None])[:, None, None, :]
    fast = _fast_acf_grid()[None]
    gap = slow - fast
    num = ((acf - fast) * gap * FIT_WEIGHTS).sum(-1)
    den = (gap**2 * FIT_WEIGHTS).sum(-1)
    w = np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 1e-12), 0.0, 1.0)
    err = (((fast + w[..., None] * gap - acf) ** 2) * FIT_WEIGHTS).sum(-1)
    i, j, k = np.unravel_index(int(np.argmin(err)), err.shape)
    return (float(w[i, j, k]), float(TAU_SLOW_GRID_H[i]), float(TAU_FAST_GRID_H[j]),
            float(DAY_CORR_GRID[k]))


def _describe_files(files: tuple[str, ...], zone: str) -> str:
    names = sorted(Path(f).name for f in files)
    own = [n for n in names if n.startswith(f"{zone}_")] or names
    if not own:
        return "no files"
    if len(own) <= 4:
        return ", ".join(own)
    return f"{own[0]} .. {own[-1]} ({len(own)} files)"


# ---------------------------------------------------------------- synthesis


def synthesize(
    clim: Climatology,
    zones: Iterable[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    slot: str = "1h",
    seed: int = 0,
) -> IntensityData:
    """Synthetic intensities for ``zones`` over ``[start, end)``, labelled synthetic
    (``clim``'s signal, direct or lca: there is no synthetic marginal trace).

    Each zone is drawn independently from its own random stream (``seed`` and zone
    id), starting on 1 January of ``start``'s year, so windows starting in the same
    year agree where they overlap, and a zone's trace does not depend on the others
    asked for.  15- and 30-minute slots repeat the hourly value (the energy-weighted
    rule going finer, :mod:`~greenepoch.data.intensity.resample`).

    Parameters
    ----------
    clim : Climatology
    zones : zone ids in the climatology
    start, end : tz-aware timestamps on slot boundaries (converted to UTC)
    slot : {'1h', '30min', '15min'}
    seed : non-negative int
    """
    wanted = list(dict.fromkeys([zones] if isinstance(zones, str) else zones))
    _check_zones(clim, wanted)
    step, start, end = _check_window(start, end, slot)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, found {seed!r}")
    anchor = pd.Timestamp(year=start.year, month=1, day=1, tz="UTC")
    hours = pd.date_range(anchor, end.ceil("1h"), freq="1h", inclusive="left", name="time")
    cal = _calendar(hours)
    traces = np.column_stack([
        clim.zones[z]._synthesize(cal, (int(seed), zlib.crc32(z.encode())))
        for z in wanted
    ])
    repeat = int(SLOTS["1h"] / step)
    index = pd.date_range(anchor, periods=len(hours) * repeat, freq=step, name="time")
    keep = (index >= start) & (index < end)
    values = pd.DataFrame(np.repeat(traces, repeat, axis=0)[keep], index=index[keep],
                          columns=wanted)
    flags = pd.DataFrame(False, index=values.index, columns=wanted)
    return IntensityData(values, flags, flags.copy(), "synthetic", clim.signal, ())


def _check_zones(clim: Climatology, zones: list[str]) -> None:
    if not zones:
        raise DataError("no zones asked for; pass at least one zone id")
    missing = [z for z in zones if z not in clim.zones]
    if missing:
        raise DataError(
            f"zone(s) {', '.join(missing)} not in the climatology (have: {', '.join(clim.zones)}); "
            "pick other zones, or calibrate one on their data with greenepoch data calibrate"
        )


def _check_window(start: Any, end: Any, slot: str
                  ) -> tuple[pd.Timedelta, pd.Timestamp, pd.Timestamp]:
    if slot not in SLOTS:
        raise DataError(f"unknown slot {slot!r}: use one of {', '.join(SLOTS)}")
    step = SLOTS[slot]
    stamps = []
    for name, value in (("start", start), ("end", end)):
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{name} {value!r} is not a time; pass a tz-aware UTC timestamp, "
                            "e.g. pd.Timestamp('2023-06-01T00:00Z')") from exc
        if ts is pd.NaT or ts.tzinfo is None:
            raise DataError(f"{name} {value} has no time zone; pass a tz-aware UTC timestamp, "
                            "e.g. pd.Timestamp('2023-06-01T00:00Z')")
        ts = ts.tz_convert("UTC")
        if ts != ts.floor(step):
            raise DataError(f"{name} {ts} is not on a {slot} slot boundary; "
                            f"pass e.g. {ts.floor(step).isoformat()}")
        stamps.append(ts)
    if stamps[0] >= stamps[1]:
        raise DataError(f"start {stamps[0]} is not before end {stamps[1]}; pass start < end")
    return step, stamps[0], stamps[1]


# ---------------------------------------------------------------- JSON


def _to_dict(clim: Climatology) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "created_by": clim.created_by,
        "signal": clim.signal,
        "years": list(clim.years),
        "units": "gCO2eq/kWh; months 1-12 x hours 0-23 UTC; weekdays 0=Monday",
        "scores": np.round(SCORES, 3).tolist(),
        "year_probs": YEAR_PROBS.tolist(),
        "zones": {name: _zone_to_dict(zone) for name, zone in clim.zones.items()},
    }


def _rounded(array: np.ndarray | None, decimals: int) -> list | None:
    return None if array is None else np.round(array, decimals).tolist()


def _zone_to_dict(zone: ZoneClimatology) -> dict[str, Any]:
    return {
        "mean": _rounded(zone.mean, 1),
        "std": _rounded(zone.std, 1),
        "y_mean": _rounded(zone.y_mean, 3),
        "y_std": _rounded(zone.y_std, 3),
        "y_weekly": _rounded(zone.y_weekly, 3),
        "y_bounds": [round(b, 1) for b in zone.y_bounds],
        "year_quantiles": {str(y): _rounded(q, 2) for y, q in sorted(zone.year_quantiles.items())},
        "noise": {"w_slow": round(zone.w_slow, 3), "tau_slow_h": round(zone.tau_slow_h, 2),
                  "tau_fast_h": round(zone.tau_fast_h, 3), "day_corr": round(zone.day_corr, 3)},
        "quantiles": _rounded(zone.quantiles, 3),
        "acf": {"1h": round(zone.acf_1h, 3), "24h": round(zone.acf_24h, 3)},
        "min": round(zone.min_g_per_kwh, 1),
        "max": round(zone.max_g_per_kwh, 1),
        "years": list(zone.years),
        "hours": zone.hours,
        "estimated_share": round(zone.estimated_share, 3),
        "files": zone.files,
    }


def _dumps(doc: dict[str, Any]) -> str:
    compact = functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False)
    head = compact({k: v for k, v in doc.items() if k != "zones"})
    lines = ",\n".join(f"{compact(k)}:{compact(v)}" for k, v in doc["zones"].items())
    return f'{head[:-1]},"zones":{{\n{lines}\n}}}}\n'


def _from_dict(doc: Any, origin: str) -> Climatology:
    found = doc.get("format_version") if isinstance(doc, dict) else None
    if found != FORMAT_VERSION:
        raise DataError(f"{origin}: climatology format_version {found!r}, expected "
                        f"{FORMAT_VERSION}; re-create it with greenepoch data calibrate")
    try:
        if doc["signal"] not in CLIMATOLOGY_SIGNALS:
            raise ValueError(f"signal {doc['signal']!r} is not one of {CLIMATOLOGY_SIGNALS}")
        zones = {str(name): _zone_from_dict(z) for name, z in doc["zones"].items()}
        return Climatology(zones, doc["signal"], tuple(doc["years"]), doc["created_by"])
    except (AttributeError, KeyError, TypeError, ValueError, DataError) as exc:
        raise DataError(f"{origin}: malformed climatology ({exc!s}); "
                        "re-create it with greenepoch data calibrate") from exc


def _zone_from_dict(d: dict[str, Any]) -> ZoneClimatology:
    noise = d["noise"]
    return ZoneClimatology(
        np.array(d["mean"]), np.array(d["std"]), np.array(d["y_mean"]), np.array(d["y_std"]),
        None if d["y_weekly"] is None else np.array(d["y_weekly"]),
        (float(d["y_bounds"][0]), float(d["y_bounds"][1])),
        {int(y): np.array(q) for y, q in d["year_quantiles"].items()},
        float(noise["w_slow"]), float(noise["tau_slow_h"]), float(noise["tau_fast_h"]),
        float(noise["day_corr"]), np.array(d["quantiles"]), float(d["acf"]["1h"]),
        float(d["acf"]["24h"]), float(d["min"]), float(d["max"]), tuple(d["years"]),
        int(d["hours"]), float(d["estimated_share"]), str(d["files"]),
    )


# ---------------------------------------------------------------- shipped default


def climatology_file(signal: str) -> Path:
    """The shipped ``climatology_{signal}.json``."""
    return shipped_file(f"climatology_{signal}.json")


def check_signal(signal: str) -> str:
    """``signal`` if the climatology has it ('direct' or 'lca'); one DataError otherwise,
    saying where a marginal signal comes from."""
    if signal == "marginal":
        raise DataError(
            "the climatology has no marginal trace: the embedded synthetic default and "
            "'greenepoch data calibrate' cover the average signals 'direct' and 'lca'. "
            f"Plan on marginal values from WattTime ({param('live')}, {param('provider')} "
            f"watttime) or from files holding them ({param('data_dir')}), or pick "
            f"{param('signal')} direct or lca"
        )
    if signal not in CLIMATOLOGY_SIGNALS:
        raise DataError(f"unknown signal {signal!r}: use 'direct' or 'lca'")
    return signal


@functools.lru_cache(maxsize=len(SIGNALS))
def embedded_climatology(signal: str = "direct") -> Climatology:
    """The climatology shipped with GreenEpoch for ``signal`` ('direct' or 'lca')."""
    check_signal(signal)
    file = climatology_file(signal)
    if not file.is_file():
        raise DataError(f"the shipped climatology {file} is missing; reinstall GreenEpoch or "
                        f"pass a data folder with {param('data_dir')} / GREENEPOCH_DATA")
    with importlib.resources.as_file(file) as path:
        return Climatology.from_json(path)
