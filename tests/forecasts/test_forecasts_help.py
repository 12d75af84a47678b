"""``--help`` texts that name a ``docs/`` or ``examples/`` file (issue 13, item 21).

A pip-installed user has neither folder: a help text may name such a file only if
the installed package ships it (``greenepoch_data``) or if it says the file is in
the source repository.  Started from the forecast options; covers every command.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import click
from greenepoch.planner.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"\b(?:docs|examples)/[\w.-]+")
#: how a help text says the file is not installed with the package
ONLINE = "source repository"


def _help_texts(command: click.Command, path: str = "greenepoch") -> list[tuple[str, str]]:
    """(where, text) of the command's help and its options', recursively."""
    ctx = click.Context(command, info_name=path)
    texts = [(path, command.help or "")]
    texts += [(f"{path} {p.opts[0] if p.opts else p.name}", getattr(p, "help", None) or "")
              for p in command.get_params(ctx)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                texts += _help_texts(sub, f"{path} {name}")
    return texts


def _shipped(name: str) -> bool:
    return resources.files("greenepoch.data").joinpath(Path(name).name).is_file()


def test_every_docs_or_examples_path_in_help_is_shipped_or_said_to_be_in_the_repo() -> None:
    texts = _help_texts(cli)
    assert len(texts) > 50  # every command and option was reached
    found, bad = [], []
    for where, text in texts:
        flat = " ".join(text.split())
        for match in REFERENCE.finditer(flat):
            found.append(match.group())
            assert (ROOT / match.group()).is_file(), f"{where}: {match.group()} does not exist"
            said_online = ONLINE in flat[match.end(): match.end() + 60]
            if not (_shipped(match.group()) or said_online):
                bad.append(f"{where}: {match.group()}")
    assert found, "no help text names a docs/ or examples/ file: the check checked nothing"
    assert bad == [], f"help names files a pip-installed user does not have: {bad}"
