#!/bin/sh
# POSIX sh. The test issue 16 asks for: the bundled example month
# (testdata/example/nights: 31 day files and the late file) delivered as 3
# nights -- days 01-10; 11-20; 21-31 and the late file -- over 4 shards
# through Slurm (cdrecon-slurm on the test cluster, the real stages behind
# tests/cluster/stage.sh). After EACH night the report's five CSVs are byte
# for byte those of one machine's `cdrecon run` over the same files, the
# single machine running the same nights into one database.
#   A. the three nights, clean
#   B. the same with a task killed mid-night: in night 2 a rate task (held
#      while the other shards commit, then kill -9), in night 3 a route task
#      (held while the other files are routed, then kill -9): the night fails
#      (exit 2), the report is left as it was, and the rerun ends identical
#   C. the same three nights by cdrecon-local with the DEFAULT stage commands
#      (the binary of --cdrecon): the same reports, byte for byte
# shellcheck source=tests/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
T=$CLUSTER_TMP/month
mkdir -p "$T"
N=$EX/nights

# The nights (ls: name order, as one machine is given them).
ls "$N"/cdr-2026-10-0*.csv.gz "$N"/cdr-2026-10-10.csv.gz >"$T/night1"
ls "$N"/cdr-2026-10-1[1-9].csv.gz "$N"/cdr-2026-10-20.csv.gz >"$T/night2"
ls "$N"/cdr-2026-10-2[1-9].csv.gz "$N"/cdr-2026-10-3*.csv.gz "$N"/cdr-2026-10-late.csv.gz >"$T/night3"
check "the nights have 10, 10 and 12 different files" \
    [ "$(wc -l <"$T/night1") $(wc -l <"$T/night2") $(wc -l <"$T/night3") $(sort -u "$T"/night? | wc -l)" = "10 10 12 32" ]
files() { tr '\n' ' ' <"$T/night$1"; }

# One machine, night by night into one database.
for i in 1 2 3; do
    # shellcheck disable=SC2046
    one_run "$T/one.db" "$T/one$i" $(files "$i") || fail "single-machine night $i"
    n=$(($(wc -l <"$T/one$i/findings.csv") - 1))
    check "single machine, night $i: $n findings (enough for the comparison to mean something)" \
        [ "$n" -gt 50 ]
done
check "single machine: night 2's changes are not night 1's" \
    [ -n "$(cmp "$T/one1/changes.csv" "$T/one2/changes.csv" 2>&1)" ]

# report_says C NIGHTID N: the report task of that night printed "night N".
report_says() { grep -qE "^cdrecon cluster report, night $3 " "$1"/logs/"$2"/report-*.out; }
# wait_trace C PATTERN COUNT: DIR/trace has COUNT lines matching PATTERN (60 s at most).
wait_trace() {
    _n=0
    while [ "$(grep -cE "$2" "$1/trace" 2>/dev/null)" -lt "$3" ]; do
        _n=$((_n + 1)); [ "$_n" -le 600 ] || return 1
        sleep 0.1
    done
}

# ---- A. three clean nights through Slurm ----
C=$(new_cdir 4)
for i in 1 2 3; do
    g=$i # 10, 5 and 4 route tasks
    # shellcheck disable=SC2046
    if slurm_night "$C" "$T/a$i.log" --night a$i --group "$g" $(files "$i"); then
        ok "A night $i through Slurm exits 0"
    else
        fail "A night $i through Slurm exits $?"; show "$T/a$i.log"
    fi
    check "A night $i: the report equals one machine's night $i (five CSVs)" same_csvs "$T/one$i" "$C/report"
    check "A night $i: the report says night $i" report_says "$C" "a$i" "$i"
    check "A night $i: every piece was rated and removed" no_pieces "$C"
    rm -rf "$T/a$i"; cp -r "$C/report" "$T/a$i"
done
check "A: nothing left in the queue" queue_empty

# ---- B. the same nights, a task killed in nights 2 and 3 ----
C=$(new_cdir 4)
# shellcheck disable=SC2046
slurm_night "$C" "$T/b1.log" --night b1 $(files 1) || { fail "B night 1 exits $?"; show "$T/b1.log"; }
check "B night 1: report = one machine's" same_csvs "$T/one1" "$C/report"

# Night 2: rate task 2 holds while shards 0, 1, 3 rate and commit; kill -9.
: >"$C/trace"
touch "$C/hooks/b2.rate-2.hold"
# shellcheck disable=SC2046
slurm_night "$C" "$T/b2.log" --night b2 $(files 2) &
DRV=$!
HELD=""
if wait_for "$C/hooks/b2.rate-2.pid" 60; then HELD=$(cat "$C/hooks/b2.rate-2.pid"); fi
check "B night 2: rate task 2 runs (held)" [ -n "$HELD" ]
check "B night 2: the three other shards rated and committed meanwhile" \
    wait_trace "$C" '^rate [013] end' 3
