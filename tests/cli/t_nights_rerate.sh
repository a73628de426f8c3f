#!/bin/sh
# A tariff correction in the middle of a month (issue 13): ten nights of the
# example month with the tariff, then the operator corrects a price (basic
# plan, voice at peak: 0.19 -> 0.18 a minute). The next night's run rates
# the subscriber-months it touches with the corrected tariff and says how
# many others were last rated with the old one; `run --rerate` then re-rates
# every stored subscriber-month with the corrected tariff: the month equals
# one run over the same files with the corrected tariff, and changes.csv
# lists exactly the candidates whose refund moved. A rerate with no tariff
# change changes nothing.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cp -r "$EX/tariff" "$W/t2"
sed -i 's/^basic,voice,mo,\*,peak,0.19,/basic,voice,mo,*,peak,0.18,/' "$W/t2/rates.csv"
cmp -s "$EX/tariff/rates.csv" "$W/t2/rates.csv" && fail "the correction did not apply"
ls "$EX"/nights/cdr-2026-10-0[1-9].csv.gz "$EX"/nights/cdr-2026-10-10.csv.gz >"$W/ten"
while read -r f; do
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/n.db" --out "$W/o" "$f" ||
        fail "night $f"
done <"$W/ten"
f11="$EX/nights/cdr-2026-10-11.csv.gz"
"$CDRECON" run --tariff "$W/t2" --db "$W/n.db" --out "$W/o11" "$f11" >"$W/11.out" ||
    fail "night 11 with the corrected tariff"
grep -q "not touched were last rated with another tariff: \`cdrecon run --rerate\`" "$W/11.out" ||
    { cat "$W/11.out"; fail "night 11 does not say that months were rated with the old tariff"; }
[ "$(sqlite3 "$W/n.db" "select count(*) from tariffs")" -eq 2 ] || fail "two tariffs recorded"

"$CDRECON" run --quiet --rerate --tariff "$W/t2" --db "$W/n.db" --out "$W/orr" || fail "--rerate"
[ "$(sqlite3 "$W/n.db" "select kind from runs order by run_id desc limit 1")" = rerate ] ||
    fail "the rerate run is not recorded as one"
# the month now is one run over the same files with the corrected tariff
cat "$W/ten" >"$W/eleven"
echo "$f11" >>"$W/eleven"
# shellcheck disable=SC2046
"$CDRECON" run --quiet --tariff "$W/t2" --db "$W/one.db" --out "$W/one" $(cat "$W/eleven") ||
    fail "one run with the corrected tariff"
for x in findings candidates unrated; do
    cmp -s "$W/orr/$x.csv" "$W/one/$x.csv" ||
        { diff "$W/orr/$x.csv" "$W/one/$x.csv" | head -n 6 >&2; fail "after --rerate: $x.csv"; }
done
# changes.csv: exactly the candidates whose refund moved between night 11 and the rerate
python3 - "$W/o11/candidates.csv" "$W/orr/candidates.csv" "$W/orr/changes.csv" <<'PY' ||
import csv, sys
c = lambda s: round(float(s) * 100)
prev = {(r["msisdn"], r["month"]): c(r["refund"]) for r in csv.DictReader(open(sys.argv[1]))}
now = {(r["msisdn"], r["month"]): c(r["refund"]) for r in csv.DictReader(open(sys.argv[2]))}
want = {k for k in set(prev) | set(now) if prev.get(k) != now.get(k)}
got = {(r["msisdn"], r["month"]) for r in csv.DictReader(open(sys.argv[3]))}
assert want, "the correction moved no refund: a test that cannot fail"
assert got == want, "changes.csv: %d rows, %d refunds moved" % (len(got), len(want))
PY
    fail "changes.csv after --rerate"
# no tariff change: a rerate changes nothing
"$CDRECON" run --quiet --rerate --tariff "$W/t2" --db "$W/n.db" --out "$W/orr2" || fail "rerate 2"
[ "$(tail -n +2 "$W/orr2/changes.csv" | wc -l)" -eq 0 ] || fail "a second rerate changed candidates"
cmp -s "$W/orr/candidates.csv" "$W/orr2/candidates.csv" || fail "a second rerate changed candidates.csv"
# --rerate of one month only, and with files: usage errors
set +e
"$CDRECON" run --rerate --tariff "$W/t2" --db "$W/n.db" --out "$W/x" "$f11" 2>/dev/null
rc=$?
set -e
[ $rc -eq 1 ] || fail "--rerate with files: exit $rc, want 1"
echo ok
