#!/bin/sh
# make bench — fixed-seed benchmark of the CDR reader (issue 2).
# Generates build/bench/cdr-seed42-ROWS.csv.gz if absent (with build/tools/cdrgen
# when built, else a small deterministic awk generator), then times
# `zcat FILE >/dev/null` and `cdrecon scan --quiet FILE` in the same run and
# prints the ratio (target: <= 0.80) and the peak RSS of the scan.
# Knobs: BENCH_ROWS (default 8000000), BENCH_RUNS (default 5).
set -eu
BUILD=${1:-build}
ROWS=${BENCH_ROWS:-8000000}
RUNS=${BENCH_RUNS:-5}
CDRECON="$BUILD/cdrecon"
mkdir -p "$BUILD/bench"
f="$BUILD/bench/cdr-seed42-$ROWS.csv.gz"
if [ ! -s "$f" ]; then
    echo "bench: generating $f ($ROWS rows, seed 42)" >&2
    if [ -x "$BUILD/tools/cdrgen" ]; then
        "$BUILD/tools/cdrgen" --seed 42 --rows "$ROWS" -o "$f.tmp" >&2
    else
        awk -v n="$ROWS" 'BEGIN {
            srand(42); print "record_id,msisdn,service,direction,peer,start_time,duration_s,bytes,sms_chars,billed";
            for (i = 0; i < n; i++) {
                m = sprintf("138%08d", int(rand() * 1e8)); p = sprintf("139%08d", int(rand() * 1e8));
                t = sprintf("2026-10-%02d %02d:%02d:%02d", 1 + int(rand() * 30), int(rand() * 24), int(rand() * 60), int(rand() * 60));
                s = int(rand() * 3);
                if (s == 0) printf "R%d,%s,voice,mo,%s,%s,%d,,,%.2f\n", i, m, p, t, int(rand() * 600), rand() * 3;
                else if (s == 1) printf "R%d,%s,sms,mo,%s,%s,,,%d,0.10\n", i, m, p, t, 1 + int(rand() * 200);
                else printf "R%d,%s,data,mo,cmnet,%s,,%d,,%.2f\n", i, m, t, int(rand() * 5e7), rand() * 5 } }' |
            gzip -6 > "$f.tmp"
    fi
    mv "$f.tmp" "$f"
fi
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

# ---- investigate (issue 5; owned by the investigate helper) ------------------
# Store-path latency and scan-path/zcat ratio: tools/bench-investigate.sh.
# BENCH_SKIP_INVESTIGATE=1 skips it.
if [ "${BENCH_SKIP_INVESTIGATE:-0}" != 1 ]; then
    sh "$(dirname "$0")/bench-investigate.sh" "$BUILD"
fi
