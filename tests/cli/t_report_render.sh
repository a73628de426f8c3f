#!/bin/sh
# cdrecon report (issue 18) rendered by headless Chromium (installed by
# `make test` through tools/install-deps.sh; skipped, exit 77, only when it
# is absent): the report of the bundled example month delivered as nights
# (written by the last night's `run --report`)
#  - is not blank (non-white pixels and colours of a screenshot, counted by
#    tests/evidence/pngstats.py);
#  - has its charts: one bar per category of the database in both category
#    charts, a point per night and series, the 7 x 24 heat map holding every
#    wrong_band finding;
#  - shows the database's totals (the cards' data-v against sqlite);
#  - loads nothing from outside and runs no script; prints to PDF;
#  - shows no 11-digit number.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
CHROMIUM=${CDRECON_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "chromium not installed (sh tools/install-deps.sh)"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$W/profile" "$@" 2>>"$W/chromium.log"
}
. "$HERE/report/lib.sh"
nights_db "$W"
page="$W/out/report.html"
[ -s "$page" ] || fail "run --report wrote no report.html"

# self-contained: no external reference, no script
if grep -nE '<(script|link|img|iframe|object|embed)[ >]|url\(|@import|(src|href)="[a-z]+:' "$page" |
    head -n 3 | grep .; then fail "the page refers to something outside or has a script"; fi
if grep -nE '[0-9]{11}' "$page" | head -n 3 | grep .; then fail "an 11-digit number on the page"; fi

chrome --window-size=1000,1400 --screenshot="$W/shot.png" "file://$page" >/dev/null
[ -s "$W/shot.png" ] || fail "no screenshot ($(tail -n 3 "$W/chromium.log"))"
read -r w h nonwhite colours <<EOT
$(python3 "$HERE/evidence/pngstats.py" "$W/shot.png")
EOT
[ "$nonwhite" -gt $((w * h / 10)) ] || fail "screenshot nearly blank ($nonwhite non-white pixels)"
[ "$colours" -gt 50 ] || fail "screenshot has only $colours colours"

chrome --dump-dom "file://$page" >"$W/dom.html"
if grep -qF '<script' "$W/dom.html"; then fail "a script element in the DOM"; fi
python3 "$HERE/report/check_report.py" dom "$W/dom.html" "$W/n.db" || fail "rendered page"

chrome --no-pdf-header-footer --print-to-pdf="$W/r.pdf" "file://$page" >/dev/null
if command -v pdfinfo >/dev/null; then
    n=$(pdfinfo "$W/r.pdf" | awk '/^Pages:/ { print $2 }')
    [ "$n" -ge 3 ] || fail "the printed report has $n pages"
    pdftotext "$W/r.pdf" - | grep -qF '本月合计' || fail "the printed report lacks its totals"
fi
echo "ok ($w x $h, $nonwhite non-white pixels, $colours colours)"
