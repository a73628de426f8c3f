#!/bin/sh
# POSIX sh. The three stage commands of a night, for testing the drivers
# (tools/slurm/cdrecon-slurm, cdrecon-local) before `cdrecon split`, `run
# --shard` and `cluster report` exist. They do real work with today's binary,
# over the same arguments the real stages get:
#
#   stage.sh route  --cluster DIR FILE...   `cdrecon scan` the files, then write
#       each row to DIR/shard-K/incoming/NAME.csv (K = last 11 digits of the
#       msisdn mod P, P in DIR/parts; written whole or not at all)
#   stage.sh rate   --cluster DIR --shard K --tariff T
#       `cdrecon run` of the shard's incoming files into DIR/shard-K/{cdrecon.db,out}
#       (exit 8, nothing new, is success: a rerun after everything was rated)
#   stage.sh report --cluster DIR --out OUT
#       OUT/candidates.csv: the shards' candidates, one header, rows sorted
#
# Test hooks (files under DIR/hooks, so that they reach tasks on any node):
#   STAGE-TASK.fail  the task prints "injected failure" and exits 3
#   STAGE-TASK.hold  the task writes its pid to STAGE-TASK.pid and waits while
#                    the .hold file exists (kill it, or remove the file)
#   NIGHT.STAGE-TASK.fail, NIGHT.STAGE-TASK.hold: the same, for the night
#                    NIGHT only ($CDRECON_NIGHT, cdrecon-slurm --night)
# Every task appends "STAGE TASK start|end EPOCH-NANOSECONDS" to DIR/trace.
# Environment: CDRECON (the binary; default build/cdrecon of this tree).
set -u
here=$(cd "$(dirname "$0")" && pwd)
CDRECON=${CDRECON:-$here/../../build/cdrecon}
stage=$1; shift
dir="" shard="" tariff="" out=""
while [ $# -gt 0 ]; do
    case $1 in
        --cluster) dir=$2; shift 2 ;;
        --shard) shard=$2; shift 2 ;;
        --tariff) tariff=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --) shift; break ;;
        -*) echo "stage.sh: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
[ -n "$dir" ] || { echo "stage.sh: --cluster DIR missing" >&2; exit 1; }
task=${CDRECON_TASK:-0}
# The rate task's number must be its shard.
if [ "$stage" = rate ] && [ "$shard" != "$task" ]; then
    echo "stage.sh: rate task $task got --shard $shard" >&2; exit 1
fi
echo "$stage $task start $(date +%s%N)" >>"$dir/trace"
for hook in "$dir/hooks/$stage-$task" "$dir/hooks/${CDRECON_NIGHT:-}.$stage-$task"; do
    if [ -e "$hook.fail" ]; then
        echo "stage.sh: injected failure in $stage task $task" >&2
        exit 3
    fi
    if [ -e "$hook.hold" ]; then
        echo $$ >"$hook.pid.tmp" && mv "$hook.pid.tmp" "$hook.pid"
        while [ -e "$hook.hold" ]; do sleep 0.1; done
    fi
done
parts=$(cat "$dir/parts")

case $stage in
route)
    [ $# -gt 0 ] || { echo "stage.sh route: no files" >&2; exit 1; }
    "$CDRECON" scan "$@" || exit $?
    for f in "$@"; do
        name=$(basename "$f"); name=${name%.gz}; name=${name%.csv}
        case $f in *.gz) cat="zcat" ;; *) cat="cat" ;; esac
        tmp=$dir/tmp/route.$$
        rm -rf "$tmp"; mkdir -p "$tmp"
        # Plain comma split: the test files have no quoted fields.
        $cat "$f" | awk -F, -v P="$parts" -v tmp="$tmp" '
            NR == 1 { hdr = $0
                      for (i = 1; i <= NF; i++) if (tolower($i) == "msisdn") m = i
                      if (!m) { print "no msisdn column" > "/dev/stderr"; exit 1 }
                      next }
            { d = $m; gsub(/[^0-9]/, "", d); d = substr(d, length(d) - 10)
              k = (d + 0) % P; f = tmp "/" k
              if (!(k in seen)) { seen[k] = 1; print hdr > f }
              print > f }' || exit 1
        for kf in "$tmp"/*; do
            [ -e "$kf" ] || continue
            k=${kf##*/}
            mkdir -p "$dir/shard-$k/incoming"
            mv "$tmp/$k" "$dir/shard-$k/incoming/$name.csv.tmp" &&
                mv "$dir/shard-$k/incoming/$name.csv.tmp" "$dir/shard-$k/incoming/$name.csv" || exit 2
        done
        rmdir "$tmp"
    done
    ;;
rate)
    s=$dir/shard-$shard
    mkdir -p "$s/incoming"
    set -- "$s"/incoming/*.csv
    if [ ! -e "$1" ]; then echo "shard $shard: nothing routed"; exit 0; fi
    "$CDRECON" run --quiet --tariff "$tariff" --db "$s/cdrecon.db" --out "$s/out" --no-store "$@"
    rc=$?
    [ "$rc" -eq 8 ] && rc=0
    [ "$rc" -eq 0 ] || exit "$rc"
    ;;
report)
    mkdir -p "$out"
    first=1
    for k in $(seq 0 $((parts - 1))); do
        c=$dir/shard-$k/out/candidates.csv
        [ -f "$c" ] || continue
        if [ $first = 1 ]; then head -n 1 "$c" >"$out/candidates.csv.tmp"; first=0; fi
        tail -n +2 "$c"
    done | LC_ALL=C sort >"$out/rows.tmp" || exit 2
    cat "$out/rows.tmp" >>"$out/candidates.csv.tmp" && rm "$out/rows.tmp" &&
        mv "$out/candidates.csv.tmp" "$out/candidates.csv" || exit 2
    ;;
*) echo "stage.sh: unknown stage $stage" >&2; exit 1 ;;
esac
echo "$stage $task end $(date +%s%N)" >>"$dir/trace"
