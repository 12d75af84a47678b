"""Provider names -> classes, and the fallback chain for one zone and signal.

Classes are imported lazily by module path (a provider's module is only loaded when it
is asked for), and each module's :class:`~greenepoch.data.providers.base.Provider`
subclass is found by its ``name``, so adding a provider is one line in ``_MODULES``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable

import pandas as pd
from greenepoch.data.errors import DataError, ProviderAuthError
from greenepoch.data.providers.base import Provider, utc_now
from greenepoch.data.providers.config import PROVIDER_NAMES, LiveConfig
from greenepoch.data.providers.records import PROVIDER_SIGNALS

__all__ = ["PROVIDER_NAMES", "chain_for", "make_provider", "provider_class",
           "providers_covering"]

_MODULES = {name: f"greenepoch.data.providers.{name}" for name in PROVIDER_NAMES}


def provider_class(name: str) -> type[Provider]:
    """The class of provider ``name``; DataError for a name that is not a provider."""
    if name not in _MODULES:
        raise DataError(f"unknown provider {name!r}; expected one of "
                        f"{', '.join(PROVIDER_NAMES)}")
    path = _MODULES[name]
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name != path:
            raise
        raise DataError(f"the {name} provider is not part of this installation") from None
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, Provider)
                and getattr(value, "name", None) == name):
            return value
    raise DataError(f"{path} defines no provider named {name!r}")


def make_provider(name: str, config: LiveConfig, *,
                  clock: Callable[[], pd.Timestamp] | None = None) -> Provider:
    """Provider ``name`` set up from ``config``: its own credentials only, the file's
    base URL unless ``$<url_env>`` is set (the environment wins), the HTTP policy and
    the file's options for it."""
    cls = provider_class(name)
    url = None if os.environ.get(cls.url_env) else config.urls.get(name)
    credentials = {var: config.credentials[var] for var in cls.credential_vars
                   if var in config.credentials}
    return cls(base_url=url, credentials=credentials, http=config.http,
               clock=clock or utc_now, **dict(config.options.get(name, {})))


def providers_covering(zone: str, *, signal: str | None = None,
                       names: Iterable[str] = PROVIDER_NAMES) -> list[str]:
    """The providers of ``names`` that cover ``zone`` (and serve ``signal``, when given),
    decided by each provider's :meth:`~greenepoch.data.providers.base.Provider.covers`
    without a request or credentials: how a zone the region catalog lacks (a UK Carbon
    Intensity region such as GB-LONDON, a WattTime region code such as CAISO_NORTH, an
    Electricity Maps zone key) is admitted for live reads."""
    found = []
    for name in names:
        cls = provider_class(name)
        if signal is not None and signal not in cls.signals:
            continue
        if cls(base_url=cls.default_url).covers(zone):
            found.append(name)
    return found


def chain_for(zone: str, signal: str, config: LiveConfig, *, first: str | None = None,
              clock: Callable[[], pd.Timestamp] | None = None) -> list[Provider]:
    """The providers to try for ``zone`` and ``signal``, in order: ``first`` (the
    user's choice), then the configured order, keeping only providers that are
    configured, cover the zone and serve the signal (never a marginal one in an
    average chain, or the reverse).

    ``first`` is checked strictly: not configured is ProviderAuthError naming its
    variables; not covering the zone or not serving the signal is DataError.
    """
    if signal not in PROVIDER_SIGNALS:
        raise DataError(f"signal must be one of {', '.join(PROVIDER_SIGNALS)}, "
                        f"not {signal!r}")
    chain: list[Provider] = []
    if first is not None:
        chosen = make_provider(first, config, clock=clock)
        if not chosen.configured():
            missing = [v for v in chosen.credential_vars if not config.credentials.get(v)]
            raise ProviderAuthError(
                f"{first} needs {' and '.join(missing)}: set them in the environment or in "
                "the [credentials] table of the GreenEpoch config file (docs/live.md)")
        chosen.check_signal(signal)
        if not chosen.covers(zone):
            raise DataError(f"{first} does not cover zone {zone!r}")
        chain.append(chosen)
    for name in config.providers:
        if name == first:
            continue
        provider = make_provider(name, config, clock=clock)
        if provider.configured() and signal in provider.signals and provider.covers(zone):
            chain.append(provider)
    return chain
