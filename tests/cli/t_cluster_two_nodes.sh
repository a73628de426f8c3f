#!/bin/sh
# Two route tasks on two nodes at once, writing to the same shards of one
# sharded directory on shared storage (docs/cluster.md). A node is imitated by
# `unshare --uts --pid`: its own hostname and its own process ids, so that
#   - both splits run as pid 1 of their namespace: their temporary pieces must
#     not share a name (a pid is unique on one host only), and
#   - node b's removal of pieces that killed splits left must not take node
#     a's pieces in progress (a pid that b cannot see is not a dead one).
# Node a's split is stopped (SIGSTOP) while its temporary pieces are open in
# every shard, node b routes its file whole, node a goes on; then the shards
# are rated and the report must be one machine's run over both files.
# Needs root (unshare); exit 77 (skipped) without it.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
CDRGEN=${CDRGEN:-$(dirname "$CDRECON")/tools/cdrgen}
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (unshare --uts --pid)"
command -v unshare >/dev/null 2>&1 || skip "no unshare"
unshare --uts --pid --fork true 2>/dev/null || skip "unshare --uts --pid not permitted here"
[ -x "$CDRGEN" ] || skip "no $CDRGEN"
W=$(mktemp -d)
A=""
trap '[ -z "$A" ] || kill -KILL "$A" 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
# one month in two files (every subscriber's records in both)
"$CDRGEN" --seed 5 --rows 400000 --errors 0.02 --faults 0.002 --tariff tariff --out-dir cdr \
    --names a.csv.gz,b.csv.gz >/dev/null 2>&1 || fail "cdrgen"
rc=0
"$CDRECON" run --quiet --tariff tariff --db one.db --out one cdr/a.csv.gz cdr/b.csv.gz || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 9 ] || fail "one machine: exit $rc"
[ "$(wc -l <one/findings.csv)" -gt 20 ] || fail "too few findings to mean something"

# split_under U: the pid of the cdrecon process under process U.
split_under() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        { s = $0; c = $0; sub(/.*\) /, "", s); split(s, f, " "); parent[$1] = f[2]
          sub(/^[0-9]+ \(/, "", c); sub(/\) [^)]*$/, "", c); comm[$1] = c }
        END { for (p in parent) if (comm[p] == "cdrecon") {
                  for (q = p; q in parent && q != root; q = parent[q]) ;
                  if (q == root) { print p; exit 0 } }
              exit 1 }'
}

# trial NAME HOW: node a's split runs as pid 1 of its namespace (HOW=exec,
# the same pid as node b's) or as pid 22 or so (HOW=child: a pid node b
# cannot see).
trial() {
    rm -rf D rep
    "$CDRECON" cluster init --parts 4 D >/dev/null
    if [ "$2" = exec ]; then
        run_a='hostname node-a && exec "$0" split --quiet --mem 1M --cluster D cdr/a.csv.gz'
    else
        # (after 20 processes: not the pid of node b's split nor of its threads)
        run_a='hostname node-a && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            /bin/true; done; "$0" split --quiet --mem 1M --cluster D cdr/a.csv.gz; exit $?'
    fi
    # node a: small buffers (--mem 1M: a shard's piece is flushed every 256 KB)
    unshare --uts --pid --fork sh -c "$run_a" "$CDRECON" 2>a.err &
    U=$!
    n=0
    while [ -z "$A" ]; do
        # (up to 30 s: on a loaded machine the scan of /proc is itself slow)
        n=$((n + 1)); [ "$n" -le 600 ] || fail "$1: node a's split did not start"
        kill -0 "$U" 2>/dev/null || fail "$1: node a ended before its split was seen: $(cat a.err)"
        A=$(split_under "$U") || A=""
        [ -n "$A" ] || sleep 0.05
    done
    # wait until it has a temporary piece open in every shard, then stop it
    n=0
    while [ "$(ls -a D/shard-*/incoming | grep -c '^\.piece\.tmp')" -lt 4 ]; do
        n=$((n + 1)); [ "$n" -le 400 ] || fail "$1: node a wrote no temporary pieces"
        kill -0 "$A" 2>/dev/null || fail "$1: node a's split ended before it could be stopped"
        sleep 0.02
    done
    kill -STOP "$A"
    ls -a D/shard-*/incoming | grep '^\.piece\.tmp' | sort >tmp-before

    # node b routes its file whole meanwhile, as pid 1 of its namespace
    unshare --uts --pid --fork sh -c 'hostname node-b && exec "$0" split --quiet --cluster D cdr/b.csv.gz' \
        "$CDRECON" || fail "$1: node b's split: exit $?"
    ls -a D/shard-*/incoming | grep '^\.piece\.tmp' | sort >tmp-after
    cmp -s tmp-before tmp-after || fail "$1: node b's split took node a's pieces in progress: $(
        diff tmp-before tmp-after | tr '\n' ' ')"
    kill -CONT "$A"
    rc=0
    wait "$U" || rc=$?
    A=""
    [ "$rc" -eq 0 ] || { cat a.err >&2; fail "$1: node a's split: exit $rc"; }

    for k in 0 1 2 3; do
        rc=0
        "$CDRECON" run --quiet --cluster D --shard "$k" --tariff tariff 2>rate.err || rc=$?
        [ "$rc" -eq 0 ] || { cat rate.err >&2; fail "$1: rate $k: exit $rc"; }
    done
    "$CDRECON" cluster report --quiet --cluster D --out rep || fail "$1: report: exit $?"
    for f in findings candidates unrated changes rejects; do
        cmp -s "rep/$f.csv" "one/$f.csv" || fail "$1: $f.csv differs from one machine's"
    done
}
trial "the same pid on two nodes" exec
trial "a pid of another node" child
echo ok
