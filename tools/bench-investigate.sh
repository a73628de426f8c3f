#!/bin/sh
# make bench (investigate part, issue 5) — fixed-seed benchmark of
# `cdrecon investigate`:
#   1. a month from build/tools/cdrgen (seed 42, BENCH_INV_ROWS rows, 1% errors)
#      and its tariff, rated once by `cdrecon run` (with and without the store,
#      to show what writing the store costs);
#   2. store path: latency of `investigate --store` for 5 fixed numbers,
#      BENCH_RUNS runs each: median and max (target: median under 100 ms);
#   3. scan path: `investigate --tariff DIR FILE` against `zcat FILE` of the
#      same file, as a ratio (the line pre-filter skips other numbers' lines).
# Knobs: BENCH_INV_ROWS (default 1000000), BENCH_RUNS (default 5; 20 for the
# store latency).
set -eu
BUILD=${1:-build}
ROWS=${BENCH_INV_ROWS:-1000000}
RUNS=${BENCH_RUNS:-5}
CDRECON="$BUILD/cdrecon"
CDRGEN="$BUILD/tools/cdrgen"
D="$BUILD/bench/investigate-seed42-$ROWS"
[ -x "$CDRGEN" ] || { echo "bench-investigate: $CDRGEN not built (make tools)" >&2; exit 1; }
command -v hyperfine >/dev/null 2>&1 || { echo "bench-investigate: needs hyperfine" >&2; exit 1; }
mkdir -p "$D"
f="$D/cdr.csv.gz"
if [ ! -s "$f" ] || [ ! -s "$D/tariff/subscribers.csv" ]; then
    echo "bench-investigate: generating $f ($ROWS rows, seed 42)" >&2
    rm -rf "$D/tariff"
    "$CDRGEN" --seed 42 --rows "$ROWS" --errors 0.01 --tariff "$D/tariff" \
        -o "$D/tmp-cdr.csv.gz" >&2
    mv "$D/tmp-cdr.csv.gz" "$f"
fi
echo "bench-investigate: machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
ls -l "$f"

# 1. the nightly run, with and without the store
for mode in store no-store; do
    rm -rf "$D/out-$mode" "$D/db-$mode"
    opt=""
    [ $mode = no-store ] && opt=--no-store
    /usr/bin/time -o "$D/time" \
        -f "bench-investigate: run ($mode): %e s wall, %U s user, %M KB peak" \
        "$CDRECON" run --quiet $opt --tariff "$D/tariff" --db "$D/db-$mode" \
        --out "$D/out-$mode" "$f"
    cat "$D/time"
done
S="$D/out-store/cdrecon.store"
echo "bench-investigate: store $(wc -c <"$S") bytes for $(wc -c <"$f") bytes of gzip input"

# 2. store path latency (whole command: process start, open, look-up, render)
nums=$(awk -F, 'NR > 1 {print $1}' "$D/tariff/subscribers.csv" | sort -u |
       awk 'NR % 1000 == 7' | head -n 5 | paste -sd, -)
hyperfine -N -w 3 -r $((RUNS * 4)) -L num "$nums" --output=null \
    --export-json "$D/store.json" \
    "$CDRECON investigate --msisdn {num} --month 2026-10 --store $S" >/dev/null
# 3. scan path against zcat
n1=${nums%%,*}
hyperfine -N -w 1 -r "$RUNS" --output=null --export-json "$D/scan.json" \
    "zcat $f" "$CDRECON investigate --msisdn $n1 --month 2026-10 --tariff $D/tariff $f" \
    >/dev/null
python3 - "$D/store.json" "$D/scan.json" <<'PY'
import json, statistics, sys
st = json.load(open(sys.argv[1]))["results"]
times = sorted(t for r in st for t in r["times"])
med = statistics.median(times) * 1e3
print("bench-investigate: store path, %d numbers x %d runs: median %.1f ms, max %.1f ms "
      "(target: median < 100 ms) %s" % (len(st), len(st[0]["times"]), med, times[-1] * 1e3,
                                       "OK" if med < 100 else "MISSED"))
z, s = json.load(open(sys.argv[2]))["results"]
print("bench-investigate: zcat          median %.3f s" % z["median"])
print("bench-investigate: scan path     median %.3f s" % s["median"])
print("bench-investigate: ratio scan/zcat %.2f (median/median)" % (s["median"] / z["median"]))
PY
