#!/bin/sh
# Two cdrecon binaries over the bench month's 30 nights, interleaved night by
# night (A's night n, then B's night n), each into a database of its own,
# `sync` before each timed run (as tools/bench-nights.sh): a paired
# before/after of the nights on the same machine at the same moments.
# Prints one line a night and, per binary, night 30 / night 1 (wall, CPU).
# usage: nights-paired.sh BIN_A BIN_B [BUILD] (the bench month must exist:
# make bench, or tools/bench-nights.sh, generates it)
set -eu
A=$1; B=$2; BUILD=${3:-build}
D="$BUILD/bench/nights30-seed42-${BENCH_ROWS:-10000000}"
[ -s "$D/cdr/cdr-2026-10-30.csv.gz" ] || { echo "no bench month in $D" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/nights-paired.XXXXXX")
trap 'rm -rf "$W"' EXIT
n=0
for f in "$D"/cdr/cdr-2026-10-[0-9]*.csv.gz; do
    n=$((n + 1))
    for v in A B; do
        if [ $v = A ]; then bin=$A; else bin=$B; fi
        sync
        /usr/bin/time -f "%e %U %S" -o "$W/t" "$bin" run --quiet --tariff "$D/tariff" \
            --db "$W/$v.db" --out "$W/out.$v" "$f" 2>"$W/err" || [ $? -eq 9 ] ||
            { cat "$W/err"; echo "nights-paired: $v night $n failed" >&2; exit 1; }
        echo "$n $v $(cat "$W/t")" | tee -a "$W/times"
    done
done
for x in findings candidates changes; do
    cmp -s "$W/out.A/$x.csv" "$W/out.B/$x.csv" || echo "nights-paired: $x.csv of A and B differ"
done
awk '{ w[$2 " " $1] = $3; c[$2 " " $1] = $4 + $5; last = $1 }
     END { for (v = 0; v < 2; v++) { k = v ? "B" : "A";
           printf "nights-paired: %s night %d / night 1: time %.2f, CPU %.2f\n", k, last,
                  w[k " " last] / w[k " 1"], c[k " " last] / c[k " 1"] } }' "$W/times"
