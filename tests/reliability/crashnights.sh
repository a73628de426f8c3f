#!/bin/sh
# Crash and resume of a month over many nights (issue 13): a generated month
# as nightly files (cdrgen --by-day); in each trial the nights run one by one
# into one database and a random night's run is killed (kill -9) at a random
# moment, rerun, and the remaining nights run. The end must equal the
# uninterrupted nights: the month's current results in the database
# (ingested files, current findings and candidates), the outputs of the last
# night, and exactly one committed run per night. After the rerun no
# temporary file of the killed run is left in the state directory or the
# output directory, and the state holds only live files.
# usage: crashnights.sh [--trials T] [--rows R] [--seed S] [--min-killed K]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
trials=8; rows=30000; seed=3; minkilled=""
while [ $# -gt 0 ]; do
    case $1 in
    --trials) trials=$2; shift ;;
    --rows) rows=$2; shift ;;
    --seed) seed=$2; shift ;;
    --min-killed) minkilled=$2; shift ;;
    *) echo "usage: $0 [--trials T] [--rows R] [--seed S] [--min-killed K]" >&2; exit 2 ;;
    esac
    shift
done
: "${minkilled:=$((trials / 2))}"
W=$(mktemp -d /tmp/cdr-crashn.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
mkdir -p m
"$CDRGEN" --seed 13 --rows "$rows" --subscribers $((rows / 40)) --tariff m/tariff \
    --out-dir m/n --by-day --days 10 --late 0.03 --errors 0.05 >/dev/null 2>&1 ||
    rel_die "cdrgen failed"
ls m/n/cdr-*.csv.gz >nights
nn=$(wc -l <nights)

now_ms() { date +%s%3N; }
night() { # DB OUT FILE
    "$CDRECON" run --quiet --tariff m/tariff --db "$1" --out "$2" "$3"
}
# the uninterrupted nights, timing each
: >durs
while read -r f; do
    t0=$(now_ms)
    night base.db base.out "$f" 2>base.err || [ $? -eq 9 ] || { cat base.err; rel_die "clean night $f"; }
    echo $(( $(now_ms) - t0 )) >>durs
done <nights
rel_current base.db >base.current

r=$seed
killed=0; bad=0; i=0
while [ "$i" -lt "$trials" ]; do
    i=$((i + 1))
    r=$(( (r * 1103515245 + 12345) % 2147483648 ))
    k=$(( r % nn + 1 ))                       # the night to kill
    dur=$(sed -n "${k}p" durs)
    r=$(( (r * 1103515245 + 12345) % 2147483648 ))
    delay=$(( r % (dur + 1) ))                # within that night's run
    # A kill that lands after the run ended (a fast machine, a short run)
    # tests nothing new: the trial is run again with half the delay, up
    # to four times, so that the count of real kills does not depend on
    # the machine's speed.
    attempt=0; hit=0
    while [ "$attempt" -lt 4 ] && [ "$hit" -eq 0 ]; do
        attempt=$((attempt + 1))
        [ "$attempt" -eq 1 ] || delay=$((delay / 2))
        rm -rf t.db t.db.state t.db-journal out
        j=0
        while read -r f; do
            j=$((j + 1))
            if [ "$j" -eq "$k" ]; then
                # exec: the pid killed is cdrecon's itself, not a subshell's
                # that would leave cdrecon running on beside the checks
                (exec "$CDRECON" run --quiet --tariff m/tariff --db t.db --out out "$f") \
                    2>/dev/null &
                pid=$!
                sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
                kill -9 "$pid" 2>/dev/null
                { wait "$pid"; } 2>/dev/null
                [ $? -eq 137 ] && hit=1
                rel_db_ok t.db || { echo "trial $i: database corrupt after the kill"; bad=$((bad + 1)); }
            fi
            night t.db out "$f" 2>err
            rc=$?
            case $rc in 0|8|9) ;; *) echo "trial $i night $j: exit $rc: $(head -c 200 err)"; bad=$((bad + 1)) ;; esac
            if [ "$j" -eq "$k" ]; then
                # the next run removed what the killed one left
                left=$(find t.db.state out -name '*.tmp*' 2>/dev/null | head -n 3)
                [ -z "$left" ] || { echo "trial $i: temporary files left: $left"; bad=$((bad + 1)); }
                n_live=$(sqlite3 t.db "select count(*) from state_files")
                n_disk=$(ls t.db.state | grep -c '^\(seg\|ckp\)-' || true)
                [ "$n_live" = "$n_disk" ] ||
                    { echo "trial $i: $n_disk state files on disk, $n_live live"; bad=$((bad + 1)); }
            fi
        done <nights
        [ "$(sqlite3 t.db "select count(*) from runs where finished_at is not null")" = "$nn" ] ||
            { echo "trial $i: not one run per night"; bad=$((bad + 1)); }
        if [ "$(rel_current t.db)" != "$(cat base.current)" ]; then
            echo "trial $i (night $k, kill at $delay ms): the month differs from the uninterrupted nights"
            rel_current t.db | diff base.current - | head -n 5
            bad=$((bad + 1))
        fi
        for x in findings candidates unrated; do
            cmp -s "out/$x.csv" "base.out/$x.csv" || { echo "trial $i: $x.csv differs"; bad=$((bad + 1)); }
        done
    done
    killed=$((killed + hit))
done
echo "crashnights: $trials trials over $nn nights of $rows rows, $killed killed mid-run," \
     "$bad mismatches"
[ "$killed" -ge "$minkilled" ] || { echo "crashnights: only $killed runs killed mid-run, want >= $minkilled"; exit 1; }
[ "$bad" -eq 0 ]
