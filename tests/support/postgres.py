"""A real PostgreSQL server for tests: initdb, pg_ctl and a database of its own, all
in a private temp dir on a free 127.0.0.1 port, with password (SCRAM) authentication.

The session fixture :func:`postgres_url` yields the URL of a database on it;
:func:`create_database` makes a fresh one (a test that needs an empty archive).  The
server runs as an unprivileged user when the tests run as root (PostgreSQL refuses to
run as root): ``postgres`` from the Debian package, else ``nobody``.  Every wait is
bounded; the server is stopped with ``pg_ctl stop -m fast``, then SIGKILL.

Skips with a reason when PostgreSQL is not installed, unless
``GREENEPOCH_REQUIRE_SERVICES=1`` (CI), where it fails; ``.ci/services.sh`` installs
Debian's ``postgresql``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
USER = "greenepoch"
DATABASE = "greenepoch_test"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as() -> pwd.struct_passwd | None:
    """The user the server runs as: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")


@dataclass
class LocalPostgres:
    """A server in ``root`` (data in ``root/data``, socket and log beside it)."""

    root: Path
    programs: Path
    port: int = 0
    password: str = ""
    started: bool = False

    def _cmd(self, program: str, *args: str) -> list[str]:
        user = _run_as()
        command = [str(self.programs / program), *args]
        return command if user is None else ["runuser", "-u", user.pw_name, "--", *command]

    def _run(self, program: str, *args: str, timeout: float) -> None:
        done = subprocess.run(self._cmd(program, *args), capture_output=True, text=True,
                              timeout=timeout, cwd=self.root, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL: {program} {' '.join(args[:2])} failed "
                               f"({done.returncode}): {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        user = _run_as()
        self.password = secrets.token_hex(12)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(self.root, 0o700)
        if user is not None:
            for path in (self.root, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.root / "data"), "-U", USER, "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                  "--no-sync", timeout=120)
        pwfile.unlink()
        self.port = _free_port()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
                  timeout=START_TIMEOUT_S + 10)
        self.started = True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if not self.started:
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t",
                      str(STOP_TIMEOUT_S), "stop", timeout=STOP_TIMEOUT_S + 5)
        pid_file = self.root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        self.started = False


def create_database(url: str, name: str) -> str:
    """Create the database ``name`` on the server of ``url``; return its URL."""
    import psycopg

    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def require_services() -> bool:
    return os.environ.get("GREENEPOCH_REQUIRE_SERVICES") == "1"


#: the one server of this test process: every module that imports the fixture gets its
#: own session-scoped copy of it, and all of them share this server
_SHARED: dict[str, object] = {}


def _shared_url(programs: Path) -> str:
    if "url" in _SHARED:
        return str(_SHARED["url"])
    root = Path(tempfile.mkdtemp(prefix="greenepoch-postgres-"))
    server = LocalPostgres(root, programs)
    _SHARED["server"] = server
    server.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # pg_ctl -w waited for the socket; a first connection may still race
        try:
            url = create_database(server.url(), DATABASE)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    _SHARED["url"] = url
    return url


def _stop_shared() -> None:
    server = _SHARED.pop("server", None)
    _SHARED.pop("url", None)
    if isinstance(server, LocalPostgres):
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL (``postgresql://user:password@127.0.0.1:port/db``) of a database on a
    PostgreSQL server started once for this test session (stopped at its end)."""
    programs = bin_dir()
    if programs is None or not (programs / "pg_ctl").exists():
        reason = ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                  "run .ci/services.sh to install postgresql")
        if require_services():
            pytest.fail(f"GREENEPOCH_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield _shared_url(programs)
    finally:
        _stop_shared()  # at the session's end: the first copy to finish stops it
