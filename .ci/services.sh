#!/usr/bin/env bash
# CI: install the system services the test suite drives for real (a local Slurm
# cluster: tests/support/slurm_cluster.py starts and stops the daemons itself; a
# PostgreSQL server for the archive: tests/support/postgres.py runs initdb and pg_ctl
# in a temp dir on a free port).
# Idempotent: returns at once when every package is already installed.
set -euo pipefail

packages=(slurmctld slurmd slurm-client munge chromium postgresql)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "services: ${packages[*]} already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "services: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
# The Debian packages may try to start daemons under systemd; the tests start their
# own on private ports and config, so nothing else needs to run.
echo "services: installed ${missing[*]}"
