#!/bin/sh
# POSIX sh. How long Slurm takes to run a night's shape on the local 2-node
# cluster, from the first sbatch to the driver's exit (as cdrecon-slurm reports
# it), three times each:
#   array8    an 8-task array (`true`) + one afterok job: the scheduling cost alone
#   night8    route 8 tasks -> rate 8 tasks (afterok) -> report (afterok), all `true`
#   example   the bundled example month's cdr/ (3 files): route 3 -> rate 4
#             shards -> report, the real stages (cdrecon split, run --shard,
#             cluster report), and the same by cdrecon-local
#   month     the example month's nights/ as 3 nights (10, 10, 12 files) into
#             one directory of 4 shards, default stage commands: each night's time
# The lines "timing: ..." are the figures of docs/cluster.md; they are also
# written to $BUILD/cluster-timings.txt. Checks only that every night succeeds
# within 60 s.
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
T=$CLUSTER_TMP/timing
mkdir -p "$T"
out=$ROOT/${BUILD:-build}/cluster-timings.txt
: >"$out"
echo "timing: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"

# secs LOG: the driver's "done in X s"; stages LOG: when each stage was done.
secs() { sed -n 's/.* done in \([0-9.]*\) s;.*/\1/p' "$1" | tail -n 1; }
stages() { sed -n 's/^[a-z-]*: \([a-z]*\) done: .* at \([0-9.]*\) s$/\1 \2/p' "$1" | tr '\n' ' '; }
# run NAME P DRIVER ARGS...: three nights, each in a fresh directory of P shards.
run() {
    _name=$1 _p=$2 _drv=$3; shift 3
    _all=""
    for _i in 1 2 3; do
        _c=$(new_cdir "$_p")
        _s=$(date +%s)
        if timeout 60 "$SLURM_TOOLS/$_drv" --cluster "$_c" "$@" >"$T/$_name.$_i.log" 2>&1; then
            _all="$_all $(secs "$T/$_name.$_i.log")"
            echo "  $_name $_i: stages done at (s): $(stages "$T/$_name.$_i.log")"
        else
            fail "$_name run $_i failed or took over 60 s"; show "$T/$_name.$_i.log"
        fi
    done
    echo "timing: $_name ($_drv), seconds from the first submission to done:$_all" | tee -a "$out"
    check "$_name: three nights done" [ "$(echo "$_all" | wc -w)" -eq 3 ]
}

i=0
while [ "$i" -lt 8 ]; do echo "x" >"$T/in$i"; i=$((i + 1)); done
run array8 8 cdrecon-slurm --route-cmd true --rate-cmd true --report-cmd true
# shellcheck disable=SC2046
run night8 8 cdrecon-slurm --route-cmd true --rate-cmd true --report-cmd true "$T"/in*
run example 4 cdrecon-slurm --tariff "$EX/tariff" --route-cmd "$STAGE route" \
    --rate-cmd "$STAGE rate" --report-cmd "$STAGE report" "$EX"/cdr/*
run example 4 cdrecon-local --max-running 2 --tariff "$EX/tariff" --route-cmd "$STAGE route" \
    --rate-cmd "$STAGE rate" --report-cmd "$STAGE report" "$EX"/cdr/*

N=$EX/nights
for drv in cdrecon-slurm cdrecon-local; do
    _c=$(new_cdir 4) _all=""
    for _i in 1 2 3; do
        case $_i in
            1) set -- "$N"/cdr-2026-10-0*.csv.gz "$N"/cdr-2026-10-10.csv.gz ;;
            2) set -- "$N"/cdr-2026-10-1[1-9].csv.gz "$N"/cdr-2026-10-20.csv.gz ;;
            3) set -- "$N"/cdr-2026-10-2[1-9].csv.gz "$N"/cdr-2026-10-3*.csv.gz "$N"/cdr-2026-10-late.csv.gz ;;
        esac
        if timeout 60 "$SLURM_TOOLS/$drv" --cluster "$_c" --tariff "$EX/tariff" --cdrecon "$CDRECON" \
            --max-running 8 "$@" >"$T/month.$drv.$_i.log" 2>&1; then
            _all="$_all $(secs "$T/month.$drv.$_i.log")"
            echo "  month $drv night $_i: stages done at (s): $(stages "$T/month.$drv.$_i.log")"
        else
            fail "month night $_i by $drv failed or took over 60 s"; show "$T/month.$drv.$_i.log"
        fi
    done
    echo "timing: month ($drv, 3 nights of 10, 10, 12 files), seconds per night:$_all" | tee -a "$out"
    check "month by $drv: three nights done" [ "$(echo "$_all" | wc -w)" -eq 3 ]
done
finish
