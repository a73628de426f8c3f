#!/bin/sh
# make bench — fixed-seed benchmark of the CDR reader (issue 2).
# Generates build/bench/cdr-seed42-ROWS.csv.gz if absent (with build/tools/cdrgen
# when built, else a small deterministic awk generator), then times
# `zcat FILE >/dev/null` and `cdrecon scan --quiet FILE` in the same run and
# prints the ratio (target: <= 0.80) and the peak RSS of the scan.
# Knobs: BENCH_ROWS (default 8000000), BENCH_RUNS (default 5).
set -eu
BUILD=${1:-build}
ROWS=${BENCH_ROWS:-10000000}
RUNS=${BENCH_RUNS:-5}
CDRECON="$BUILD/cdrecon"
mkdir -p "$BUILD/bench"
# One fixed-seed month (CDRs + its tariff) serves every benchmark.
d="$BUILD/bench/seed42-$ROWS"
f="$d/cdr.csv.gz"
if [ ! -s "$f" ] || [ ! -s "$d/tariff/plans.csv" ]; then
    echo "bench: generating $d ($ROWS rows, seed 42)" >&2
    rm -rf "$d"
    mkdir -p "$d"
    if [ -x "$BUILD/tools/cdrgen" ]; then
        # (cdrgen compresses by the name: the temporary name must end in .gz)
        "$BUILD/tools/cdrgen" --seed 42 --rows "$ROWS" --errors 0.01 --tariff "$d/tariff" \
            --truth "$d/truth.csv" -o "$d/partial.csv.gz" >&2
    else
        echo "bench: build/tools/cdrgen is missing (run make)" >&2
        exit 1
    fi
    mv "$d/partial.csv.gz" "$f"
fi
export BENCH_DIR="$d"
ls -l "$f"
echo "bench: machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N -w 1 -r "$RUNS" --export-json "$BUILD/bench/scan.json" \
        "zcat $f" "$CDRECON scan --quiet $f" "$CDRECON scan --quiet --threads 1 $f" \
        --output=null
    python3 - "$BUILD/bench/scan.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
z, s, s1 = r[0], r[1], r[2]
print("bench: zcat            mean %.3f s  min %.3f s" % (z["mean"], z["min"]))
print("bench: scan (2 thr)    mean %.3f s  min %.3f s" % (s["mean"], s["min"]))
print("bench: scan (1 thr)    mean %.3f s  min %.3f s" % (s1["mean"], s1["min"]))
print("bench: ratio scan/zcat mean %.2f  min/min %.2f  (target <= 0.80)" %
      (s["mean"] / z["mean"], s["min"] / z["min"]))
PY
else
    for i in 1 2 3; do
        /usr/bin/time -f "zcat %e s" zcat "$f" >/dev/null
        /usr/bin/time -f "scan %e s" "$CDRECON" scan --quiet "$f" >/dev/null
    done
fi
/usr/bin/time -f '%M' -o "$BUILD/bench/rss" "$CDRECON" scan --quiet "$f"
echo "bench: scan peak RSS $(tail -n 1 "$BUILD/bench/rss") KB"

# ---- SHA-256 (issue 15): every input file is hashed; ours is nettle's, here
# beside nettle called directly and OpenSSL's (needs libssl-dev; skipped
# without it). docs/performance.md, "SHA-256".
if ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -Isrc/common -Iinclude -o "$BUILD/bench/bench-sha256" \
    tools/dev/bench-sha256.c src/common/sha256.c -lnettle -lcrypto 2>/dev/null; then
    "$BUILD/bench/bench-sha256" 3 "$f"
else
    echo "bench: SHA-256 comparison skipped (libssl-dev or nettle-dev missing)"
fi

# ---- rate and run (issues 3 and 4) ------------------------------------------
if [ "${BENCH_SKIP_RATE_RUN:-0}" != 1 ]; then
    sh "$(dirname "$0")/bench-rate-run.sh" "$BUILD" "$d"
fi

# ---- input profiles (issue 17): scan and run on the month in the 3GPP layout --
# tools/bench-profile.sh: paired ratios against the contract's layout (<= 1.2).
# BENCH_SKIP_PROFILE=1 skips it.
if [ "${BENCH_SKIP_PROFILE:-0}" != 1 ]; then
    sh "$(dirname "$0")/bench-profile.sh" "$BUILD" "$d"
fi

# ---- investigate (issue 5; owned by the investigate helper) ------------------
# Store-path latency and scan-path/zcat ratio: tools/bench-investigate.sh.
# BENCH_SKIP_INVESTIGATE=1 skips it.
if [ "${BENCH_SKIP_INVESTIGATE:-0}" != 1 ]; then
    sh "$(dirname "$0")/bench-investigate.sh" "$BUILD"
fi

# ---- report (issue 18) -------------------------------------------------------
# `cdrecon report` on the bench month's database (made once, kept as
# $d/report.db): tools/bench-report.sh. BENCH_SKIP_REPORT=1 skips it.
if [ "${BENCH_SKIP_REPORT:-0}" != 1 ]; then
    sh "$(dirname "$0")/bench-report.sh" "$BUILD" "$d"
fi
