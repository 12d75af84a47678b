"""Options shared by several commands, defined once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from greenepoch.data.errors import GreenEpochError
from greenepoch.data.intensity.readers import ALLOW_IMPLAUSIBLE_ENV, skipped_files

if TYPE_CHECKING:
    from greenepoch.data.archive.store import Archive
    from greenepoch.data.providers.config import LiveConfig

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

def note_skipped(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Name, on stderr, the ``*.csv`` in the data folder that are not regular files
    (the readers skip them: a FIFO would block the read)."""
    if value:
        for why in skipped_files(value):
            click.echo(f"greenepoch: skipped {why}", err=True)
    return value


def _data_folder(without: str, required: bool = False) -> Decorator:
    """``--data``; ``without``: what happens when neither it nor the variable is given."""
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(path_type=str),
        envvar="GREENEPOCH_DATA",
        default=None,
        required=required,
        callback=note_skipped,
        help="Folder of Electricity Maps exports (or a folder holding 'electricitymaps/'). "
        f"Defaults to $GREENEPOCH_DATA{without}",
    )


data_folder_option = _data_folder("; without either, the embedded synthetic default is used.")
# forecasts are fitted and judged on measured data only
measured_data_folder_option = _data_folder("; one of them is needed (measured data).")
required_data_folder_option = _data_folder(".", required=True)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the command's run (worker processes inherit it)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _allow_implausible(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.with_resource(_env(ALLOW_IMPLAUSIBLE_ENV, "1"))
    return value


allow_implausible_option = click.option(
    "--allow-implausible",
    is_flag=True,
    expose_value=False,
    callback=_allow_implausible,
    help="Accept intensity series that look like the wrong unit (all zeros, or every value "
    "under 5 gCO2eq/kWh in a zone that is not hydro/nuclear-only). Same as "
    f"${ALLOW_IMPLAUSIBLE_ENV}=1.",
)


