#!/bin/sh
# `cdrecon run`'s outputs must not destroy what they should not (issue 14,
# items 5, 6, 14): cmd_run.c calls cli_run_paths_check before anything is
# opened and writes through cli_outdir_open / cli_outdir_csvw
# (src/cli/paths.h). --store is the month state's directory (issue 13). The
# leftovers of killed runs (item 7) are tested for run in t_paths.sh.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
T="$TESTDATA/rate-hand"
W=$(mktemp -d)
cleanup() { umount "$W/tiny" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$W/err" ] && cat "$W/err" >&2; exit 1; }
cd "$W"
cat >a.csv <<'CSV'
record_id,msisdn,service,direction,peer,start_time,duration_s,billed
r1,13900000001,voice,mo,13811112222,2026-10-07 10:00:00,60,0.19
r2,13900000001,voice,mo,13811112222,2026-10-07 23:30:00,120,0.38
CSV
# b.csv: new content (a copy of a.csv would be skipped as already ingested,
# exit 8, before anything is written, and prove nothing)
{ cat a.csv; echo 'r3,13900000001,voice,mo,13811112222,2026-10-08 10:00:00,60,0.19'; } >b.csv
sum_b=$(cksum <b.csv)
runs() { sqlite3 "$1" 'select count(*) from runs'; }

refused() { # what, expected exit, then the command
    what=$1 want=$2; shift 2
    set +e
    "$@" >/dev/null 2>err
    rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "$what: exit $rc, expected $want"
}

# a database with one run (its history must survive)
"$CDRECON" run --tariff "$T" --db r.db --out out a.csv >/dev/null 2>err || fail "first run"
[ "$(runs r.db)" = 1 ] || fail "first run not stored"
sum_db=$(cksum <r.db)

# --store (the state directory) is the database
refused "run --db r.db --store r.db" 1 "$CDRECON" run --tariff "$T" --db r.db --store r.db --out out b.csv
grep -q "database" err || fail "message does not say the database: $(cat err)"
[ "$(cksum <r.db)" = "$sum_db" ] && [ "$(runs r.db)" = 1 ] || fail "the database was changed"

# --store is an input CDR file
refused "run --store b.csv ... b.csv" 1 "$CDRECON" run --tariff "$T" --db r.db --store b.csv --out out b.csv
[ "$(cksum <b.csv)" = "$sum_b" ] || fail "the input b.csv was overwritten"
[ "$(runs r.db)" = 1 ] || fail "a run was stored"
ln -s b.csv lb.csv
refused "run --store LINK-TO-INPUT" 1 "$CDRECON" run --tariff "$T" --db r.db --store lb.csv --out out b.csv
[ -L lb.csv ] && [ "$(cksum <b.csv)" = "$sum_b" ] || fail "the link or its target was replaced"

# an input that sits in the output directory under an output's name
mkdir o2
cp a.csv o2/findings.csv
sum_f=$(cksum <o2/findings.csv)
refused "run --out o2 ... o2/findings.csv" 1 "$CDRECON" run --tariff "$T" --db r2.db --out o2 o2/findings.csv
[ "$(cksum <o2/findings.csv)" = "$sum_f" ] || fail "the input o2/findings.csv was replaced"

# the database is an input
refused "run --db b.csv b.csv" 1 "$CDRECON" run --tariff "$T" --db b.csv --out o3 b.csv
[ "$(cksum <b.csv)" = "$sum_b" ] || fail "b.csv was changed"

# the tariff directory (a copy)
cp -r "$T" tariff
refused "run --out TARIFF" 1 "$CDRECON" run --tariff tariff --db r3.db --out tariff a.csv
[ ! -e tariff/findings.csv ] || fail "findings.csv was written into the tariff directory"
refused "run --store TARIFF/x.state" 1 "$CDRECON" run --tariff tariff --db r3.db --out o4 --store tariff/x.state a.csv
[ ! -e tariff/x.state ] || fail "a state directory was made in the tariff directory"
refused "run --store TARIFF" 1 "$CDRECON" run --tariff tariff --db r3.db --out o4 --store tariff a.csv
[ -z "$(ls tariff | grep -v '\.csv$')" ] || fail "state files were written into the tariff directory"
refused "run --db TARIFF/r.db" 1 "$CDRECON" run --tariff tariff --db tariff/r.db --out o4 a.csv
[ ! -e tariff/r.db ] || fail "a database was created in the tariff directory"

# ---- item 6: --out LINK writes into its target (as root, into /etc) ----------------
mkdir target
ln -s target outlink
refused "run --out LINK" 12 "$CDRECON" run --tariff "$T" --db r5.db --out outlink a.csv
grep -q "symbolic link" err || fail "the refusal does not say why: $(cat err)"
[ -z "$(ls -A target)" ] || fail "run wrote through the link: $(ls -A target)"
# the state directory itself a link: refused, nothing written through it
refused "run --store LINK" 12 "$CDRECON" run --tariff "$T" --db r5s.db --out o5 --store outlink a.csv
[ -z "$(ls -A target)" ] || fail "run wrote state through the link: $(ls -A target)"
# a link owned by another user above the state directory is not followed
ln -s target theirs
if chown -h 65534 theirs 2>/dev/null; then
    refused "run --store THEIR-LINK/x.state" 2 "$CDRECON" run --tariff "$T" --db r6.db --out o6 --store theirs/x.state a.csv
    [ -z "$(ls -A target)" ] || fail "run wrote through another user's link"
fi

# ---- item 14: errors name the file and the OS reason --------------------------------
mkdir ro
chmod 555 ro
as_other=""
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    as_other="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if [ "$(id -u)" -ne 0 ] || [ -n "$as_other" ]; then
    chmod 777 "$W"
    chmod 644 a.csv
    refused "run --out READ-ONLY" 2 $as_other "$CDRECON" run --tariff "$T" --db "$W/r7.db" --out ro a.csv
    grep -qF 'ro/' err && grep -q 'Permission denied' err ||
        fail "read-only output: the message lacks the file or the reason: $(cat err)"
fi
mkdir tiny
if mount -t tmpfs -o size=16k tmpfs tiny 2>/dev/null; then
    # overcharged rows (billed 9.99): one findings.csv row each, far above 16 KiB
    awk -F, -v OFS=, 'NR == 1 { print; next } { for (i = 0; i < 400; i++) { $1 = "r" NR "x" i; $NF = "9.99"; print } }' a.csv >big.csv
    refused "run onto a full disk" 2 "$CDRECON" run --tariff "$T" --db r8.db --out tiny big.csv
    grep -q 'tiny/' err && grep -q 'No space left on device' err ||
        fail "disk full: the message lacks the file or the reason: $(cat err)"
    if grep -q ': : ' err; then fail "an empty message part: $(cat err)"; fi
    umount tiny
fi
echo ok
