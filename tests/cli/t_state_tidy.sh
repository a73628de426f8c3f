#!/bin/sh
# A run killed after its commit but before it removed the state files its
# commit replaced (and rewrote MANIFEST) leaves them behind. The next run
# removes them even when it finds nothing new (exit 8): a night's job rerun
# after the kill with the same file must not leave the state untidy until
# the next night (tests/reliability/crashnights.sh found it: "5 state files
# on disk, 4 live"). (Were another run to take the write lock between the
# rerun's opening of the database and its tidying, the rerun would leave
# them to a later run; not tested: the open itself waits for the lock.)
set -eu
EX="$TESTDATA/example"
N="$EX/nights"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
night() { # FILE [more options]: the exit status
    f=$1; shift
    rc=0
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/r.db" --out "$W/out" "$@" "$f" \
        2>"$W/err" || rc=$?
    echo "$rc"
}
live() { sqlite3 "$W/r.db" "select name from state_files order by name"; }
disk() { ls "$W/r.db.state" | grep '^\(seg\|ckp\)-' | sort; }

for d in 01 02; do
    case $(night "$N/cdr-2026-10-$d.csv.gz") in 0|9) ;; *) fail "night $d: $(cat "$W/err")" ;; esac
done
[ "$(live)" = "$(disk)" ] || fail "before: $(disk) on disk, $(live) live"
# what the killed night 2 would leave: night 1's checkpoint, and its MANIFEST not rewritten
cp "$W/r.db.state/$(disk | grep '^ckp-')" "$W/r.db.state/ckp-2026-10-r0000001.cdk"
rm "$W/r.db.state/MANIFEST"

# the rerun finds nothing new and tidies the state
rc=$(night "$N/cdr-2026-10-02.csv.gz")
[ "$rc" = 8 ] || fail "rerun: exit $rc ($(cat "$W/err"))"
[ "$(live)" = "$(disk)" ] || fail "after the rerun: $(disk) on disk, $(live) live"
[ -s "$W/r.db.state/MANIFEST" ] || fail "MANIFEST not written again"
"$CDRECON" run --tariff "$EX/tariff" --db "$W/r.db" --out "$W/out" \
    "$N/cdr-2026-10-02.csv.gz" 2>"$W/err2" >/dev/null || true
grep -q "nothing new" "$W/err2" || fail "no 'nothing new': $(cat "$W/err2")"
# and the month goes on
case $(night "$N/cdr-2026-10-03.csv.gz") in 0|9) ;; *) fail "night 3: $(cat "$W/err")" ;; esac
[ "$(live)" = "$(disk)" ] || fail "night 3: $(disk) on disk, $(live) live"
echo ok