def data_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` and ``--allow-implausible``: every command that reads real data has both."""
    return data_folder_option(allow_implausible_option(command))


def measured_data_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`data_option` for commands without a synthetic fallback (forecasts)."""
    return measured_data_folder_option(allow_implausible_option(command))


signal_option = click.option(
    "--signal",
    type=click.Choice(["direct", "lca"]),
    default="direct",
    show_default=True,
    help="Carbon-intensity signal: direct (operational) or lca (life-cycle).",
)
# commands with --live: WattTime's marginal signal too (never mixed with the average ones)
live_signal_option = click.option(
    "--signal",
    type=click.Choice(["direct", "lca", "marginal"]),
    default="direct",
    show_default=True,
    help="Carbon-intensity signal: direct (operational), lca (life-cycle), or marginal "
    "(WattTime's marginal emissions; with --live only).",
)

live_option = click.option(
    "--live",
    is_flag=True,
    help="Plan on the grid as it is now: live provider data and forecasts (docs/live.md "
    "of the source repository).",
)
provider_option = click.option(
    "--provider",
    type=click.Choice(["electricitymaps", "watttime", "ukci"]),  # registry.PROVIDER_NAMES
    default=None,
    help="Live data provider (with --live). Default: the first configured provider that "
    "covers the zone (ukci needs no key).",
)
allow_default_option = click.option(
    "--allow-default",
    "allow_default",
    is_flag=True,
    default=None,  # None: the config file's [live] allow_default decides
    help="With --live: fall back on the embedded synthetic default when every provider and "
    "the archive fail (it is marked synthetic in the output).",
)
archive_option = click.option(
    "--archive",
    "archive_url",
    default=None,
    metavar="URL",
    help="Archive database URL (sqlite:///... or postgresql+psycopg://...). Default "
    "$GREENEPOCH_ARCHIVE, else the config file's [live] archive, else SQLite in the user "
    "cache folder.",
)


def live_archive_url(archive_url: str | None, config: LiveConfig | None = None) -> str:
    """The archive's URL: ``--archive``, else ``$GREENEPOCH_ARCHIVE``, else the config
    file's (``config``, default :func:`~greenepoch.data.providers.config.load_config`),
    else SQLite in the user cache folder."""
    from greenepoch.data.archive.store import archive_url as chosen
    from greenepoch.data.providers.config import load_config

    return archive_url or chosen((config or load_config()).archive)


def live_archive(archive_url: str | None, config: LiveConfig | None = None) -> Archive:
    """The archive of :func:`live_archive_url` (a SQLite file is created if missing)."""
    from greenepoch.data.archive.store import Archive

    return Archive(live_archive_url(archive_url, config))


def missing_sqlite_file(url: str) -> str | None:
    """The file of a SQLite ``url`` that does not exist yet (opening it would create
    it), else None: commands that only read an archive never create one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # the archive's own message says what is wrong with it
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or not Path(database).exists():
        return database or ":memory:"
    return None


def live_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--live``, ``--provider``, ``--allow-default`` and ``--archive``: every command
    that can read live data has all four."""
    return live_option(provider_option(allow_default_option(archive_option(command))))


def check_live_options(live: bool, *, provider: str | None, allow_default: bool | None,
                       archive_url: str | None, signal: str) -> None:
    """The options of :func:`live_options` (and ``--signal marginal``, WattTime's) only
    go with ``--live``: without it they would be silently ignored."""
    if live:
        return
    used = [flag for flag, value in (("--provider", provider), ("--archive", archive_url),
                                     ("--allow-default", allow_default)) if value]
    if signal == "marginal":
        used.append("--signal marginal")
    if used:
        verb = "works" if len(used) == 1 else "work"
        raise click.UsageError(f"{', '.join(used)} {verb} only with --live; add --live")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def zones_option(**kwargs: Any) -> Decorator:
    """``--zones``; ``kwargs`` override the click settings (e.g. ``default="all"``)."""
    settings: dict[str, Any] = {
        "default": None,
        "help": "Comma-separated zone ids or cloud regions (e.g. DE,eu-north-1), or 'all'.",
    }
    return click.option("--zones", **(settings | kwargs))


class _AliasedOption(click.Option):
    """An option whose later names are accepted but left out of ``--help`` (old
    spellings kept working after a rename)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = self.opts
        self.opts = self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


FORECAST_DEFAULT = "default"  # forecasts.registry.DEFAULT_MODEL: the best measured (blend)

forecast_option = click.option(
    "--forecast",
    "--model",  # the name `forecast predict/backtest` used: still accepted, not shown
    "model",
    cls=_AliasedOption,
    default=FORECAST_DEFAULT,
    show_default=True,
    metavar="MODEL",
    help="Forecast model by name: 'default' is the best measured one (blend); an unknown "
    "name lists the available ones.",
)


def forecast_given(ctx: click.Context) -> bool:
    """Whether ``--forecast`` (or ``--model``) was given rather than left at its default
    (``plan`` then keeps the request's ``policy.forecast``)."""
    source = ctx.get_parameter_source("model")
    return source is not None and source is not click.core.ParameterSource.DEFAULT


plan_argument = click.argument("plan_file", metavar="PLAN.json", type=click.Path(path_type=str))

config_option = click.option(
    "--config", "config_file", type=click.Path(path_type=str), default=None,
    envvar="GREENEPOCH_CLUSTERS",
    help="Clusters TOML: command per job and cluster per zone (default $GREENEPOCH_CLUSTERS; "
    "see examples/clusters.toml in the GreenEpoch source repository).",
)


def output_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check an output file's folder before any work is done (a long solve must not be
    lost to a typo in ``--out``)."""
    if value is None:
        return None
    path = Path(value)
    name = "/".join(param.opts) if param.opts else "output"
    if path.is_dir():
        raise GreenEpochError(
            f"{name} {value} is a folder; give a file name inside it, e.g. {path / 'out.json'}"
        )
    if not path.parent.is_dir():
        raise GreenEpochError(
            f"{name} {value}: folder {path.parent} does not exist; create it first"
        )
    return value
