"""Live carbon-intensity providers (issue 16; docs/live.md).

- ``records``: :class:`Fetched`, one checked provider answer (g/kWh on UTC period starts).
- ``http``: the one HTTP client (timeouts, retries with backoff, ``Retry-After``, a
  bounded total time, clear 401/403 errors).
- ``base``: the :class:`Provider` interface every provider implements.
- ``config``: :func:`load_config`, credentials and settings from the environment and the
  private config file.
- ``registry``: provider names -> classes, :func:`make_provider`, the fallback chain.
- ``electricitymaps``, ``watttime``, ``ukci``: the providers.

Nothing here archives, caches or falls back to other sources: ``greenepoch.data.live``
does that, the same way for every provider.
"""
