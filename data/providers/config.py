"""Live-provider settings: credentials, fallback order, archive URL, base URLs, HTTP patience.

Two sources, the environment winning over the file (docs/live.md):

* the environment: ``ELECTRICITYMAPS_TOKEN``, ``WATTTIME_USERNAME``, ``WATTTIME_PASSWORD``,
  ``GREENEPOCH_ARCHIVE`` (and the providers' ``GREENEPOCH_*_URL``, read by
  :func:`greenepoch.data.providers.registry.make_provider`);
* a TOML file named by ``$GREENEPOCH_CONFIG``, else ``config.toml`` in
  ``platformdirs.user_config_dir("greenepoch")`` when it exists::

    [credentials]      # the variables' names; refused unless the file is private (chmod 600)
    ELECTRICITYMAPS_TOKEN = "..."
    [live]
    providers = ["electricitymaps", "watttime", "ukci"]   # fallback order
    archive = "postgresql+psycopg://user@host/db"   # with a password: private file only
    allow_default = false
    [urls]
    electricitymaps = "https://..."
    [http]             # optional: timeout_s, attempts, total_s, backoff_s, max_backoff_s
    timeout_s = 10
    [electricitymaps]  # optional provider options (granularity, horizon_hours)
    granularity = "15_minutes"

Every problem with the file is one :class:`~greenepoch.data.errors.DataError` naming the
file.  Credential values never appear in a repr, a message or a log.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
from greenepoch.data.errors import DataError
from greenepoch.data.providers.http import HttpPolicy

CONFIG_ENV = "GREENEPOCH_CONFIG"
ARCHIVE_ENV = "GREENEPOCH_ARCHIVE"
#: every provider, in the default fallback order (registry.py maps names to classes)
PROVIDER_NAMES = ("electricitymaps", "watttime", "ukci")
CREDENTIAL_VARS = ("ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD")
#: options a provider's table in the file may set (passed to its constructor)
PROVIDER_OPTIONS: dict[str, tuple[str, ...]] = {
    "electricitymaps": ("granularity", "horizon_hours"),
}
HTTP_KEYS = tuple(f.name for f in fields(HttpPolicy))
_TABLES = ("credentials", "live", "urls", "http", *PROVIDER_OPTIONS)
_LIVE_KEYS = ("providers", "archive", "allow_default")


class Secrets(Mapping[str, str]):
    """Credential name -> value; shown with its names only, never its values."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "Secrets(" + ", ".join(f"{k}=***" for k in sorted(self._values)) + ")"

    __str__ = __repr__


@dataclass(frozen=True)
class LiveConfig:
    """What :func:`load_config` found (see the module docstring)."""

    credentials: Mapping[str, str] = field(default_factory=lambda: Secrets({}))
    providers: tuple[str, ...] = PROVIDER_NAMES
    archive: str | None = None
    allow_default: bool = False
    urls: Mapping[str, str] = field(default_factory=dict)
    http: HttpPolicy = field(default_factory=HttpPolicy)
    path: Path | None = None
    #: provider name -> constructor options from its table in the file
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.credentials, Secrets):
            object.__setattr__(self, "credentials", Secrets(self.credentials))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("greenepoch")) / "config.toml"


def load_config(path: str | Path | None = None,
                env: Mapping[str, str] | None = None) -> LiveConfig:
    """The live settings from ``env`` (default ``os.environ``) over the config file
    (``path``, else ``$GREENEPOCH_CONFIG``, else the default file when it exists)."""
    env = os.environ if env is None else env
    chosen = _config_path(path, env)
    raw = _read(chosen) if chosen is not None else {}
    where = str(chosen)
    unknown = sorted(set(raw) - set(_TABLES))
    if unknown:
        raise DataError(f"config file {where}: unknown table {unknown[0]!r}; "
                        f"expected {', '.join(_TABLES)}")
    tables = {name: _table(raw, name, where) for name in _TABLES}
    file_credentials = _credentials(tables["credentials"], where)
    live = tables["live"]
    _check_keys(live, _LIVE_KEYS, "live", where)
    file_archive = _string(live.get("archive"), "live.archive", where)
    if chosen is not None and (file_credentials or _has_password(file_archive)):
        _check_private(chosen)
    credentials = dict(file_credentials)
    credentials.update({var: env[var] for var in CREDENTIAL_VARS if env.get(var)})
    archive = env.get(ARCHIVE_ENV) or file_archive
    return LiveConfig(
        credentials=Secrets(credentials),
        providers=_providers(live.get("providers", list(PROVIDER_NAMES)), where),
        archive=archive or None,
        allow_default=_flag(live.get("allow_default", False), "live.allow_default", where),
        urls=_urls(tables["urls"], where),
        http=_http(tables["http"], where),
        path=chosen,
        options={name: dict(tables[name]) for name in PROVIDER_OPTIONS
                 if _options(tables[name], name, where)},
    )


