#!/bin/sh
# The outputs cache (docs/state.md, "The outputs cache"): a run writes
# findings.csv, candidates.csv and unrated.csv from the month's cache file
# patched with what its rating changed. Two databases take the same nights
# (two months, nights in a random order, late records, partial calls over
# midnight, sent-again duplicates): A as a run does, B with its cache files
# removed before every run, so that B's outputs always come from the
# database. After every night both give the same bytes in all four CSV files
# and the same month summary. Also: a run reporting one month (--month) of
# two it touches; a damaged cache file and a cache whose token is not the
# database's (a run killed after placing it) are not used; --rerate.
set -eu
: "${CDRECON:?}" "${CDRGEN:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=${OUTCACHE_KEEP:-$(mktemp -d)}
[ -n "${OUTCACHE_KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CDRGEN" --seed 21 --month 2026-09 --days 16 --rows 1000 --subscribers 40 --errors 0.05 \
    --tariff "$W/tariff" --out-dir "$W/sep" --files 2 2>/dev/null || fail "cdrgen 09"
"$CDRGEN" --seed 21 --month 2026-10 --days 16 --rows 1000 --subscribers 40 --errors 0.05 \
    --out-dir "$W/oct" --files 2 2>/dev/null || fail "cdrgen 10"
python3 "$HERE/nights/nights.py" "$W/n" 21 --late 0.1 --copies 0.03 --split-calls \
    "$W"/sep/* "$W"/oct/* >"$W/order" || fail "nights.py"

# run DB OPTS... FILE: outputs in $W/out.DB, summary in $W/sum.DB
run() {
    db=$1
    shift
    set +e
    "$CDRECON" run --tariff "$W/tariff" --db "$W/$db.db" --out "$W/out.$db" "$@" \
        >"$W/sum.$db" 2>"$W/err.$db"
    rc=$?
    set -e
    [ $rc -eq 0 ] || [ $rc -eq 9 ] || fail "run $db $*: exit $rc: $(cat "$W/err.$db")"
}
same() {
    for x in findings candidates unrated changes; do
        cmp -s "$W/out.A/$x.csv" "$W/out.B/$x.csv" || {
            diff "$W/out.A/$x.csv" "$W/out.B/$x.csv" | head -n 6 >&2
            fail "$1: $x.csv from the cache differs from the database's"; }
    done
    grep -v -e '^time ' -e '^cdrecon run ' "$W/sum.A" >"$W/s.A"
    grep -v -e '^time ' -e '^cdrecon run ' "$W/sum.B" >"$W/s.B"
    cmp -s "$W/s.A" "$W/s.B" || { diff "$W/s.A" "$W/s.B" >&2; fail "$1: summaries differ"; }
}

n=0
used=0
fromdb=0
rewound=0
whole=0
while read -r f; do
    n=$((n + 1))
    opt=""
    [ $((n % 5)) -eq 0 ] && opt="--month 2026-09"
    rm -f "$W"/B.db.state/out-*.cdo
    # shellcheck disable=SC2086
    run A $opt "$f"
    # shellcheck disable=SC2086
    run B $opt "$f"
    same "night $n ($f${opt:+, $opt})"
    # (the merge's three kinds of news: rows added, replaced from a seq on,
    # replaced whole)
    grep -Eq '^state .* [1-9][0-9]* from a rewind point' "$W/sum.A" && rewound=$((rewound + 1))
    grep -Eq '^state .* [1-9][0-9]* re-rated whole' "$W/sum.A" && whole=$((whole + 1))
    # (B reads the database whenever a month had rows before the run)
    grep -q '^time .*outputs .* (from the database)' "$W/sum.B" && fromdb=$((fromdb + 1))
    ! grep -q '^time .*(from the database)' "$W/sum.A" ||
        fail "night $n: A's outputs came from the database, not from its cache"
    [ -s "$W/out.A/findings.csv" ] || fail "night $n: no findings.csv"
    ls "$W"/A.db.state/out-*.cdo >/dev/null 2>&1 || fail "night $n: A has no cache file"
    ls "$W"/A.db.state/*.tmp "$W"/A.db.state/.outdelta* >/dev/null 2>&1 &&
        fail "night $n: a temporary file stayed"
    used=$((used + 1))
done <"$W/order"
[ "$used" -gt 12 ] || fail "only $used nights"
[ "$rewound" -gt 0 ] || fail "no night went on from a rewind point"
[ "$whole" -gt 0 ] || fail "no night re-rated a subscriber-month whole"
[ "$fromdb" -ge $((used - 3)) ] || fail "B read the database on only $fromdb of $used nights"
ls "$W"/A.db.state/out-2026-09.cdo "$W"/A.db.state/out-2026-10.cdo >/dev/null ||
    fail "a month's cache file is missing"

# a damaged cache: not used (the database's rows instead), and written again
python3 - "$W/A.db.state/out-2026-10.cdo" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x55
open(p, "wb").write(bytes(b))
PY
"$CDRGEN" --seed 22 --month 2026-10 --rows 200 --subscribers 40 --out-dir "$W/x" --files 1 \
    2>/dev/null || fail "cdrgen x"
rm -f "$W"/B.db.state/out-*.cdo
run A "$W"/x/*
run B "$W"/x/*
same "after a damaged cache file"
grep -q '^time .*outputs .* (from the database)' "$W/sum.A" ||
    fail "a damaged cache file was used"

# a cache placed by a run killed before its commit: its token is not the
# database's
cp "$W/A.db.state/out-2026-10.cdo" "$W/keep.cdo"
"$CDRGEN" --seed 23 --month 2026-10 --rows 200 --subscribers 40 --out-dir "$W/y" --files 1 \
    2>/dev/null || fail "cdrgen y"
run A "$W"/y/*
cp "$W/keep.cdo" "$W/A.db.state/out-2026-10.cdo" # (stale: the old content, its old token)
rm -f "$W"/B.db.state/out-*.cdo
run B "$W"/y/*
"$CDRGEN" --seed 24 --month 2026-10 --rows 200 --subscribers 40 --out-dir "$W/z" --files 1 \
    2>/dev/null || fail "cdrgen z"
run A "$W"/z/*
grep -q '^time .*outputs .* (from the database)' "$W/sum.A" ||
    fail "a stale cache file (its token not the database's) was used"
rm -f "$W"/B.db.state/out-*.cdo
run B "$W"/z/*
same "after a stale cache file"

# a run that refuses a probable re-delivery rates again without it (its
# changes kept from the second pass only): a night's file with one byte
# changed (mostly records ingested before) beside a new file
f=$(head -n 1 "$W/order")
python3 - "$f" "$W/redo.csv" <<'PY'
import gzip, sys
p = sys.argv[1]
raw = (gzip.open(p) if p.endswith(".gz") else open(p, "rb")).read()
lines = raw.split(b"\n")
lines[1] += b" "  # (another file's bytes, the same records but one)
open(sys.argv[2], "wb").write(b"\n".join(lines))
PY
"$CDRGEN" --seed 25 --month 2026-10 --rows 200 --subscribers 40 --out-dir "$W/r" --files 1 \
    2>/dev/null || fail "cdrgen r"
rm -f "$W"/B.db.state/out-*.cdo
set +e
"$CDRECON" run --tariff "$W/tariff" --db "$W/A.db" --out "$W/out.A" "$W/redo.csv" "$W"/r/* \
    >"$W/sum.A" 2>"$W/err.A"
ra=$?
"$CDRECON" run --tariff "$W/tariff" --db "$W/B.db" --out "$W/out.B" "$W/redo.csv" "$W"/r/* \
    >"$W/sum.B" 2>"$W/err.B"
rb=$?
set -e
[ $ra -eq 16 ] && [ $rb -eq 16 ] || fail "a re-delivery was not refused (exit $ra, $rb): $(cat "$W/err.A")"
same "a run that refused a re-delivery"
! grep -q '^time .*(from the database)' "$W/sum.A" || fail "refused re-delivery: the cache was not used"

# --rerate: every stored subscriber-month again
rm -f "$W"/B.db.state/out-*.cdo
run A --rerate
run B --rerate
same "--rerate"
! grep -q '^time .*(from the database)' "$W/sum.A" || fail "--rerate: the cache was not used"

# what a killed run may leave (a cache file not yet renamed, a delta file not
# yet unlinked) goes with the next run
touch "$W/A.db.state/out-2026-10.cdo.tmp" "$W/A.db.state/.outdelta-x1y2z3"
"$CDRGEN" --seed 26 --month 2026-10 --rows 200 --subscribers 40 --out-dir "$W/s" --files 1 \
    2>/dev/null || fail "cdrgen s"
run A "$W"/s/*
[ ! -e "$W/A.db.state/out-2026-10.cdo.tmp" ] && [ ! -e "$W/A.db.state/.outdelta-x1y2z3" ] ||
    fail "a killed run's temporary files stayed"
echo ok
