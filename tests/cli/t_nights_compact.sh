#!/bin/sh
# cdrecon compact (issue 13): the example month's first 12 nights, then
# compact, then the rest of the month and its late file. Compaction changes
# no result: investigate and evidence's records of subscribers read the same
# before and after; after the last night the current findings, candidates
# and unrated records are byte-identical to the nights run without
# compaction. The month's segments become one, the state gets smaller, a
# second compact has nothing to merge, and compact is a run of its own that
# the database records.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
night() { # DB OUT FILE
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$1" --out "$2" "$3" || [ $? -eq 9 ]
}
q() { sqlite3 "$1" "$2"; }

ls "$EX"/nights/cdr-2026-10-[0-9]*.csv.gz >"$W/list"
echo "$EX/nights/cdr-2026-10-late.csv.gz" >>"$W/list"
head -n 12 "$W/list" >"$W/first"
tail -n +13 "$W/list" >"$W/rest"

while read -r f; do night "$W/c.db" "$W/c.out" "$f"; night "$W/p.db" "$W/p.out" "$f"; done <"$W/first"
[ "$(q "$W/c.db" "select count(*) from state_files where kind = 'segment'")" = 12 ] ||
    fail "12 segments expected before compact"
# three subscribers with findings: their statements before
q "$W/c.db" "select distinct msisdn from current_findings order by msisdn limit 3" >"$W/subs"
[ "$(wc -l <"$W/subs")" = 3 ] || fail "expected subscribers with findings"
while read -r m; do
    "$CDRECON" investigate --db "$W/c.db" --msisdn "$m" --month 2026-10 --format csv \
        >"$W/before.$m" || fail "investigate $m before"
done <"$W/subs"
before=$(du -sb "$W/c.db.state" | cut -f1)

"$CDRECON" compact --db "$W/c.db" --quiet || fail "compact: exit $?"
[ "$(q "$W/c.db" "select count(*) from state_files where kind = 'segment'")" = 1 ] ||
    fail "one segment expected after compact"
[ "$(q "$W/c.db" "select count(*) from runs where kind = 'compact'")" = 1 ] ||
    fail "compact is not recorded as a run"
after=$(du -sb "$W/c.db.state" | cut -f1)
[ "$after" -lt "$before" ] || fail "the state did not get smaller ($before -> $after bytes)"
[ "$(ls "$W/c.db.state" | grep -c '^seg-')" = 1 ] || fail "replaced segments left on disk"
while read -r m; do
    "$CDRECON" investigate --db "$W/c.db" --msisdn "$m" --month 2026-10 --format csv \
        >"$W/after.$m" || fail "investigate $m after"
    cmp -s "$W/before.$m" "$W/after.$m" || fail "investigate $m changed with compact"
done <"$W/subs"
# nothing left to merge: a second compact changes nothing
sum1=$(cd "$W/c.db.state" && ls | grep -v MANIFEST | sort | xargs cat | sha256sum)
"$CDRECON" compact --db "$W/c.db" --quiet || fail "second compact: exit $?"
sum2=$(cd "$W/c.db.state" && ls | grep -v MANIFEST | sort | xargs cat | sha256sum)
[ "$sum1" = "$sum2" ] || fail "a second compact rewrote the state"
[ "$(q "$W/c.db" "select count(*) from runs where kind = 'compact'")" = 1 ] ||
    fail "a compact with nothing to merge recorded a run"
q "$W/c.db" "select command from runs where kind = 'compact'" | grep -q -- "--quiet" ||
    fail "compact's command line is not recorded as given"

# the rest of the month, with and without the compaction
while read -r f; do night "$W/c.db" "$W/c.out" "$f"; night "$W/p.db" "$W/p.out" "$f"; done <"$W/rest"
for x in findings candidates unrated changes; do
    cmp -s "$W/c.out/$x.csv" "$W/p.out/$x.csv" ||
        { diff "$W/c.out/$x.csv" "$W/p.out/$x.csv" | head -n 5 >&2;
          fail "$x.csv after the month differs with a compaction on night 12"; }
done
[ "$(wc -l <"$W/c.out/findings.csv")" -gt 100 ] || fail "too few findings to compare"
echo "ok: 12 segments -> 1 ($before -> $after bytes), month equal with and without"
