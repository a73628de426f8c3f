#!/bin/sh
# Crash and resume: start `cdrecon run` on a generated month, kill -9 it at a
# random moment, rerun it to completion, and compare with an uninterrupted run:
# the database's results (files, findings, candidates, rejects, totals: to the
# micro-yuan) and the four CSV outputs must be identical, the database must
# pass integrity_check and hold exactly one run (no duplicated or lost rows).
# usage: crashresume.sh [--trials T] [--rows R] [--seed S] [--min-killed K]
# Prints "crashresume: T trials, K killed mid-run, ... 0 mismatches".
# A trial whose run finished before the kill tests nothing of a crash: at
# least K trials (default: half of T, rounded up) must really kill a run. When
# the T trials killed fewer, more trials follow with the kill in the first
# half of the clean run's time (at most 2 x T more); fewer than K is a failure.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
trials=5; rows=20000; seed=1; min_killed=
while [ $# -gt 0 ]; do
    case $1 in
    --trials) trials=$2; shift ;;
    --rows) rows=$2; shift ;;
    --seed) seed=$2; shift ;;
    --min-killed) min_killed=$2; shift ;;
    *) echo "usage: $0 [--trials T] [--rows R] [--seed S] [--min-killed K]" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$min_killed" ] || min_killed=$(( (trials + 1) / 2 ))
W=$(mktemp -d /tmp/cdr-crash.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
rel_month m "$rows" $((rows / 40)) 11 || rel_die "cdrgen failed"
set -- --quiet --tariff m/tariff --db r.db --out out m/cdr/a.csv m/cdr/b.csv.gz

now_ms() { date +%s%3N; }
t0=$(now_ms)
"$CDRECON" run "$@" 2>base.err
base_rc=$?
t1=$(now_ms)
case $base_rc in 0|9) ;; *) cat base.err; rel_die "clean run exit $base_rc" ;; esac
dur=$((t1 - t0)); [ "$dur" -ge 1 ] || dur=1
mv out base.out
rel_digest r.db >base.digest
rm -f r.db

# a deterministic pseudo-random sequence (LCG) so a failing trial can be replayed
r=$seed
killed=0; finished=0; bad=0; i=0
while [ "$i" -lt "$trials" ] ||
      { [ "$killed" -lt "$min_killed" ] && [ "$i" -lt $((3 * trials)) ]; }; do
    i=$((i + 1))
    r=$(( (r * 1103515245 + 12345) % 2147483648 ))
    if [ "$i" -le "$trials" ]; then
        delay=$(( r % (dur + dur / 5 + 1) ))    # 0 .. 1.2 x the clean run, in ms
    else
        delay=$(( r % (dur / 2 + 1) ))          # extra trials: the first half
    fi
    rm -rf out r.db r.db-journal
    "$CDRECON" run "$@" 2>/dev/null &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    rc=$?
    if [ "$rc" -eq 137 ]; then killed=$((killed + 1)); else finished=$((finished + 1)); fi
    # what the kill left: never a partial file under a final name
    for f in findings.csv candidates.csv rejects.csv unrated.csv; do
        if [ -f "out/$f" ] && ! cmp -s "out/$f" "base.out/$f"; then
            echo "trial $i (kill at ${delay} ms): partial out/$f after the kill"; bad=$((bad + 1))
        fi
    done
    rel_db_ok r.db || { echo "trial $i: database corrupt after the kill"; bad=$((bad + 1)); }
    # resume: the same command again
    "$CDRECON" run "$@" 2>resume.err
    rc2=$?
    case $rc2 in
    "$base_rc"|8) ;;   # 8: the killed run had already committed everything
    *) echo "trial $i (kill at ${delay} ms): rerun exit $rc2: $(head -c 300 resume.err)"; bad=$((bad + 1)) ;;
    esac
    rel_db_ok r.db || { echo "trial $i: database corrupt after the rerun"; bad=$((bad + 1)); }
    [ "$(rel_db_runs r.db)" = 1 ] || { echo "trial $i: $(rel_db_runs r.db) runs stored"; bad=$((bad + 1)); }
    if [ "$(rel_digest r.db)" != "$(cat base.digest)" ]; then
        echo "trial $i (kill at ${delay} ms): database results differ from the uninterrupted run"
        rel_digest r.db | diff base.digest - | head -5
        bad=$((bad + 1))
    fi
    rel_same_outputs out base.out || { echo "trial $i (kill at ${delay} ms): outputs differ"; bad=$((bad + 1)); }
done
echo "crashresume: $i trials on $rows rows (clean run ${dur} ms), $killed killed mid-run," \
     "$finished finished before the kill, $bad mismatches"
if [ "$killed" -lt "$min_killed" ]; then
    echo "crashresume: only $killed runs killed mid-run, at least $min_killed required"
    bad=$((bad + 1))
fi
[ "$bad" -eq 0 ]
