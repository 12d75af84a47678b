"""Live intensities: the providers in fallback order, the archive, the synthetic default.

For each zone, :class:`LiveSource` asks the providers of
:func:`~greenepoch.data.providers.registry.chain_for` in turn (the ``provider`` choice
first, then the configured order; only those configured, covering the zone and serving
the signal, so marginal and average signals never meet in one chain):

1. a provider that answers: its answer is put in the archive, then used (origin
   ``live``);
2. a provider that is down (:class:`~greenepoch.data.errors.ProviderUnavailable`), that
   answers something that fails the checks
   (:class:`~greenepoch.data.errors.ProviderDataError`, nothing archived), refuses the
   request otherwise, or answers a series that cannot serve (empty, a gap longer than
   3 h): one warning naming the provider and why, then the next provider;
3. a refused credential (:class:`~greenepoch.data.errors.ProviderAuthError`) is raised:
   a misconfiguration the user must fix, never skipped;
4. every provider failed: the archive's values, origin ``archive``, with their age
   (``stale_s``: now minus the newest fetch among them) and a warning;
5. nothing archived: the embedded synthetic default (the climatology, origin
   ``default``, ``source`` synthetic) only when ``allow_default``; otherwise
   ProviderUnavailable saying what was tried.

Stale or synthetic values are never presented as live: each read adds one
:class:`Provenance` per zone to :attr:`LiveSource.provenance`, and the frame's
``provider`` names where the values came from (the providers, ``archive`` or
``climatology``, joined with ``+`` when zones differ) instead of ``live``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace

import pandas as pd
from greenepoch.data.archive.source import ArchiveSource, join_zones, zone_frame
from greenepoch.data.archive.store import Archive, archive_url
from greenepoch.data.errors import (
    DataError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    param,
)
from greenepoch.data.intensity.frame import IntensityData
from greenepoch.data.intensity.resample import target_step
from greenepoch.data.intensity.source import ClimatologySource, IntensitySource
from greenepoch.data.providers.base import Provider, utc_now
from greenepoch.data.providers.config import LiveConfig
from greenepoch.data.providers.records import Fetched
from greenepoch.data.providers.registry import chain_for

log = logging.getLogger("greenepoch.live")

#: what a read covers when no start is given: the last day
DEFAULT_HISTORY = pd.Timedelta("24h")


@dataclass(frozen=True)
class Provenance:
    """Where one zone's values of one kind came from (recorded in the plan JSON and
    the run log).

    ``origin``: ``live`` (fetched now), ``archive`` (a provider's earlier answer, kept
    in the archive: stale) or ``default`` (the embedded synthetic climatology).
    ``provider``: who produced the values (``electricitymaps``, ``watttime``,
    ``ukci``, ``climatology``).  ``fetched``: when they were fetched (the newest fetch
    among archived values); ``issued``: a forecast's issue time.  ``stale_s``: seconds
    between that fetch and the read, for archived values (None when live).
    ``first``/``last``: the first and last period start covered (UTC).
    """

    zone: str
    kind: str
    origin: str
    provider: str
    signal: str
    fetched: pd.Timestamp | None
    issued: pd.Timestamp | None
    stale_s: float | None
    first: pd.Timestamp | None
    last: pd.Timestamp | None

    @property
    def stale(self) -> bool:
        return self.origin != "live"


class LiveSource(IntensitySource):
    """Intensities from the live providers with their fallbacks (see the module
    docstring).

    ``config``: :func:`~greenepoch.data.providers.config.load_config`'s answer.
    ``provider``: the provider to ask first (``--provider``).  ``archive``: where every
    answer is kept (default: the configured archive, opened on first use).
    ``allow_default``: fall back on the synthetic default (default: the config's
    ``[live] allow_default``).  ``warn``: called with each one-line warning (default:
    the ``greenepoch.live`` logger).
    """

    name = "live"

    def __init__(self, config: LiveConfig, *, provider: str | None = None,
                 archive: Archive | None = None, allow_default: bool | None = None,
                 clock: Callable[[], pd.Timestamp] = utc_now,
                 warn: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.provider = provider
        self._archive = archive
        self.allow_default = config.allow_default if allow_default is None else allow_default
        self.clock = clock
        self.warn = warn or log.warning
        self.provenance: list[Provenance] = []
        self._read_marks: dict[str, Provenance] = {}

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            self._archive = Archive(archive_url(self.config.archive))
        return self._archive

    def load(self, zones: Sequence[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
             *, signal: str = "direct", slot: str | None = "1h", clip_start: bool = False
             ) -> IntensityData:
        """As :meth:`IntensitySource.load`; ``start``/``end`` None: the last day / now.
        Adds one :class:`Provenance` per zone to :attr:`provenance`."""
        self._read_marks = {}
        data = super().load(zones, start, end, signal=signal, slot=slot,
                            clip_start=clip_start)
        index = data.values.index
        marks = [replace(self._read_marks[z], first=index[0], last=index[-1])
                 for z in data.zones]
        self.provenance.extend(marks)
        return replace(data, provider=_label(marks))

    def forecast(self, zones: Sequence[str], signal: str) -> dict[str, Fetched | None]:
        """The provider forecast of each zone through the same chain (archived before
        use); when every provider failed, the archive's newest forecast issued by now
        (stale, warned); None when there is none."""
        wanted = [zones] if isinstance(zones, str) else list(dict.fromkeys(zones))
        return {zone: self._forecast(zone, signal) for zone in wanted}

    def _read(self, zones: list[str], start: pd.Timestamp | None, end: pd.Timestamp | None,
              signal: str, slot: str) -> IntensityData:
        width = target_step(slot)
        end = self.clock().floor(width) if end is None else end
        start = (end - DEFAULT_HISTORY if start is None else start).floor(width)
        parts = {zone: self._actual(zone, signal, start, end, slot) for zone in zones}
        synthetic = any(mark.origin == "default" for mark in self._read_marks.values())
        return join_zones(parts, "synthetic" if synthetic else "real")

    def cache_key(self, zones: list[str], start: pd.Timestamp | None,
                  end: pd.Timestamp | None, signal: str, slot: str) -> Hashable:
        # a live read is never the same twice: the time is part of it
        return (self.clock(), super().cache_key(zones, start, end, signal, slot))

    def describe(self) -> str:
        return "the live providers"

    def _chain(self, zone: str, signal: str) -> list[Provider]:
        return chain_for(zone, signal, self.config, first=self.provider, clock=self.clock)

    def _actual(self, zone: str, signal: str, start: pd.Timestamp, end: pd.Timestamp,
                slot: str) -> IntensityData:
        tried: list[str] = []
        chain = self._chain(zone, signal)
        for provider in chain:
            fetched = self._ask(provider, zone, signal, tried, (start, end))
            if fetched is None:
                continue
            try:
                frame = zone_frame(fetched, slot)
            except DataError as exc:  # empty, or a gap too long to interpolate
                tried.append(self._skip(provider.name, zone, exc))
                continue
            self._mark(zone, "actual", "live", fetched, stale_s=None)
            return frame
        if not chain:
            tried.append(f"no configured provider serves {signal} intensities for {zone}")
        return self._fallback(zone, signal, start, end, slot, [p.name for p in chain], tried)

    def _fallback(self, zone: str, signal: str, start: pd.Timestamp, end: pd.Timestamp,
                  slot: str, chain: list[str], tried: list[str]) -> IntensityData:
        stored = ArchiveSource(self.archive, prefer=chain).series(zone, signal, start, end)
        if stored is not None:
            try:
                frame = zone_frame(stored, slot)
            except DataError as exc:
                tried.append(f"the archive: {exc}")
            else:
                age = self.clock() - stored.fetched
                self.warn(f"{zone}: using archived {signal} intensities from "
                          f"{stored.provider}, {_age(age)} old (stale), in place of live ones")
                self._mark(zone, "actual", "archive", stored, stale_s=age.total_seconds())
                return frame
        else:
            tried.append(f"the archive {self.archive.shown} holds none for {zone} from "
                         f"{start.isoformat()} to {end.isoformat()}")
        if self.allow_default and signal != "marginal":
            try:
                frame = ClimatologySource().load([zone], start, end, signal=signal, slot=slot)
            except DataError as exc:  # a zone the climatology does not know
                raise ProviderUnavailable(f"no {signal} intensities for {zone}: "
                                          f"{'; '.join(tried)}; the synthetic default: {exc}"
                                          ) from None
            self.warn(f"{zone}: using the embedded synthetic default ({signal}), not real "
                      "intensities")
            self._read_marks[zone] = Provenance(zone, "actual", "default", "climatology",
                                                signal, None, None, None, None, None)
            return frame
        hint = (" (the synthetic default has no marginal signal)" if signal == "marginal"
                else f"; allow the embedded synthetic default with {param('allow_default')} "
                     "(allow_default = true under [live] in the config file) to plan anyway")
        raise ProviderUnavailable(
            f"no {signal} intensities for {zone}: {'; '.join(tried)}{hint}")

    def _forecast(self, zone: str, signal: str) -> Fetched | None:
        chain = self._chain(zone, signal)
        for provider in chain:
            fetched = self._ask(provider, zone, signal, [])
            if fetched is None:
                continue
            if fetched.values.empty:
                self._skip(provider.name, zone, DataError("an empty forecast"))
                continue
            self.provenance.append(self._provenance(zone, "forecast", "live", fetched, None))
            return fetched
        now = self.clock()
        stored = self.archive.forecast_at(zone, signal, now)
        if stored is None or stored.values.empty:
            self.warn(f"{zone}: no {signal} provider forecast, live or archived")
            return None
        ended = stored.values.index[-1] + stored.step
        if ended <= now:  # nothing of it is still ahead
            self.warn(f"{zone}: no {signal} provider forecast; the newest archived one "
                      f"ended at {ended.isoformat()}")
            return None
        age = now - stored.fetched
        self.warn(f"{zone}: using the archived {stored.provider} forecast issued "
                  f"{stored.issued.isoformat() if stored.issued is not None else '?'}, "
                  f"{_age(age)} old (stale), in place of a live one")
        self.provenance.append(self._provenance(zone, "forecast", "archive", stored,
                                                age.total_seconds()))
        return stored

    def _ask(self, provider: Provider, zone: str, signal: str, tried: list[str],
             window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> Fetched | None:
        """The provider's actuals over ``window`` (None: its forecast), archived; None
        (warned, noted in ``tried``) when the provider is down or its answer fails the
        checks; a refused credential is raised."""
        try:
            fetched = (provider.forecast(zone, signal) if window is None
                       else provider.actuals(zone, signal, *window))
        except ProviderAuthError:
            raise
        except ProviderError as exc:
            tried.append(self._skip(provider.name, zone, exc))
            return None
        self.archive.put(fetched)
        return fetched

    def _skip(self, provider: str, zone: str, exc: Exception) -> str:
        self.warn(f"{provider} gave no usable answer for {zone} ({exc}); trying the next source")
        return f"{provider}: {exc}"

    def _mark(self, zone: str, kind: str, origin: str, fetched: Fetched,
              stale_s: float | None) -> None:
        self._read_marks[zone] = self._provenance(zone, kind, origin, fetched, stale_s)

    @staticmethod
    def _provenance(zone: str, kind: str, origin: str, fetched: Fetched,
                    stale_s: float | None) -> Provenance:
        index = fetched.values.index
        return Provenance(zone, kind, origin, fetched.provider, fetched.signal,
                          fetched.fetched, fetched.issued, stale_s,
                          index[0] if len(index) else None, index[-1] if len(index) else None)

    def __repr__(self) -> str:
        return f"LiveSource(provider={self.provider!r})"


def _label(marks: list[Provenance]) -> str:
    """The frame's ``provider``: who produced the values, ``archive`` for stale ones."""
    names = ["archive" if m.origin == "archive" else m.provider for m in marks]
    return "+".join(dict.fromkeys(names))


def _age(age: pd.Timedelta) -> str:
    hours = age / pd.Timedelta("1h")
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
