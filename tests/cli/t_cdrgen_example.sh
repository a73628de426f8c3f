#!/bin/sh
# The committed example month equals a fresh regeneration, byte for byte.
set -eu
: "${CDRGEN:?}" "${TESTDATA:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
here=$(cd "$(dirname "$0")/../.." && pwd)
sh "$here/tools/gen-example.sh" "$CDRGEN" "$T/example"
diff -r "$TESTDATA/example" "$T/example" >"$T/diff" 2>&1 || {
    head -20 "$T/diff" >&2; echo "FAIL: testdata/example differs from a regeneration" >&2; exit 1; }
# every category, leakage and both flags at least 3 times
for c in duplicate free_number zero_duration partial_rounding vas_no_subscription data_no_usage \
         bundle_not_applied discount_not_applied wrong_band sms_segments data_rounding \
         rate_mismatch leakage; do
    n=$(awk -F, -v c="$c" '$4 == c' "$TESTDATA/example/truth.csv" | wc -l)
    [ "$n" -ge 3 ] || { echo "FAIL: $c only $n times" >&2; exit 1; }
done
for fl in overlap overlong; do
    n=$(awk -F, -v c="$fl" '$5 == c' "$TESTDATA/example/truth.csv" | wc -l)
    [ "$n" -ge 3 ] || { echo "FAIL: flag $fl only $n times" >&2; exit 1; }
done
echo ok