[ -n "$HELD" ] && kill -9 "$HELD"
wait "$DRV"
rc=$?
check "B night 2, rate task killed: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
[ "$rc" -eq 2 ] || show "$T/b2.log"
check "B night 2: the driver says it was killed by signal 9" \
    has "$T/b2.log" "cdrecon-task: rate 2 FAILED: killed by signal 9"
check "B night 2: the queue is empty" queue_empty
check "B night 2: the report did not run" [ "$(grep -c '^report' "$C/trace")" -eq 0 ]
check "B night 2: the report is still night 1's" same_csvs "$T/one1" "$C/report"
only_shard2_waits() {
    [ "$(ls "$C/shard-2/incoming/" | grep -c '\.piece$')" -gt 0 ] &&
        [ "$(ls "$C"/shard-[013]/incoming/ | grep -c '\.piece$')" -eq 0 ]
}
check "B night 2: shard 2's pieces wait, the other shards' were consumed" only_shard2_waits
rm -f "$C"/hooks/*.hold
# shellcheck disable=SC2046
if slurm_night "$C" "$T/b2r.log" --night b2r $(files 2); then
    ok "B night 2: the rerun exits 0"
else
    fail "B night 2: the rerun exits $?"; show "$T/b2r.log"
fi
check "B night 2: after the rerun the report equals one machine's night 2" \
    same_csvs "$T/one2" "$C/report"
check "B night 2: the rerun's report says night 2" report_says "$C" b2r 2

# Night 3: route task 1 (of 12) holds while the other files are routed; kill -9.
: >"$C/trace"
touch "$C/hooks/b3.route-1.hold"
# shellcheck disable=SC2046
slurm_night "$C" "$T/b3.log" --night b3 $(files 3) &
DRV=$!
HELD=""
if wait_for "$C/hooks/b3.route-1.pid" 60; then HELD=$(cat "$C/hooks/b3.route-1.pid"); fi
check "B night 3: route task 1 runs (held)" [ -n "$HELD" ]
check "B night 3: the 11 other files were routed meanwhile" wait_trace "$C" '^route [0-9]+ end' 11
[ -n "$HELD" ] && kill -9 "$HELD"
wait "$DRV"
rc=$?
check "B night 3, route task killed: the driver exits 2 (got $rc)" [ "$rc" -eq 2 ]
[ "$rc" -eq 2 ] || show "$T/b3.log"
check "B night 3: the driver says it was killed by signal 9" \
    has "$T/b3.log" "cdrecon-task: route 1 FAILED: killed by signal 9"
check "B night 3: no rate task started" [ "$(grep -c '^rate' "$C/trace")" -eq 0 ]
check "B night 3: the queue is empty" queue_empty
check "B night 3: the report is still night 2's" same_csvs "$T/one2" "$C/report"
check "B night 3: 31 of the 32 files were routed whole" [ "$(ls "$C"/routed/*.done | wc -l)" -eq 31 ]
rm -f "$C"/hooks/*.hold
# shellcheck disable=SC2046
if slurm_night "$C" "$T/b3r.log" --night b3r $(files 3); then
    ok "B night 3: the rerun exits 0"
else
    fail "B night 3: the rerun exits $?"; show "$T/b3r.log"
fi
check "B night 3: after the rerun the report equals one machine's night 3" \
    same_csvs "$T/one3" "$C/report"
check "B night 3: the rerun's report says night 3" report_says "$C" b3r 3
check "B night 3: the rerun ran the 12 route tasks again (11 skip their file)" \
    [ "$(grep -c '^route [0-9]* end' "$C/trace")" -eq 23 ]
check "B night 3: the 32 files are routed" [ "$(ls "$C"/routed/*.done | wc -l)" -eq 32 ]
check "B: nothing left in the queue" queue_empty

# ---- C. the same nights by cdrecon-local, default stage commands ----
C=$(new_cdir 4)
for i in 1 2 3; do
    # shellcheck disable=SC2046
    if timeout 300 "$SLURM_TOOLS/cdrecon-local" --cluster "$C" --tariff "$EX/tariff" \
        --cdrecon "$CDRECON" --max-running 2 --night c$i $(files "$i") >"$T/c$i.log" 2>&1; then
        ok "C night $i by cdrecon-local (default stages) exits 0"
    else
        fail "C night $i by cdrecon-local exits $?"; show "$T/c$i.log"
    fi
    check "C night $i: the report is byte-identical to the Slurm night's (A)" same_csvs "$T/a$i" "$C/report"
done
finish
