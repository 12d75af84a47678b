"""load_config: the environment over the private file, and no secret ever shown."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from greenepoch.data.errors import DataError
from greenepoch.data.providers import config as config_module
from greenepoch.data.providers.config import PROVIDER_NAMES, load_config

SECRET = "s3cr3t-em-token-do-not-show"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture(autouse=True)
def no_default_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The user's own config file never leaks into a test."""
    monkeypatch.setattr(config_module, "default_config_path",
                        lambda: tmp_path / "absent" / "config.toml")


def test_defaults_without_file_or_environment() -> None:
    config = load_config(env={})
    assert config.credentials == {}
    assert config.providers == PROVIDER_NAMES
    assert config.archive is None and config.allow_default is False and config.path is None


def test_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", f"""
[credentials]
ELECTRICITYMAPS_TOKEN = "{SECRET}"
[live]
providers = ["ukci", "electricitymaps"]
archive = "sqlite:///a.db"
allow_default = true
[urls]
electricitymaps = "http://127.0.0.1:9/"
[http]
timeout_s = 3
attempts = 2
total_s = 7.5
[electricitymaps]
granularity = "15_minutes"
""")
    config = load_config(path, env={})
    assert config.credentials["ELECTRICITYMAPS_TOKEN"] == SECRET
    assert config.providers == ("ukci", "electricitymaps")
    assert config.archive == "sqlite:///a.db" and config.allow_default is True
    assert config.urls == {"electricitymaps": "http://127.0.0.1:9/"}
    assert (config.http.timeout_s, config.http.attempts, config.http.total_s) == (3, 2, 7.5)
    assert config.options == {"electricitymaps": {"granularity": "15_minutes"}}
    assert config.path == path


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", """
[credentials]
ELECTRICITYMAPS_TOKEN = "from-file"
WATTTIME_USERNAME = "file-user"
[live]
archive = "sqlite:///file.db"
""")
    env = {"GREENEPOCH_CONFIG": str(path), "ELECTRICITYMAPS_TOKEN": "from-env",
           "GREENEPOCH_ARCHIVE": "postgresql://x@h/db"}
    config = load_config(env=env)
    assert config.credentials["ELECTRICITYMAPS_TOKEN"] == "from-env"
    assert config.credentials["WATTTIME_USERNAME"] == "file-user"
    assert config.archive == "postgresql://x@h/db"
    assert config.path == path


def test_default_file_is_used_when_present(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[live]\nallow_default = true\n", 0o644)
    monkeypatch.setattr(config_module, "default_config_path", lambda: path)
    assert load_config(env={}).allow_default is True


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_readable_file_with_credentials_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "c.toml", f'[credentials]\nELECTRICITYMAPS_TOKEN = "{SECRET}"\n',
                 mode)
    with pytest.raises(DataError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert str(path) in message and "chmod 600" in message and SECRET not in message


@pytest.mark.parametrize("url", [
    f"postgresql://greenepoch:{SECRET}@db.example/greenepoch",
    f"postgresql://db.example/greenepoch?user=greenepoch&password={SECRET}",
])
def test_readable_file_with_an_archive_password_is_refused(tmp_path: Path, url: str) -> None:
    # a database password is a credential too
    path = write(tmp_path / "c.toml", f'[live]\narchive = "{url}"\n', 0o644)
    with pytest.raises(DataError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "chmod 600" in message and SECRET not in message
    os.chmod(path, 0o600)
    assert load_config(path, env={}).archive == url


def test_readable_file_without_credentials_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[live]\nproviders = ["ukci"]\n', 0o644)
    assert load_config(path, env={}).providers == ("ukci",)


@pytest.mark.parametrize("text, words", [
    ("[live\n", "not valid TOML"),
    ("[colour]\nx = 1\n", "unknown table 'colour'"),
    ("[credentials]\nEM_TOKEN = 'x'\n", "unknown key 'EM_TOKEN'"),
    ("[live]\nproviders = ['electricitymaps', 'carbonara']\n", "unknown provider 'carbonara'"),
    ("[live]\nproviders = ['ukci', 'ukci']\n", "twice"),
    ("[live]\nallow_default = 'yes'\n", "live.allow_default"),
    ("[urls]\nukci = 'ftp://x'\n", "urls.ukci"),
    ("[urls]\nnope = 'http://x'\n", "unknown key 'nope'"),
    ("[http]\nattempts = 0\n", "http.attempts"),
    ("[http]\nretries = 3\n", "unknown key 'retries'"),
    ("[electricitymaps]\ncolour = 'green'\n", "unknown key 'colour'"),
    ("credentials = 3\n", "[credentials] must be a table"),
])
def test_bad_files_are_one_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(DataError, match="config file") as caught:
        load_config(path, env={})
    assert words in str(caught.value) and str(path) in str(caught.value)


def test_bad_credential_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[credentials]\nWATTTIME_PASSWORD = 12345678\n")
    with pytest.raises(DataError, match=r"credentials\.WATTTIME_PASSWORD") as caught:
        load_config(path, env={})
    assert "12345678" not in str(caught.value)


def test_named_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"GREENEPOCH_CONFIG.*does not exist"):
        load_config(env={"GREENEPOCH_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(DataError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_no_secret_in_repr_str_logs_or_output(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    path = write(tmp_path / "c.toml", f"""
[credentials]
ELECTRICITYMAPS_TOKEN = "{SECRET}"
WATTTIME_PASSWORD = "{SECRET}-pw"
""")
    config = load_config(path, env={"WATTTIME_USERNAME": "user"})
    shown = repr(config) + str(config) + repr(config.credentials) + str(config.credentials)
    assert "ELECTRICITYMAPS_TOKEN" in shown and SECRET not in shown
    print(config)
    logging.getLogger("greenepoch").info("config %s", config)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert SECRET not in caplog.text
    assert dict(config.credentials)["WATTTIME_PASSWORD"] == f"{SECRET}-pw"
