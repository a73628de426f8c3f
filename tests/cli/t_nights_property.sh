#!/bin/sh
# The rule of a month over many runs (CONTRACT.md, issue 13), as a property:
# generated months (several seeds) split into nights at random - by start
# day, some records late by 1-4 nights, later parts of partial calls one
# night after the first, duplicates sent again on a later night (the same
# record, or the same usage under a new record_id), files re-delivered as
# recompressed, decompressed or renamed copies - and ingested in a random
# order, one run a night. After EVERY night the current findings,
# candidates and unrated records equal a fresh one-shot run over the files
# so far, byte for byte; re-delivered copies change nothing (exit 8); after
# the last night a month without sent-again duplicates equals the
# generator's truth.
set -eu
: "${CDRECON:?}" "${CDRGEN:?}" "${TESTDATA:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
SEEDS=${NIGHTS_SEEDS:-"11 12"} # (make reliability: 8 more)

for seed in $SEEDS; do
    M="$W/m$seed"
    mkdir -p "$M"
    "$CDRGEN" --seed "$seed" --rows 2500 --subscribers 50 --errors 0.05 --tariff "$M/tariff" \
        --out-dir "$M/cdr" --files 2 --truth "$M/truth.csv" \
        --truth-candidates "$M/truth-candidates.csv" 2>/dev/null || fail "cdrgen $seed"
    if [ $((seed % 2)) -eq 1 ]; then
        opts="--late 0.08 --split-calls --redeliver 3"
    else
        opts="--late 0.12 --copies 0.03 --split-calls --redeliver 2"
    fi
    # shellcheck disable=SC2086
    python3 "$HERE/nights/nights.py" "$M/n" "$seed" $opts "$M"/cdr/* >"$M/order" ||
        fail "nights.py $seed"
    : >"$M/sofar"
    n=0
    while read -r f; do
        n=$((n + 1))
        set +e
        "$CDRECON" run --quiet --tariff "$M/tariff" --db "$M/n.db" --out "$M/night" "$f" \
            2>"$M/err"
        rc=$?
        set -e
        case $(basename "$f") in
        again-*) [ $rc -eq 8 ] || fail "seed $seed night $n: a re-delivered copy ($f): exit $rc, want 8: $(cat "$M/err")"
                 continue ;;
        *) [ $rc -eq 0 ] || [ $rc -eq 9 ] || fail "seed $seed night $n ($f): exit $rc: $(cat "$M/err")" ;;
        esac
        echo "$f" >>"$M/sofar"
        rm -rf "$M/one"
        mkdir "$M/one"
        # shellcheck disable=SC2046
        "$CDRECON" run --quiet --tariff "$M/tariff" --db "$M/one/r.db" --out "$M/one/out" \
            $(cat "$M/sofar") 2>/dev/null || [ $? -eq 9 ] || fail "one-shot, seed $seed, $n files"
        for x in findings candidates unrated; do
            cmp -s "$M/night/$x.csv" "$M/one/out/$x.csv" || {
                diff "$M/night/$x.csv" "$M/one/out/$x.csv" | head -n 6 >&2
                fail "seed $seed night $n ($f): $x.csv differs from one run over the files so far"; }
        done
    done <"$M/order"
    # the month state was mostly continued, not re-rated whole every night
    cont=$(sqlite3 "$M/n.db" "select sum(submonths) - sum(submonths_full) from runs")
    [ "$cont" -gt 0 ] || fail "seed $seed: no subscriber-month was continued"
    if [ $((seed % 2)) -eq 1 ]; then
        python3 - "$M/truth-candidates.csv" "$M/night/candidates.csv" "$M/truth.csv" \
            "$M/night/findings.csv" <<'PY' || fail "seed $seed: results differ from the truth"
import csv, sys
def load(p, key):
    return {tuple(r[k] for k in key): r for r in csv.DictReader(open(p, encoding="utf-8"))}
tc, gc = load(sys.argv[1], ("msisdn", "month")), load(sys.argv[2], ("msisdn", "month"))
assert set(tc) == set(gc), "candidate sets differ"
for k in tc:
    for f in tc[k]:
        assert tc[k][f] == gc[k][f], (k, f, tc[k][f], gc[k][f])
tf, gf = load(sys.argv[3], ("msisdn", "record_id")), load(sys.argv[4], ("msisdn", "record_id"))
assert set(tf) == set(gf), "finding sets differ"
for k in tf:
    for f in ("category", "flags", "billed", "rebuilt", "difference"):
        assert tf[k][f] == gf[k][f], (k, f, tf[k][f], gf[k][f])
PY
    fi
    echo "seed $seed: $n deliveries, each equal to one run over the files so far"
done
echo ok
