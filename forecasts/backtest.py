"""Rolling-origin backtest and its metrics.

Forecasts are issued every ``issue_every`` (default daily) at ``issue_hour`` UTC from
``test_from`` through ``test_until``.  Each issue reads only observations before
``issue_time - delay`` (the reporting delay); the model is fitted on the history
through ``train_until`` and, when ``refit`` is given, refitted every ``refit`` on
everything observed by then.  Metrics per zone and band:

* ``mae`` (gCO2eq/kWh), ``mape`` (%; hours with truth below 1 g/kWh skipped),
  ``wape`` (%: sum |error| / sum truth), ``pinball`` (gCO2eq/kWh, mean of the
  P10/P50/P90 pinball losses), ``coverage_p10_p90`` (% of truths inside P10-P90);
  ``mae`` and ``pinball`` are scikit-learn's ``mean_absolute_error`` and
  ``mean_pinball_loss``;
* decision metrics on a 48 h window starting at the band's first hour (so the
  ``1-24h`` row is "the next 48 h"; ``4-14d`` averages the 48 h windows starting at
  day 4, 6, ... 12): ``rank_corr_48h`` (mean Spearman correlation of forecast and
  truth), ``regret_pct`` (% extra emissions of running in the k = 8 lowest-forecast
  hours instead of the truly lowest 8, summed over issues) and
  ``saving_realised_pct`` (saving vs the window's mean, achieved / possible, %).

Provider forecasts (:func:`add_provider_forecasts`): at each issue time and zone, the
forecast an archived provider had issued by then (the newest at or before the issue,
never a later one) is scored beside the models, as rows named after the provider.  Its
periods go onto the backtest's slots by the energy-weighted mean (finer periods; a slot
only when they cover it entirely) or by repeating a coarser period's value; only the
leads it covers are scored, the lead counted from the backtest's issue time.  A provider
forecast is a point forecast: ``pinball`` and ``coverage_p10_p90`` are NaN.  With
provider rows the metrics gain ``issues`` (issues scored in the row) because a provider
archived for part of the test period is scored on fewer issues than the models.
Forecasts of another signal than the actuals' (WattTime's marginal ones against average
intensities) are left out with a note.

The Spearman correlation stays ours (scipy's ``rankdata``, then Pearson on the ranks of
each window at once): ``scipy.stats.spearmanr`` gives the same numbers but has no
row-by-row mode; one call per window is 20 times slower (0.30 ms against 0.015 ms per
window: about 75 s more on a year of 18 zones), and its ``axis=1`` form correlates
every window with every other (4.7 s and 100 MB for 1,800 windows).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
from greenepoch.data.errors import param
from greenepoch.forecasts.base import BANDS, ForecastError, span_text
from greenepoch.forecasts.registry import BASELINES, get_model
from scipy.stats import rankdata

if TYPE_CHECKING:
    from greenepoch.data.providers.records import Fetched

K_HOURS = 8
WINDOW_H = 48
METRICS = ("n", "mae", "mape", "wape", "pinball", "coverage_p10_p90", "rank_corr_48h",
           "regret_pct", "saving_realised_pct")
#: the column provider rows add: issues scored in the row (a model's: every issue with truth)
ISSUES = "issues"


class ForecastArchive(Protocol):
    """What the backtest reads of an archive (``data.archive.store.Archive``)."""

    def forecast_at(self, zone: str, signal: str, at: pd.Timestamp,
                    provider: str | None = None) -> Fetched | None: ...

    def summary(self) -> pd.DataFrame: ...


@dataclass(frozen=True)
class BacktestConfig:
    """When forecasts are issued, what they may read, and how often models refit."""

    train_until: pd.Timestamp  # exclusive: history strictly before this instant
    test_from: pd.Timestamp  # first issue day (inclusive)
    test_until: pd.Timestamp  # last issue day (inclusive)
    issue_hour: int = 0  # UTC hour of the daily issue
    issue_every: pd.Timedelta = pd.Timedelta("1D")
    refit: pd.Timedelta | None = pd.Timedelta("28D")  # None: fit once
    delay: pd.Timedelta = pd.Timedelta(0)  # reporting delay of observations
    horizon: pd.Timedelta = pd.Timedelta("14D")

    def __post_init__(self) -> None:
        # messages name the fields (param); the CLI shows its flags (``forecast backtest``)
        for value, name in ((self.train_until, param("train_until")),
                            (self.test_from, param("test_from")),
                            (self.test_until, param("test_until"))):
            if value.tzinfo is None:
                raise ForecastError(f"{name} must be tz-aware (UTC)")
        if self.test_from < self.train_until:
            raise ForecastError(
                f"{param('test_from')} {_day(self.test_from)} is before the end of training "
                f"({param('train_until')} {_day(self.train_until, inclusive_end=True)}): test "
                f"on days after the training history, from {_day(self.train_until)} on"
            )
        if self.test_until < self.test_from:
            raise ForecastError(
                f"{param('test_until')} {_day(self.test_until)} is before {param('test_from')} "
                f"{_day(self.test_from)}: swap them"
            )
        if not 0 <= self.issue_hour <= 23:
            raise ForecastError(f"{param('issue_hour')} must be 0-23, got {self.issue_hour}")
        if self.refit is not None and self.refit <= pd.Timedelta(0):
            raise ForecastError(
                f"{param('refit')} {span_text(self.refit)} must be positive: give a cadence "
                "like 7D or 28D, or 'none' to fit once"
            )
        if self.issue_every <= pd.Timedelta(0):
            raise ForecastError(
                f"{param('issue_every')} {span_text(self.issue_every)} must be positive")
        if self.delay < pd.Timedelta(0):
            raise ForecastError(f"{param('delay')} must be zero or positive, e.g. 0h or 3h")

    def issues(self) -> pd.DatetimeIndex:
        start = self.test_from.normalize() + pd.Timedelta(hours=self.issue_hour)
        end = self.test_until.normalize() + pd.Timedelta(hours=self.issue_hour)
        return pd.date_range(start, end, freq=self.issue_every)


@dataclass
class BacktestResult:
    """Forecasts of each model, ``(issues, horizon, zones, [mean, p10, p50, p90])``,
    the truth ``(issues, horizon, zones)`` (NaN past the data) and fit timings;
    ``providers``: the archived provider forecasts in the same layout (mean only, NaN
    where none was available) and ``notes`` on them (:func:`add_provider_forecasts`)."""

    zones: list[str]
    issues: pd.DatetimeIndex
    step: pd.Timedelta
    truth: np.ndarray
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    providers: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> pd.DataFrame:
        rows = []
        for name, fc in (self.forecasts | self.providers).items():
            rows += score(name, fc, self.truth, self.zones, self.step)
        issues = [ISSUES] if self.providers else []
        return pd.DataFrame(rows, columns=["zone", "model", "band", *issues, *METRICS])


def run_backtest(values: pd.DataFrame, model: str, config: BacktestConfig,
                 baselines: Iterable[str] = BASELINES, progress: bool = True,
                 factory: Callable[[str], object] | None = None) -> BacktestResult:
    """Backtest ``model`` and the baselines on ``values`` (UTC index, zones as columns)."""
    import time

    if not isinstance(values.index, pd.DatetimeIndex) or values.index.tz is None:
        raise ForecastError("values must have a tz-aware UTC index")
    step = pd.Timedelta(values.index[1] - values.index[0])
    issues = config.issues()
    t0 = values.index[0]
    end = values.index[-1]
    if issues[0] - config.delay <= t0 + pd.Timedelta("14D"):
        raise ForecastError(
            f"{param('test_from')} {_day(config.test_from)} is too close to the start of the "
            f"data ({_day(t0)}): leave at least 14 days of history before {param('test_from')}"
        )
    probe = factory(model) if factory is not None else get_model(model)
    need = getattr(probe, "min_history_days", lambda: 0)()  # the first fit's history:
    have = (config.train_until - config.delay - t0) / pd.Timedelta("1D")  # before train_until
    if have < need:
        raise ForecastError(
            f"model '{model}' needs at least {need} days of history for its first fit, "
            f"but the data from {_day(t0)} to {param('train_until')} "
            f"{_day(config.train_until, inclusive_end=True)} holds {have:.1f}: move "
            f"{param('train_until')} (and the test dates) later"
        )
    if issues[-1] > end:
        # an issue after the last observation has no history to read and nothing to score
        last_day = _day((end - pd.Timedelta(hours=config.issue_hour)).normalize())
        span = f"the data covers {t0.isoformat()} to {end.isoformat()}"
        if issues[0] > end:
            raise ForecastError(
                f"{param('test_from')} {_day(config.test_from)} is after the data ends "
                f"({span}): pick test dates inside the data ({param('test_until')} {last_day} "
                "at the latest)"
            )
        raise ForecastError(
            f"{param('test_until')} {_day(config.test_until)} is after the data ends "
            f"({span}): give {param('test_until')} {last_day} or earlier (or add the missing "
            "data)"
        )
    arr = values.to_numpy(dtype=float)
    horizon = int(config.horizon / step)
    delay = int(np.ceil(config.delay / step))
    ipos = np.asarray((issues - t0) / step, dtype=float).round().astype(int)
    pos = ipos[:, None] + np.arange(horizon)[None, :]
    ok = pos < len(arr)
    truth = np.where(ok[..., None], arr[np.minimum(pos, len(arr) - 1)], np.nan)
    result = BacktestResult([str(c) for c in values.columns], issues, step, truth)

    names = [model] + [b for b in baselines if b != model]
    fit_times = [config.train_until]
    if config.refit is not None:
        t = config.test_from.normalize() + config.refit
        while t <= issues[-1]:
            fit_times.append(t)
            t += config.refit
    make = factory or get_model
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names) * len(issues), file=sys.stderr, unit="issue",
                   desc="backtest", leave=False)
    for name in names:
        started = time.perf_counter()
        out = np.empty((len(issues), horizon, arr.shape[1], 4))
        for k, fit_at in enumerate(fit_times):
            sel = issues >= (fit_at if k else issues[0])
            if k + 1 < len(fit_times):
                sel &= issues < fit_times[k + 1]
            if not sel.any():
                continue
            m = make(name)
            m.fit(values[values.index < fit_at - config.delay])  # type: ignore[attr-defined]
            last = ipos[sel] - 1 - delay
            out[sel] = m.predict_batch(arr, t0, last, 1 + delay, horizon)  # type: ignore[attr-defined]
            _require_finite(name, out[sel], issues[sel], result.zones)
            if bar is not None:
                bar.set_postfix_str(name)
                bar.update(int(sel.sum()))
        result.forecasts[name] = out
        result.seconds[name] = time.perf_counter() - started
    if bar is not None:
        bar.close()
    return result


def _require_finite(name: str, forecasts: np.ndarray, issues: pd.DatetimeIndex,
                    zones: list[str]) -> None:
    """A model's forecasts ``(issues, horizon, zones, 4)`` are all numbers, or the
    backtest stops naming the first issue and zone that is not (scikit-learn's metrics
    refuse a NaN with a traceback)."""
    bad = ~np.isfinite(forecasts)
    if bad.any():
        i, _, z, _ = np.argwhere(bad)[0]
        raise ForecastError(
            f"model '{name}' forecast NaN or infinity for zone {zones[z]} at the issue of "
            f"{issues[i].isoformat()}: its forecasts cannot be scored; check the model"
        )


def add_provider_forecasts(result: BacktestResult, archive: ForecastArchive,
                           signal: str) -> None:
    """Add to ``result.providers`` the forecast each provider in ``archive`` had issued
    by each issue time for each zone (``signal`` is the actuals'), and to
    ``result.notes`` what the rows leave out.  An archive without forecasts for the
    zones adds nothing."""
    held = archive.summary()
    held = held[(held["kind"] == "forecast") & held["zone"].isin(result.zones)]
    horizon = result.truth.shape[1]
    for provider in sorted(set(held["provider"])):
        own = held[held["provider"] == provider]
        zones = set(own.loc[own["signal"] == signal, "zone"])
        if not zones:
            result.notes.append(_other_signal(provider, sorted(set(own["signal"])), signal))
            continue
        out = np.full((len(result.issues), horizon, len(result.zones), 4), np.nan)
        for z, zone in enumerate(result.zones):
            if zone not in zones:
                continue
            # issues whose leads miss every archived period need no query
            spans = own[(own["zone"] == zone) & (own["signal"] == signal)]
            reach = ((result.issues + horizon * result.step > spans["first"].min())
                     & (result.issues <= spans["last"].max()))
            for i in np.flatnonzero(reach).tolist():
                issue = result.issues[i]
                fetched = archive.forecast_at(zone, signal, issue, provider)
                if fetched is not None:
                    out[i, :, z, 0] = _leads(fetched, issue, result.step, horizon)
        scored = ~np.isnan(out[..., 0]) & ~np.isnan(result.truth)  # (issues, leads, zones)
        per_zone = scored.any(axis=1).sum(axis=0)
        if not per_zone.any():
            result.notes.append(f"{provider}: no {signal} forecast of it was available at "
                                "any issue time of the test (none scored)")
            continue
        result.providers[provider] = out
        if (per_zone < len(result.issues)).any():
            counts = ", ".join(f"{zone} {n}" for zone, n in zip(result.zones, per_zone,
                                                                 strict=True))
            result.notes.append(
                f"{provider}: a forecast was available at only part of the "
                f"{len(result.issues)} issues ({counts}); its rows score those issues only "
                f"(column '{ISSUES}'), not comparable with the models' rows as they stand")


def _leads(fetched: Fetched, issue: pd.Timestamp, step: pd.Timedelta,
           horizon: int) -> np.ndarray:
    """A provider forecast at the leads ``1..horizon`` slots of ``step`` after ``issue``
    (NaN where it has none)."""
    values = _on_slots(fetched.values, fetched.step, step)
    lead = np.asarray((pd.DatetimeIndex(values.index) - issue) / step)
    keep = (lead >= 0) & (lead < horizon) & (lead == np.round(lead))
    out = np.full(horizon, np.nan)
    out[lead[keep].astype(int)] = values.to_numpy(dtype=float)[keep]
    return out


def _on_slots(values: pd.Series, period: pd.Timedelta, slot: pd.Timedelta) -> pd.Series:
    """Provider periods on ``slot`` slots by the energy-weighted rule
    (``data.intensity.resample``: whole slots only), each gapless run on its own (a
    slot is never made across a gap in the forecast)."""
    if period == slot or values.empty:
        return values
    from greenepoch.data.intensity.resample import resample_values

    starts = pd.DatetimeIndex(values.index).as_unit("ns").asi8
    run = np.r_[0, np.cumsum(np.diff(starts) != period.value)]
    parts = [resample_values(values[run == r].to_frame(), slot, period).iloc[:, 0]
             for r in range(run[-1] + 1)]
    return pd.concat(parts)


def _other_signal(provider: str, signals: list[str], signal: str) -> str:
    """Why ``provider``'s forecasts are not scored: they are of other signals."""
    why = ("marginal forecasts are only scored against marginal actuals"
           if "marginal" in (*signals, signal)
           else "a forecast is only scored against actuals of its own signal")
    return (f"{provider}: left out: its archived forecasts are {'/'.join(signals)}, the "
            f"actuals {signal} ({why})")


def _window_scores(mean: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, int]:
    """Rank correlation, regret and realised saving over 48 h windows.

    ``mean``/``truth``: ``(windows, 48 h)``; windows with missing truth (or forecast:
    a provider's may end inside one) are dropped.
    """
    keep = ~np.isnan(truth).any(axis=1) & ~np.isnan(mean).any(axis=1)
    mean, truth = mean[keep], truth[keep]
    if len(mean) == 0:
        return np.nan, np.nan, np.nan, 0
    rf, rt = rankdata(mean, axis=1), rankdata(truth, axis=1)
    rf -= rf.mean(axis=1, keepdims=True)
    rt -= rt.mean(axis=1, keepdims=True)
    den = np.sqrt((rf**2).sum(axis=1) * (rt**2).sum(axis=1))
    ranked = den > 0  # a constant forecast or truth has no rank correlation
    rho = (float(((rf * rt).sum(axis=1)[ranked] / den[ranked]).mean()) if ranked.any()
           else np.nan)
    chosen = np.take_along_axis(truth, np.argsort(mean, axis=1, kind="stable")[:, :K_HOURS],
                                axis=1).sum(axis=1)
    best = np.sort(truth, axis=1)[:, :K_HOURS].sum(axis=1)
    typical = truth.mean(axis=1) * K_HOURS
    regret = 100 * (chosen.sum() - best.sum()) / max(best.sum(), 1e-9)
    possible = (typical - best).sum()
    saving = 100 * (typical - chosen).sum() / possible if possible > 1e-9 else np.nan
    return float(rho), float(regret), float(saving), len(mean)


def score(name: str, fc: np.ndarray, truth: np.ndarray, zones: list[str],
          step: pd.Timedelta) -> list[dict[str, object]]:
    """Metric records, one per zone and band (see the module docstring)."""
    # imported here: 0.2-1.3 s, and 'forecast predict' imports this module for json_records
    from sklearn.metrics import mean_absolute_error, mean_pinball_loss

    ph = max(1, int(pd.Timedelta("1h") / step))
    lead_h = np.arange(1, truth.shape[1] + 1) / ph
    rows: list[dict[str, object]] = []
    for z, zone in enumerate(zones):
        for band, (lo, hi) in BANDS.items():
            sel = (lead_h > lo - 1) & (lead_h <= hi)
            if not sel.any():
                continue
            y = truth[:, sel, z]
            f = fc[:, sel, z, :]
            ok = ~np.isnan(y) & ~np.isnan(f[..., 0])  # a provider's forecast covers some leads
            issues = int(ok.any(axis=1).sum())
            y, f = y[ok], f[ok]
            if y.size == 0:
                continue
            err = f[:, 0] - y
            big = y >= 1.0
            quantiles = not np.isnan(f[:, 1:]).any()  # none in a provider's point forecast
            pin = (np.mean([mean_pinball_loss(y, f[:, i], alpha=q)
                            for i, q in ((1, 0.1), (2, 0.5), (3, 0.9))]) if quantiles
                   else np.nan)
            # decision windows: 48 h from the band's first hour, every 48 h inside the band
            starts = range(lo - 1, max(lo, hi - WINDOW_H + 1), WINDOW_H) if hi - lo > 48 \
                else [lo - 1]
            wins_f, wins_t = [], []
            for s in starts:
                a, b = s * ph, (s + WINDOW_H) * ph
                if b > truth.shape[1]:
                    continue
                wins_f.append(_hourly(fc[:, a:b, z, 0], ph))
                wins_t.append(_hourly(truth[:, a:b, z], ph))
            if wins_f:
                rho, regret, saving, _ = _window_scores(np.vstack(wins_f), np.vstack(wins_t))
            else:
                rho = regret = saving = np.nan
            rows.append({
                "zone": zone, "model": name, "band": band, ISSUES: issues, "n": int(y.size),
                "mae": float(mean_absolute_error(y, f[:, 0])),
                "mape": float(100 * np.mean(np.abs(err[big]) / y[big])) if big.any() else np.nan,
                "wape": float(100 * np.abs(err).sum() / max(np.abs(y).sum(), 1e-9)),
                "pinball": float(pin),
                "coverage_p10_p90": (float(100 * np.mean((y >= f[:, 1]) & (y <= f[:, 3])))
                                     if quantiles else np.nan),
                "rank_corr_48h": rho, "regret_pct": regret, "saving_realised_pct": saving,
            })
    return rows


def json_records(metrics: pd.DataFrame, decimals: int = 6) -> list[dict[str, object]]:
    """``metrics`` rows as JSON-ready dicts: floats rounded to ``decimals`` places
    (no float noise like 95.99999999999999), NaN as ``None``; keys unchanged."""
    def clean(v: object) -> object:
        if isinstance(v, float | np.floating):
            return None if np.isnan(v) else round(float(v), decimals)
        if isinstance(v, np.integer):
            return int(v)
        return v

    return [{str(k): clean(v) for k, v in row.items()}
            for row in metrics.to_dict(orient="records")]


def _day(ts: pd.Timestamp, inclusive_end: bool = False) -> str:
    """A boundary as the user wrote it: the date at midnight (with ``inclusive_end``,
    the day an exclusive midnight bound ends), else the full ISO time."""
    if ts != ts.normalize():
        return ts.isoformat()
    return str((ts - pd.Timedelta("1D") if inclusive_end else ts).date())


def _hourly(x: np.ndarray, ph: int) -> np.ndarray:
    return x if ph == 1 else x.reshape(x.shape[0], -1, ph).mean(axis=2)
