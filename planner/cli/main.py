"""The ``greenepoch`` command: a thin click layer over the library.

Commands parse, call and print; options they share come from
:mod:`greenepoch.planner.cli.options`.  A
:class:`~greenepoch.data.errors.GreenEpochError` anywhere below (an infeasible request,
a solve without a plan in its time limit and data not covering the window included),
a usage error (bad option value, missing argument) or a file that cannot be read or
written (``OSError``) becomes one line on stderr and exit code 2;
a closed stdout (``BrokenPipeError``, e.g. ``| head``) ends quietly with exit code 0.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import click
from greenepoch import __version__
from greenepoch.data.errors import GreenEpochError


class _Group(click.Group):
    """A group whose commands turn domain errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GreenEpochError as exc:
            click.echo(f"greenepoch: error: {as_flags(str(exc), self)}", err=True)
            sys.exit(2)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:  # a bad option value or a missing argument
            where = exc.ctx.command_path if exc.ctx is not None else "greenepoch"
            click.echo(f"greenepoch: error: {exc.format_message()} (see '{where} --help')",
                       err=True)
            sys.exit(2)
        except BrokenPipeError:  # stdout closed early (e.g. `| head`): end quietly
            _quiet_stdout()
            sys.exit(0)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"greenepoch: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)


_PARAM = re.compile(r"(?<!`)`([a-z_][a-z0-9_]*)`(?!`)")  # data.errors.param's form


def option_flags(group: click.Group) -> dict[str, str]:
    """Each option's parameter name and its first long flag, over every command
    (``data_dir`` -> ``--data``).  A name two commands spell differently is left out."""
    seen: dict[str, set[str]] = {}
    for command in _commands(group):
        for p in command.params:
            longs = [o for o in p.opts if o.startswith("--")]
            if isinstance(p, click.Option) and p.name and longs:
                seen.setdefault(p.name, set()).add(longs[0])
    return {name: flags.pop() for name, flags in seen.items() if len(flags) == 1}


def _commands(group: click.Group) -> Iterator[click.Command]:
    yield group
    for command in group.commands.values():
        if isinstance(command, click.Group):
            yield from _commands(command)
        else:
            yield command


def as_flags(message: str, group: click.Group) -> str:
    """A library message as the command line reads it: each `parameter` it names
    becomes the option that sets it; parameters no option sets lose their quotes."""
    if "`" not in message:
        return message
    flags = option_flags(group)
    return _PARAM.sub(lambda m: flags.get(m.group(1), m.group(1)), message)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="greenepoch")
def cli() -> None:
    """Carbon-aware planning of large training jobs across grid regions and time."""


def _register() -> None:
    from greenepoch.planner.cli import (
        data_cmd,
        demo_cmd,
        export_cmd,
        forecast_cmd,
        plan_cmd,
        regions_cmd,
        replay_cmd,
        report_cmd,
        run_cmd,
        slurm_cmd,
        whatif_cmd,
        when_cmd,
    )

    cli.add_command(regions_cmd.regions)
    cli.add_command(data_cmd.data)
    cli.add_command(demo_cmd.demo)
    cli.add_command(plan_cmd.plan)
    cli.add_command(export_cmd.export)
    cli.add_command(slurm_cmd.slurm)
    cli.add_command(replay_cmd.replay)
    cli.add_command(forecast_cmd.forecast)
    cli.add_command(whatif_cmd.whatif)
    cli.add_command(report_cmd.report)
    cli.add_command(when_cmd.when)
    cli.add_command(run_cmd.run)
    cli.add_command(run_cmd.run_sweep)


_register()


if __name__ == "__main__":
    cli()
