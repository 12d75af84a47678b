"""HTTP for the live providers: timeouts on every request, retries with exponential
backoff and jitter, ``Retry-After`` honoured, a bounded total time, clear errors.

``requests`` does the HTTP (connection pooling, TLS, proxies from the environment);
``tenacity`` does the retrying (stop conditions and waits composed, not a hand-written
loop).  What is retried: connection errors (an answer cut off midway too), timeouts,
HTTP 429 and 5xx.  What is not:
401/403 of a provider with credentials (:class:`HttpAuthError`, a ProviderAuthError
naming the variable to set and carrying the ``status``: 401, credentials refused; 403,
accepted but not for this), other 4xx
(:class:`ProviderError` with the provider's message) and an answer that is not JSON
(:class:`ProviderDataError`).  Messages name the provider and the path, never a
header, a parameter value or a credential.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import tenacity
from greenepoch.data.errors import (
    ProviderAuthError,
    ProviderDataError,
    ProviderError,
    ProviderUnavailable,
)

log = logging.getLogger("greenepoch.providers")

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
#: the shortest timeout an attempt is given, even with the budget spent
MIN_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class HttpPolicy:
    """How patient a provider client is.

    ``timeout_s``: connect and read timeout of each request; ``attempts``: requests in
    all; ``total_s``: the whole call, waits included, is given up after this;
    ``backoff_s``: the first wait (doubling, plus up to as much again at random, capped
    at ``max_backoff_s``); a 429's ``Retry-After`` replaces the backoff when it fits in
    the time left.
    """

    timeout_s: float = 10.0
    attempts: int = 4
    total_s: float = 45.0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


class _Retry(Exception):
    """One failed attempt worth another (status or connection error)."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class Http:
    """A JSON client for one provider's ``base_url`` under ``policy``."""

    def __init__(self, provider: str, base_url: str, policy: HttpPolicy, *,
                 credential_hint: str = "") -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.credential_hint = credential_hint
        self.session = requests.Session()

    def get_json(self, path: str, *, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None) -> Any:
        """GET ``base_url + path`` and return the decoded JSON body."""
        policy = self.policy
        began = time.monotonic()
        # exponential from backoff_s plus up to backoff_s of jitter (composed from the
        # tenacity waits that exist since 8.2; wait_exponential_jitter's `initial` is
        # deprecated in 9.x and its replacement, `multiplier`, is absent from 8.x)
        backoff = (tenacity.wait_exponential(multiplier=policy.backoff_s,
                                             max=policy.max_backoff_s)
                   + tenacity.wait_random(0, policy.backoff_s))

        def wait(state: tenacity.RetryCallState) -> float:
            left = policy.total_s - (time.monotonic() - began)
            error = state.outcome.exception() if state.outcome else None
            asked = getattr(error, "retry_after", None)
            if asked is not None:
                if asked > left:
                    raise ProviderUnavailable(
                        f"{self.provider} asked to retry {path} after {asked:g} s, beyond "
                        f"the {policy.total_s:g} s allowed for a request")
                return asked
            return max(0.0, min(backoff(state), policy.max_backoff_s, left))

        def note(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("%s: %s; retry %d of %d", self.provider, error,
                        state.attempt_number, policy.attempts - 1)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts)
            | tenacity.stop_after_delay(policy.total_s),
            wait=wait, retry=tenacity.retry_if_exception_type(_Retry),
            before_sleep=note, reraise=True)
        try:
            response = retrying(self._once, path, params, headers, auth, began)
        except _Retry as last:
            raise ProviderUnavailable(
                f"{self.provider} did not answer {path} within {policy.attempts} attempts "
                f"and {policy.total_s:g} s (last: {last})") from None
        try:
            return response.json()
        except ValueError:
            raise ProviderDataError(
                f"{self.provider} answered {path} with something that is not JSON: "
                f"{_short(_hidden(response.text, headers, auth))!r}") from None

    def _once(self, path: str, params: dict[str, Any] | None,
              headers: dict[str, str] | None, auth: tuple[str, str] | None,
              began: float) -> requests.Response:
        # an attempt begun late gets only what is left of total_s (stop_after_delay is
        # checked after an attempt, so a whole timeout_s would overrun the bound)
        left = self.policy.total_s - (time.monotonic() - began)
        seconds = max(MIN_TIMEOUT_S, min(self.policy.timeout_s, left))
        try:
            response = self.session.get(self.base_url + path, params=params, headers=headers,
                                        auth=auth, timeout=(seconds, seconds))
        except requests.Timeout:
            raise _Retry(f"no answer within {seconds:.2g} s") from None
        except requests.ConnectionError:
            raise _Retry(f"cannot connect to {self.base_url}") from None
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError):
            # the connection broke while the body came: a fault like any connection error
            raise _Retry(f"the answer from {self.base_url} was cut off") from None
        except requests.RequestException as exc:  # a URL requests cannot use, ...
            raise ProviderError(f"{self.provider} cannot request {self.base_url}{path} "
                                f"({type(exc).__name__})") from None
        status = response.status_code
        if status in RETRIED_STATUS:
            raise _Retry(f"HTTP {status}", _retry_after(response) if status == 429 else None)
        # a provider without credentials (ukci) has nothing a user could set: its
        # 401/403 (a proxy, a block) is a status error like any other 4xx
        if status in (401, 403) and self.credential_hint:
            raise HttpAuthError(
                f"{self.provider} refused the request for {path} (HTTP {status}): check "
                f"{self.credential_hint}", status)
        if status >= 400:
            # the provider's words are quoted; a credential they repeat never is
            raise HttpStatusError(self.provider, path, status,
                                  _short(_hidden(response.text, headers, auth)))
        return response


class HttpAuthError(ProviderAuthError):
    """HTTP 401 or 403: ``status`` tells them apart (401: the credentials or token were
    refused, logging in again may help; 403: they were accepted but do not allow this
    request, e.g. a plan without the endpoint or region)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HttpStatusError(ProviderError):
    """A 4xx other than 401/403 (an unknown zone, a range too long, ...): ``status`` and
    the provider's own ``detail`` let the provider module say what went wrong."""

    def __init__(self, provider: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{provider} answered {path} with HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date, RFC 9110)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _hidden(text: str, headers: dict[str, str] | None,
            auth: tuple[str, str] | None) -> str:
    """``text`` with every header value sent (and each one's last word: the token of
    ``Bearer <token>``) and the basic-auth password replaced by ``***``."""
    secrets = [auth[1]] if auth else []
    for value in (headers or {}).values():
        secrets += [value, *value.split()[-1:]]
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:  # "***" in place of every "a" would hide the message
            text = text.replace(secret, "***")
    return text


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
