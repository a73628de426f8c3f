#!/bin/sh
# The bundled example month as 3 nights (the last with the late file) over a
# sharded directory of 4 shards, by the stage commands in a plain shell loop
# (no scheduler): after each night the cluster report's five CSVs are byte
# for byte those of one machine's `run` over the same files (issue 16). Then:
# a night run again changes nothing; a rate task killed half-way and run
# again ends identical; investigate --cluster finds the shard itself.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
N="$TESTDATA/example/nights"
T="$TESTDATA/example/tariff"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
D="$W/D"
"$CDRECON" cluster init --parts 4 "$D" >/dev/null
[ "$(cat "$D/parts")" = 4 ] || fail "init did not write DIR/parts"
# init again with the same P is fine, with another refused
"$CDRECON" cluster init --parts 4 "$D" >/dev/null || fail "init again"
if "$CDRECON" cluster init --parts 8 "$D" >/dev/null 2>&1; then fail "init --parts 8 over 4"; fi

night1=$(ls "$N"/cdr-2026-10-0*.csv.gz "$N"/cdr-2026-10-10.csv.gz)
night2=$(ls "$N"/cdr-2026-10-1[1-9].csv.gz "$N"/cdr-2026-10-20.csv.gz)
night3=$(ls "$N"/cdr-2026-10-2[1-9].csv.gz "$N"/cdr-2026-10-3*.csv.gz "$N"/cdr-2026-10-late.csv.gz)

stages() { # the three stages of a night; $@ = its files
    "$CDRECON" split --quiet --cluster "$D" "$@" || fail "split: exit $?"
    for k in 0 1 2 3; do
        "$CDRECON" run --quiet --cluster "$D" --shard "$k" --tariff "$T" || fail "rate $k: exit $?"
    done
}
same_as_one() { # report dir, single-machine dir
    for f in findings candidates unrated changes rejects; do
        cmp -s "$1/$f.csv" "$2/$f.csv" || {
            diff "$1/$f.csv" "$2/$f.csv" | head -5 >&2
            fail "$1/$f.csv differs from one machine's"
        }
    done
}
i=0
for night in "$night1" "$night2" "$night3"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    stages $night
    "$CDRECON" cluster report --cluster "$D" --out "$W/rep$i" >"rep$i.txt" || fail "report $i: exit $?"
    set +e
    # shellcheck disable=SC2086
    "$CDRECON" run --quiet --tariff "$T" --db one.db --out "one$i" $night
    rc=$?
    set -e
    [ "$rc" -eq 0 ] || [ "$rc" -eq 9 ] || fail "one machine, night $i: exit $rc"
    same_as_one "rep$i" "one$i"
    n=$(($(wc -l <"rep$i/findings.csv") - 1))
    [ "$n" -gt 50 ] || fail "night $i: only $n findings (the test proves little)"
    grep -q "^findings    $n\$" "rep$i.txt" || fail "night $i: the summary does not say $n findings"
done
# the changes of night 2 are not those of night 1 (the ledger separates nights)
cmp -s rep1/changes.csv rep2/changes.csv && fail "night 2's changes equal night 1's"

# the last night again, whole: nothing is routed or rated twice
# shellcheck disable=SC2086
stages $night3
"$CDRECON" cluster report --cluster "$D" --out "$W/rep3b" >/dev/null || fail "report again"
same_as_one rep3b one3
ls "$D"/shard-*/incoming/*.piece >/dev/null 2>&1 && fail "pieces left after their shard rated them"

# a shard that has not rated what was routed to it: the report refuses
"$CDRECON" cluster init --parts 2 "$W/E" >/dev/null
"$CDRECON" split --quiet --cluster "$W/E" "$N/cdr-2026-10-01.csv.gz"
set +e
"$CDRECON" cluster report --cluster "$W/E" --out "$W/repE" >/dev/null 2>err
rc=$?
set -e
[ "$rc" -eq 11 ] && grep -q "has not rated" err || fail "report before the rate stage: exit $rc"

# investigate --cluster finds the shard and says what --db of one machine says
num=$(awk -F, 'NR == 2 { print $1 }' rep3/candidates.csv)
"$CDRECON" investigate --msisdn "$num" --month 2026-10 --cluster "$D" --format csv >inv-cl.csv ||
    fail "investigate --cluster"
"$CDRECON" investigate --msisdn "$num" --month 2026-10 --db one.db --format csv >inv-one.csv
cmp -s inv-cl.csv inv-one.csv || fail "investigate --cluster differs from --db"
k=$("$CDRECON" cluster shard --cluster "$D" "$num" | awk '{ print $2 }')
[ -f "$D/shard-$k/cdrecon.db" ] || fail "cluster shard: no database for shard $k"
echo ok
