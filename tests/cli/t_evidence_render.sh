#!/bin/sh
# cdrecon evidence with PDFs: the pages rendered by headless Chromium
# (installed by `make test` through tools/install-deps.sh). See
# tests/evidence/check-render.sh for what is checked.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$CDRECON" evidence --tariff "$TESTDATA/rate-hand" --date 2026-11-05 --run-id test-run \
    --msisdn 13900000001 --month 2026-10 --out "$W/pack" "$HERE/evidence/cdr-complaint.csv"
grep -q '^file	.*	customer/evidence.pdf$' "$W/pack/manifest"
grep -q '^file	.*	internal/evidence.pdf$' "$W/pack/manifest"
sh "$HERE/evidence/check-render.sh" "$W/pack" 3 '5.77' '11.54'
