#!/bin/sh
# make bench-cluster (issue 16; needs root: it starts a private Slurm cluster).
# The fixed-seed bench month (seed 42, BENCH_ROWS rows, as the 30 day files of
# tools/bench-nights.sh, generated once and shared with it) as ONE night over
# BENCH_PARTS (8) shards on the local 2-node Slurm cluster (tools/slurm/
# cluster-up.sh: slurmctld + slurmd n1, n2 on 127.0.0.1, 4 CPUs declared each),
# against one machine:
#   1. zcat of the 30 files (one process)
#   2. one machine: cdrecon run --tariff T --db X --out Y FILES (name order)
#   3. cdrecon split as one process over the same files into a fresh sharded
#      directory: routing throughput against zcat, and the bytes routing
#      writes per record (pieces; rejects and markers)
#   4. the night by tools/slurm/cdrecon-slurm (the default stage commands
#      under /usr/bin/time, for each task's CPU: route 30 tasks, rate 8 tasks,
#      report): wall time against one machine, the route stage's throughput
#      against zcat, each stage's wall and CPU time
#   5. zcat again (the load may have changed), and the report's five CSVs
#      compared byte for byte with one machine's
# Prints "bench-cluster: ..." lines, also written to BUILD/bench/cluster.txt.
# Everything runs once (BENCH_CLUSTER_RUNS=N repeats 2-4 N times): about 3
# minutes on the 2-core machine. Disk: about 1.5 GB under BUILD/bench/cluster-ROWS
# while it runs (removed at the end unless BENCH_KEEP=1).
#   sh tools/bench-cluster.sh [BUILD]
set -u
BUILD=${1:-build}
ROWS=${BENCH_ROWS:-10000000}
PARTS=${BENCH_PARTS:-8}
RUNS=${BENCH_CLUSTER_RUNS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
B=$(cd "$BUILD" && pwd) || { echo "bench-cluster: no $BUILD (make)" >&2; exit 1; }
C=$B/cdrecon
die() { echo "bench-cluster: $*" >&2; exit 1; }
[ -x "$C" ] || die "$C missing (make)"
[ "$(id -u)" -eq 0 ] || die "needs root: it starts slurmctld, two slurmd and munged (make cluster-test does too)"

D=$B/bench/nights30-seed42-$ROWS
if [ ! -s "$D/cdr/cdr-2026-10-30.csv.gz" ] || [ ! -s "$D/tariff/plans.csv" ]; then
    echo "bench-cluster: generating $D (30 nightly files, seed 42; as tools/bench-nights.sh)" >&2
    rm -rf "$D"
    mkdir -p "$D"
    "$B/tools/cdrgen" --seed 42 --rows "$ROWS" --errors 0.01 --days 30 --tariff "$D/tariff" \
        --out-dir "$D/cdr" --by-day >&2 || die "cdrgen failed"
fi
T=$D/tariff
# shellcheck disable=SC2012
FILES=$(ls "$D"/cdr/cdr-2026-10-[0-9]*.csv.gz | tr '\n' ' ')
NF=$(echo "$FILES" | wc -w)
GZ=$(cat $FILES | wc -c)

W=$B/bench/cluster-$ROWS
rm -rf "$W"
mkdir -p "$W"
OUT=$B/bench/cluster.txt
: >"$OUT"
say() { echo "bench-cluster: $*" | tee -a "$OUT"; }

sh tools/slurm/install.sh >&2 || die "tools/slurm/install.sh failed"
PATH="/usr/sbin:/sbin:$PATH"; export PATH
SLURMDIR=$(mktemp -d "${TMPDIR:-/tmp}/cdrecon-bench-cluster.XXXXXX")
chmod 711 "$SLURMDIR"
cleanup() {
    sh tools/slurm/cluster-down.sh "$SLURMDIR/slurm" >/dev/null 2>&1
    rm -rf "$SLURMDIR"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W/split" "$W/night" "$W/one"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
sh tools/slurm/cluster-up.sh "$SLURMDIR/slurm" >&2 || die "cluster-up failed"
# shellcheck source=/dev/null
. "$SLURMDIR/slurm/env.sh"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# cpu FILE: "CPU U+S s, peak M MB" from /usr/bin/time -f "%U %S %M" -o FILE
cpu() { tail -n 1 "$1" | awk '{ printf "CPU %.1f s (user %.1f + sys %.1f), peak %d MB", $1 + $2, $1, $2, $3 / 1024 }'; }
zcat_all() {
    _t=$(now); cat $FILES | zcat >/dev/null; secs "$_t" "$(now)"
}

say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $NF files, $GZ bytes of gzip; $PARTS shards; binary $C"
i=0
while [ "$i" -lt "$RUNS" ]; do
    i=$((i + 1))
    # 1. zcat
    z1=$(zcat_all)
    say "run $i: zcat of the $NF files: $z1 s"

    # 2. one machine
    rm -rf "$W/one"; mkdir -p "$W/one"
    t0=$(now)
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S %M" -o "$W/one.rss" "$C" run --quiet --tariff "$T" --db "$W/one/db" \
        --out "$W/one/out" $FILES
    rc=$?
    one=$(secs "$t0" "$(now)")
    [ "$rc" -eq 0 ] || [ "$rc" -eq 9 ] || die "one machine's run: exit $rc"
    one_disk=$(du -sb "$W/one/db" "$W/one/db.state" | awk '{ s += $1 } END { print s }')
    say "run $i: one machine, cdrecon run over the $NF files: $one s ($(awk -v a="$one" -v b="$z1" 'BEGIN { printf "%.2f", a / b }') x zcat), $(cpu "$W/one.rss"); database + state $one_disk bytes"

    # 3. split alone, one process
    rm -rf "$W/split"
    "$C" cluster init --parts "$PARTS" "$W/split" >/dev/null || die "cluster init"
    t0=$(now)
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S %M" -o "$W/split.rss" "$C" split --quiet --cluster "$W/split" $FILES ||
        die "split: exit $?"
    sp=$(secs "$t0" "$(now)")
    recs=$(cat "$W"/split/routed/*.done | sed -n 's/^records=//p' | awk '{ s += $1 } END { print s }')
    pb=$(find "$W/split" -path '*/incoming/*.piece' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    rb=$(find "$W/split/routed" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    np=$(find "$W/split" -path '*/incoming/*.piece' | wc -l)
    say "run $i: split, one process: $sp s for $recs records ($(awk -v a="$sp" -v b="$z1" 'BEGIN { printf "%.2f", a / b }') x zcat, $(awk -v r="$recs" -v s="$sp" 'BEGIN { printf "%.2f", r / s / 1e6 }') M records/s), $(cpu "$W/split.rss")"
    say "run $i: routing wrote $np pieces, $pb bytes: $(awk -v a="$pb" -v r="$recs" 'BEGIN { printf "%.1f", a / r }') bytes a record (the gzip input: $(awk -v a="$GZ" -v r="$recs" 'BEGIN { printf "%.1f", a / r }')); routed/ (markers, rejects, claims) $rb bytes"
    rm -rf "$W/split"

    # 4. the night on Slurm
    rm -rf "$W/night"
    "$C" cluster init --parts "$PARTS" "$W/night" >/dev/null || die "cluster init"
    t0=$(now)
    # shellcheck disable=SC2086
    # The stage commands are the defaults (cdrecon split, run, cluster report)
    # under /usr/bin/time, whose last two lines in each task's .err give its CPU.
    tools/slurm/cdrecon-slurm --cluster "$W/night" --tariff "$T" --night bench \
        --route-cmd "/usr/bin/time $C split" --rate-cmd "/usr/bin/time $C run" \
        --report-cmd "/usr/bin/time $C cluster report" \
        $FILES >"$W/night.log" 2>&1 || { cat "$W/night.log" >&2; die "the Slurm night failed"; }
    nt=$(secs "$t0" "$(now)")
    L=$W/night/logs/bench
    at() { sed -n "s/^[0-9:]* $1 done: .* at \([0-9.]*\) s$/\1/p" "$L/driver.log" | tail -n 1; }
    ra=$(at route) rt=$(at rate) rp=$(at report)
    # the tasks' own durations (cdrecon-task's last line)
    tasks() {
        _w=$(cat "$L"/"$1"-*.err | sed -n "s/^cdrecon-task: $1 [0-9]* done, exit 0, \([0-9.]*\)s$/\1/p" |
            awk '{ s += $1; if ($1 > m) m = $1; if (n == 0 || $1 < l) l = $1; n++ }
                 END { printf "%d tasks, %.2f-%.2f s each", n, l, m }')
        _c=$(cat "$L"/"$1"-*.err | sed -n 's/^\([0-9.]*\)user \([0-9.]*\)system .* \([0-9]*\)maxresident.*/\1 \2 \3/p' |
            awk '{ u += $1; s += $2; if ($3 > m) m = $3 } END { printf "CPU %.1f s (user %.1f + sys %.1f), largest peak %d MB", u + s, u, s, m / 1024 }')
        echo "$_w, $_c"
    }
    night_disk=$(du -sb "$W"/night/shard-*/cdrecon.db "$W"/night/shard-*/cdrecon.db.state |
        awk '{ s += $1 } END { print s }')
    say "run $i: Slurm night ($PARTS shards, 2 nodes): $nt s wall, $(awk -v a="$nt" -v b="$one" 'BEGIN { printf "%.2f", a / b }') x one machine; from the first sbatch: route done at $ra s, rate at $rt s, report at $rp s"
    say "run $i:   route stage: $ra s ($(awk -v a="$ra" -v b="$z1" 'BEGIN { printf "%.2f", a / b }') x zcat, $(awk -v r="$recs" -v s="$ra" 'BEGIN { printf "%.2f", r / s / 1e6 }') M records/s); $(tasks route)"
    say "run $i:   rate stage: $(awk -v a="$ra" -v b="$rt" 'BEGIN { printf "%.2f", b - a }') s; $(tasks rate)"
    say "run $i:   report: $(awk -v a="$rt" -v b="$rp" 'BEGIN { printf "%.2f", b - a }') s; $(tasks report)"
    say "run $i:   shards' databases + states $night_disk bytes ($(awk -v a="$night_disk" -v b="$one_disk" 'BEGIN { printf "%.2f", a / b }') x one machine's)"

    # 5. zcat again; the report against one machine's outputs
    z2=$(zcat_all)
    same=yes
    for f in findings candidates unrated changes rejects; do
        cmp -s "$W/one/out/$f.csv" "$W/night/report/$f.csv" || same="NO ($f.csv differs)"
    done
    rows=""
    for f in findings candidates unrated changes rejects; do
        rows="$rows $f $(($(wc -l <"$W/night/report/$f.csv") - 1))"
    done
    say "run $i: zcat again: $z2 s; the report's five CSVs byte-identical to one machine's: $same (rows:$rows)"
done
say "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$same" = yes ]
