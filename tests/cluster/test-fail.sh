#!/bin/sh
# POSIX sh. A task that fails: the driver exits 2 within seconds, prints that
# task's log, and leaves nothing in the queue (the report, whose afterok can
# no longer be met, is cancelled; the other tasks too); the later stages never
# start; a rerun once the cause is gone completes the night.
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
T=$CLUSTER_TMP/fail
mkdir -p "$T"

# A rate task fails.
C=$(new_cdir 4)
touch "$C/hooks/rate-2.fail"
s=$(date +%s)
slurm_night "$C" "$T/1.log" --night f1 "$EX"/cdr/*
rc=$? secs=$(($(date +%s) - s))
check "a failing rate task: the driver exits 2 (got $rc, ${secs} s)" [ "$rc" -eq 2 ]
check "the queue is empty when the driver exits" queue_empty
check "it names the failed task" grep -qE 'FAILED: rate task 2 \(job [0-9]+_2\) FAILED, exit code 3:0' "$T/1.log"
check "it prints that task's stderr" has "$T/1.log" "stage.sh: injected failure in rate task 2"
check "it prints that task's log paths" grep -qE -- "----- rate task 2: $C/logs/f1/rate-[0-9]+_2.err" "$T/1.log"
check "the report never ran" [ "$(grep -c '^report' "$C/trace")" -eq 0 ]
[ "$rc" -eq 2 ] || show "$T/1.log"
rm "$C/hooks/rate-2.fail"
if slurm_night "$C" "$T/2.log" --night f1 "$EX"/cdr/*; then
    ok "the rerun completes the night"
else
    fail "the rerun exits $?"; show "$T/2.log"
fi
check "the rerun's report equals a single-machine run" report_is_reference "$C"

# A route task fails: no rate task starts.
C=$(new_cdir 4)
touch "$C/hooks/route-1.fail"
slurm_night "$C" "$T/3.log" "$EX"/cdr/*
rc=$?
check "a failing route task: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "the queue is empty" queue_empty
check "no rate task started" [ "$(grep -c '^rate' "$C/trace")" -eq 0 ]
check "it names the failed route task" grep -qE 'FAILED: route task 1 \(job [0-9]+_1\)' "$T/3.log"
rm "$C/hooks/route-1.fail"
if slurm_night "$C" "$T/4.log" "$EX"/cdr/*; then ok "rerun completes"; else fail "rerun exits $?"; show "$T/4.log"; fi
check "its report equals a single-machine run" report_is_reference "$C"

# The report fails.
C=$(new_cdir 2)
touch "$C/hooks/report-0.fail"
slurm_night "$C" "$T/5.log" "$EX"/cdr/*
rc=$?
check "a failing report: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "it names the report job" grep -qE 'FAILED: report \(job [0-9]+\) FAILED' "$T/5.log"
check "and prints its stderr" has "$T/5.log" "stage.sh: injected failure in report task 0"

# The same failure without a scheduler.
C=$(new_cdir 4)
touch "$C/hooks/rate-1.fail"
local_night "$C" "$T/6.log" "$EX"/cdr/*
rc=$?
check "cdrecon-local, a failing rate task: exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "cdrecon-local prints its stderr" has "$T/6.log" "stage.sh: injected failure in rate task 1"
check "cdrecon-local: the report never ran" [ "$(grep -c '^report' "$C/trace")" -eq 0 ]
rm "$C/hooks/rate-1.fail"
if local_night "$C" "$T/7.log" "$EX"/cdr/*; then ok "cdrecon-local rerun completes"; else fail "cdrecon-local rerun exits $?"; fi
check "cdrecon-local rerun: report equals a single-machine run" report_is_reference "$C"

# Usage errors exit 1 before anything is submitted.
"$SLURM_TOOLS/cdrecon-slurm" --cluster "$CLUSTER_TMP/nonexistent" x >"$T/8.log" 2>&1
check "a missing cluster directory: exit 1" [ $? -eq 1 ]
C=$(new_cdir 4)
"$SLURM_TOOLS/cdrecon-slurm" --cluster "$C" --rate-cmd true "$C/no-such-file" >"$T/9.log" 2>&1
check "a missing input file: exit 1" [ $? -eq 1 ]
check "nothing was submitted" queue_empty
finish
