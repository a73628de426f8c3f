#!/bin/sh
# POSIX sh. The three real stage commands of a night, behind test hooks: the
# drivers (tools/slurm/cdrecon-slurm, cdrecon-local) run this wrapper as their
# --route-cmd/--rate-cmd/--report-cmd, so that a test can make a task fail or
# wait, and can see from DIR/trace when each task ran. After the hooks it runs
#
#   stage.sh route  --cluster DIR FILE...          cdrecon split --quiet --cluster DIR FILE...
#   stage.sh rate   --cluster DIR --shard K [--tariff T]
#                                                  cdrecon run --quiet --cluster DIR --shard K [--tariff T]
#   stage.sh report --cluster DIR --out OUT        cdrecon cluster report --cluster DIR --out OUT
#
# and exits with that command's status (docs/cluster.md: exit 0 is done).
#
# Test hooks (files under DIR/hooks, so that they reach tasks on any node):
#   STAGE-TASK.fail  the task prints "injected failure" and exits 3
#   STAGE-TASK.hold  the task writes its pid to STAGE-TASK.pid and waits while
#                    the .hold file exists (kill it, or remove the file)
#   NIGHT.STAGE-TASK.fail, NIGHT.STAGE-TASK.hold: the same, for the night
#                    NIGHT only ($CDRECON_NIGHT, cdrecon-slurm --night)
# Every task appends "STAGE TASK start EPOCH-NANOSECONDS" to DIR/trace before
# the hooks, and "STAGE TASK end ..." when the stage command succeeded.
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

case $stage in
route)
    [ $# -gt 0 ] || { echo "stage.sh route: no files" >&2; exit 1; }
    "$CDRECON" split --quiet --cluster "$dir" "$@"
    ;;
rate)
    if [ -n "$tariff" ]; then
        "$CDRECON" run --quiet --cluster "$dir" --shard "$shard" --tariff "$tariff"
    else
        "$CDRECON" run --quiet --cluster "$dir" --shard "$shard"
    fi
    ;;
report)
    "$CDRECON" cluster report --cluster "$dir" --out "$out"
    ;;
*) echo "stage.sh: unknown stage $stage" >&2; exit 1 ;;
esac
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
echo "$stage $task end $(date +%s%N)" >>"$dir/trace"
