"""data/providers/http.py against a real 127.0.0.1 server: retries, waits, bounds, errors."""

from __future__ import annotations

import itertools
import logging
import time

import pytest
from fake_http import FakeServer, Reply
from greenepoch.data.errors import (
    ProviderAuthError,
    ProviderDataError,
    ProviderUnavailable,
)
from greenepoch.data.providers.http import Http, HttpAuthError, HttpPolicy, HttpStatusError

QUICK = HttpPolicy(timeout_s=2.0, attempts=4, total_s=10.0, backoff_s=0.05, max_backoff_s=0.2)


def ok(seen: object) -> Reply:
    return Reply(200, {"ok": True})


@pytest.fixture
def server():
    with FakeServer() as server:
        server.route("GET", "/thing", ok)
        yield server


def client(server: FakeServer, policy: HttpPolicy = QUICK) -> Http:
    return Http("fakeprovider", server.url, policy, credential_hint="FAKE_TOKEN")


def gaps(server: FakeServer) -> list[float]:
    times = [seen.at for seen in server.requests]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retried_statuses_then_success(server: FakeServer, status: int) -> None:
    server.fail(Reply(status), Reply(status))
    assert client(server).get_json("/thing") == {"ok": True}
    assert len(server.requests) == 3


def test_backoff_waits_are_taken_and_bounded(server: FakeServer) -> None:
    server.fail(Reply(503), Reply(503), Reply(503))
    client(server).get_json("/thing")
    waits = gaps(server)
    assert len(waits) == 3
    # each wait: at least the initial backoff, at most the cap plus the jitter (+ slack)
    assert all(w >= QUICK.backoff_s * 0.9 for w in waits), waits
    assert all(w <= QUICK.max_backoff_s + QUICK.backoff_s + 0.5 for w in waits), waits


def test_retry_after_is_honoured(server: FakeServer) -> None:
    server.fail(Reply(429, headers={"Retry-After": "1"}))
    client(server).get_json("/thing")
    assert 0.95 <= gaps(server)[0] <= 2.0


def test_retry_after_beyond_the_budget_gives_up_at_once(server: FakeServer) -> None:
    server.fail(Reply(429, headers={"Retry-After": "600"}))
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"fakeprovider.*600"):
        client(server).get_json("/thing")
    assert time.monotonic() - began < 2.0
    assert len(server.requests) == 1


def test_connection_errors_are_retried(server: FakeServer) -> None:
    server.fail(Reply(cut=True), Reply(cut=True))
    assert client(server).get_json("/thing") == {"ok": True}
    assert len(server.requests) == 3


def test_an_answer_cut_halfway_is_retried(server: FakeServer) -> None:
    server.fail(Reply(200, {"padding": "x" * 200}, truncated=True))
    assert client(server).get_json("/thing") == {"ok": True}
    assert len(server.requests) == 2


def test_nothing_listening_is_unavailable_after_the_attempts() -> None:
    with FakeServer() as gone:
        url = gone.url
    policy = HttpPolicy(timeout_s=0.5, attempts=3, total_s=5.0, backoff_s=0.01,
                        max_backoff_s=0.02)
    with pytest.raises(ProviderUnavailable, match="fakeprovider did not answer /thing "
                                                  "within 3 attempts"):
        Http("fakeprovider", url, policy).get_json("/thing")


def test_persistent_5xx_is_unavailable(server: FakeServer) -> None:
    server.fail(*[Reply(503)] * 10)
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        client(server).get_json("/thing")
    assert len(server.requests) == QUICK.attempts


def test_timeouts_and_the_total_time_bound(server: FakeServer) -> None:
    policy = HttpPolicy(timeout_s=0.3, attempts=50, total_s=1.5, backoff_s=0.05,
                        max_backoff_s=0.1)
    server.fail(*[Reply(200, {"late": True}, delay_s=1.0)] * 50)
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"no answer within 0\.\d+ s"):
        client(server, policy).get_json("/thing")
    elapsed = time.monotonic() - began
    assert elapsed <= policy.total_s + 0.4, elapsed
    assert 2 <= len(server.requests) < 50


def test_the_last_attempt_ends_with_the_budget(server: FakeServer) -> None:
    # an attempt begun with 0.5 s of the budget left may not take a whole timeout_s
    policy = HttpPolicy(timeout_s=1.0, attempts=3, total_s=1.5, backoff_s=0.01,
                        max_backoff_s=0.01)
    server.fail(*[Reply(200, {"late": True}, delay_s=3.0)] * 3)
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="no answer within"):
        client(server, policy).get_json("/thing")
    assert time.monotonic() - began <= policy.total_s + 0.4
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusal_names_the_variable_and_is_not_retried(server: FakeServer,
                                                            status: int) -> None:
    server.fail(Reply(status, {"message": "bad token"}))
    with pytest.raises(HttpAuthError) as caught:
        client(server).get_json("/thing")
    assert isinstance(caught.value, ProviderAuthError)
    assert caught.value.status == status  # 401 and 403 told apart (WattTime logs in on 401)
    assert "fakeprovider" in str(caught.value) and "FAKE_TOKEN" in str(caught.value)
    assert str(status) in str(caught.value)
    assert len(server.requests) == 1


def test_other_4xx_is_a_status_error(server: FakeServer) -> None:
    server.fail(Reply(404, {"message": "zone XX not found"}))
    with pytest.raises(HttpStatusError) as caught:
        client(server).get_json("/thing")
    assert caught.value.status == 404 and "zone XX not found" in caught.value.detail
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", ["<html>gateway</html>", "{\"truncated\": ", ""])
def test_an_answer_that_is_not_json(server: FakeServer, body: str) -> None:
    server.fail(Reply(200, body, headers={"Content-Type": "text/html"}))
    with pytest.raises(ProviderDataError, match="fakeprovider answered /thing with something "
                                                "that is not JSON"):
        client(server).get_json("/thing")


def test_headers_and_params_never_appear_in_messages_or_logs(
        server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hush-hush-token"
    server.fail(Reply(503), Reply(401))
    with pytest.raises(ProviderAuthError) as caught:
        client(server).get_json("/thing", params={"zone": "DE"}, headers={"auth-token": secret})
    assert secret not in str(caught.value)
    assert secret not in caplog.text
    assert "retry 1 of 3" in caplog.text
    assert server.requests[0].headers["auth-token"] == secret


@pytest.mark.parametrize("reply", [
    Reply(400, {"message": "bad request with token hush-hush-token"}),
    Reply(200, "<html>welcome hush-hush-token</html>"),
])
def test_an_answer_echoing_a_credential_is_not_repeated(server: FakeServer,
                                                         reply: Reply) -> None:
    # what a provider answers is quoted in the message; a token or password sent with
    # the request never is, even when the answer repeats it
    server.fail(reply)
    with pytest.raises((HttpStatusError, ProviderDataError)) as caught:
        client(server).get_json("/thing", headers={"auth-token": "hush-hush-token"},
                                auth=("someone", "hush-hush-token"))
    assert "hush-hush-token" not in str(caught.value)
    assert "***" in str(caught.value)
