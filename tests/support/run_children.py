"""Small real training stand-ins for the process-control tests:
``python run_children.py MODE DIR [N]``.

Each writes ``DIR/ready-<pid>`` once its signal handlers are in place (a test signals it
only then), ``DIR/env-<pid>.json`` with its GREENEPOCH_ variables, and for each signal
it handles ``DIR/<signal name>-<pid>``.  Modes:

- ``obey``: checkpoints on SIGUSR1 (writes ``DIR/checkpoint-<pid>``) and exits 0;
- ``deaf``: ignores SIGUSR1 and SIGTERM (only SIGKILL ends it);
- ``termable``: ignores SIGUSR1, ends on SIGTERM with the default action;
- ``crash``: exits 3 the first N times (counted in ``DIR/crashes``), then 0 at once;
- ``exit``: exits N at once; ``die``: kills itself with signal N;
- ``parent``: starts a grandchild in ``obey`` mode (pid in ``DIR/grandchild``), then
  obeys SIGUSR1 itself: both exit 0 on the signal to the group;
- ``orphan``: starts a grandchild in ``obey`` mode, then exits 0 at once, leaving it.

Every child (grandchildren too) ends by itself after ``LIFETIME_S`` wall seconds
(``$RUN_CHILDREN_LIFETIME_S``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType


def _mark(folder: Path, name: str) -> None:
    (folder / f"{name}-{os.getpid()}").write_text(str(time.time()))


def _obey(folder: Path) -> None:
    def checkpoint(signum: int, frame: FrameType | None) -> None:
        _mark(folder, signal.Signals(signum).name)
        _mark(folder, "checkpoint")
        sys.exit(0)

    signal.signal(signal.SIGUSR1, checkpoint)


def _grandchild(folder: Path) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, __file__, "obey", str(folder)])
    (folder / "grandchild").write_text(str(child.pid))
    while not (folder / f"ready-{child.pid}").exists():
        time.sleep(0.01)
    return child


#: wall seconds after which a child ends on SIGALRM (default action), whatever it
#: ignores: a test that fails before stopping its children leaves none running for good
LIFETIME_S = 120


def main(mode: str, folder: Path, n: int) -> None:
    signal.alarm(int(os.environ.get("RUN_CHILDREN_LIFETIME_S", LIFETIME_S)))
    env = {k: v for k, v in os.environ.items() if k.startswith("GREENEPOCH_")}
    (folder / f"env-{os.getpid()}.json").write_text(json.dumps(env))
    if mode == "crash":
        count = folder / "crashes"
        done = int(count.read_text()) if count.exists() else 0
        count.write_text(str(done + 1))
        sys.exit(3 if done < n else 0)
    if mode == "exit":
        sys.exit(n)
    if mode == "die":
        os.kill(os.getpid(), n)
    if mode in ("obey", "parent"):
        _obey(folder)
    elif mode == "deaf":
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif mode == "termable":
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    if mode in ("parent", "orphan"):
        _grandchild(folder)
        if mode == "orphan":
            sys.exit(0)
    _mark(folder, "ready")
    while True:
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
