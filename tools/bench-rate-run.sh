#!/bin/sh
# Benchmarks of `cdrecon rate` and `cdrecon run` (issues 3 and 4) on the
# fixed-seed month made by tools/bench.sh, each as a ratio to `zcat` of the
# same file measured in the same run. Usage: sh tools/bench-rate-run.sh BUILD DIR
# Knobs: BENCH_RUNS (3), BENCH_MEM (spill budget for the memory check, 256M).
set -eu
BUILD=${1:-build}
D=$2
F="$D/cdr.csv.gz"
T="$D/tariff"
C="$BUILD/cdrecon"
RUNS=${BENCH_RUNS:-3}
MEM=${BENCH_MEM:-256M}
W=$(mktemp -d "$BUILD/bench/tmp.XXXXXX")
trap 'rm -rf "$W"' EXIT
rows=$(zcat "$F" | tail -n +2 | wc -l)
echo "bench: rate/run on $F ($rows records), load: $(cut -d' ' -f1-3 /proc/loadavg)"

# median wall time of a command over RUNS runs (each run: clean outputs first)
median() {
    sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
steal() { awk '/^cpu / {print $9}' /proc/stat; }
# This VM's speed drifts (other guests): each run of a command is paired
# with a zcat run just before it, and the ratio is the median of the pairs'
# ratios, so that a slow or fast minute moves both sides of each ratio.
t() { # name, command...
    name=$1; shift
    : >"$W/times"
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        rm -rf "$W/o" "$W/r.db" "$W/r.db.state"
        /usr/bin/time -f "%e" -o "$W/z" sh -c "zcat '$F' >/dev/null"
        s0=$(steal)
        /usr/bin/time -f "%e %M" -o "$W/one" "$@" >/dev/null 2>"$W/err" || {
            rc=$?; [ "$rc" -eq 9 ] || { echo "bench: $name failed ($rc)"; cat "$W/err"; exit 1; }; }
        s1=$(steal)
        echo "$(tail -n 1 "$W/one") $(tail -n 1 "$W/z") $((s1 - s0))" >>"$W/times"
        i=$((i + 1))
    done
    m=$(cut -d' ' -f1 "$W/times" | median)
    rss=$(cut -d' ' -f2 "$W/times" | sort -n | tail -n 1)
    zm=$(cut -d' ' -f3 "$W/times" | median)
    ratio=$(awk '{print $1 / $3}' "$W/times" | median)
    # CPU time taken by other guests while the command ran, as a share of
    # its two cores' time (/proc/stat "steal", in clock ticks)
    st=$(awk -v hz="$(getconf CLK_TCK)" '{s += $4; t += $1} END {printf "%.0f", t ? 100 * s / hz / (2 * t) : 0}' "$W/times")
    echo "$name $m $rss $zm $ratio $st" >>"$W/results"
}
: >"$W/results"
t scan "$C" scan --quiet "$F"
t rate "$C" rate --tariff "$T" --out /dev/null "$F"
t run_store "$C" run --quiet --tariff "$T" --db "$W/r.db" --out "$W/o" "$F"
t rate_spill "$C" rate --mem "$MEM" --tmp "$W" --tariff "$T" --out /dev/null "$F"
python3 - "$W/results" "$rows" "$MEM" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    n, t, rss, z, ratio, st = line.split()
    r[n] = (float(t), int(rss), float(z), float(ratio), int(st))
rows, mem = int(sys.argv[2]), sys.argv[3]
sc = r["scan"][0]
def row(name, label, target=None):
    t, rss, z, ratio, st = r[name]
    extra = "  (target <= %.1f x zcat)" % target if target else ""
    print("bench: %-28s %7.2f s  %5.2f x zcat (paired zcat %5.2f s)  %5.2f x scan  %6.2f M records/s  peak %4d MB  steal %2d%%%s"
          % (label, t, ratio, z, t / sc, rows / t / 1e6, rss // 1024, st, extra))
print("bench: %-28s %7.2f s (median of the paired zcat runs of scan)" % ("zcat FILE >/dev/null", r["scan"][2]))
row("scan", "cdrecon scan", 0.8)
row("rate", "cdrecon rate (--out /dev/null)", 1.0)
row("rate_spill", "cdrecon rate --mem " + mem)
row("run_store", "cdrecon run (new database)")
PY
