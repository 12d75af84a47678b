"""The live provider interface: one class per provider, answering in :class:`Fetched`.

A provider knows its own API and nothing else: how to ask for the actual intensities of
a zone over a range, its current forecast, and which zones and signals it serves.  It
does not archive, cache or fall back (``greenepoch.data.live`` does, the same way for
every provider); it never logs or prints a credential.

Contract of every implementation (tested over all of them):

* ``actuals(zone, signal, start, end)``: what the provider reports for ``[start, end)``
  (UTC), ``kind`` ``actual``, at the provider's own period; it may return less than asked
  for when the provider has less (a series may be empty), never more than its answer;
* ``forecast(zone, signal)``: the provider's latest forecast from now, ``kind``
  ``forecast``, with the provider's issue time;
* a signal the provider does not serve, or a zone it does not cover, is a
  :class:`~greenepoch.data.errors.DataError` naming what it serves, raised before any
  request; missing credentials and HTTP 401/403 are
  :class:`~greenepoch.data.errors.ProviderAuthError` naming the variable to set;
  no answer within the retry budget is :class:`~greenepoch.data.errors.ProviderUnavailable`;
  a malformed answer is :class:`~greenepoch.data.errors.ProviderDataError`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar

import pandas as pd
from greenepoch.data.errors import DataError, param
from greenepoch.data.providers.http import Http, HttpPolicy
from greenepoch.data.providers.records import Fetched


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def chunks(start: pd.Timestamp, end: pd.Timestamp,
           span: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` cut into consecutive ``[lo, hi)`` of at most ``span``: one request
    each where an API limits the range it answers."""
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    while start < end:
        bounds.append((start, min(end, start + span)))
        start = bounds[-1][1]
    return bounds


class Provider(ABC):
    """A live carbon-intensity API (see the module docstring).

    ``base_url``: None takes ``$<url_env>`` and then ``default_url`` (mirrors and proxies,
    and the tests' local servers, set the variable).  ``credentials``: variable name ->
    value (:func:`greenepoch.data.providers.config.load_config` reads them from the
    environment or the private config file).  ``clock``: the current UTC time.
    """

    name: ClassVar[str]
    #: environment variable that overrides ``default_url``
    url_env: ClassVar[str]
    default_url: ClassVar[str]
    #: signals served: ("direct", "lca"), ("marginal",), ...
    signals: ClassVar[tuple[str, ...]]
    #: credential variables the provider needs (empty: none)
    credential_vars: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, base_url: str | None = None,
                 credentials: Mapping[str, str] | None = None,
                 http: HttpPolicy | None = None,
                 clock: Callable[[], pd.Timestamp] = utc_now) -> None:
        chosen = base_url or os.environ.get(self.url_env) or self.default_url
        if not chosen.startswith(("http://", "https://")):
            # else requests' own words ("No connection adapters were found for ...")
            # would be all the user sees, naming neither the provider nor the variable
            raise DataError(f"{self.name}: the base URL {chosen!r} (from {self.url_env} or "
                            "the config file's [urls]) must be an http:// or https:// URL")
        self.base_url = chosen.rstrip("/")
        self._credentials = dict(credentials or {})
        self.clock = clock
        self.http = Http(self.name, self.base_url, http or HttpPolicy(),
                         credential_hint=" and ".join(self.credential_vars))

    def configured(self) -> bool:
        """True when every credential the provider needs is present (no request made)."""
        return all(self._credentials.get(var) for var in self.credential_vars)

    def credential(self, var: str) -> str:
        """The credential ``var``, or ProviderAuthError naming it."""
        from greenepoch.data.errors import ProviderAuthError

        value = self._credentials.get(var)
        if not value:
            raise ProviderAuthError(
                f"{self.name} needs {var}: set it in the environment or in the [credentials] "
                "table of the GreenEpoch config file (docs/live.md)")
        return value

    def check_signal(self, signal: str) -> None:
        if signal not in self.signals:
            raise DataError(
                f"{self.name} serves the {' and '.join(self.signals)} signal"
                f"{'s' if len(self.signals) > 1 else ''}, not {signal!r}")

    def window(self, start: pd.Timestamp, end: pd.Timestamp
               ) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``[start, end)`` of an :meth:`actuals` call in UTC: refused (DataError, before any
        request) when a time has no time zone or ``end`` is not after ``start``."""
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        # literal names: the CLI maps each to its option (tests/planner/test_cli_messages.py)
        if start.tzinfo is None:
            raise DataError(f"{self.name}: {param('start')} must be a time with a time "
                            f"zone, found {start}")
        if end.tzinfo is None:
            raise DataError(f"{self.name}: {param('end')} must be a time with a time "
                            f"zone, found {end}")
        start, end = start.tz_convert("UTC"), end.tz_convert("UTC")
        if end <= start:
            raise DataError(f"{self.name}: {param('end')} {end.isoformat()} must come after "
                            f"{param('start')} {start.isoformat()}")
        return start, end

    @abstractmethod
    def covers(self, zone: str) -> bool:
        """True when the provider serves ``zone`` (decided without a request)."""

    @abstractmethod
    def actuals(self, zone: str, signal: str, start: pd.Timestamp,
                end: pd.Timestamp) -> Fetched:
        """Reported intensities over ``[start, end)``."""

    @abstractmethod
    def forecast(self, zone: str, signal: str) -> Fetched:
        """The provider's latest forecast, from now on."""

    def __repr__(self) -> str:
        # never the credentials
        return f"{type(self).__name__}({self.base_url!r})"
