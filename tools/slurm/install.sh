#!/bin/sh
# POSIX sh. Install the Debian 12 packages a private Slurm cluster needs
# (tools/slurm/cluster-up.sh, `make cluster-test`): slurmctld, slurmd,
# slurm-client, munge. Idempotent: apt-get runs only when a package is missing.
# The packages' own services are not started (no systemd here; Debian's
# policy-rc.d keeps them down): cluster-up.sh starts private daemons itself.
set -eu
PKGS="slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "slurm/install: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "slurm/install: need root to run: apt-get install -y$missing" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
