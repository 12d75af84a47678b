"""The forecast model registry: every built-in model by name, and the default.

The models register themselves with :func:`forecasts.base.register` when their module is
imported; this module imports them all, so it sits above them (``base`` <- models <-
``registry``) and nothing below it imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import greenepoch.forecasts.baselines
import greenepoch.forecasts.blend
import greenepoch.forecasts.climatology
import greenepoch.forecasts.ets
import greenepoch.forecasts.gbm
import greenepoch.forecasts.seasonal  # noqa: F401  (registers the built-in models)
from greenepoch.forecasts.base import REGISTRY, Forecaster, ForecastError

#: ``--model default`` resolves to this name (chosen by the accuracy benchmark)
DEFAULT_MODEL = "blend"
BASELINES = ("persistence", "yesterday", "last_week", "mean7d")


def available() -> list[str]:
    return sorted(REGISTRY)


def canonical_name(name: str) -> str:
    """The registered name ``name`` stands for (``default`` -> ``DEFAULT_MODEL``)."""
    return DEFAULT_MODEL if name == "default" else name


def get_model(name: str, **options: object) -> Forecaster:
    """A new, unfitted model by registered name (or ``default``).

    ``options`` go to the model's constructor, e.g. ``prices=`` (a
    :class:`forecasts.prices.DayAheadPrices`) for ``gbm`` and ``blend``.
    """
    name = canonical_name(name)
    if name not in REGISTRY:
        raise ForecastError(
            f"unknown forecast model {name!r}; available: default, {', '.join(sorted(REGISTRY))}"
        )
    unknown = [o for o in sorted(options) if not _takes(REGISTRY[name], o)]
    if unknown:
        takers = "; ".join(f"models that take {o}: {', '.join(models_taking(o)) or 'none'}"
                           for o in unknown)
        raise ForecastError(
            f"model {name!r} does not take option(s) {', '.join(unknown)} ({takers}); pick "
            "one of those models or drop the option"
        )
    return REGISTRY[name](**options)


def _takes(cls: Callable[..., Forecaster], option: str) -> bool:
    params = inspect.signature(cls).parameters
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def models_taking(option: str) -> list[str]:
    """Registered model names whose constructor takes ``option`` (e.g. ``prices``)."""
    return [n for n in sorted(REGISTRY) if _takes(REGISTRY[n], option)]
