"""Reading a provider's JSON answer: the checks every provider makes on the shapes it
is given (an object's field, a list, a number, a time with its offset), each refusing
with :class:`ProviderDataError` in one form, ``<provider> answered <where> ...``.

One :class:`Answers` per provider module (``Answers("watttime")``); ``where`` is what
was asked (a path, an endpoint and zone) and the part of the answer read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from greenepoch.data.errors import ProviderDataError


def is_number(value: Any) -> bool:
    """A finite JSON number (a bool is not one, though Python says it is an int)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True)
class Answers:
    """The checks, with ``provider`` in their messages; ``time_form`` is how the
    provider's documentation writes a time (said when one is refused)."""

    provider: str
    time_form: str = "an ISO 8601 time with its offset"

    def error(self, where: str, what: str) -> ProviderDataError:
        return ProviderDataError(f"{self.provider} answered {where} {what}")

    def mapping(self, body: Any, where: str, what: str = "an answer") -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise self.error(where, f"with {what} that is not an object but "
                                    f"{type(body).__name__} {_short(body)}")
        return body

    def field(self, body: Any, key: str, where: str) -> Any:
        """``body[key]``; refused when ``body`` is not an object or lacks ``key``."""
        if not isinstance(body, Mapping) or key not in body:
            raise self.error(where, f"without {key!r}")
        return body[key]

    def listed(self, value: Any, where: str, what: str = "data") -> list[Any]:
        if not isinstance(value, list):
            raise self.error(where, f"with {what} that is not a list")
        return value

    def time(self, raw: Any, where: str) -> pd.Timestamp:
        """An ISO 8601 time with its offset, in UTC."""
        if not isinstance(raw, str):
            raise self.error(where, f"with time {raw!r}; expected {self.time_form}")
        try:
            when = pd.Timestamp(raw)
        except ValueError:
            raise self.error(where, f"with time {raw!r}, not an ISO 8601 time; expected "
                                    f"{self.time_form}") from None
        if when.tzinfo is None:
            raise self.error(where, f"with time {raw!r}, which has no time zone; expected "
                                    f"{self.time_form}")
        return when.tz_convert("UTC")


def _short(value: Any, most: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= most else text[:most] + "..."
