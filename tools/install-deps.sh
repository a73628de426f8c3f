#!/bin/sh
# Install the Debian 12 packages that cdrecon's build and tests use.
# Idempotent: apt-get runs only when a package is missing.
set -eu
PKGS="make gcc libc6-dev pkg-config zlib1g-dev libisal-dev libcsv-dev libsqlite3-dev nettle-dev libcmocka-dev sqlite3 gzip python3 time groff-base"
# `cdrecon evidence` prints its pages with headless Chromium; its tests render
# them (CJK fonts) and count PDF pages (poppler-utils). The month report's test
# (tests/cli/t_report_render.sh) renders and prints report.html the same way.
EVIDENCE_PKGS="chromium fonts-noto-cjk poppler-utils"
PKGS="$PKGS $EVIDENCE_PKGS"
[ -n "${CDRECON_EXTRA_PKGS:-}" ] && PKGS="$PKGS $CDRECON_EXTRA_PKGS"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: need root to run: apt-get install -y$missing" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
