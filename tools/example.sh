#!/bin/sh
# `make example`: the nightly job on the bundled example month (October 2026).
# Writes build/example/cdrecon.db and build/example/out/*.csv, then shows the
# largest refund candidates. Safe to repeat: it starts from a fresh database.
set -eu
BUILD=${1:-build}
EX=testdata/example
OUT="$BUILD/example"
rm -rf "$OUT"
mkdir -p "$OUT"
"$BUILD/cdrecon" run --tariff "$EX/tariff" --db "$OUT/cdrecon.db" --out "$OUT/out" \
    --operator 中国移动 "$EX"/cdr/*
echo
echo "largest refund candidates (build/example/out/candidates.csv):"
head -n 1 "$OUT/out/candidates.csv" | cut -d, -f1-9
tail -n +2 "$OUT/out/candidates.csv" | sort -t, -k5,5 -g -r | head -n 5 | cut -d, -f1-9
echo
echo "next: build/cdrecon investigate --msisdn NUMBER --month 2026-10 --store $OUT/out/cdrecon.store"
echo "      (or: --tariff $EX/tariff $EX/cdr/*), and docs/ for every format."
