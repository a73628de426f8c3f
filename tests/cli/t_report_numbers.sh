#!/bin/sh
# cdrecon report (issue 18, docs/report.md): the month report's numbers.
#  - every figure's table equals the rows of the query the page shows for it
#    (run with sqlite3 -readonly, the tariff figures after their .import);
#  - every figure recomputed independently (python) from the run's CSV
#    outputs (findings.csv, candidates.csv, changes.csv and rejects.csv of
#    each night) and the tariff's tables, for the example month as nights
#    and for a file with rejected rows;
#  - `run --report` writes the same figures, a section per month it reports;
#    without --month, report takes the latest month; no 11-digit number;
#  - the database is only read; refusals: the database as the output, a
#    month without records, an output directory that is a link, a --tariff
#    that cannot be loaded.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
CHECK="$HERE/report/check_report.py"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$HERE/report/lib.sh"

nights_db "$W"
grep -qxF "report      $W/out/report.html" "$W/last.txt" || fail "run --report did not say its path"
before=$(sha256sum "$W/n.db" | cut -d' ' -f1)
"$CDRECON" report --db "$W/n.db" --out "$W/rep" --as-of 2026-11-05 >"$W/rep.txt"
grep -qxF "report      $W/rep/report.html" "$W/rep.txt" || fail "report did not say its path"
[ "$(sha256sum "$W/n.db" | cut -d' ' -f1)" = "$before" ] || fail "report changed the database"
for page in "$W/rep/report.html" "$W/out/report.html"; do
    if grep -nE '[0-9]{11}' "$page" | head -n 3 | grep .; then fail "an 11-digit number in $page"; fi
    (cd "$W" && python3 "$CHECK" sql "$page" n.db) || fail "$page: a figure is not its query"
    python3 "$CHECK" csv "$page" "$W/n.db" "$W/out" "$TESTDATA/example/tariff" "$W/nights" ||
        fail "$page: a figure differs from the CSV outputs"
done

# rejected rows: the data-quality figures
mkdir -p "$W/b/n"
rc=0
"$CDRECON" run --quiet --report --tariff "$TESTDATA/example/tariff" --db "$W/b.db" --out "$W/b/out" \
    "$TESTDATA/example/bad/cdr-2026-10-bad.csv" || rc=$?
[ $rc -eq 9 ] || fail "run of the bad file: exit $rc (want 9)"
cp "$W/b/out/changes.csv" "$W/b/n/changes.1.csv"
cp "$W/b/out/rejects.csv" "$W/b/n/rejects.1.csv"
echo "$TESTDATA/example/bad/cdr-2026-10-bad.csv $W/b/n/changes.1.csv" >"$W/b/nights"
grep -q 'data-fig="reject-reasons"' "$W/b/out/report.html"
(cd "$W" && python3 "$CHECK" sql b/out/report.html b.db) || fail "bad file: a figure is not its query"
python3 "$CHECK" csv "$W/b/out/report.html" "$W/b.db" "$W/b/out" "$TESTDATA/example/tariff" \
    "$W/b/nights" || fail "bad file: a figure differs from the CSV outputs"

# two months in one run: a section each; without --month, report takes the latest
mkdir "$W/two"
gzip -dc "$TESTDATA/example/nights/cdr-2026-10-05.csv.gz" >"$W/two/a.csv"
sed -e '2,$s/2026-10-05/2026-11-05/g' -e '2,$s/^R2026/N2026/' "$W/two/a.csv" >"$W/two/b.csv"
"$CDRECON" run --quiet --report --tariff "$TESTDATA/example/tariff" --db "$W/two/t.db" \
    --out "$W/two/out" "$W/two/a.csv" "$W/two/b.csv"
[ "$(grep -c 'class="month" id="m-' "$W/two/out/report.html")" -eq 2 ] || fail "two months"
(cd "$W/two" && python3 "$CHECK" sql out/report.html t.db) || fail "two months: a figure"
"$CDRECON" report --quiet --db "$W/two/t.db" --out "$W/two/latest"
grep -q 'class="month" id="m-2026-11"' "$W/two/latest/report.html" || fail "not the latest month"
if grep -q 'id="m-2026-10"' "$W/two/latest/report.html"; then fail "more than the latest month"; fi

# refusals
rc=0; "$CDRECON" report --db "$W/n.db" --out "$W/rep" --month 2026-09 2>"$W/err" || rc=$?
[ $rc -eq 11 ] || fail "a month without records: exit $rc (want 11)"
grep -q 'no record of 2026-09' "$W/err" || fail "no reason given: $(cat "$W/err")"
rc=0; "$CDRECON" report --db "$W/n.db" --out "$W/rep" --tariff "$TESTDATA/example/nights" \
    2>"$W/err" || rc=$?
[ $rc -eq 5 ] || fail "a tariff asked for that cannot be loaded: exit $rc (want 5)"
mkdir "$W/d"
cp "$W/n.db" "$W/d/report.html"
rc=0; "$CDRECON" report --db "$W/d/report.html" --out "$W/d" 2>"$W/err" || rc=$?
[ $rc -eq 1 ] || fail "the database as the output: exit $rc (want 1)"
cmp -s "$W/n.db" "$W/d/report.html" || fail "the database was overwritten"
ln -s "$W/rep" "$W/link"
rc=0; "$CDRECON" report --db "$W/n.db" --out "$W/link" 2>"$W/err" || rc=$?
[ $rc -eq 12 ] || fail "an output directory that is a link: exit $rc (want 12)"
echo ok
