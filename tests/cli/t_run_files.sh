#!/bin/sh
# Which files `cdrecon run` reads and which it skips. A file is skipped when
# its SHA-256 is already in the database or equals another file's of the
# same run. New files are hashed while they are read; a file is hashed first
# only when its size matches a file already ingested or another input file.
# Each path is checked here: the SHA-256 recorded for a file hashed while
# read is the file's own (sha256sum), a file of the same size but other
# content is read, a copy of a file in the same run is skipped, a partial
# rerun reads only the new file, and stdin with known content is dropped.
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
A="$EX/cdr/cdr-2026-10-a.csv"
B="$EX/cdr/cdr-2026-10-b.csv"
C="$EX/cdr/cdr-2026-10-c.csv.gz"
q() { sqlite3 "$W/$1" "$2"; }
fail() { echo "$*"; exit 1; }

# 1. A new database: every file is hashed while it is read. The recorded
#    SHA-256 and size are the files' own.
"$CDRECON" run --tariff "$EX/tariff" --db "$W/1.db" --out "$W/o1" "$A" "$B" >/dev/null
for f in "$A" "$B"; do
    want=$(sha256sum "$f" | cut -d' ' -f1)
    got=$(q 1.db "select sha256 from files where name = '$f'")
    [ "$got" = "$want" ] || fail "sha256 of $f: got '$got', want '$want'"
    [ "$(q 1.db "select size from files where name = '$f'")" = "$(wc -c <"$f" | tr -d ' ')" ] ||
        fail "size of $f"
done

# 2. Partial rerun: A and B are known (skipped, said so), C is new and read.
"$CDRECON" run --tariff "$EX/tariff" --db "$W/1.db" --out "$W/o2" "$A" "$B" "$C" \
    >"$W/2.out" 2>"$W/2.err"
[ "$(grep -c "already ingested" "$W/2.err")" -eq 2 ] || { cat "$W/2.err"; fail "partial rerun"; }
grep -q "^files  *1 read (1 gzip), 2 skipped" "$W/2.out" || { cat "$W/2.out"; fail "partial rerun summary"; }
[ "$(q 1.db "select count(*) from files")" -eq 3 ] || fail "files after the partial rerun"
[ "$(q 1.db "select sha256 from files where name = '$C'")" = "$(sha256sum "$C" | cut -d' ' -f1)" ] ||
    fail "sha256 of $C"

# 3. Same size, other content (one digit of the last line changed): the
#    size matches an ingested file, so it is hashed first - and read. Its
#    records are those of A (msisdn and record_id): it is refused as a
#    probable re-delivery (exit 16), nothing of it ingested, unless
#    --accept-redelivery.
python3 - "$A" "$W/a2.csv" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = len(d) - 2
while not (48 <= d[i] <= 57):
    i -= 1
d[i] = 48 + (d[i] - 48 + 1) % 10
open(sys.argv[2], 'wb').write(d)
PY
[ "$(wc -c <"$A")" = "$(wc -c <"$W/a2.csv")" ] || fail "a2.csv has another size"
set +e
"$CDRECON" run --tariff "$EX/tariff" --db "$W/1.db" --out "$W/o3" "$W/a2.csv" \
    >"$W/3.out" 2>"$W/3.err"
rc=$?
set -e
[ $rc -eq 16 ] || { cat "$W/3.out" "$W/3.err"; fail "a2.csv: exit $rc, want 16 (refused)"; }
grep -q "^files  *1 read (0 gzip), 0 skipped as already ingested, 1 refused" "$W/3.out" ||
    { cat "$W/3.out" "$W/3.err"; fail "a2.csv not read"; }
grep -q "a2.csv: refused as a probable re-delivery: 3964 of its 3964 records" "$W/3.err" ||
    { cat "$W/3.err"; fail "refusal message"; }
[ "$(q 1.db "select state from files where name = '$W/a2.csv'")" = refused ] || fail "not refused"
"$CDRECON" run --accept-redelivery --tariff "$EX/tariff" --db "$W/1.db" --out "$W/o3" \
    "$W/a2.csv" >"$W/3.out" 2>"$W/3.err" || [ $? -eq 9 ] || fail "--accept-redelivery"
[ "$(q 1.db "select count(*) from files where name = '$W/a2.csv' and state = 'ingested'")" -eq 1 ] ||
    fail "a2.csv not ingested with --accept-redelivery"

# 4. A copy of a file in the same run: read once, the copy skipped.
cp "$B" "$W/b-copy.csv"
"$CDRECON" run --tariff "$EX/tariff" --db "$W/4.db" --out "$W/o4" "$B" "$W/b-copy.csv" \
    >"$W/4.out" 2>"$W/4.err"
grep -q "has the same content as" "$W/4.err" || { cat "$W/4.err"; fail "copy not detected"; }
[ "$(q 4.db "select count(*) from files")" -eq 1 ] || fail "copy recorded"
rows4=$(q 4.db "select rows_read from runs")
"$CDRECON" run --tariff "$EX/tariff" --db "$W/5.db" --out "$W/o5" "$B" >/dev/null
[ "$rows4" = "$(q 5.db "select rows_read from runs")" ] || fail "the copy was counted"
cmp "$W/o4/findings.csv" "$W/o5/findings.csv"

# 5. stdin is always hashed while read: with known content it is dropped
#    after reading and nothing of it is counted or rated twice: the month's
#    current findings are those of B (run before) and A.
"$CDRECON" run --tariff "$EX/tariff" --db "$W/5.db" --out "$W/o6" - "$A" <"$B" \
    >"$W/6.out" 2>"$W/6.err"
grep -q "already ingested" "$W/6.err" || { cat "$W/6.err"; fail "stdin with known content"; }
[ "$(q 5.db "select count(*) from files")" -eq 2 ] || fail "stdin recorded"
"$CDRECON" run --tariff "$EX/tariff" --db "$W/7.db" --out "$W/o7" "$A" "$B" >/dev/null
cmp "$W/o6/findings.csv" "$W/o7/findings.csv"

# 6. A broken tariff is reported first and alone (exit 5), by rate and run,
#    also when the database cannot be opened: the tariff loads beside the
#    reading, and its failure stops the reading early.
cp -r "$EX/tariff" "$W/badt"
echo "x,y" >>"$W/badt/plans.csv"
for cmd in "rate --tariff $W/badt --out $W/r.csv" "run --tariff $W/badt --db $W/8.db --out $W/o8" \
           "run --tariff $W/badt --db $W/nodir/8.db --out $W/o8"; do
    set +e
    # shellcheck disable=SC2086
    "$CDRECON" $cmd "$A" "$B" >/dev/null 2>"$W/t.err"
    rc=$?
    set -e
    [ "$rc" -eq 5 ] || { cat "$W/t.err"; fail "$cmd: exit $rc, expected 5"; }
    [ "$(wc -l <"$W/t.err")" -eq 1 ] && grep -q "plans.csv:[0-9]*: 2 fields" "$W/t.err" ||
        { cat "$W/t.err"; fail "$cmd: not the tariff's error alone"; }
done
[ ! -e "$W/8.db" ] || [ "$(q 8.db "select count(*) from runs")" -eq 0 ] || fail "a run was stored"
[ ! -e "$W/o8/findings.csv" ] || fail "outputs written with a broken tariff"

[ "$(q 1.db "pragma integrity_check")" = "ok" ]
[ "$(q 5.db "pragma integrity_check")" = "ok" ]
echo ok
