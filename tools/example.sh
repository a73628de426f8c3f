#!/bin/sh
# `make example`: the nightly job on the bundled example month (October
# 2026) as a switch delivers it - one file per night, then a late file - into
# one database (build/example/cdrecon.db, its month state beside it). Each
# night's outputs are in build/example/out: the current findings and
# candidates of the month, and that night's changes. Safe to repeat: it
# starts from a fresh database. Each night also rewrites the month report,
# build/example/out/report.html (run --report; docs/report.md).
set -eu
BUILD=${1:-build}
EX=testdata/example
OUT="$BUILD/example"
rm -rf "$OUT"
mkdir -p "$OUT"
for f in "$EX"/nights/cdr-2026-10-[0-9]*.csv.gz "$EX"/nights/cdr-2026-10-late.csv.gz; do
    "$BUILD/cdrecon" run --quiet --report --tariff "$EX/tariff" --db "$OUT/cdrecon.db" \
        --out "$OUT/out" --operator 中国移动 "$f"
    awk -F, -v f="$(basename "$f")" '
        FNR == 1 { next }
        FILENAME ~ /changes/ { ch++; next }
        { n++; s += $5 }
        END { printf "%-26s %3d candidate changes; month to date: %3d candidates, refund %.2f yuan\n",
                     f, ch, n, s }' "$OUT/out/changes.csv" "$OUT/out/candidates.csv"
done
echo
echo "(the month after the last night is exactly one run over $EX/cdr/*: tests/cli/t_nights_example.sh)"
echo "largest refund candidates (build/example/out/candidates.csv):"
head -n 1 "$OUT/out/candidates.csv" | cut -d, -f1-9
tail -n +2 "$OUT/out/candidates.csv" | sort -t, -k5,5 -g -r | head -n 5 | cut -d, -f1-9
echo
echo "the month at a glance: $OUT/out/report.html (open it in a browser; docs/report.md)"
echo "next: build/cdrecon investigate --db $OUT/cdrecon.db --msisdn NUMBER --month 2026-10"
echo "      (the month to date of one number), and docs/ for every format."
