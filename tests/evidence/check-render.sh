#!/bin/sh
# Render an evidence pack in headless Chromium and check what a person would
# see: usage: check-render.sh PACKDIR EXPECTED_PAGES AMOUNT... 
#  - each copy's evidence.pdf has EXPECTED_PAGES pages; page 1 carries the
#    refund and the SMS, page 2 starts with the affected records;
#  - a screenshot of each copy's evidence.html is not blank (non-white pixels
#    and distinct colours counted by pngstats.py, no PIL needed);
#  - the rendered DOM (--dump-dom) contains every AMOUNT and the SMS text;
#  - the customer PDF's text shows no full other-party number from
#    internal/records.csv.
# Needs chromium, poppler-utils (pdfinfo, pdftotext), python3, fonts-noto-cjk
# (tools/install-deps.sh installs them).
set -eu
PACK=$1; PAGES=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CDRECON_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "check-render: chromium not installed (sh tools/install-deps.sh)" >&2; exit 1; }
command -v pdfinfo >/dev/null || { echo "check-render: pdfinfo missing (poppler-utils)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "check-render FAIL: $*" >&2; exit 1; }
chrome() {
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$W/profile" "$@" 2>>"$W/chromium.log"
}
sms=$(cat "$PACK/customer/sms.txt")
for copy in customer internal; do
    pdf="$PACK/$copy/evidence.pdf"
    [ -s "$pdf" ] || fail "$copy: no evidence.pdf"
    n=$(pdfinfo "$pdf" | awk '/^Pages:/ { print $2 }')
    [ "$n" = "$PAGES" ] || fail "$copy: $n PDF pages, expected $PAGES"
    pdftotext -layout -f 1 -l 1 "$pdf" "$W/p1.txt"
    pdftotext -layout -f 2 -l 2 "$pdf" "$W/p2.txt"
    for a in "$@"; do grep -qF "$a" "$W/p1.txt" || fail "$copy: page 1 lacks $a"; done
    grep -qF '退费通知短信' "$W/p1.txt" || fail "$copy: SMS not on page 1"
    head -n 3 "$W/p2.txt" | grep -qF '受影响的记录' || fail "$copy: page 2 does not start with the records"

    html="$PACK/$copy/evidence.html"
    chrome --window-size=800,1000 --screenshot="$W/$copy.png" "file://$html" >/dev/null
    read -r w h nonwhite colours <<EOT
$(python3 "$HERE/pngstats.py" "$W/$copy.png")
EOT
    [ "$nonwhite" -gt $((w * h / 20)) ] || fail "$copy: screenshot nearly blank ($nonwhite non-white pixels)"
    [ "$colours" -gt 50 ] || fail "$copy: screenshot has only $colours colours"

    chrome --dump-dom "file://$html" >"$W/dom.html"
    for a in "$@"; do grep -qF "$a" "$W/dom.html" || fail "$copy: rendered page lacks $a"; done
    grep -qF "$sms" "$W/dom.html" || fail "$copy: rendered page lacks the SMS text"
    if grep -qF '<script>' "$W/dom.html"; then fail "$copy: a <script> element in the DOM"; fi
done
# The customer PDF as text: no full other-party number.
pdftotext "$PACK/customer/evidence.pdf" "$W/cust.txt"
tr -d ' \n' <"$W/cust.txt" >"$W/cust1.txt"
for p in $(awk -F, 'NR > 1 { print $9 }' "$PACK/internal/records.csv" | grep -E '^[0-9]{8,}$' | sort -u); do
    if grep -qF "$p" "$W/cust1.txt"; then fail "customer PDF shows $p"; fi
done
echo "check-render: ok ($PAGES pages per copy)"
