# shellcheck shell=bash disable=SC2034 # the variables set here are the includers'
# bash (5.x). Sourced by tools/slurm/cdrecon-slurm and tools/slurm/cdrecon-local:
# the command line they share and the night's plan they both write. Not run alone.
#
# The plan of a night is one argv file per task, NUL-separated words,
#   NIGHTDIR/argv/route.I   I = 0..G-1   ROUTE_CMD --cluster DIR [--route-opt..] FILE...
#   NIGHTDIR/argv/rate.K    K = 0..P-1   RATE_CMD --cluster DIR --shard K [--tariff T] [--rate-opt..]
#   NIGHTDIR/argv/report.0               REPORT_CMD --cluster DIR --out OUT [--report-opt..]
# which tools/slurm/cdrecon-task runs (under Slurm the task number is
# SLURM_ARRAY_TASK_ID). NIGHTDIR = DIR/logs/NIGHT. docs/cluster.md.

night_usage() {
    cat <<EOF
usage: $PROG --cluster DIR [OPTIONS] FILES...

Run one night over a sharded cdrecon directory DIR in three stages:
  route   one task per group of input files:  ROUTE_CMD --cluster DIR [ROUTE-OPTS] FILE...
  rate    one task per shard K = 0..P-1:      RATE_CMD --cluster DIR --shard K [--tariff T] [RATE-OPTS]
  report  one task, after every shard:        REPORT_CMD --cluster DIR --out OUT [REPORT-OPTS]
A stage task succeeds when its command exits 0 (or a code of --ok-exit).
$PROG_WHAT

options:
  --cluster DIR        the sharded directory, on storage every node sees (required)
  --tariff T           tariff directory, given to the rate stage as --tariff T
  --out OUT            report directory (default DIR/report)
  --parts P            number of shards (default: the number in DIR/parts,
                       written by 'cdrecon cluster init --parts P DIR')
  --group N            input files per route task (default 1)
  --night ID           name of this night's log directory DIR/logs/ID
                       (default: UTC time, e.g. 20261006T013000Z)
  --cdrecon PATH       the cdrecon binary (default: \$CDRECON, else cdrecon in
                       PATH, else build/cdrecon of this source tree)
  --route-cmd CMD      stage commands, split on blanks (default "CDRECON split",
  --rate-cmd CMD         "CDRECON run", "CDRECON cluster report"); also from the
  --report-cmd CMD       environment: CDRECON_ROUTE_CMD, CDRECON_RATE_CMD, CDRECON_REPORT_CMD
  --route-opt ARG      one more argument for every route task (repeatable)
  --rate-opt ARG       one more argument for every rate task (repeatable)
  --report-opt ARG     one more argument for the report task (repeatable)
  --ok-exit LIST       exit codes that count as success, comma-separated (default 0)
  --partition P        Slurm partition (sbatch --partition)
  --sbatch-opt OPT     one more sbatch option for all three jobs (repeatable),
                       e.g. --sbatch-opt=--time=2:00:00 --sbatch-opt=--mem=4G
  --route-sbatch-opt OPT, --rate-sbatch-opt OPT, --report-sbatch-opt OPT
                       one more sbatch option for that stage's job only
  --max-running N      at most N tasks of an array run at once (--array=...%N);
                       with cdrecon-local: tasks run at once (default 1)
  --poll SECONDS       longest interval between two polls of Slurm (default 2;
                       polls start every 0.2 s and slow down while nothing changes)
  --cancel-previous    cancel still-running jobs of an earlier night on DIR
                       (default: refuse to start while there are any)
  -h, --help           this text

exit status: 0 the night (report) succeeded; 1 usage; 2 a task failed (its
log is printed); 3 scheduler error; 4 jobs of an earlier night on DIR still
run; 130/143 interrupted (own jobs cancelled).
EOF
}

night_die() { echo "$PROG: $*" >&2; exit 1; }

# night_abs PATH: PATH made absolute (relative to the current directory).
night_abs() {
    case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "${1#./}" ;; esac
}

night_int() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2)); }

