#!/bin/sh
# POSIX sh. Start a private, real Slurm cluster on this machine, over loopback:
# one munged (private key and socket), one slurmctld and two slurmd nodes n1, n2
# on 127.0.0.1 -- every file (config, key, socket, state, spool, logs, pid
# files) under SLURMDIR. Waits until both nodes are idle, then writes
# SLURMDIR/env.sh (source it: SLURM_CONF, PATH with /usr/sbin).
#
#   tools/slurm/cluster-up.sh SLURMDIR       (as root; stop: cluster-down.sh SLURMDIR)
#
# Environment: SLURM_PORT_BASE (slurmctld port; the nodes take the next two;
# default: a free triple chosen from SLURMDIR's name), SLURM_NODE_CPUS (CPUs
# each node declares, default 4: more than the machine's 2 cores, so that an
# 8-task array runs at once; SlurmdParameters=config_overrides allows it),
# SLURM_UP_TIMEOUT (seconds to wait for idle nodes, default 30).
#
# Authentication is munge, as on a production cluster, not auth/none: slurmctld
# and slurmd listen on 0.0.0.0 (22.05 has no bind option), and with auth/none
# anyone who can reach those ports could run jobs as root on this machine.
# Packages: tools/slurm/install.sh. Design and layout: docs/cluster.md.
set -eu

