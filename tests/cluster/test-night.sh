#!/bin/sh
# POSIX sh. A whole night through Slurm with the real stages (cdrecon split,
# run --cluster --shard, cluster report, behind tests/cluster/stage.sh's
# hooks): route (3 files, one task each) -> rate (4 shards, afterok) ->
# report (afterok); the stages ran in that order, every task once; the
# report's five CSVs equal a single-machine run's; nothing is left in the
# queue; a rerun succeeds and changes nothing; --group packs files into fewer
# route tasks; the same night by cdrecon-local (no scheduler) gives the same
# report byte for byte. Then both drivers with their DEFAULT stage commands
# (the binary of --cdrecon), over a night with rejected rows.
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
T=$CLUSTER_TMP/night
mkdir -p "$T"

C=$(new_cdir 4)
if slurm_night "$C" "$T/1.log" --night n1 "$EX"/cdr/*; then
    ok "night through Slurm exits 0"
else
    fail "night through Slurm exits $?"; show "$T/1.log"
fi
if stage_order "$C" 3 4 1 >"$T/order" 2>&1; then
    ok "route (3 tasks) -> rate (4 tasks) -> report (1 task), each after the last ended"
else
    fail "stage order: $(cat "$T/order")"; cat "$C/trace"
fi
check "report equals a single-machine run over the same files" report_is_reference "$C"
check "nothing left in the queue" queue_empty
check "the rate stage was submitted with afterok on the route array" \
    grep -qE 'route [0-9]+, rate [0-9]+ \(afterok\), report [0-9]+ \(afterok\)' "$C/logs/n1/driver.log"
n=0
for s in route-*_0 route-*_1 route-*_2 rate-*_0 rate-*_1 rate-*_2 rate-*_3 report-*; do
    for f in "$C/logs/n1/"$s.out "$C/logs/n1/"$s.err; do [ -f "$f" ] && n=$((n + 1)); done
done
check "one .out and one .err log per task under DIR/logs/NIGHT" [ "$n" -eq 16 ]
check "a task's log names its node and the command it ran" \
    grep -qE '^cdrecon-task: rate 2 on n[12] job [0-9]+_2: .*stage\.sh rate --cluster .* --shard 2 --tariff ' \
    "$C"/logs/n1/rate-*_2.err

# A rerun of the whole night: the stages skip what is done.
cp -r "$C/report" "$T/first"
if slurm_night "$C" "$T/2.log" --night n1 "$EX"/cdr/*; then
    ok "a rerun of a finished night exits 0"
else
    fail "rerun exits $?"; show "$T/2.log"
fi
check "the rerun's report is unchanged (the five CSVs)" same_csvs "$T/first" "$C/report"
check "the rerun left no piece waiting" no_pieces "$C"

# --group 2: 3 files in 2 route tasks.
C2=$(new_cdir 4)
if slurm_night "$C2" "$T/3.log" --group 2 "$EX"/cdr/*; then
    ok "--group 2 night exits 0"
else
    fail "--group 2 night exits $?"; show "$T/3.log"
fi
check "--group 2: 2 route tasks, 4 rate, 1 report, in order" stage_order "$C2" 2 4 1
check "--group 2: report equals a single-machine run" report_is_reference "$C2"

# The same night without a scheduler.
C3=$(new_cdir 4)
if local_night "$C3" "$T/4.log" --max-running 2 "$EX"/cdr/*; then
    ok "cdrecon-local night exits 0"
else
    fail "cdrecon-local night exits $?"; show "$T/4.log"
fi
check "cdrecon-local: stages in order" stage_order "$C3" 3 4 1
check "cdrecon-local's report is byte-identical to the Slurm night's" \
    same_csvs "$C/report" "$C3/report"

# The drivers' default stage commands (no --route-cmd etc.: the binary of
# --cdrecon), over a file with rejected rows, through Slurm and without it.
one_run "$T/bad.db" "$T/bad.one" "$EX"/bad/cdr-2026-10-bad.csv ||
    fail "single-machine run over the bad file"
check "the bad file has rejected rows (so rejects.csv is tested)" \
    [ "$(wc -l <"$T/bad.one/rejects.csv")" -gt 10 ]
for drv in cdrecon-slurm cdrecon-local; do
    C5=$(new_cdir 3)
    if timeout 300 "$SLURM_TOOLS/$drv" --cluster "$C5" --tariff "$EX/tariff" --cdrecon "$CDRECON" \
        --night d "$EX"/bad/cdr-2026-10-bad.csv "$EX"/cdr/cdr-2026-10-a.csv >"$T/$drv.log" 2>&1; then
        ok "$drv with the default stage commands exits 0"
    else
        fail "$drv with the default stage commands exits $?"; show "$T/$drv.log"
    fi
    check "$drv: the tasks ran the binary itself (cdrecon split, run, cluster report)" \
        grep -qF "$CDRECON run --cluster $C5 --shard 1 --tariff" "$C5"/logs/d/rate-*_1.err
    one_run "$T/$drv.db" "$T/$drv.one" "$EX"/bad/cdr-2026-10-bad.csv "$EX"/cdr/cdr-2026-10-a.csv ||
        fail "single-machine run"
    check "$drv, default stages: report equals a single-machine run" \
        same_csvs "$T/$drv.one" "$C5/report"
done
finish
