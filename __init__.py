"""GreenEpoch: carbon-aware planning of large training jobs.

The Python API for notebooks and scripts (docs/api.md)::

    import greenepoch

    request = greenepoch.load_request("request.toml")   # or the TOML text itself
    plan = greenepoch.plan(request)                     # a greenepoch.Plan
    greenepoch.write_plan(plan, "plan.json")            # and plan.csv beside it
    print(greenepoch.summary(greenepoch.read_plan("plan.json")))
    metrics = greenepoch.backtest("default", zones="DE,GB", train_until="2022-12-31",
                                  test_from="2023-01-01", test_until="2023-01-31").metrics()

Where intensities come from is a ``source``: a folder of Electricity Maps exports,
None (``$GREENEPOCH_DATA`` if set, else the embedded synthetic default), or an object of
:mod:`greenepoch.sources` (``ExportFolderSource(path)``, ``ClimatologySource(seed)``,
``CachedSource(inner)``; a new provider subclasses ``IntensitySource``).

``import greenepoch`` imports none of the package: every function imports what it needs
when called, and the classes (:class:`Plan`, :class:`PlanRequest`, ...) load on first
use (PEP 562), so a training script that imports it pays nothing until it plans.  No
module inside the package imports from this one but for ``__version__`` (it sits above
the CLI).

Every user error is a :class:`GreenEpochError` subclass whose message says what to fix.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pandas as pd
    from greenepoch.data.errors import GreenEpochError
    from greenepoch.data.intensity.source import IntensitySource
    from greenepoch.forecasts.backtest import BacktestConfig, BacktestResult
    from greenepoch.planner.model import PlanRequest
    from greenepoch.planner.plan import Plan

try:
    __version__ = version("greenepoch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

#: the names loaded on first use: name -> (module, attribute; None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    # the training side of `greenepoch run` (stdlib only): from greenepoch import Gate
    "Gate": ("greenepoch.planner.run.gate", "Gate"),
    "gate": ("greenepoch.planner.run.gate", None),
    "Plan": ("greenepoch.planner.plan", "Plan"),
    "PlanRequest": ("greenepoch.planner.model", "PlanRequest"),
    "PlanStatus": ("greenepoch.planner.plan", "PlanStatus"),
    "BacktestResult": ("greenepoch.forecasts.backtest", "BacktestResult"),
    "GreenEpochError": ("greenepoch.data.errors", "GreenEpochError"),
    "sources": ("greenepoch.data.intensity.source", None),
}

__all__ = [
    "BacktestResult",
    "Gate",
    "GreenEpochError",
    "Plan",
    "PlanRequest",
    "PlanStatus",
    "__version__",
    "backtest",
    "demo_request",
    "load_request",
    "plan",
    "read_plan",
    "sources",
    "summary",
    "write_plan",
]


def __getattr__(name: str) -> Any:
    """PEP 562: the classes of :data:`_LAZY`, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'greenepoch' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = import_module(module) if attribute is None else getattr(import_module(module),
                                                                       attribute)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_request(request: str | Path, *, start: pd.Timestamp | str | None = None
                 ) -> PlanRequest:
    """Read and validate a plan request (docs/plan-request.md).

    ``request``: a path to a TOML file, or the TOML text itself (a string holding a line
    break); files named in the text (zone prices) are then relative to the working
    folder.  ``start`` moves the request to start there, as ``greenepoch plan --start``.
    """
    from greenepoch.data.timeparse import utc
    from greenepoch.planner.request import load_request as load_file

    moved = utc(start, "start") if isinstance(start, str) else start
    if isinstance(request, str) and "\n" in request:
        return _parse_request_text(request, moved)
    return load_file(request, moved)


