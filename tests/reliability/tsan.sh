#!/bin/sh
# ThreadSanitizer over the commands that run threads: the reader's inflate
# thread, the engine's distributor and rating workers, the tariff loader,
# the month state's parts. Each command runs on a TSan build (BUILD, default
# build-tsan) with 1, 2 and 3 rating threads, in memory and spilling, on good,
# bad and missing input; any "ThreadSanitizer" report fails the run.
# usage: tsan.sh [BUILD]      (make tsan builds and runs it)
set -u
BUILD=${1:-build-tsan}
ROOT=$PWD
C="$ROOT/$BUILD/cdrecon"
G="$ROOT/$BUILD/tools/cdrgen"
W=$(mktemp -d /tmp/cdr-tsan.XXXXXX)
trap 'rm -rf "$W"' EXIT
# a binary without TSan would pass silently: refuse it
ldd "$C" 2>/dev/null | grep -q libtsan || { echo "tsan: $C is not a ThreadSanitizer build"; exit 1; }
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 report_signal_unsafe=0"
"$G" --seed 7 --rows 60000 --errors 0.02 --tariff "$W/t" -o "$W/m.csv.gz" --truth "$W/truth.csv" \
    >/dev/null 2>&1 || { echo "tsan: cdrgen failed"; exit 1; }
# the month as two nights: days 1-21, then the rest (the second run
# continues the subscriber-months of the month state)
zcat "$W/m.csv.gz" | awk -F, 'NR == 1 || substr($7, 9, 2) <= "21"' | gzip -1 >"$W/m1.csv.gz"
zcat "$W/m.csv.gz" | awk -F, 'NR == 1 || substr($7, 9, 2) > "21"' | gzip -1 >"$W/m2.csv.gz"
EX="$ROOT/testdata/example"
fail=0; n=0
check() { # name, command...
    name=$1; shift
    n=$((n + 1))
    "$@" >"$W/out" 2>"$W/err"
    if grep -q "ThreadSanitizer" "$W/err"; then
        fail=$((fail + 1))
        echo "tsan: $name: REPORT"
        sed -n '1,40p' "$W/err"
    fi
}
for th in 1 2 3; do
    for mem in 1G 1M; do
        check "rate t$th m$mem" "$C" rate --threads "$th" --mem "$mem" --tmp "$W" --tariff "$W/t" \
            --out "$W/rate.csv" "$W/m.csv.gz"
        rm -rf "$W/o"
        mkdir -p "$W/o"
        check "run t$th m$mem" "$C" run --quiet --threads "$th" --mem "$mem" --tmp "$W" \
            --tariff "$W/t" --db "$W/o/r.db" --out "$W/o" "$W/m1.csv.gz"
        check "run night 2 t$th m$mem" "$C" run --quiet --threads "$th" --mem "$mem" \
            --tmp "$W" --tariff "$W/t" --db "$W/o/r.db" --out "$W/o" "$W/m2.csv.gz"
    done
done
rm -rf "$W/o"
mkdir -p "$W/o"
check "run example + bad files" "$C" run --quiet --tariff "$EX/tariff" --db "$W/o/r.db" \
    --out "$W/o" "$EX"/cdr/*.csv.gz "$EX"/bad/*
check "rerun (nothing new)" "$C" run --quiet --tariff "$EX/tariff" --db "$W/o/r.db" \
    --out "$W/o" "$EX"/cdr/*.csv.gz
check "rate stdin" sh -c "zcat '$W/m.csv.gz' | '$C' rate --tariff '$W/t' --out /dev/null -"
check "rate missing tariff" "$C" rate --tariff "$W/none" --out /dev/null "$W/m.csv.gz"
check "run missing tariff" "$C" run --tariff "$W/none" --db "$W/x/r.db" --out "$W/x" "$W/m.csv.gz"
check "investigate scan" "$C" investigate --tariff "$W/t" --msisdn 13800000000 --month 2026-10 \
    "$W/m.csv.gz"
check "scan" "$C" scan --quiet "$W/m.csv.gz"
echo "tsan: $n commands under ThreadSanitizer, $fail with reports"
[ "$fail" -eq 0 ]
