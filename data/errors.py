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


class ProviderError(DataError):
    """A live intensity provider could not give what was asked (the base of the three
    below); the message names the provider."""


class ProviderAuthError(ProviderError):
    """The provider refused the credentials (HTTP 401/403) or none were configured; the
    message names the variable to set.  Never a reason to fall back silently."""


class ProviderUnavailable(ProviderError):
    """The provider did not answer usefully within the retry budget (connection errors,
    timeouts, 429 and 5xx): the fallback chain moves on to the next source."""


class ProviderDataError(ProviderError):
    """The provider answered with data that fails the checks (malformed JSON, missing
    fields, wrong units, out-of-order or duplicated points, implausible values):
    nothing of that answer is archived."""


def param(name: str) -> str:
    """How a message names the caller's parameter ``name``: in backquotes, `name`.

    Library messages name parameters (``test_from``), never command-line flags; the
    CLI's error funnel shows the option that sets the parameter (``--test-from``)
    instead, so both readers see the name they typed."""
    return f"`{name}`"