def _config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None or env.get(CONFIG_ENV):
        named = Path(path if path is not None else env[CONFIG_ENV]).expanduser()
        if not named.is_file():
            how = f"${CONFIG_ENV}" if path is None else "the config path"
            raise DataError(f"config file {named} (from {how}) does not exist")
        return named
    default = default_config_path()
    return default if default.is_file() else None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # the decoder's message gives a position, never the text at it
        raise DataError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read config file {path}: {exc.strerror}") from None


def _has_password(url: str | None) -> bool:
    """True when a database URL carries a password (``user:pw@`` or ``password=``)."""
    if not url:
        return False
    try:
        in_netloc = urlsplit(url).password is not None
    except ValueError:  # not a URL at all: the archive says so when it opens it
        in_netloc = False
    return in_netloc or re.search(r"(?i)[?&]password=", url) is not None


def _check_private(path: Path) -> None:
    if os.name == "nt":
        return  # no POSIX modes; the user profile's ACLs apply
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise DataError(
            f"config file {path} holds credentials (or an archive password) but others "
            f"may read it (mode {mode:03o}): run `chmod 600 {path}`, or move them to the "
            "environment")


def _table(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise DataError(f"config file {where}: [{name}] must be a table")
    return value


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], name: str,
                where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise DataError(f"config file {where}: unknown key {unknown[0]!r} in [{name}]; "
                        f"expected {', '.join(allowed)}")


def _credentials(table: Mapping[str, Any], where: str) -> dict[str, str]:
    _check_keys(table, CREDENTIAL_VARS, "credentials", where)
    for key, value in table.items():
        if not isinstance(value, str) or not value:
            # the value itself is never echoed
            raise DataError(f"config file {where}: credentials.{key} must be a non-empty "
                            "string")
    return dict(table)


def _providers(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"config file {where}: live.providers must be a list of names "
                        f"among {', '.join(PROVIDER_NAMES)}")
    for name in value:
        if name not in PROVIDER_NAMES:
            raise DataError(f"config file {where}: unknown provider {name!r} in "
                            f"live.providers; expected {', '.join(PROVIDER_NAMES)}")
    if len(set(value)) != len(value):
        raise DataError(f"config file {where}: live.providers names a provider twice")
    return tuple(value)


def _urls(table: Mapping[str, Any], where: str) -> dict[str, str]:
    _check_keys(table, PROVIDER_NAMES, "urls", where)
    for name, url in table.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DataError(f"config file {where}: urls.{name} must be an http(s) URL")
    return dict(table)


def _http(table: Mapping[str, Any], where: str) -> HttpPolicy:
    _check_keys(table, HTTP_KEYS, "http", where)
    for key, value in table.items():
        whole = key == "attempts"
        ok = (isinstance(value, int) if whole else isinstance(value, int | float))
        if not ok or isinstance(value, bool) or value <= 0:
            kind = "a whole number" if whole else "a number"
            raise DataError(f"config file {where}: http.{key} must be {kind} above 0")
    return HttpPolicy(**table)


def _options(table: Mapping[str, Any], name: str, where: str) -> bool:
    _check_keys(table, PROVIDER_OPTIONS[name], name, where)
    return bool(table)


def _string(value: Any, key: str, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise DataError(f"config file {where}: {key} must be a string")
    return value


def _flag(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise DataError(f"config file {where}: {key} must be true or false")
    return value
