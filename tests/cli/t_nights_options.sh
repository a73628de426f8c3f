#!/bin/sh
# Options that change a rating (--tolerance, --max-duration) are part of
# what the month state calls the tariff (cdr_rating_identity): a night run
# with other options than the last re-rates what it touches whole and says
# how many untouched subscriber-months keep the other rating, as after a
# tariff change; `run --rerate` then equals one run over the files with the
# new options. Before, the night went on from checkpoints made with the old
# tolerance and mixed the two in one month, silently.
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
N="$EX/nights"
fail() { echo "$*"; exit 1; }
r() { "$CDRECON" run --tariff "$EX/tariff" "$@" || [ $? -eq 9 ]; }

r --quiet --tolerance 0.5 --db "$W/n.db" --out "$W/o1" "$N/cdr-2026-10-01.csv.gz"
r --db "$W/n.db" --out "$W/o2" "$N/cdr-2026-10-02.csv.gz" >"$W/sum2"
grep -q "continued" "$W/sum2" || fail "no state line in the summary"
grep -q " 0 continued" "$W/sum2" || fail "a night with another tolerance continued old checkpoints"
grep -q "last rated with another tariff" "$W/sum2" ||
    fail "the untouched subscriber-months rated with the other tolerance are not counted"
r --quiet --db "$W/one.db" --out "$W/oo" "$N/cdr-2026-10-01.csv.gz" "$N/cdr-2026-10-02.csv.gz"
r --quiet --rerate --db "$W/n.db" --out "$W/o3"
for x in findings candidates unrated; do
    cmp -s "$W/o3/$x.csv" "$W/oo/$x.csv" || fail "$x.csv after --rerate differs from one run"
done
# the same options again: the nights continue (no re-rating)
r --db "$W/n.db" --out "$W/o4" "$N/cdr-2026-10-03.csv.gz" >"$W/sum4"
# (a partial call whose parts span two nights is re-rated whole: a few)
cont=$(sed -n 's/.* \([0-9]*\) continued.*/\1/p' "$W/sum4")
[ "${cont:-0}" -gt 100 ] || fail "night 3 with unchanged options did not continue: $(grep continued "$W/sum4")"
# --max-duration likewise
r --max-duration 600 --db "$W/n.db" --out "$W/o5" "$N/cdr-2026-10-04.csv.gz" >"$W/sum5"
grep -q " 0 continued" "$W/sum5" || fail "a night with another --max-duration continued old checkpoints"
echo ok
