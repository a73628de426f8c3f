# shellcheck shell=sh
# POSIX sh. Sourced by tests/cluster/test-*.sh (run by tests/cluster/run.sh,
# which starts the private Slurm cluster and exports SLURMDIR, SLURM_CONF,
# CDRECON, CLUSTER_TMP). Checks print "ok - ..." or "FAIL - ..."; a test exits
# 1 when any check failed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SLURM_TOOLS=$ROOT/tools/slurm
STAGE="sh $ROOT/tests/cluster/stage.sh"
CDRGEN=${CDRGEN:-$ROOT/${BUILD:-build}/tools/cdrgen}
EX=$ROOT/testdata/example
FAILS=0

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
# (POSIX sh has no local variables: the helpers' own start with _.)
check() { # check NAME COMMAND...: ok when COMMAND succeeds
    _cn=$1; shift
    if "$@"; then ok "$_cn"; else fail "$_cn"; fi
}
finish() {
    if [ "$FAILS" -eq 0 ]; then exit 0; fi
    echo "$FAILS check(s) failed"
    exit 1
}

# new_cdir P: a fresh sharded test directory of P shards (`cdrecon cluster
# init --parts P DIR`), with DIR/hooks for tests/cluster/stage.sh.
new_cdir() {
    _d=$(mktemp -d "$CLUSTER_TMP/cdir.XXXXXX")
    "$CDRECON" cluster init --parts "$1" "$_d" >/dev/null || { echo "cluster init failed" >&2; return 1; }
    mkdir -p "$_d/hooks"
    echo "$_d"
}

# slurm_night DIR LOG [OPTIONS] FILES...: cdrecon-slurm with the test stages;
# its stdout and stderr go to LOG; returns its exit status. 300 s at most.
slurm_night() {
    _d=$1 _l=$2; shift 2
    timeout 300 "$SLURM_TOOLS/cdrecon-slurm" --cluster "$_d" --tariff "$EX/tariff" \
        --route-cmd "$STAGE route" --rate-cmd "$STAGE rate" --report-cmd "$STAGE report" \
        "$@" >"$_l" 2>&1
}
local_night() {
    _d=$1 _l=$2; shift 2
    timeout 300 "$SLURM_TOOLS/cdrecon-local" --cluster "$_d" --tariff "$EX/tariff" \
        --route-cmd "$STAGE route" --rate-cmd "$STAGE rate" --report-cmd "$STAGE report" \
        "$@" >"$_l" 2>&1
}

# one_run DB OUT FILES...: one machine's `cdrecon run` over FILES (given in
# name order, as the report orders rejects) into DB, outputs in OUT, with the
# example's tariff (or $ONE_TARIFF when set). Exit 9 (rows rejected) is a success.
ONE_TARIFF=""
one_run() {
    _db=$1 _o=$2; shift 2
    "$CDRECON" run --quiet --tariff "${ONE_TARIFF:-$EX/tariff}" --db "$_db" --out "$_o" "$@"
    _rc=$?
    [ "$_rc" -eq 0 ] || [ "$_rc" -eq 9 ] || { echo "single-machine run: exit $_rc" >&2; return 1; }
}

# reference: the outputs directory of one single-machine run over the
# example's cdr/ files (made once); prints its path.
reference() {
    _r=$CLUSTER_TMP/reference
    if [ ! -e "$_r/done" ]; then
        rm -rf "$_r"; mkdir -p "$_r"
        one_run "$_r/db" "$_r/out" "$EX"/cdr/* || return 1
        touch "$_r/done"
    fi
    echo "$_r/out"
}

# CSVS: the five CSVs a report (and one machine's run) writes.
CSVS="findings candidates unrated changes rejects"

# same_csvs A B: the five CSVs of directories A and B are byte-identical
# (else says which differs, with the first lines of the diff).
same_csvs() {
    for _f in $CSVS; do
        if ! cmp -s "$1/$_f.csv" "$2/$_f.csv"; then
            echo "    $1/$_f.csv differs from $2/$_f.csv:"
            diff "$1/$_f.csv" "$2/$_f.csv" 2>&1 | head -n 6 | sed 's/^/    | /'
            return 1
        fi
    done
}

# report_is_reference DIR: the five CSVs of DIR/report are those of one
# machine's run over the same files.
report_is_reference() {
    _ref=$(reference) || return 1
    same_csvs "$_ref" "$1/report"
}

# no_pieces DIR: no shard of DIR has a piece waiting to be rated.
no_pieces() {
    for _i in "$1"/shard-*/incoming/*; do
        [ -e "$_i" ] && return 1
    done
    return 0
}

# our_jobs: jobs of the test cluster not yet ended (one line each).
our_jobs() { squeue -h -o '%i %T %j'; }
queue_empty() { [ -z "$(our_jobs)" ]; }

# wait_for FILE SECONDS: until FILE exists.
wait_for() {
    _n=0
    while [ ! -e "$1" ]; do
        _n=$((_n + 1)); [ "$_n" -le $(($2 * 10)) ] || return 1
        sleep 0.1
    done
}

# stage_order DIR: in DIR/trace every route task ended before any rate task
# started, and every rate task ended before the report started; and the
# counts of tasks are ROUTE RATE REPORT ($2 $3 $4).
stage_order() {
    awk -v nr="$2" -v nt="$3" -v np="$4" '
        $3 == "start" { s[$1]++; if (!($1 in first) || $4 < first[$1]) first[$1] = $4 }
        $3 == "end"   { e[$1]++; if ($4 > last[$1]) last[$1] = $4 }
        END {
            bad = 0
            if (s["route"] != nr || e["route"] != nr) { print "route tasks: " s["route"] "/" e["route"]; bad = 1 }
            if (s["rate"] != nt || e["rate"] != nt) { print "rate tasks: " s["rate"] "/" e["rate"]; bad = 1 }
            if (s["report"] != np || e["report"] != np) { print "report tasks: " s["report"] "/" e["report"]; bad = 1 }
            if (nr > 0 && last["route"] >= first["rate"]) { print "a rate task started before the route stage ended"; bad = 1 }
            if (last["rate"] >= first["report"]) { print "the report started before the rate stage ended"; bad = 1 }
            exit bad }' "$1/trace"
}

# proc_alive PID: a live process (a zombie is not: this machine's pid 1 may not reap).
proc_alive() {
    [ -n "$1" ] && [ -d "/proc/$1" ] || return 1
    _st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$_st" ] && [ "$_st" != Z ]
}
proc_gone() { ! proc_alive "$1"; }

# descendant ROOT NAME: the pid of the first process called NAME among ROOT and
# its descendants (the driver under a background subshell and `timeout`).
descendant() {
    # From /proc, not ps: procps may be missing on a minimal machine.
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" -v name="$2" '
        { s = $0; c = $0; sub(/.*\) /, "", s); split(s, f, " "); parent[$1] = f[2]
          sub(/^[0-9]+ \(/, "", c); sub(/\) [^)]*$/, "", c); comm[$1] = c }
        END { want[root] = 1; todo[1] = root; n = 1
              for (i = 1; i <= n; i++) {
                  if (comm[todo[i]] == name) { print todo[i]; exit 0 }
                  for (p in parent) if (parent[p] == todo[i] && !(p in want)) { want[p] = 1; todo[++n] = p }
              }
              exit 1 }'
}

# grep_log LOG PATTERN: fixed string in the log.
has() { grep -qF -- "$2" "$1"; }

# show LOG: the log, indented, for a failed check.
show() { sed 's/^/    | /' "$1"; }
