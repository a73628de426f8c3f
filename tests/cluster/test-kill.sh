#!/bin/sh
# POSIX sh. A night killed in the middle, four ways -- scancel of one array
# task, kill -9 of a task's process, the death of the node running a task
# (kill -9 of its slurmd, slurmstepd and task), SIGTERM to the driver -- each
# time the driver reports the failure (exit 2, or 143 for its own SIGTERM),
# the queue is empty, no task process is left, and a rerun completes the
# night with the single-machine report. Then a driver killed with -9 (its
# jobs keep running): a new driver refuses to start (exit 4) until
# --cancel-previous, which cancels them and completes the night. And SIGTERM
# to cdrecon-local: its running tasks end with it; the rerun completes. Last,
# the stage command itself (cdrecon split, then cdrecon run --shard) killed
# with -9 in the middle of its work, on a generated month big enough that
# each takes about a second: each time the night fails, the killed file is
# not routed (no marker, no piece of it visible), and the rerun ends with the
# single-machine report.
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
T=$CLUSTER_TMP/kill
mkdir -p "$T"

# start_held C NIGHT STAGE-TASK LOG: a night in the background whose task
# STAGE-TASK waits on a hold file (for this night only); returns when that task
# runs. Sets DRV (the driver's pid) and HELD (the task's stage.sh pid).
start_held() {
    c=$1 night=$2 st=$3 log=$4
    touch "$c/hooks/$night.$st.hold"
    slurm_night "$c" "$log" --night "$night" "$EX"/cdr/* &
    DRV=$!
    if wait_for "$c/hooks/$night.$st.pid" 60; then
        HELD=$(cat "$c/hooks/$night.$st.pid")
    else
        HELD=""; fail "$night: task $st never ran"; show "$log"
    fi
}

# job_of STAGE TASK: the Slurm id (ARRAY_TASK) of the running task.
job_of() { squeue -h -r -t R -o '%i %j' | awk -v s="-$1\$" -v t="_$2\$" '$2 ~ s && $1 ~ t { print $1 }'; }

# after_kill NAME C LOG WANT-RC: the driver's status, the queue, the task gone;
# then the rerun.
after_kill() {
    name=$1 c=$2 log=$3 want=$4
    s=$(date +%s)
    wait "$DRV"
    rc=$?
    check "$name: the driver exits $want (got $rc, $(($(date +%s) - s)) s after the kill)" [ "$rc" -eq "$want" ]
    [ "$rc" -eq "$want" ] || show "$log"
    check "$name: the queue is empty when the driver has exited" queue_empty
    check "$name: the task's process is gone" proc_gone "$HELD"
    rm -f "$c"/hooks/*.hold
    if slurm_night "$c" "$log.rerun" "$EX"/cdr/*; then
        ok "$name: the rerun completes the night"
    else
        fail "$name: the rerun exits $?"; show "$log.rerun"
    fi
    check "$name: the rerun's report equals a single-machine run" report_is_reference "$c"
}

# 1. scancel of one array task.
C=$(new_cdir 4)
start_held "$C" k1 rate-1 "$T/1.log"
j=$(job_of rate 1)
check "scancel: found the running task rate 1 ($j)" [ -n "$j" ]
scancel "$j"
after_kill "scancel of a rate task" "$C" "$T/1.log" 2
check "scancel: the driver names the cancelled task" grep -qE 'rate task 1 \(job [0-9]+_1\) CANCELLED' "$T/1.log"

# 2. kill -9 of the task's process (the stage command).
C=$(new_cdir 4)
start_held "$C" k2 rate-3 "$T/2.log"
kill -9 "$HELD"
after_kill "kill -9 of a task's process" "$C" "$T/2.log" 2
check "kill -9: the printed log says the stage was killed by signal 9" \
    has "$T/2.log" "cdrecon-task: rate 3 FAILED: killed by signal 9"

# 3. The node running a task dies: kill -9 its slurmd, the task's slurmstepd
# and the task (slurmstepd outlives slurmd; on a real node all go together).
# slurmctld notices after SlurmdTimeout (5 s): NODE_FAIL.
C=$(new_cdir 4)
start_held "$C" k3 route-0 "$T/3.log"
node=$(squeue -h -r -t R -o '%i %j %N' | awk '$2 ~ /-route$/ && $1 ~ /_0$/ { print $3 }')
check "node death: found the node running route 0 ($node)" [ -n "$node" ]
if [ -n "$node" ] && [ -n "$HELD" ]; then
    script=$(awk '{ print $4 }' "/proc/$HELD/stat")   # the batch script (cdrecon-task)
    stepd=$(awk '{ print $4 }' "/proc/$script/stat")  # its slurmstepd
    check "node death: the task runs under a slurmstepd" \
        [ "$(cat "/proc/$stepd/comm" 2>/dev/null)" = slurmstepd ]
    kill -9 "$(cat "$SLURMDIR/run/slurmd-$node.pid")" "$stepd" "$script" "$HELD"
fi
after_kill_node() {
    # The node comes back before the rerun (ReturnToService=2).
    sh "$ROOT/tools/slurm/cluster-up.sh" "$SLURMDIR" >"$T/3.up" 2>&1 ||
        { fail "node death: the node did not come back"; show "$T/3.up"; }
}
s=$(date +%s)
wait "$DRV"
rc=$?
check "node death: the driver exits 2 (got $rc, $(($(date +%s) - s)) s after the kill)" [ "$rc" -eq 2 ]
[ "$rc" -eq 2 ] || show "$T/3.log"
check "node death: the driver says NODE_FAIL" grep -qE 'route task 0 \(job [0-9]+_0\) NODE_FAIL' "$T/3.log"
check "node death: the queue is empty" queue_empty
after_kill_node
rm -f "$C"/hooks/*.hold
if slurm_night "$C" "$T/3.rerun" "$EX"/cdr/*; then
    ok "node death: the rerun completes the night"
else
    fail "node death: the rerun exits $?"; show "$T/3.rerun"
fi
check "node death: the rerun's report equals a single-machine run" report_is_reference "$C"

# 4. SIGTERM to the driver: it cancels its jobs and exits 143.
C=$(new_cdir 4)
start_held "$C" k4 rate-2 "$T/4.log"
drv=$(descendant "$DRV" cdrecon-slurm)
check "SIGTERM: found the driver process" [ "$(cat "/proc/$drv/comm" 2>/dev/null)" = cdrecon-slurm ]
kill -TERM "$drv"
after_kill "SIGTERM to the driver" "$C" "$T/4.log" 143
check "SIGTERM: the driver says it cancelled its jobs" has "$T/4.log" "TERM received: cancelling jobs"

# 5. The driver killed with -9: its jobs run on; a new driver refuses to start
# beside them (two nights must not rate one shard at once) until
# --cancel-previous.
C=$(new_cdir 4)
start_held "$C" k5 rate-0 "$T/5.log"
drv=$(descendant "$DRV" cdrecon-slurm)
kill -9 "$drv"
wait "$DRV"
check "kill -9 of the driver: its jobs still run" [ -n "$(our_jobs)" ]
slurm_night "$C" "$T/5b.log" --night k5b "$EX"/cdr/*
rc=$?
check "a new driver beside them exits 4 (got $rc)" [ "$rc" -eq 4 ]
check "it says why" has "$T/5b.log" "still run"
if slurm_night "$C" "$T/5c.log" --night k5c --cancel-previous "$EX"/cdr/*; then
    ok "--cancel-previous: the night completes"
else
    fail "--cancel-previous exits $?"; show "$T/5c.log"
fi
check "--cancel-previous: it cancelled the earlier jobs" has "$T/5c.log" "cancelling jobs of an earlier night"
check "--cancel-previous: the held task of the killed night is gone" proc_gone "$HELD"
check "--cancel-previous: report equals a single-machine run" report_is_reference "$C"
rm -f "$C"/hooks/*.hold

# 6. SIGTERM to cdrecon-local: its running tasks (and what they started) end.
C=$(new_cdir 4)
touch "$C/hooks/rate-1.hold"
local_night "$C" "$T/6.log" --max-running 2 "$EX"/cdr/* &
DRV=$!
if wait_for "$C/hooks/rate-1.pid" 60; then
    HELD=$(cat "$C/hooks/rate-1.pid")
    drv=$(descendant "$DRV" cdrecon-local)
    check "cdrecon-local SIGTERM: found the driver" [ "$(cat "/proc/$drv/comm" 2>/dev/null)" = cdrecon-local ]
    kill -TERM "$drv"
    wait "$DRV"
    rc=$?
    check "cdrecon-local SIGTERM: exits 143 (got $rc)" [ "$rc" -eq 143 ]
    check "cdrecon-local SIGTERM: the held stage command is gone" proc_gone "$HELD"
    rm -f "$C/hooks/rate-1.hold"
    if local_night "$C" "$T/6.rerun" "$EX"/cdr/*; then ok "cdrecon-local: the rerun completes"; else fail "cdrecon-local rerun exits $?"; fi
    check "cdrecon-local: the rerun's report equals a single-machine run" report_is_reference "$C"
else
    fail "cdrecon-local: task rate 1 never ran"; show "$T/6.log"
fi

# 7. kill -9 of the real stage command in the middle of its work. The task
# is held first (so that the test knows its stage.sh), then released; the
# cdrecon process it starts is killed 0.3 s after it appears (its work takes
# about a second here).
G=$CLUSTER_TMP/bigmonth
if [ ! -s "$G/cdr/cdr-2026-10-02.csv.gz" ]; then
    rm -rf "$G"; mkdir -p "$G/cdr"
    "$CDRGEN" --seed 16 --rows 1200000 --days 2 --errors 0.01 --faults 0.001 --tariff "$G/tariff" \
        --out-dir "$G/cdr" --by-day >"$T/gen.log" 2>&1 || { fail "cdrgen"; show "$T/gen.log"; }
fi
big_night() { # C LOG NIGHT
    timeout 300 "$SLURM_TOOLS/cdrecon-slurm" --cluster "$1" --tariff "$G/tariff" \
        --route-cmd "$STAGE route" --rate-cmd "$STAGE rate" --report-cmd "$STAGE report" \
        --night "$3" "$G"/cdr/cdr-2026-10-0[12].csv.gz >"$2" 2>&1
}
# kill_mid C NIGHT STAGE-TASK LOG: the night in the background; release the
# held task, kill -9 its cdrecon 0.3 s after it started; the driver's status.
kill_mid() {
    touch "$1/hooks/$2.$3.hold"
    big_night "$1" "$4" "$2" &
    DRV=$!
    KILLED=""
    if wait_for "$1/hooks/$2.$3.pid" 60; then
        HELD=$(cat "$1/hooks/$2.$3.pid")
        rm -f "$1/hooks/$2.$3.hold"
        _n=0 _p=""
        while [ -z "$_p" ] && [ "$_n" -lt 200 ]; do
            _p=$(descendant "$HELD" cdrecon) || _p=""
            _n=$((_n + 1)); [ -n "$_p" ] || sleep 0.05
        done
        if [ -n "$_p" ]; then
            sleep 0.3
            proc_alive "$_p" && kill -9 "$_p" && KILLED=$_p
        fi
    fi
    wait "$DRV"
}
C=$(new_cdir 2)
kill_mid "$C" m1 route-0 "$T/7.log"
rc=$?
check "mid-split: cdrecon split was killed while it worked" [ -n "$KILLED" ]
check "mid-split: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "mid-split: the driver says killed by signal 9" has "$T/7.log" "cdrecon-task: route 0 FAILED: killed by signal 9"
check "mid-split: the queue is empty" queue_empty
sha1=$(sha256sum <"$G/cdr/cdr-2026-10-01.csv.gz" | cut -d' ' -f1)
check "mid-split: the killed task's file is not routed (no marker)" [ ! -e "$C/routed/$sha1.done" ]
pieces_whole() { # every visible piece belongs to a file routed whole
    for _i in "$C"/shard-*/incoming/*.piece; do
        [ -e "$_i" ] || continue
        _s=${_i##*/}; [ -e "$C/routed/${_s%.piece}.done" ] || return 1
    done
}
check "mid-split: no piece of the killed file is visible" pieces_whole
kill_mid "$C" m2 rate-1 "$T/7b.log"
rc=$?
check "mid-rate: cdrecon run --shard 1 was killed while it worked" [ -n "$KILLED" ]
check "mid-rate: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
check "mid-rate: the driver says killed by signal 9" has "$T/7b.log" "cdrecon-task: rate 1 FAILED: killed by signal 9"
check "mid-rate: the queue is empty" queue_empty
if big_night "$C" "$T/7c.log" m3; then ok "mid-kills: the rerun completes the night"; else fail "mid-kills: the rerun exits $?"; show "$T/7c.log"; fi
ONE_TARIFF=$G/tariff
if one_run "$T/big.db" "$T/big.one" "$G"/cdr/cdr-2026-10-0[12].csv.gz; then
    check "mid-kills: the rerun's report equals a single-machine run (five CSVs)" same_csvs "$T/big.one" "$C/report"
    meaningful() {
        [ "$(wc -l <"$T/big.one/findings.csv")" -gt 100 ] && [ "$(wc -l <"$T/big.one/rejects.csv")" -gt 100 ]
    }
    check "mid-kills: the month has over 100 findings and 100 rejected rows" meaningful
else
    fail "mid-kills: single-machine run"
fi
ONE_TARIFF=""
finish
