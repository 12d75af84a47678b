"""Child processes that a signal test sends SIGINT to."""

from __future__ import annotations

import signal


def default_interrupts() -> None:
    """``preexec_fn``: SIGINT and SIGQUIT at their defaults, as a command started from a
    terminal (or a batch shell started by slurmstepd) has them.  A test run started in
    the background inherits them ignored, and then neither Python raises
    KeyboardInterrupt nor can a shell trap them (a signal ignored on entry stays so)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
