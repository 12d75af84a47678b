"""A real single-machine Slurm cluster for tests: munged, slurmctld and two slurmd
nodes with fake GPUs on localhost, all in a private temp dir.

Recipe and pitfalls: ``shared/notes/slurm-local-cluster.md``.  Every wait is
bounded; daemons are stopped by pid (SIGTERM, then SIGKILL after a bounded wait).

The session fixture :func:`slurm_cluster` skips with a reason when Slurm is not
installed, unless ``GREENEPOCH_REQUIRE_SERVICES=1`` (CI), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

NODES = {"n1": 2, "n2": 2}  # node name -> fake GPUs
CPUS_PER_NODE = 2
PARTITION = "gpu"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_binaries() -> list[str]:
    """Slurm and munge programs the cluster needs that are not on PATH."""
    paths = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [b for b in (*DAEMONS, "sbatch", "squeue", "scontrol", "sinfo")
            if shutil.which(b, path=paths) is None]


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _alive(pid: int) -> bool:
    """True while pid runs (a zombie counts as gone)."""
    try:
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except subprocess.TimeoutExpired:
        return True
    return bool(out) and not out.startswith("Z")


def _wait_for(predicate: Any, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"local Slurm: timed out after {timeout:.0f} s waiting for {what}{tail}")


@dataclass
class LocalSlurm:
    """Paths and environment of a running local cluster."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    pid_files: list[Path] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def run(self, *args: str, check: bool = True, timeout: float = 30,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command against this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout, **kwargs)

    def squeue(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = json.loads(self.run("squeue", "--json").stdout)["jobs"]
        return jobs

    def job(self, job_id: int | str) -> dict[str, str]:
        """``scontrol show job`` as a dict of its Key=Value fields (times in UTC)."""
        out = self.run("env", "TZ=UTC", "scontrol", "show", "job", "-o", str(job_id)).stdout
        fields: dict[str, str] = {}
        for token in out.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        return fields

    def wait_state(self, job_id: int | str, states: set[str], timeout: float) -> str:
        """Wait (bounded) until the job is in one of ``states``; return the state."""
        seen = ""

        def reached() -> bool:
            nonlocal seen
            seen = self.job(job_id).get("JobState", "")
            return seen in states

        try:
            _wait_for(reached, timeout, f"job {job_id} in {sorted(states)}")
        except RuntimeError as exc:
            raise AssertionError(f"{exc} (last state {seen})") from None
        return seen

    def cancel_all(self, timeout: float = 15) -> None:
        """Cancel every job and wait (bounded) until none is left running, so that no
        slurmstepd outlives the cluster."""
        self.run("scancel", "--user", pwd.getpwuid(os.getuid()).pw_name, check=False)

        def drained() -> bool:
            try:
                jobs = self.squeue()
            except (subprocess.SubprocessError, ValueError, KeyError):
                return True
            return not any("RUNNING" in str(j.get("job_state")) or
                           "COMPLETING" in str(j.get("job_state")) for j in jobs)

        with contextlib.suppress(RuntimeError):
            _wait_for(drained, timeout, "cancelled jobs to end")

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        root = self.root
        for sub in ("munge", "state", "spool", "log", "dev", *(f"spool/{n}" for n in NODES)):
            (root / sub).mkdir(parents=True, exist_ok=True)
        munge_dir = root / "munge"
        user = pwd.getpwnam("munge")
        os.chown(munge_dir, user.pw_uid, user.pw_gid)
        os.chmod(munge_dir, 0o711)  # the socket dir must be o+x for clients
        os.chmod(root, 0o755)
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chown(key, user.pw_uid, user.pw_gid)
        os.chmod(key, 0o400)
        socket_path = munge_dir / "munge.socket.2"
        munge_pid = munge_dir / "munged.pid"
        subprocess.run(
            ["runuser", "-u", "munge", "--", "munged", f"--socket={socket_path}",
             f"--key-file={key}", f"--pid-file={munge_pid}",
             f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={munge_dir / 'seed'}",
             "--force"],
            check=True, capture_output=True, timeout=15)
        self.pid_files.append(munge_pid)
        _wait_for(socket_path.exists, 10, "the munge socket", munge_dir / "munged.log")

        gres_lines = []
        node_lines = []
        ports = _free_ports(len(NODES) + 1)
        for i, (node, gpus) in enumerate(NODES.items()):
            devs = []
            for g in range(gpus):
                dev = root / "dev" / f"{node}-gpu{g}"
                if not dev.exists():
                    os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # like /dev/null
                devs.append(str(dev))
            gres_lines.append(f"NodeName={node} Name=gpu File={','.join(devs)}")
            node_lines.append(
                f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 "
                f"Port={ports[i + 1]} CPUs={CPUS_PER_NODE} RealMemory=1000 "
                f"Gres=gpu:{gpus} State=UNKNOWN")
        (root / "gres.conf").write_text("\n".join(gres_lines) + "\n")
        self.conf.write_text("\n".join([
            "ClusterName=greenepoch-test",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={ports[0]}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={socket_path},cred_expire=10",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}/%n",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd'}-%n.pid",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log'}/slurmd-%n.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'log' / 'jobcomp.txt'}",
            "SchedulerParameters=sched_interval=1,bf_interval=1",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "MinJobAge=300",
            "KillWait=5",
            "MpiDefault=none",
            "GresTypes=gpu",
            *node_lines,
            f"PartitionName={PARTITION} Nodes={','.join(NODES)} Default=YES "
            "MaxTime=INFINITE DefaultTime=10 State=UP",
        ]) + "\n")
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.env["PATH"] = self.env.get("PATH", "") + ":/usr/sbin:/sbin"
        self.pid_files.append(root / "slurmctld.pid")
        subprocess.run(["slurmctld", "-c", "-f", str(self.conf)], env=self.env, check=True,
                       capture_output=True, timeout=15)
        ctld_log = root / "log" / "slurmctld.log"
        _wait_for(lambda: self.run("scontrol", "ping", check=False).returncode == 0,
                  START_TIMEOUT_S, "slurmctld to answer", ctld_log)
        for node in NODES:
            self.pid_files.append(root / f"slurmd-{node}.pid")
            subprocess.run(["slurmd", "-N", node, "-f", str(self.conf)], env=self.env,
                           check=True, capture_output=True, timeout=15)

        def all_idle() -> bool:
            out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.split()
            return len(out) == len(NODES) and all(s == "idle" for s in out)

        _wait_for(all_idle, START_TIMEOUT_S, "every node idle", ctld_log)

    def stop(self) -> None:
        """Stop slurmd, then slurmctld, then munged (bounded), whatever state they are in."""
        for pid_file in reversed(self.pid_files):  # slurmd..., slurmctld, munged
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def require_services() -> bool:
    return os.environ.get("GREENEPOCH_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    """A running local Slurm cluster for the whole test session."""
    missing = missing_binaries()
    if missing:
        reason = (f"Slurm is not installed (missing {', '.join(missing)}); "
                  "run .ci/services.sh to install slurmctld slurmd slurm-client munge")
        if require_services():
            pytest.fail(f"GREENEPOCH_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    if os.geteuid() != 0:
        reason = "the local Slurm cluster needs root (slurmd runs jobs as their user)"
        if require_services():
            pytest.fail(f"GREENEPOCH_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="greenepoch-slurm-"))
    cluster = LocalSlurm(root)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.env:
                cluster.cancel_all()
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)
