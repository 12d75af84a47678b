"""One contract over every provider in PROVIDER_NAMES (data/providers/base.py's docstring),
each against its fake, plus the registry that builds them and chains them.

To bring a provider under the contract, give it a row in CONTRACTS: the fake module in
tests/support (whose ``serve(server, now=..., **serve_options)`` registers its routes),
a zone it covers, a signal it serves and one it does not, and the credentials its fake
accepts.  A provider whose module or row is missing is skipped with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from fake_http import FakeServer
from greenepoch.data.errors import DataError, ProviderAuthError
from greenepoch.data.providers.base import Provider
from greenepoch.data.providers.config import CREDENTIAL_VARS, LiveConfig
from greenepoch.data.providers.http import HttpPolicy
from greenepoch.data.providers.records import PROVIDER_SIGNALS, Fetched
from greenepoch.data.providers.registry import (
    PROVIDER_NAMES,
    chain_for,
    make_provider,
    provider_class,
)

NOW = pd.Timestamp("2026-03-02T12:34:00Z")
QUICK = HttpPolicy(timeout_s=2.0, attempts=2, total_s=5.0, backoff_s=0.01, max_backoff_s=0.02)


@dataclass(frozen=True)
class Contract:
    fake: str                     # module in tests/support with serve()
    zone: str                     # a zone the provider covers and its fake answers
    signal: str                   # a signal it serves
    unserved: str                 # a signal it does not serve
    credentials: dict[str, str] = field(default_factory=dict)
    serve_options: dict[str, Any] = field(default_factory=dict)


CONTRACTS = {
    "electricitymaps": Contract(
        "fake_electricitymaps", "DE", "lca", "marginal",
        {"ELECTRICITYMAPS_TOKEN": "contract-em-token"}, {"token": "contract-em-token"}),
    "watttime": Contract(
        "fake_watttime", "US-CAL-CISO", "marginal", "lca",
        {"WATTTIME_USERNAME": "contract-user", "WATTTIME_PASSWORD": "contract-pw-9d1"},
        {"username": "contract-user", "password": "contract-pw-9d1"}),
    "ukci": Contract("fake_ukci", "GB", "direct", "lca"),
}


def contract_for(name: str) -> Contract:
    if importlib.util.find_spec(f"greenepoch.data.providers.{name}") is None:
        pytest.skip(f"data/providers/{name}.py does not exist yet")
    if name not in CONTRACTS:
        pytest.skip(f"no CONTRACTS row for {name} in this test yet")
    return CONTRACTS[name]


@pytest.fixture(params=PROVIDER_NAMES)
def case(request: pytest.FixtureRequest) -> Iterator[tuple[str, Contract, FakeServer]]:
    name = request.param
    contract = contract_for(name)
    fake = importlib.import_module(contract.fake)
    with FakeServer() as server:
        fake.serve(server, now=NOW, **contract.serve_options)
        yield name, contract, server


def build(name: str, contract: Contract, server: FakeServer,
          credentials: dict[str, str] | None = None) -> Provider:
    cls = provider_class(name)
    return cls(base_url=server.url, http=QUICK, clock=lambda: NOW,
               credentials=contract.credentials if credentials is None else credentials)


def test_class_attributes(case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, _server = case
    cls = provider_class(name)
    assert cls.name == name
    assert cls.url_env == f"GREENEPOCH_{name.upper()}_URL"
    assert cls.default_url.startswith("https://")
    assert cls.signals and set(cls.signals) <= set(PROVIDER_SIGNALS)
    assert set(cls.credential_vars) <= set(CREDENTIAL_VARS)
    assert set(contract.credentials) == set(cls.credential_vars)


def test_a_url_variable_that_is_no_http_url_names_it(
        case: tuple[str, Contract, FakeServer], monkeypatch: pytest.MonkeyPatch) -> None:
    name, _contract, _server = case
    cls = provider_class(name)
    monkeypatch.setenv(cls.url_env, "localhost:8080")  # the scheme forgotten
    with pytest.raises(DataError, match=f"{cls.url_env}.*http"):
        cls()


def test_covers_without_a_request(case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, server = case
    provider = build(name, contract, server)
    assert provider.covers(contract.zone)
    assert not provider.covers("no such zone")
    assert server.requests == []


def test_unserved_signal_is_refused_before_any_request(
        case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, server = case
    provider = build(name, contract, server)
    with pytest.raises(DataError, match=repr(contract.unserved)):
        provider.actuals(contract.zone, contract.unserved, NOW - pd.Timedelta("3h"), NOW)
    with pytest.raises(DataError, match=repr(contract.unserved)):
        provider.forecast(contract.zone, contract.unserved)
    assert server.requests == []


def test_missing_credentials_name_the_variable(case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, server = case
    cls = provider_class(name)
    if not cls.credential_vars:
        assert build(name, contract, server, credentials={}).configured()
        return
    for var in cls.credential_vars:
        partial = {k: v for k, v in contract.credentials.items() if k != var}
        provider = build(name, contract, server, credentials=partial)
        assert not provider.configured()
        with pytest.raises(ProviderAuthError, match=var):
            provider.forecast(contract.zone, contract.signal)
    assert server.requests == []


def test_wrong_credentials_name_the_variable_and_hide_the_value(
        case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, server = case
    cls = provider_class(name)
    if not cls.credential_vars:
        pytest.skip(f"{name} needs no credentials")
    wrong = {var: f"wrong-{var.lower()}-value" for var in cls.credential_vars}
    with pytest.raises(ProviderAuthError) as caught:
        build(name, contract, server, credentials=wrong).forecast(contract.zone, contract.signal)
    message = str(caught.value)
    assert name in message and any(var in message for var in cls.credential_vars)
    assert not any(value in message for value in wrong.values())


def check_fetched(fetched: Fetched, name: str, contract: Contract, kind: str) -> None:
    assert isinstance(fetched, Fetched)
    assert (fetched.provider, fetched.zone, fetched.signal, fetched.kind) == (
        name, contract.zone, contract.signal, kind)
    assert len(fetched) > 0
    assert fetched.fetched.tzinfo is not None


@pytest.mark.parametrize("ago", [pd.Timedelta("8h"), pd.Timedelta("20D")],
                         ids=["recent", "past"])
def test_actuals(case: tuple[str, Contract, FakeServer], ago: pd.Timedelta) -> None:
    name, contract, server = case
    start = (NOW - ago).floor("h")
    end = start + pd.Timedelta("6h")
    fetched = build(name, contract, server).actuals(contract.zone, contract.signal, start, end)
    check_fetched(fetched, name, contract, "actual")
    assert fetched.issued is None
    assert fetched.values.index.min() >= start and fetched.values.index.max() < end


def test_forecast(case: tuple[str, Contract, FakeServer]) -> None:
    name, contract, server = case
    fetched = build(name, contract, server).forecast(contract.zone, contract.signal)
    check_fetched(fetched, name, contract, "forecast")
    assert fetched.issued is not None and fetched.issued <= fetched.fetched
    assert fetched.values.index.max() > NOW


def test_registry_builds_it_from_a_config(case: tuple[str, Contract, FakeServer],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    name, contract, server = case
    monkeypatch.delenv(provider_class(name).url_env, raising=False)
    config = LiveConfig(credentials=contract.credentials, urls={name: server.url},
                        http=QUICK, providers=(name,))
    provider = make_provider(name, config, clock=lambda: NOW)
    assert provider.base_url == server.url and provider.configured()
    assert [p.name for p in chain_for(contract.zone, contract.signal, config)] == [name]
    assert chain_for(contract.zone, contract.unserved, config) == []
    fetched = provider.forecast(contract.zone, contract.signal)
    check_fetched(fetched, name, contract, "forecast")


# -- the registry's choices over all providers --------------------------------------------

EM = {"ELECTRICITYMAPS_TOKEN": "t"}
WT = {"WATTTIME_USERNAME": "u", "WATTTIME_PASSWORD": "p"}


@pytest.fixture
def every_provider() -> None:
    for name in PROVIDER_NAMES:
        if importlib.util.find_spec(f"greenepoch.data.providers.{name}") is None:
            pytest.skip(f"data/providers/{name}.py does not exist yet")


def names(chain: list[Provider]) -> list[str]:
    return [p.name for p in chain]


@pytest.mark.usefixtures("every_provider")
@pytest.mark.parametrize("zone, signal, credentials, first, expected", [
    ("DE", "lca", EM, None, ["electricitymaps"]),
    ("DE", "lca", {}, None, []),
    ("GB", "direct", {}, None, ["ukci"]),
    ("GB", "direct", EM, None, ["electricitymaps", "ukci"]),
    ("GB", "direct", EM, "ukci", ["ukci", "electricitymaps"]),
    ("US-CAL-CISO", "marginal", {**EM, **WT}, None, ["watttime"]),
    ("US-CAL-CISO", "direct", {**EM, **WT}, None, ["electricitymaps"]),
])
def test_chain_for(zone: str, signal: str, credentials: dict[str, str], first: str | None,
                   expected: list[str]) -> None:
    config = LiveConfig(credentials=credentials)
    assert names(chain_for(zone, signal, config, first=first)) == expected


@pytest.mark.usefixtures("every_provider")
def test_chain_for_follows_the_configured_order() -> None:
    config = LiveConfig(credentials=EM, providers=("ukci", "electricitymaps"))
    assert names(chain_for("GB", "direct", config)) == ["ukci", "electricitymaps"]
    only = LiveConfig(credentials=EM, providers=("ukci",))
    assert names(chain_for("GB", "direct", only)) == ["ukci"]


@pytest.mark.usefixtures("every_provider")
@pytest.mark.parametrize("zone, signal, first, error, words", [
    ("US-CAL-CISO", "marginal", "watttime", ProviderAuthError,
     "WATTTIME_USERNAME and WATTTIME_PASSWORD"),
    ("DE", "lca", "electricitymaps", ProviderAuthError, "ELECTRICITYMAPS_TOKEN"),
    ("DE", "direct", "ukci", DataError, "ukci does not cover zone 'DE'"),
    ("GB", "marginal", "ukci", DataError, "ukci serves the direct signal, not 'marginal'"),
    ("GB", "direct", "carbonara", DataError, "unknown provider 'carbonara'"),
    ("GB", "purple", None, DataError, "signal must be one of"),
])
def test_chain_for_refuses_a_first_choice_that_cannot_serve(
        zone: str, signal: str, first: str | None, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        chain_for(zone, signal, LiveConfig(), first=first)


def test_make_provider_environment_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    config = LiveConfig(credentials=EM, urls={"electricitymaps": "http://127.0.0.1:1/file"})
    monkeypatch.delenv("GREENEPOCH_ELECTRICITYMAPS_URL", raising=False)
    assert make_provider("electricitymaps", config).base_url == "http://127.0.0.1:1/file"
    monkeypatch.setenv("GREENEPOCH_ELECTRICITYMAPS_URL", "http://127.0.0.1:2/env")
    assert make_provider("electricitymaps", config).base_url == "http://127.0.0.1:2/env"


def test_make_provider_passes_options_and_only_its_own_credentials() -> None:
    config = LiveConfig(credentials={**EM, **WT},
                        options={"electricitymaps": {"granularity": "15_minutes"}})
    provider = make_provider("electricitymaps", config)
    assert provider.step == pd.Timedelta("15min")  # type: ignore[attr-defined]
    assert provider._credentials == EM


def test_unknown_provider_name() -> None:
    with pytest.raises(DataError, match=r"unknown provider 'nope'.*electricitymaps"):
        provider_class("nope")