def _parse_request_text(text: str, start: pd.Timestamp | None) -> PlanRequest:
    """A request from its TOML text; errors as :func:`load_request`'s, naming no file."""
    import tomllib

    from greenepoch.data.errors import RequestError
    from greenepoch.data.inputs import TOO_DEEP
    from greenepoch.planner.request import parse_request

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RequestError(f"request text: not valid TOML ({exc})") from None
    except TOO_DEEP:
        raise RequestError("request text: its TOML is nested too deeply to read") from None
    try:
        return parse_request(doc, Path("."), start)
    except RequestError as exc:
        raise RequestError(f"request text: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # as load_request's backstop
        raise RequestError(f"request text: a value has the wrong type ({exc})") from None


def demo_request() -> PlanRequest:
    """The sample request ``greenepoch demo`` plans: two jobs, four zones (DE, GB, ES, NO)."""
    from greenepoch.data.shipped import shipped_file

    return load_request(shipped_file("demo_request.toml"))


def plan(request: PlanRequest | str | Path, source: str | Path | IntensitySource | None = None,
         *, oracle: bool = False, forecast: str | None = None, signal: str = "direct",
         seed: int = 0, fallback: bool = True,
         progress: Callable[[str], None] | None = None) -> Plan:
    """Plan ``request`` (a :class:`PlanRequest`, or what :func:`load_request` reads).

    ``source``: an :class:`~greenepoch.sources.IntensitySource` (its prices too), a
    folder of Electricity Maps exports, or None: ``$GREENEPOCH_DATA`` when set, else the
    embedded synthetic default drawn with ``seed`` (as the CLI's ``--data``).  The plan
    is made on a forecast issued at the request's start (``forecast``: a model name, ``"default"``
    for the best measured one; None: the request's ``policy.forecast``), or with
    ``oracle=True`` on what really happened.  ``fallback``: a job whose forecast plan is
    not robust runs now at home (as without ``--no-fallback``).  ``progress`` gets
    one-line notes (fitting, cache use, solver).
    """
    from greenepoch.planner.model import PlanRequest
    from greenepoch.planner.pipeline import plan as make_plan

    if not isinstance(request, PlanRequest):
        request = load_request(request)
    return make_plan(request, data=source, oracle=oracle, model=forecast, signal=signal,
                     seed=seed, progress=progress, fallback=fallback)


def read_plan(source: str | Path) -> Plan:
    """Read a plan written by :func:`write_plan` or ``greenepoch plan``: a file path, or
    the JSON text itself (a str starting with ``{``).  Every field is checked once; a
    malformed plan is one :class:`GreenEpochError` (``PlanError``) naming the field."""
    from greenepoch.planner.plan import Plan

    return Plan.from_json(source)


def write_plan(plan: Plan, path: str | Path) -> tuple[Path, Path]:
    """Write ``plan`` as JSON to ``path`` and its segment CSV beside it (``.csv``),
    both replaced together or not at all; returns the two paths."""
    return plan.write(path)


def summary(plan: Plan) -> str:
    """The table ``greenepoch plan`` prints: jobs, emissions against running now, notes."""
    from greenepoch.planner.cli.report import plan_summary

    return plan_summary(plan)


def backtest(model: str = "default", *, source: str | Path | IntensitySource | None = None,
             zones: str | list[str] = "all", train_until: str | pd.Timestamp,
             test_from: str | pd.Timestamp, test_until: str | pd.Timestamp,
             refit: str | None = "28D", delay: str = "0h", issue_hour: int = 0,
             signal: str = "direct", seed: int = 0, baselines: Iterable[str] | None = None,
             progress: bool = False) -> BacktestResult:
    """Rolling-origin backtest of forecast ``model`` beside the baselines, as
    ``greenepoch forecast backtest``; ``.metrics()`` of the result is its table.

    ``source`` as in :func:`plan`; ``zones="all"`` is every zone it has.  A source that
    covers any time (the synthetic climatology) is drawn once from the longest history a
    registered model fits on before ``train_until`` to the last issue's horizon, so every
    model is scored on the same trace; any other source is read whole, as the CLI reads
    ``--data``.  Dates as in the CLI: ``"2022-12-31"`` as
    ``train_until`` or ``test_until`` is that whole day; a Timestamp is taken as given.
    ``refit``: a cadence like ``"7D"``, or None to fit once.  ``baselines``: None for
    the four (persistence, yesterday, last_week, mean7d), ``()`` for none.
    """
    import pandas as pd
    from greenepoch.forecasts.backtest import BacktestConfig, run_backtest
    from greenepoch.forecasts.data import parse_day, parse_span
    from greenepoch.forecasts.registry import BASELINES, canonical_name, get_model

    def day(value: str | pd.Timestamp, field: str, end_of_day: bool = False) -> pd.Timestamp:
        return value if isinstance(value, pd.Timestamp) else parse_day(value, field,
                                                                        end_of_day)

    config = BacktestConfig(
        train_until=day(train_until, "train_until", end_of_day=True),
        test_from=day(test_from, "test_from"),
        test_until=day(test_until, "test_until"),
        issue_hour=issue_hour,
        refit=None if refit is None else parse_span(refit, "refit", positive=False),
        delay=parse_span(delay, "delay", positive=False),
    )
    name = canonical_name(model)
    get_model(name)  # an unknown name fails before the data is read, listing the known ones
    values = _backtest_values(source, zones, signal, seed, config)
    return run_backtest(values, name, config,
                        baselines=BASELINES if baselines is None else tuple(baselines),
                        progress=progress)


def _backtest_values(source: str | Path | IntensitySource | None, zones: str | list[str],
                     signal: str, seed: int, config: BacktestConfig) -> pd.DataFrame:
    """Observed intensities for :func:`backtest` (its docstring says which hours)."""
    from greenepoch.data.intensity.source import CachedSource, ClimatologySource, source_for
    from greenepoch.data.regions import resolve_zones
    from greenepoch.forecasts.data import load_values
    from greenepoch.forecasts.registry import REGISTRY, get_model

    chosen = source_for(source, seed=seed)
    inner = chosen.inner if isinstance(chosen, CachedSource) else chosen
    if not isinstance(inner, ClimatologySource):
        return load_values(None, signal, zones, source=chosen)
    wanted = (chosen.zones(signal) if isinstance(zones, str) and zones.strip().lower() == "all"
              else resolve_zones(zones))
    history = max(get_model(name).history_needed for name in REGISTRY)
    start = (config.train_until - config.delay - history).floor("1D")
    end = config.test_until.normalize() + config.horizon + config.issue_every
    return chosen.load(wanted, start, end, signal=signal, slot="1h").values