night_parse() {
    CLUSTER="" TARIFF="" OUT="" PARTS="" GROUP=1 NIGHT="" CDRECON_BIN="${CDRECON:-}"
    ROUTE_CMD_S="${CDRECON_ROUTE_CMD:-}" RATE_CMD_S="${CDRECON_RATE_CMD:-}"
    REPORT_CMD_S="${CDRECON_REPORT_CMD:-}"
    ROUTE_OPTS=() RATE_OPTS=() REPORT_OPTS=() SBATCH_ALL=() SBATCH_ROUTE=() SBATCH_RATE=()
    SBATCH_REPORT=() FILES=()
    PARTITION="" MAX_RUNNING="" POLL=2 CANCEL_PREVIOUS=0 OK_EXIT=0
    local opt val
    while (($#)); do
        opt=$1
        case $opt in
            --) shift; FILES+=("$@"); break ;;
            -h | --help) night_usage; exit 0 ;;
            --cancel-previous) CANCEL_PREVIOUS=1; shift; continue ;;
            --*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
            --*) (($# >= 2)) || night_die "$opt needs a value (--help)"; val=$2; shift 2 ;;
            -) FILES+=("$1"); shift; continue ;;
            -*) night_die "unknown option $opt (--help)" ;;
            *) FILES+=("$1"); shift; continue ;;
        esac
        case $opt in
            --cluster) CLUSTER=$val ;;
            --tariff) TARIFF=$val ;;
            --out) OUT=$val ;;
            --parts) PARTS=$val ;;
            --group) GROUP=$val ;;
            --night) NIGHT=$val ;;
            --cdrecon) CDRECON_BIN=$val ;;
            --route-cmd) ROUTE_CMD_S=$val ;;
            --rate-cmd) RATE_CMD_S=$val ;;
            --report-cmd) REPORT_CMD_S=$val ;;
            --route-opt) ROUTE_OPTS+=("$val") ;;
            --rate-opt) RATE_OPTS+=("$val") ;;
            --report-opt) REPORT_OPTS+=("$val") ;;
            --ok-exit) OK_EXIT=$val ;;
            --partition) PARTITION=$val ;;
            --sbatch-opt) SBATCH_ALL+=("$val") ;;
            --route-sbatch-opt) SBATCH_ROUTE+=("$val") ;;
            --rate-sbatch-opt) SBATCH_RATE+=("$val") ;;
            --report-sbatch-opt) SBATCH_REPORT+=("$val") ;;
            --max-running) MAX_RUNNING=$val ;;
            --poll) POLL=$val ;;
            *) night_die "unknown option $opt (--help)" ;;
        esac
    done

    [[ -n $CLUSTER ]] || night_die "--cluster DIR is required (--help)"
    [[ -d $CLUSTER ]] || night_die "--cluster $CLUSTER: no such directory (create it: cdrecon cluster init --parts P DIR)"
    CLUSTER=$(cd "$CLUSTER" && pwd -P) || night_die "--cluster: cannot enter $CLUSTER"
    if [[ -z $PARTS ]]; then
        [[ -r $CLUSTER/parts ]] || night_die "no --parts P and no $CLUSTER/parts"
        read -r PARTS <"$CLUSTER/parts" || true
        night_int "${PARTS:-x}" 1 || night_die "$CLUSTER/parts: not a number of shards: '$PARTS'"
    fi
    night_int "$PARTS" 1 || night_die "--parts: a number >= 1, not '$PARTS'"
    PARTS=$((10#$PARTS))
    night_int "$GROUP" 1 || night_die "--group: a number >= 1, not '$GROUP'"
    GROUP=$((10#$GROUP))
    [[ -z $MAX_RUNNING ]] || night_int "$MAX_RUNNING" 1 || night_die "--max-running: a number >= 1"
    [[ $POLL =~ ^([0-9]+)(\.([0-9]{1,3}))?$ ]] || night_die "--poll: seconds (3 decimals at most), not '$POLL'"
    local frac=${BASH_REMATCH[3]}000
    POLL_MS=$((10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3}))
    ((POLL_MS >= 200)) || POLL_MS=200
    [[ $OK_EXIT =~ ^[0-9]+(,[0-9]+)*$ ]] || night_die "--ok-exit: codes like 0,8, not '$OK_EXIT'"
    [[ -z $NIGHT || $NIGHT =~ ^[A-Za-z0-9._-]+$ && $NIGHT != .* ]] ||
        night_die "--night: letters, digits, '.', '_', '-' only"
    if [[ -n $TARIFF ]]; then
        [[ -d $TARIFF ]] || night_die "--tariff $TARIFF: no such directory"
        TARIFF=$(night_abs "$TARIFF")
    fi
    [[ -n $OUT ]] || OUT=$CLUSTER/report
    OUT=$(night_abs "$OUT")

    # The stage commands. The binary is needed only by a default stage.
    if [[ -z $ROUTE_CMD_S || -z $RATE_CMD_S || -z $REPORT_CMD_S ]]; then
        if [[ -z $CDRECON_BIN ]]; then
            if command -v cdrecon >/dev/null 2>&1; then
                CDRECON_BIN=$(command -v cdrecon)
            else
                CDRECON_BIN=$NIGHT_HERE/../../build/cdrecon
            fi
        fi
        [[ -x $CDRECON_BIN ]] || night_die "cdrecon binary not found or not executable: $CDRECON_BIN (--cdrecon PATH)"
        CDRECON_BIN=$(cd "$(dirname "$CDRECON_BIN")" && pwd -P)/$(basename "$CDRECON_BIN")
    fi
    [[ -n $ROUTE_CMD_S ]] || ROUTE_CMD_S="$CDRECON_BIN split"
    [[ -n $RATE_CMD_S ]] || RATE_CMD_S="$CDRECON_BIN run"
    [[ -n $REPORT_CMD_S ]] || REPORT_CMD_S="$CDRECON_BIN cluster report"
    read -r -a ROUTE_CMD <<<"$ROUTE_CMD_S"
    read -r -a RATE_CMD <<<"$RATE_CMD_S"
    read -r -a REPORT_CMD <<<"$REPORT_CMD_S"
    ((${#ROUTE_CMD[@]} && ${#RATE_CMD[@]} && ${#REPORT_CMD[@]})) || night_die "an empty stage command"

    # Input files: absolute (the tasks run on other machines, in DIR), readable.
    local i f
    for i in "${!FILES[@]}"; do
        f=${FILES[i]}
        [[ $f != - ]] || night_die "standard input cannot be routed by a cluster task: give files"
        [[ -f $f && -r $f ]] || night_die "$f: no such readable file"
        FILES[i]=$(night_abs "$f")
    done
    NFILES=${#FILES[@]}
    NGROUPS=$(((NFILES + GROUP - 1) / GROUP))
}

# night_lock: take the lock DIR/logs/.lock (one driver per DIR on this host;
# released when the driver and every process it started are gone: nothing to
# clean up after a crash).
night_lock() {
    mkdir -p "$CLUSTER/logs" || night_die "cannot create $CLUSTER/logs"
    if command -v flock >/dev/null 2>&1; then
        exec {NIGHT_LOCK_FD}>>"$CLUSTER/logs/.lock" || night_die "cannot open $CLUSTER/logs/.lock"
        flock -n "$NIGHT_LOCK_FD" ||
            night_die "another cdrecon-slurm or cdrecon-local is running on $CLUSTER (lock $CLUSTER/logs/.lock)"
    fi
}

# night_plan: make NIGHTDIR (DIR/logs/NIGHT) and write the plan in it.
night_plan() {
    if [[ -z $NIGHT ]]; then
        NIGHT=$(date -u +%Y%m%dT%H%M%SZ)
        local base=$NIGHT n=1
        while [[ -e $CLUSTER/logs/$NIGHT ]]; do n=$((n + 1)); NIGHT=$base.$n; done
    fi
    NIGHTDIR=$CLUSTER/logs/$NIGHT
    # A rerun under the same --night writes a fresh plan; old logs stay.
    rm -rf "$NIGHTDIR/argv"
    mkdir -p "$NIGHTDIR/argv" || night_die "cannot create $NIGHTDIR/argv"

    local g k lo hi
    for ((g = 0; g < NGROUPS; g++)); do
        lo=$((g * GROUP)); hi=$((lo + GROUP)); ((hi <= NFILES)) || hi=$NFILES
        printf '%s\0' "${ROUTE_CMD[@]}" --cluster "$CLUSTER" "${ROUTE_OPTS[@]}" \
            "${FILES[@]:lo:hi-lo}" >"$NIGHTDIR/argv/route.$g"
    done
    local tariff=()
    [[ -z $TARIFF ]] || tariff=(--tariff "$TARIFF")
    for ((k = 0; k < PARTS; k++)); do
        printf '%s\0' "${RATE_CMD[@]}" --cluster "$CLUSTER" --shard "$k" "${tariff[@]}" \
            "${RATE_OPTS[@]}" >"$NIGHTDIR/argv/rate.$k"
    done
    printf '%s\0' "${REPORT_CMD[@]}" --cluster "$CLUSTER" --out "$OUT" "${REPORT_OPTS[@]}" \
        >"$NIGHTDIR/argv/report.0"
    printf '%s\n' "route $NGROUPS" "rate $PARTS" "report 1" >"$NIGHTDIR/argv/counts"
    printf '%s\n' "$OK_EXIT" >"$NIGHTDIR/argv/ok-exit"
    printf '%s\n' "$NIGHT" >"$NIGHTDIR/argv/night"
}

# night_log MESSAGE: to stderr and NIGHTDIR/driver.log, with the UTC time.
night_log() {
    local t
    t=$(date -u +%H:%M:%S)
    echo "$PROG: $*" >&2
    [[ -z ${NIGHTDIR:-} ]] || echo "$t $*" >>"$NIGHTDIR/driver.log"
}

# night_show_log STAGE TASK OUT ERR: print a failed task's stdout and stderr.
night_show_log() {
    local f
    for f in "$3" "$4"; do
        echo "----- $1 task $2: $f" >&2
        if [[ -f $f && ! -s $f ]]; then
            echo "(empty)" >&2
        elif [[ -f $f ]]; then
            if (($(wc -l <"$f") > 200)); then
                echo "(last 200 lines)" >&2
                tail -n 200 "$f" >&2
            else
                cat "$f" >&2
            fi
        else
            echo "(no such file: the task did not start, or its node lost it)" >&2
        fi
    done
    echo "-----" >&2
}

# night_elapsed START: seconds since START (an $EPOCHREALTIME), one decimal.
night_elapsed() {
    local now=$EPOCHREALTIME
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}
