#!/bin/sh
# POSIX sh. Stop the private Slurm cluster that tools/slurm/cluster-up.sh
# started in SLURMDIR, and only it:
#   1. scancel every job (slurmstepd ignores SIGTERM and outlives slurmd, so
#      jobs are ended through Slurm first) and wait for them to go;
#   2. SIGTERM slurmd n1, n2, slurmctld, munged by the pids in their pid files
#      (only when /proc/PID/comm names that daemon), SIGKILL after a timeout;
#   3. SIGKILL any slurmstepd or daemon left over that carries this cluster's
#      mark in its environment (CDRECON_SLURM_DIR=SLURMDIR, set by cluster-up).
# Files under SLURMDIR are kept (logs); remove the directory yourself.
#
#   tools/slurm/cluster-down.sh SLURMDIR      (SLURM_DOWN_TIMEOUT, default 10 s)
set -u

die() { echo "cluster-down: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: cluster-down.sh SLURMDIR"
[ -d "$1" ] || die "no such directory: $1"
D=$(cd "$1" && pwd -P)
PATH="/usr/sbin:/sbin:$PATH"; export PATH
SLURM_CONF="$D/etc/slurm.conf"; export SLURM_CONF
timeout=${SLURM_DOWN_TIMEOUT:-10}

# live PID NAME: PID is a process called NAME that has not exited (a zombie
# has exited: this machine's pid 1 may not reap) and carries this cluster's
# mark (so a recycled pid of someone else's daemon is never signalled).
live() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] || return 1
    grep -qzxF "CDRECON_SLURM_DIR=$D" "/proc/$1/environ" 2>/dev/null
}

# ours: pids of live slurmstepd/slurmd/slurmctld/munged processes marked as this cluster's.
ours() {
    # One grep over every process's name (a shell loop over /proc is slow on a
    # busy machine), then the few candidates one by one.
    grep -lxE 'slurmstepd|slurmd|slurmctld|slurmscriptd|munged' /proc/[0-9]*/comm 2>/dev/null |
        while read -r f; do
            pid=${f#/proc/}; pid=${pid%/comm}
            c=$(cat "$f" 2>/dev/null) || continue
            live "$pid" "$c" && echo "$pid"
        done
}

# tree PID...: the pids and all their descendants (by the ppid in /proc/P/stat).
tree() {
    # "pid (comm) state ppid ...": comm may hold blanks and parentheses.
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$*" '
        { s = $0; sub(/.*\) /, "", s); split(s, f, " "); parent[$1] = f[2] }
        END { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1
              do { grew = 0
                   for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; grew = 1 }
              } while (grew)
              for (p in want) print p }'
}

now() { date +%s; }

# 1. Jobs.
if [ -f "$SLURM_CONF" ] && command -v squeue >/dev/null 2>&1 &&
    [ -s "$D/run/slurmctld.pid" ] && live "$(cat "$D/run/slurmctld.pid")" slurmctld; then
    jobs=$(squeue -h -o '%F' 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        start=$(now)
        while [ -n "$(squeue -h -o '%F' 2>/dev/null)" ] &&
            [ $(($(now) - start)) -lt "$timeout" ]; do sleep 0.2; done
    fi
    # Wait for the steps to be gone from the nodes too.
    start=$(now)
    while :; do
        steps=""
        for pid in $(ours); do live "$pid" slurmstepd && steps="$steps $pid"; done
        [ -z "$steps" ] && break
        [ $(($(now) - start)) -ge "$timeout" ] && break
        sleep 0.2
    done
fi

# 2. Daemons, by their pid files.
pids=""
for f in "$D/run/slurmd-n1.pid:slurmd" "$D/run/slurmd-n2.pid:slurmd" \
    "$D/run/slurmctld.pid:slurmctld" "$D/munge/munged.pid:munged"; do
    file=${f%:*}; name=${f##*:}
    [ -s "$file" ] || continue
    pid=$(cat "$file" 2>/dev/null)
    if live "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null && pids="$pids $pid:$name"
    fi
done
start=$(now)
while :; do
    left=""
    for pn in $pids; do live "${pn%:*}" "${pn#*:}" && left="$left $pn"; done
    [ -z "$left" ] && break
    if [ $(($(now) - start)) -ge "$timeout" ]; then
        for pn in $left; do
            echo "cluster-down: ${pn#*:} (pid ${pn%:*}) ignored SIGTERM for ${timeout}s: SIGKILL" >&2
            kill -KILL "${pn%:*}" 2>/dev/null
        done
        break
    fi
    sleep 0.1
done

# 3. Anything of this cluster still alive (a slurmstepd whose job could not be
# cancelled, a daemon whose pid file was lost).
# A left-over slurmstepd goes with the task processes under it.
left=$(ours)
if [ -n "$left" ]; then
    # shellcheck disable=SC2086
    for pid in $(tree $left); do
        [ -d "/proc/$pid" ] || continue
        echo "cluster-down: killing left-over $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid)" >&2
        kill -KILL "$pid" 2>/dev/null
    done
fi
sleep 0.2
left=$(ours)
[ -z "$left" ] || die "still alive after SIGKILL: $left"
rm -f "$D/run/slurmd-n1.pid" "$D/run/slurmd-n2.pid" "$D/run/slurmctld.pid" "$D/munge/munged.pid"
echo "cluster-down: stopped $D"
