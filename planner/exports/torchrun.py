"""torchrun's command line, read and completed for a multi-node segment: one home
for the Slurm and Kubernetes exports.

The exports add the rendezvous options (``--nnodes``, ``--node-rank``,
``--master-addr``, ``--master-port``, ``--nproc-per-node``) the command does not give
itself, right after ``torchrun`` (any path) or ``-m torch.distributed.run``, before
the training script; torchrun accepts each under a dash or an underscore spelling.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from greenepoch.planner.exports.common import ExportError

#: Options the export adds when the command lacks them, in this order.
FLAGS = ("nnodes", "node-rank", "master-addr", "master-port", "nproc-per-node")
#: torchrun options that take no value (every other option takes one).
SWITCHES = frozenset({"--standalone", "--no-python", "--no_python", "--run-path",
                      "--run_path", "-m", "--module"})


def insert_at(command: tuple[str, ...]) -> int:
    """Where torchrun's own options go: after ``torchrun`` (any path) or after
    ``-m torch.distributed.run``; raises when the command has neither."""
    if command and command[0].rsplit("/", 1)[-1] == "torchrun":
        return 1
    for i in range(len(command) - 1):
        if command[i] == "-m" and command[i + 1] == "torch.distributed.run":
            return i + 2
    raise ExportError(f"launcher 'torchrun' but the command {shlex.join(command)!r} starts "
                      "neither with torchrun nor with 'python -m torch.distributed.run'; "
                      "start it so, or set the zone's launcher to 'srun' or 'none'")


def given_options(command: tuple[str, ...], at: int) -> set[str]:
    """torchrun options the command gives (``--node-rank`` and ``--node_rank`` alike),
    read up to the training script."""
    given: set[str] = set()
    i = at
    while i < len(command) and command[i].startswith("-"):
        word = command[i]
        name = word.split("=", 1)[0]
        given.add(name.lstrip("-").replace("_", "-"))
        i += 1 if "=" in word or name in SWITCHES else 2
        if name in ("-m", "--module"):
            break  # the module name follows: the training's own arguments begin
    return given


def missing_flags(given: set[str], values: Mapping[str, str]) -> list[str]:
    """``--flag=value`` for each of :data:`FLAGS` the command does not give."""
    return [f"--{flag}={values[flag]}" for flag in FLAGS if flag not in given]
