#!/bin/sh
# POSIX sh. `make cluster-test`: the night drivers and the real stage
# commands on a real Slurm cluster started here (tools/slurm/install.sh, cluster-up.sh: slurmctld and
# two slurmd on 127.0.0.1, private munge), then every tests/cluster/test-*.sh,
# then cluster-down.sh and a check that none of the cluster's processes is
# left. Ends with one line "N passed, N failed". Needs root (the daemons run
# as root). BUILD (default build) holds the cdrecon binary to use.
#   sh tests/cluster/run.sh [test-NAME.sh...]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
[ -x "$BUILD/cdrecon" ] || { echo "cluster-test: $BUILD/cdrecon missing (make)" >&2; exit 1; }
sh tools/slurm/install.sh || exit 1
PATH="/usr/sbin:/sbin:$PATH"; export PATH

CLUSTER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cdrecon-cluster-test.XXXXXX")
# munged wants every directory above its socket traversable by all.
chmod 711 "$CLUSTER_TMP"
SLURMDIR=$CLUSTER_TMP/slurm
CDRECON=$ROOT/$BUILD/cdrecon
export CLUSTER_TMP SLURMDIR CDRECON
down_done=0
cleanup() {
    [ "$down_done" = 1 ] || sh tools/slurm/cluster-down.sh "$SLURMDIR" >/dev/null 2>&1
    if [ "${KEEP:-0}" = 1 ]; then echo "cluster-test: kept $CLUSTER_TMP"; else rm -rf "$CLUSTER_TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0 failed=0
t0=$(date +%s)
if sh tools/slurm/cluster-up.sh "$SLURMDIR"; then
    passed=$((passed + 1))
else
    echo "FAIL - cluster-up"
    failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    exit 1
fi
# shellcheck source=/dev/null
. "$SLURMDIR/env.sh"

if [ $# -gt 0 ]; then tests=$*; else tests=$(ls tests/cluster/test-*.sh); fi
for t in $tests; do
    [ -f "$t" ] || t=tests/cluster/$t
    echo "== $t"
    s=$(date +%s)
    if sh "$t"; then
        passed=$((passed + 1)); echo "== $t: ok ($(($(date +%s) - s)) s)"
    else
        failed=$((failed + 1)); echo "== $t: FAILED ($(($(date +%s) - s)) s)"
    fi
    # Every test leaves the cluster as it found it: both nodes up, no job.
    if ! sh tools/slurm/cluster-up.sh "$SLURMDIR" >/dev/null 2>&1 ||
        [ -n "$(squeue -h -o %i)" ]; then
        echo "FAIL - after $t: cluster not idle and empty"; failed=$((failed + 1))
        squeue
    fi
done

# cluster-down leaves no daemon, slurmstepd or task of this cluster behind.
echo "== cluster-down"
sh tools/slurm/cluster-down.sh "$SLURMDIR"
down_done=1
sleep 0.5
left=""
# The patterns come from files outside CLUSTER_TMP, so that no grep here
# matches its own command line.
mark_env=$(mktemp) mark_cmd=$(mktemp)
printf 'CDRECON_SLURM_DIR=%s\n' "$SLURMDIR" >"$mark_env"
printf '%s/\n' "$CLUSTER_TMP" >"$mark_cmd"
for f in $( { grep -lzxFf "$mark_env" /proc/[0-9]*/environ
              grep -laFf "$mark_cmd" /proc/[0-9]*/cmdline; } 2>/dev/null); do
    p=${f%/*}
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "$p/status" 2>/dev/null)
    if [ -z "$st" ] || [ "$st" = Z ]; then continue; fi
    left="$left ${p#/proc/}:$(cat "$p/comm" 2>/dev/null)"
done
rm -f "$mark_env" "$mark_cmd"
if [ -z "$left" ]; then
    echo "ok - cluster-down left no daemon, slurmstepd or task"; passed=$((passed + 1))
else
    echo "FAIL - left behind after cluster-down:$left"; failed=$((failed + 1))
fi
echo "cluster-test: $(($(date +%s) - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
