#!/bin/sh
# Benchmark of input profiles (issue 17; docs/performance.md, docs/profiles.md):
# `scan` and `run` on the fixed-seed bench month written in the 3GPP layout
# (`cdrgen --profile profiles/3gpp-32298.profile`, the same records) against
# the same month in the contract's layout. Paired ratios: each pair runs the
# contract command and the profile command back to back, in alternating
# order (this VM's speed drifts from minute to minute), and the ratio is the
# median of the pairs' ratios, of the wall time and of the CPU time (user +
# system: what other jobs on the machine move least). Target: <= 1.2.
# `run` is the nightly job as it is run: into a new database and month state
# (the whole month in one night), each time from nothing.
# Usage: sh tools/bench-profile.sh BUILD DIR   (DIR: tools/bench.sh's month,
# made with --seed 42 --rows ROWS --errors 0.01; the 3GPP copy is made
# beside it once, and again when the profile changes)
# Knobs: BENCH_RUNS (5 pairs of each command); BENCH_PROFILE_RATE=1 adds
# `rate --out /dev/null`.
set -eu
BUILD=${1:-build}
D=${2:?usage: tools/bench-profile.sh BUILD DIR}
RUNS=${BENCH_RUNS:-5}
C="$BUILD/cdrecon"
P=profiles/3gpp-32298.profile
F="$D/cdr.csv.gz"
T="$D/tariff"
rows=${D##*-}
G="$BUILD/bench/seed42-$rows-3gpp"
psum=$(sha256sum "$P" | cut -d' ' -f1)
if [ ! -s "$G/cdr.csv.gz" ] || [ "$(cat "$G/profile.sha256" 2>/dev/null)" != "$psum" ]; then
    echo "bench: writing the month in the 3GPP layout: $G" >&2
    rm -rf "$G"
    mkdir -p "$G"
    "$BUILD/tools/cdrgen" --seed 42 --rows "$rows" --errors 0.01 --profile "$P" \
        -o "$G/partial.csv.gz" >&2
    mv "$G/partial.csv.gz" "$G/cdr.csv.gz"
    echo "$psum" >"$G/profile.sha256"
fi
FG="$G/cdr.csv.gz"
W=$(mktemp -d "$BUILD/bench/tmp.XXXXXX")
trap 'rm -rf "$W"' EXIT
echo "bench: profile: contract $(stat -c %s "$F") bytes of gzip, 3GPP layout $(stat -c %s "$FG"); load: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
one() { # out-file, command... : wall seconds, peak RSS, CPU seconds (user + system)
    out=$1
    shift
    rm -rf "$W/o" "$W/r.db" "$W/r.db.state"
    /usr/bin/time -f "%e %M %U %S" -o "$out" "$@" >/dev/null 2>"$W/err" || {
        rc=$?
        [ "$rc" -eq 9 ] || { echo "bench: failed ($rc): $*"; cat "$W/err"; exit 1; }
    }
}
# pairs NAME N "contract command" "profile command" (paths without blanks)
pairs() {
    name=$1
    n=$2
    : >"$W/pairs"
    k=0
    while [ "$k" -lt "$n" ]; do
        if [ $((k % 2)) -eq 0 ]; then
            eval one "$W/a" "$3"
            eval one "$W/b" "$4"
        else
            eval one "$W/b" "$4"
            eval one "$W/a" "$3"
        fi
        echo "$(tail -n 1 "$W/a") $(tail -n 1 "$W/b")" >>"$W/pairs"
        k=$((k + 1))
    done
    # pairs: wall rss user sys (contract), then the same (profile)
    ta=$(cut -d' ' -f1 "$W/pairs" | median)
    tb=$(cut -d' ' -f5 "$W/pairs" | median)
    ra=$(cut -d' ' -f2 "$W/pairs" | sort -n | tail -n 1)
    rb=$(cut -d' ' -f6 "$W/pairs" | sort -n | tail -n 1)
    ratio=$(awk '{print $5 / $1}' "$W/pairs" | median)
    all=$(awk '{s = s (NR > 1 ? " " : "") sprintf("%.2f", $5 / $1)} END {print s}' "$W/pairs")
    cpu=$(awk '{print ($7 + $8) / ($3 + $4)}' "$W/pairs" | median)
    printf 'bench: %-24s contract %6.2f s %4d MB | 3GPP %6.2f s %4d MB | %s pairs: wall ratio %.2f (%s), CPU ratio %.2f  (target <= 1.2)\n' \
        "$name" "$ta" $((ra / 1024)) "$tb" $((rb / 1024)) "$n" "$ratio" "$all" "$cpu"
}
pairs "scan" "$RUNS" "$C scan --quiet $F" "$C scan --quiet --profile $P $FG"
pairs "run" "$RUNS" \
    "$C run --quiet --tariff $T --db $W/r.db --out $W/o $F" \
    "$C run --quiet --profile $P --tariff $T --db $W/r.db --out $W/o $FG"
if [ "${BENCH_PROFILE_RATE:-0}" = 1 ]; then
    pairs "rate (--out /dev/null)" "$RUNS" "$C rate --tariff $T --out /dev/null $F" \
        "$C rate --profile $P --tariff $T --out /dev/null $FG"
fi
echo "bench: profile: load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
