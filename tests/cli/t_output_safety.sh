#!/bin/sh
# Outputs never replace anything but a regular file. Found the hard way:
# `rate --out /dev/null` as root used to rename a temporary file over the
# device. Now a device or FIFO named by --out is written directly, and an
# output directory whose findings.csv is a FIFO or a symlink is refused.
set -eu
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
T="$TESTDATA/rate-hand"
cat >"$W/a.csv" <<'CSV'
record_id,msisdn,service,direction,peer,start_time,duration_s,billed
r1,13900000001,voice,mo,13811112222,2026-10-07 10:00:00,60,0.19
r2,13900000001,voice,mo,13811112222,2026-10-07 23:30:00,120,0.38
CSV
# a FIFO as --out: written directly, stays a FIFO
mkfifo "$W/fifo"
cat "$W/fifo" >"$W/from-fifo" &
"$CDRECON" rate --tariff "$T" --out "$W/fifo" "$W/a.csv" 2>/dev/null
wait
[ -p "$W/fifo" ] || { echo "the FIFO was replaced"; exit 1; }
[ "$(wc -l <"$W/from-fifo")" -eq 3 ] || { echo "expected header + 2 rows through the FIFO"; exit 1; }
# a character device as --out
"$CDRECON" rate --tariff "$T" --out /dev/null "$W/a.csv" 2>/dev/null
[ -c /dev/null ] || { echo "/dev/null is no longer a device"; exit 1; }
# run: an output name that is a FIFO or a symlink is refused, nothing replaced
mkdir "$W/out"
mkfifo "$W/out/findings.csv"
set +e
"$CDRECON" run --tariff "$T" --db "$W/r.db" --out "$W/out" "$W/a.csv" >/dev/null 2>"$W/err"
rc=$?
set -e
[ "$rc" -eq 12 ] || { echo "run over a FIFO output: exit $rc, expected 12"; cat "$W/err"; exit 1; }
[ -p "$W/out/findings.csv" ] || { echo "the FIFO output was replaced"; exit 1; }
rm "$W/out/findings.csv"
ln -s "$W/elsewhere" "$W/out/findings.csv"
set +e
"$CDRECON" run --tariff "$T" --db "$W/r.db" --out "$W/out" "$W/a.csv" >/dev/null 2>"$W/err"
rc=$?
set -e
[ "$rc" -eq 12 ] || { echo "run over a symlink output: exit $rc, expected 12"; exit 1; }
[ -L "$W/out/findings.csv" ] && [ ! -e "$W/elsewhere" ] || { echo "the symlink was followed or replaced"; exit 1; }
# and the database holds nothing of the refused runs: no database at all, or
# one that reads and holds no run and no file (a database that cannot be read
# fails here; it used to pass as "0")
if [ -e "$W/r.db" ]; then
    n=$(sqlite3 -readonly "$W/r.db" 'select (select count(*) from files) || "|" || (select count(*) from runs)') ||
        { echo "the database cannot be read"; exit 1; }
    [ "$n" = "0|0" ] || { echo "the database holds files|runs $n of the refused runs"; exit 1; }
fi
echo ok