die() { echo "cluster-up: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: cluster-up.sh SLURMDIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (the daemons run as root, SlurmUser=root)"
PATH="/usr/sbin:/sbin:$PATH"; export PATH
for c in munged mungekey slurmctld slurmd sinfo scontrol; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found: run tools/slurm/install.sh"
done

mkdir -p "$1"
D=$(cd "$1" && pwd -P)
case $D in *[[:space:]]* | *[,=\"\']*) die "SLURMDIR must not contain blanks, commas, quotes or '=': $D" ;; esac
# A unix socket path is at most 107 bytes.
[ ${#D} -le 80 ] || die "SLURMDIR path too long for a unix socket (max 80 bytes): $D"
CONF="$D/etc/slurm.conf"
SLURM_CONF="$CONF"; export SLURM_CONF
# Every daemon carries this in its environment (slurmstepd inherits it), so that
# cluster-down.sh can tell this cluster's processes from anyone else's.
CDRECON_SLURM_DIR="$D"; export CDRECON_SLURM_DIR

# alive PIDFILE NAME: the pid in PIDFILE is a live process called NAME that
# carries this cluster's mark (not a zombie: this machine's pid 1 may not reap;
# not another cluster's daemon that was given a recycled pid).
alive() {
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] || return 1
    grep -qzxF "CDRECON_SLURM_DIR=$D" "/proc/$pid/environ" 2>/dev/null
}

# port_used PORT: something listens on TCP PORT (any address, v4 or v6).
port_used() {
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
                     END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# write_conf: the directories, the munge key (kept if there is one) and
# slurm.conf with free ports.
write_conf() {
    mkdir -p "$D/etc" "$D/munge" "$D/state" "$D/spool/slurmd-n1" "$D/spool/slurmd-n2" \
        "$D/log" "$D/run"
    # munged refuses a socket whose directories clients cannot traverse: the
    # socket's directory and every one above it need x for all (711, not 700).
    chmod 711 "$D" "$D/munge"
    a=$D
    while a=${a%/*}; [ -n "$a" ]; do
        [ -n "$(find "$a" -maxdepth 0 -perm -0001)" ] ||
            die "munged needs execute permission for all on $a (chmod o+x $a, or another SLURMDIR)"
    done
    chmod 700 "$D/state"
    if [ ! -s "$D/munge/munge.key" ]; then
        mungekey -c -k "$D/munge/munge.key"
    fi
    chmod 600 "$D/munge/munge.key"

    # Ports: SLURM_PORT_BASE, or the first free triple from a start derived from
    # the directory's name (two clusters on one machine rarely collide; a taken
    # port is skipped).
    if [ -n "${SLURM_PORT_BASE:-}" ]; then
        base=$SLURM_PORT_BASE
    else
        sum=$(printf '%s' "$D" | cksum | cut -d' ' -f1)
        base=$((20000 + (sum % 13000) * 3))
        tries=0
        while port_used "$base" || port_used $((base + 1)) || port_used $((base + 2)); do
            tries=$((tries + 1)); [ "$tries" -lt 200 ] || die "no three free TCP ports found"
            base=$((base + 3)); [ "$base" -lt 60000 ] || base=20000
        done
    fi
    cpus=${SLURM_NODE_CPUS:-4}
    name="cdr$(printf '%s' "$D" | cksum | cut -d' ' -f1)"
    cat >"$CONF" <<EOF
# Written by tools/slurm/cluster-up.sh: a private cluster on 127.0.0.1.
ClusterName=$name
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/slurmd-%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
# A job whose afterok dependency can never be met is cancelled, not left
# PENDING forever (the same word under SchedulerParameters is ignored).
DependencyParameters=kill_invalid_depend
ReturnToService=2
# A dead node is set DOWN (its jobs NODE_FAIL) within about 15 s (default
# 300 s); a cancelled task gets SIGKILL 2 s after SIGTERM (default 30 s).
SlurmdTimeout=5
KillWait=2
SlurmdParameters=config_overrides
NodeName=n[1-2] NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((base + 1))-$((base + 2)) CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
EOF
}

running=0
for n in n1 n2; do alive "$D/run/slurmd-$n.pid" slurmd && running=$((running + 1)); done
alive "$D/run/slurmctld.pid" slurmctld && running=$((running + 1))
alive "$D/munge/munged.pid" munged && running=$((running + 1))
if [ "$running" -eq 0 ] || [ ! -s "$CONF" ]; then
    [ "$running" -eq 0 ] || die "daemons of $D run without $CONF: run cluster-down.sh $D first"
    write_conf
fi
# Start what is not running: everything, or the daemons that died (a node
# killed by a test comes back: ReturnToService=2 returns a DOWN node to
# service when its slurmd registers again).
if ! alive "$D/munge/munged.pid" munged; then
    munged -S "$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
        --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
        --seed-file="$D/munge/munged.seed" ||
        die "munged failed to start (see $D/munge/munged.log)"
fi
if ! alive "$D/run/slurmctld.pid" slurmctld; then
    slurmctld -f "$CONF" || die "slurmctld failed to start (see $D/log/slurmctld.log)"
fi
for n in n1 n2; do
    if ! alive "$D/run/slurmd-$n.pid" slurmd; then
        slurmd -f "$CONF" -N "$n" || die "slurmd $n failed to start (see $D/log/slurmd-$n.log)"
    fi
done
[ "$running" -eq 4 ] && echo "cluster-up: already running in $D"

cat >"$D/env.sh" <<EOF
# Source this file (sh/bash) to use the private cluster in $D.
SLURM_CONF=$CONF
export SLURM_CONF
case ":\$PATH:" in *:/usr/sbin:*) ;; *) PATH="/usr/sbin:\$PATH"; export PATH ;; esac
EOF

# Wait until both nodes are idle (a node that was DOWN after an unclean stop
# comes back by itself: ReturnToService=2).
timeout=${SLURM_UP_TIMEOUT:-30}
start=$(date +%s)
while :; do
    states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u | tr '\n' ' ') || states=""
    case $states in "n1 idle n2 idle ") break ;; esac
    if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
        echo "cluster-up: nodes not idle after ${timeout}s: ${states:-no answer from slurmctld}" >&2
        tail -n 5 "$D/log/slurmctld.log" "$D/log/slurmd-n1.log" "$D/log/slurmd-n2.log" >&2 || true
        exit 1
    fi
    sleep 0.2
done
echo "cluster-up: n1 n2 idle; slurmctld port $(sed -n 's/^SlurmctldPort=//p' "$CONF"); . $D/env.sh"
