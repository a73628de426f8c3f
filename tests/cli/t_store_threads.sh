#!/bin/sh
# The store is encoded on the rating workers, one part per bucket of
# subscribers, and appended in bucket order: it must not depend on the
# number of threads nor on spilling. --threads 1, 2 and 3 and a spilling
# run write the same store: the same header, blocks (inflated), index (its
# block offsets as block numbers) and footer (without the commit time), as
# tools/storecat prints them. Not the same bytes: ISA-L's deflate now and
# then encodes a block differently from one run to the next (a valid stream
# either way; docs/investigate.md). The store verifies; its statements are
# those of the scan path.
set -eu
: "${CDRECON:?}" "${CDRGEN:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CDRGEN" --seed 11 --rows 20000 --errors 0.02 --tariff "$W/t" --out-dir "$W/cdr" --files 2 \
    >/dev/null 2>&1 || fail "cdrgen"
run() { # name, options...
    n=$1
    shift
    "$CDRECON" run --tariff "$W/t" --db "$W/$n.db" --out "$W/$n" "$@" "$W"/cdr/* \
        >"$W/$n.log" 2>&1 || fail "run $n exit $?"
    [ -s "$W/$n/cdrecon.store" ] || fail "run $n wrote no store"
}
run t1 --threads 1
run t2 --threads 2
run t3 --threads 3
run sp --threads 2 --mem 1M
STORECAT=$(dirname "$CDRGEN")/storecat
[ -x "$STORECAT" ] || fail "no $STORECAT"
[ "$(wc -c <"$W/t1/cdrecon.store")" -gt 100000 ] || fail "store unexpectedly small"
"$STORECAT" "$W/t1/cdrecon.store" >"$W/b1" || fail "storecat t1"
for n in t2 t3 sp; do
    "$STORECAT" "$W/$n/cdrecon.store" >"$W/b_$n" || fail "storecat $n"
    cmp -s "$W/b_$n" "$W/b1" || fail "store of $n differs from --threads 1"
    cmp -s "$W/$n/findings.csv" "$W/t1/findings.csv" || fail "findings.csv of $n differs"
    cmp -s "$W/$n/candidates.csv" "$W/t1/candidates.csv" || fail "candidates.csv of $n differs"
done
grep -q "spilled to disk" "$W/sp.log" || fail "the --mem 1M run did not spill"
grep -q "spilled to disk" "$W/t2.log" && fail "the --threads 2 run spilled"

# every block and index entry checks out; a few numbers: store == scan path
nums=$(awk -F, 'NR > 1 {print $1}' "$W/t2/candidates.csv" | sort -u | head -n 3)
nums="$nums $(awk -F, 'NR > 1 {print $1}' "$W/t/subscribers.csv" | sort -u | tail -n 2)"
first=1
for num in $nums; do
    v=""
    [ "$first" = 1 ] && v=--verify
    first=0
    "$CDRECON" investigate $v --store "$W/t2/cdrecon.store" --msisdn "$num" --month 2026-10 \
        --format csv >"$W/a.csv" || fail "investigate --store $num exit $?"
    "$CDRECON" investigate --tariff "$W/t" --msisdn "$num" --month 2026-10 --format csv \
        "$W"/cdr/* >"$W/b.csv" || fail "investigate --tariff $num exit $?"
    [ "$(wc -l <"$W/a.csv")" -gt 1 ] || fail "no records for $num"
    cmp -s "$W/a.csv" "$W/b.csv" || fail "store and scan path differ for $num"
done
echo ok
