#!/bin/sh
# A store with more subscriber-months than the writer keeps in memory
# (65,536 index entries): the index is written out as subscribers arrive, in
# the engine's (hash, msisdn, month) order, and every number is still found.
set -eu
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
N=70000
awk -v n="$N" 'BEGIN {
    print "record_id,msisdn,service,direction,peer,start_time,duration_s,billed"
    for (i = 0; i < n; i++)
        printf "R%d,137%08d,voice,mo,13811112222,2026-10-07 10:00:00,60,0.19\n", i, i
}' >"$W/a.csv"
# every number is unknown to the tariff: one unrated record per subscriber-month
"$CDRECON" run --quiet --tariff "$TESTDATA/rate-hand" --db "$W/r.db" --out "$W/o" "$W/a.csv"
[ "$(tail -n +2 "$W/o/unrated.csv" | wc -l)" -eq "$N" ]
for k in 0 1 12345 65535 65536 65537 69999; do
    num=$(printf "137%08d" "$k")
    "$CDRECON" investigate --store "$W/o/cdrecon.store" --msisdn "$num" --month 2026-10 \
        --format csv >"$W/s.csv"
    grep -q ",R$k,$num," "$W/s.csv" || { echo "record R$k of $num not found in the store"; exit 1; }
done
set +e
"$CDRECON" investigate --store "$W/o/cdrecon.store" --msisdn 13770000000 --month 2026-10 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 11 ] || { echo "a number not in the store: exit $rc, expected 11"; exit 1; }
# the index spills into --tmp, not /tmp: a --tmp that cannot be written fails
# the run (with the index named), and a writable one works
# index_fails DIR WHAT: a run with --tmp DIR must fail, naming the index
index_fails() {
    rm -rf "$W/o2" "$W/r2.db"
    set +e
    "$CDRECON" run --quiet --tmp "$1" --tariff "$TESTDATA/rate-hand" --db "$W/r2.db" \
        --out "$W/o2" "$W/a.csv" 2>"$W/err"
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || { echo "a run with $2 --tmp succeeded"; exit 1; }
    grep -q "temporary index file" "$W/err" || { echo "no index error:"; cat "$W/err"; exit 1; }
}
mkdir "$W/ro"
chmod 500 "$W/ro"
if [ "$(id -u)" -ne 0 ] || ! touch "$W/ro/x" 2>/dev/null; then
    index_fails "$W/ro" "an unwritable"
fi
index_fails "$W/nonexistent" "a missing"
mkdir "$W/tmp"
"$CDRECON" run --quiet --tmp "$W/tmp" --tariff "$TESTDATA/rate-hand" --db "$W/r4.db" \
    --out "$W/o4" "$W/a.csv"
[ -z "$(ls -A "$W/tmp")" ] || { echo "files left in --tmp:"; ls -la "$W/tmp"; exit 1; }
echo ok
