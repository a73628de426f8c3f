#!/bin/sh
# A database moved or copied with its month state (a restore from backup, a
# copy to try something on) uses the state beside it, never the original's:
# the state directory is recorded relative to the database's directory when
# it lies there. A --store elsewhere stays recorded as given (absolute).
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
N="$EX/nights"
fail() { echo "$*"; exit 1; }
night() { # DB FILE
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$1" --out "$W/out" "$2" || [ $? -eq 9 ]
}
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

mkdir "$W/a"
night "$W/a/recon.db" "$N/cdr-2026-10-01.csv.gz"
night "$W/a/recon.db" "$N/cdr-2026-10-02.csv.gz"
[ "$(sqlite3 "$W/a/recon.db" "select value from meta where key = 'state_dir'")" = recon.db.state ] ||
    fail "the default state directory is not recorded relative to the database"

# moved: the night goes on in the moved state
mv "$W/a" "$W/b"
night "$W/b/recon.db" "$N/cdr-2026-10-03.csv.gz"
[ "$(sqlite3 "$W/b/recon.db" "select count(*) from state_files where kind = 'segment'")" = 3 ] ||
    fail "3 segments expected after the move"
for f in $(sqlite3 "$W/b/recon.db" "select name from state_files"); do
    [ -f "$W/b/recon.db.state/$f" ] || fail "state file $f is not in the moved directory"
done

# copied: the copy's run leaves the original's state untouched
cp -r "$W/b" "$W/c"
sums "$W/b" >"$W/b.sums"
night "$W/c/recon.db" "$N/cdr-2026-10-04.csv.gz"
sums "$W/b" | cmp -s - "$W/b.sums" || fail "a run on the copy changed the original"
"$CDRECON" investigate --db "$W/c/recon.db" --msisdn "$(sqlite3 "$W/c/recon.db" \
    "select msisdn from current_findings limit 1")" --month 2026-10 >/dev/null ||
    fail "investigate on the copy"

# the same as one database fed the four nights in place
mkdir "$W/d"
for d in 01 02 03 04; do night "$W/d/recon.db" "$N/cdr-2026-10-$d.csv.gz"; done
sqlite3 "$W/c/recon.db" "select msisdn, record_id, category, difference_micro from current_findings order by 1, 2" >"$W/c.f"
sqlite3 "$W/d/recon.db" "select msisdn, record_id, category, difference_micro from current_findings order by 1, 2" >"$W/d.f"
cmp -s "$W/c.f" "$W/d.f" || fail "the copied database's findings differ from the nights run in place"

# --store elsewhere: recorded absolute, and a moved database still finds it
mkdir "$W/e" "$W/st"
"$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/e/r.db" --store "$W/st/s" --out "$W/out" \
    "$N/cdr-2026-10-01.csv.gz" || [ $? -eq 9 ]
case $(sqlite3 "$W/e/r.db" "select value from meta where key = 'state_dir'") in
/*) ;; *) fail "--store outside the database's directory should be recorded absolute" ;;
esac
mv "$W/e" "$W/f"
night "$W/f/r.db" "$N/cdr-2026-10-02.csv.gz"

# a tariff given by a relative path is recorded resolved: investigate --db
# from another working directory finds it
mkdir "$W/g"
cp -r "$EX/tariff" "$W/g/tariff"
(cd "$W/g" && "$CDRECON" run --quiet --tariff tariff --db r.db --out out \
    "$N/cdr-2026-10-01.csv.gz") || [ $? -eq 9 ]
[ "$(sqlite3 "$W/g/r.db" "select dir from tariffs")" = "$(cd "$W/g/tariff" && pwd -P)" ] ||
    fail "the tariff directory is not recorded resolved"
m=$(sqlite3 "$W/g/r.db" "select msisdn from current_findings limit 1")
(cd / && "$CDRECON" investigate --db "$W/g/r.db" --msisdn "$m" --month 2026-10 >/dev/null) ||
    fail "investigate --db from another directory"
echo ok
