#!/bin/sh
# What sits in the tariff directory (issue 14, item 15): a FIFO as a table used
# to hang the load; a symbolic link to /dev/zero read until memory ran out; a
# misspelled optional table (refund.csv) was ignored without a word (150 -> 132
# candidates on the example month); a link to nothing was taken for an absent
# table.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$W/err" ] && cat "$W/err" >&2; exit 1; }
T="$TESTDATA/rate-hand"

refused() { # name, expected exit, expected words; the tariff is $W/t
    set +e
    timeout 20 "$CDRECON" check-tariff "$W/t" >"$W/out" 2>"$W/err"
    rc=$?
    set -e
    [ "$rc" -ne 124 ] || fail "$1: check-tariff hangs (killed after 20 s)"
    [ "$rc" -eq "$2" ] || fail "$1: exit $rc, expected $2"
    grep -qF "$3" "$W/err" || fail "$1: message lacks '$3'"
}

cp -r "$T" "$W/t"
rm "$W/t/refunds.csv"
mkfifo "$W/t/refunds.csv"
refused "FIFO as refunds.csv" 5 "refunds.csv: not a regular file (a FIFO): refused"

rm "$W/t/refunds.csv"
ln -s /dev/zero "$W/t/refunds.csv"
refused "link to /dev/zero" 5 "refunds.csv: not a regular file (a device): refused"

rm "$W/t/refunds.csv"
mkdir "$W/t/refunds.csv"
refused "directory as refunds.csv" 5 "refunds.csv: not a regular file (a directory): refused"

rmdir "$W/t/refunds.csv"
ln -s "$W/nothing" "$W/t/refunds.csv"
refused "link to nothing" 2 "refunds.csv: cannot read: a symbolic link to a missing file"

# a misspelled optional table: loaded without it, but said
rm "$W/t/refunds.csv"
cp "$T/refunds.csv" "$W/t/refund.csv"
"$CDRECON" check-tariff "$W/t" >"$W/out" 2>"$W/err" || fail "check-tariff with refund.csv"
grep -qF "warning: unknown file 'refund.csv' is not read (did you mean refunds.csv?)" "$W/out" ||
    fail "check-tariff does not list refund.csv: $(cat "$W/out")"
grep -q "^refunds: 0" "$W/out" || fail "refund.csv was read"
# rate and run say it on stderr (the tariff loads on the background thread)
printf 'record_id,msisdn,service,peer,start_time,duration_s,billed\nr1,13900000001,voice,13811112222,2026-10-07 10:00:00,60,0.19\n' >"$W/a.csv"
"$CDRECON" rate --tariff "$W/t" --out /dev/null "$W/a.csv" 2>"$W/err" || fail "rate"
grep -qF "warning: tariff $W/t: unknown file 'refund.csv' is not read (did you mean refunds.csv?)" "$W/err" ||
    fail "rate does not warn about refund.csv"
"$CDRECON" run --tariff "$W/t" --db "$W/r.db" --out "$W/o" "$W/a.csv" >/dev/null 2>"$W/err" ||
    fail "run"
grep -qF "unknown file 'refund.csv'" "$W/err" || fail "run does not warn about refund.csv"
# a required table misspelled: the refusal names the file that is there
mv "$W/t/plans.csv" "$W/t/plan.csv"
refused "plan.csv" 5 "plans.csv: required table is missing from $W/t (the directory has plan.csv)"
mv "$W/t/plan.csv" "$W/t/plans.csv"
# other names are listed too, hidden ones are not
touch "$W/t/README.md" "$W/t/.hidden"
"$CDRECON" check-tariff "$W/t" >"$W/out" 2>"$W/err" || fail "check-tariff with README.md"
grep -qF "warning: unknown file 'README.md' is not read (the tables: docs/tariff.md)" "$W/out" ||
    fail "README.md not listed"
if grep -q "hidden" "$W/out"; then fail "a hidden file was listed"; fi
# the bundled tariffs have no stray file
"$CDRECON" check-tariff "$T" >"$W/out" 2>&1 || fail "rate-hand"
if grep -q "warning" "$W/out"; then fail "rate-hand warns: $(cat "$W/out")"; fi
echo ok
