"""Error hierarchy: every error a user can cause derives from GreenEpochError.

Messages say what was expected, what was found, and what to do.
"""


class GreenEpochError(Exception):
    """Root of all user-facing GreenEpoch errors (the CLI turns them into exit code 2)."""


class DataError(GreenEpochError):
    """Input time-series data is missing, malformed or implausible."""


class CatalogError(GreenEpochError):
    """A zone or cloud region name is not in the region catalog."""


class RequestError(GreenEpochError):
    """A plan request (TOML) is malformed or inconsistent."""


class InfeasibleError(GreenEpochError):
    """A plan request provably has no feasible schedule (a pre-check or the solver showed
    it); the message explains why."""


class NoSolutionError(GreenEpochError):
    """The solver found no plan within its time limit and proved nothing: a plan may
    exist (unlike :class:`InfeasibleError`); the message suggests raising
    ``policy.time_limit``."""


def param(name: str) -> str:
    """How a message names the caller's parameter ``name``: in backquotes, `name`.

    Library messages name parameters (``test_from``), never command-line flags; the
    CLI's error funnel shows the option that sets the parameter (``--test-from``)
    instead, so both readers see the name they typed."""
    return f"`{name}`"
