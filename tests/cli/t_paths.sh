#!/bin/sh
# Outputs that would destroy what they should not (issue 14, items 5, 6, 7, 14):
#  - an output that is an input (by name, symbolic link or hard link), another
#    output, or inside the tariff directory is refused with exit 1 before
#    anything is read or written (rate, scan, evidence);
#  - the directory of an output file is walked without following a symbolic
#    link owned by another user;
#  - a killed rate/run leaves its temporary files; the next one removes the
#    leftovers of dead processes, never those of a live one;
#  - a write error names the file and the OS reason.
# `run`'s own cases are in t_paths_run.sh.pending (the lead enables them).
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
T="$TESTDATA/rate-hand"
W=$(mktemp -d)
bgpids=""
cleanup() {
    for p in $bgpids; do kill -9 "$p" 2>/dev/null || true; done
    umount "$W/tiny" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$W/err" ] && cat "$W/err" >&2; exit 1; }

cat >"$W/a.csv" <<'CSV'
record_id,msisdn,service,direction,peer,start_time,duration_s,billed
r1,13900000001,voice,mo,13811112222,2026-10-07 10:00:00,60,0.19
r2,13900000001,voice,mo,13811112222,2026-10-07 23:30:00,120,0.38
bad,13900000001,voice,mo,13811112222,2026-13-07 23:30:00,120,0.38
CSV
sum_a=$(cksum <"$W/a.csv")
expect_refused() { # what, then the command; exit 1 and a.csv untouched
    what=$1; shift
    set +e
    "$@" >"$W/stdout.txt" 2>"$W/err"
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1 (refused)"
    grep -q "refused" "$W/err" || fail "$what: no reason given"
    [ "$(cksum <"$W/a.csv")" = "$sum_a" ] || fail "$what: the input a.csv was changed"
}

# ---- item 5: rate ----------------------------------------------------------
cd "$W"
expect_refused "rate --out a.csv a.csv" "$CDRECON" rate --tariff "$T" --out a.csv a.csv
grep -qF -- '--out a.csv is an input (CDR file a.csv)' err || fail "rate: message: $(cat err)"
expect_refused "rate --rejects a.csv a.csv" "$CDRECON" rate --tariff "$T" --rejects a.csv a.csv
ln -s a.csv link.csv
expect_refused "rate --out LINK-TO-INPUT" "$CDRECON" rate --tariff "$T" --out link.csv a.csv
[ -L link.csv ] || fail "the link was replaced"
ln a.csv hard.csv
expect_refused "rate --out HARD-LINK-TO-INPUT" "$CDRECON" rate --tariff "$T" --out hard.csv a.csv
expect_refused "rate --out ./sub/../a.csv" "$CDRECON" rate --tariff "$T" --out ./sub/../a.csv a.csv
expect_refused "rate --out x --rejects ./x" \
    "$CDRECON" rate --tariff "$T" --out x.csv --rejects ./x.csv a.csv
[ ! -e x.csv ] || fail "rate wrote x.csv although refused"
# the tariff directory (a copy: the test must not write into testdata)
cp -r "$T" tariff
expect_refused "rate --out TARIFF/rates.csv" "$CDRECON" rate --tariff tariff --out tariff/rates.csv a.csv
cmp -s tariff/rates.csv "$T/rates.csv" || fail "rates.csv of the tariff was replaced"
expect_refused "rate --out TARIFF/new.csv" "$CDRECON" rate --tariff tariff --out tariff/new.csv a.csv
[ ! -e tariff/new.csv ] || fail "a file was written into the tariff directory"
# devices are written directly, not compared: both to /dev/null is fine
"$CDRECON" rate --tariff "$T" --out /dev/null --rejects /dev/null a.csv 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] || fail "rate to /dev/null twice: exit $rc, expected 9 (a reject)"
[ -c /dev/null ] || fail "/dev/null is no longer a device"
# and a plain run still works, the two outputs distinct
"$CDRECON" rate --tariff "$T" --out r.csv --rejects j.csv a.csv 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] && [ "$(wc -l <r.csv)" -eq 3 ] && [ "$(wc -l <j.csv)" -eq 2 ] ||
    fail "rate --out r.csv --rejects j.csv: exit $rc"

# ---- item 5: scan --rejects used to truncate its input before reading it ---
expect_refused "scan --rejects a.csv a.csv" "$CDRECON" scan --rejects a.csv a.csv
expect_refused "scan --rejects LINK a.csv" "$CDRECON" scan --rejects link.csv a.csv
"$CDRECON" scan --rejects sj.csv a.csv >/dev/null 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] && cmp -s sj.csv j.csv || fail "scan --rejects: exit $rc, or not rate's rejects"

# ---- item 5: evidence --force must not remove an input ---------------------
ev() { "$CDRECON" evidence --no-pdf --tariff "$T" --date 2026-11-05 --run-id t "$@"; }
ev --msisdn 13900000001 --month 2026-10 --out pack a.csv 2>err || fail "evidence: $(cat err)"
# the month's CDR extract kept in the case directory, given as the input
cp a.csv pack/internal/records.csv
sum_r=$(cksum <pack/internal/records.csv)
set +e
ev --force --msisdn 13900000001 --month 2026-10 --out pack pack/internal/records.csv >/dev/null 2>err
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "evidence --force over its own input: exit $rc, expected 1"
[ "$(cksum <pack/internal/records.csv)" = "$sum_r" ] || fail "evidence removed its input"
set +e
"$CDRECON" evidence --no-pdf --tariff tariff --msisdn 13900000001 --month 2026-10 \
    --out tariff --force a.csv >/dev/null 2>err
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "tariff directory" err || fail "evidence --out TARIFF: exit $rc"

# ---- the state directory (--store) must be a directory ------------------------
mkfifo st.fifo
set +e
"$CDRECON" run --tariff "$T" --db st.db --out stout --store st.fifo a.csv >/dev/null 2>err
rc=$?
set -e
[ "$rc" -eq 12 ] && [ -p st.fifo ] || fail "run --store FIFO: exit $rc, or the FIFO was replaced"
grep -qF 'st.fifo exists and is not a directory' err || fail "store refusal: $(cat err)"

# ---- item 6: the directory of an output file --------------------------------
# A symbolic link owned by another user is not followed (a link planted in
# /tmp); one of ours (or root's) is.
mkdir target
ln -s target mylink
"$CDRECON" rate --tariff "$T" --out mylink/x.csv a.csv 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] && [ -s target/x.csv ] || fail "rate through our own link: exit $rc"
ln -s target theirlink
if chown -h 65534 theirlink 2>/dev/null; then
    set +e
    "$CDRECON" rate --tariff "$T" --out theirlink/y.csv a.csv >/dev/null 2>err
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "rate through another user's link: exit $rc, expected 2"
    grep -q "owned by another user" err || fail "link refusal message: $(cat err)"
    [ ! -e target/y.csv ] || fail "written through another user's link"
else
    echo "note: chown -h not permitted: the other-owner link case is not run"
fi

# ---- item 7: leftovers of killed runs ---------------------------------------
# rate blocks reading a FIFO after creating its temporary output; kill -9.
mkdir out
mkfifo fifo.csv
"$CDRECON" rate --tariff "$T" --out out/x.csv fifo.csv 2>/dev/null &
rpid=$!
bgpids="$rpid"
i=0
while [ ! -e "out/.x.csv.tmp.$rpid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "out/.x.csv.tmp.$rpid" ] || fail "no temporary file of the running rate"
kill -9 "$rpid"
wait "$rpid" 2>/dev/null || true
[ -e "out/.x.csv.tmp.$rpid" ] || fail "kill -9 left nothing (the test proves nothing)"
# a live process's temporary file stays: this shell's sleep
sleep 30 &
live=$!
bgpids="$bgpids $live"
echo partial >"out/.x.csv.tmp.$live"
echo partial >"out/.other.csv.tmp.$rpid"   # another output's: not ours to remove
"$CDRECON" rate --tariff "$T" --out out/x.csv a.csv 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] || fail "rate after the kill: exit $rc"
[ ! -e "out/.x.csv.tmp.$rpid" ] || fail "the killed rate's leftover is still there"
[ -e "out/.x.csv.tmp.$live" ] || fail "a live process's temporary file was removed"
[ -e "out/.other.csv.tmp.$rpid" ] || fail "another output's leftover was removed"
kill "$live" 2>/dev/null || true

# run: the CSV writers clean up the same way (the library does it); the month
# state's leftovers are removed by the next run's collection (tested in
# tests/reliability/crashnights.sh). Standard input keeps it reading.
mkdir rout
rm -f fifo.csv
mkfifo fifo.csv
"$CDRECON" run --tariff "$T" --db r.db --out rout - <fifo.csv >/dev/null 2>&1 &
rpid=$!
bgpids="$bgpids $rpid"
exec 7>fifo.csv                      # open the writer end, never close it
i=0
while [ ! -e "rout/.changes.csv.tmp.$rpid" ] &&
      [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$rpid"
wait "$rpid" 2>/dev/null || true
exec 7>&-
for f in .findings.csv.tmp .candidates.csv.tmp .rejects.csv.tmp .unrated.csv.tmp \
         .changes.csv.tmp; do
    [ -e "rout/$f.$rpid" ] || fail "kill -9 of run left no rout/$f.$rpid (the test proves nothing)"
done
"$CDRECON" run --tariff "$T" --db r.db --out rout a.csv >/dev/null 2>err && rc=0 || rc=$?
[ "$rc" -eq 9 ] || fail "run after the kill: exit $rc"
left=$(ls -A rout | grep -c "tmp\." || true)
[ "$left" -eq 0 ] || fail "run left $left temporary files: $(ls -A rout)"

# ---- item 14: write errors name the file and the OS reason -------------------
awk 'NR == 1 { print; next } { for (i = 0; i < 400; i++) { $0 = $0; sub(/^r[0-9]+/, "r" NR "x" i); print } }' \
    FS=, OFS=, a.csv >big.csv
(
    ulimit -f 1       # 512 bytes: the output hits the size limit (EFBIG)
    trap '' XFSZ
    "$CDRECON" rate --tariff "$T" --out out/big.csv big.csv >/dev/null 2>"$W/err"
) && rc=0 || rc=$?
[ "$rc" -eq 2 ] || fail "rate past the file size limit: exit $rc, expected 2"
grep -qF 'out/big.csv' err && grep -q 'File too large' err ||
    fail "size-limit message lacks the file or the reason: $(cat err)"
[ ! -e out/big.csv ] && [ -z "$(ls -A out | grep big)" ] || fail "a partial big.csv is left"
mkdir ro
chmod 555 ro
as_other=""
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null && as_other="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if [ "$(id -u)" -ne 0 ] || [ -n "$as_other" ]; then
    chmod 755 "$W"
    chmod 644 a.csv
    set +e
    $as_other "$CDRECON" rate --tariff "$T" --out ro/x.csv a.csv >/dev/null 2>err
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "rate into a read-only directory: exit $rc, expected 2"
    grep -qF 'ro/.x.csv.tmp' err && grep -q 'Permission denied' err ||
        fail "read-only message lacks the file or the reason: $(cat err)"
else
    echo "note: running as root without setpriv: the read-only directory case is not run"
fi
# a column given twice is not "missing or lacks a required column"
printf 'record_id,msisdn,service,msisdn,start_time,billed\n' >dup.csv
set +e
"$CDRECON" scan dup.csv >/dev/null 2>err
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "scan of a duplicated header column: exit $rc"
grep -qF "duplicate column 'msisdn' in header (columns 2 and 4)" err || fail "dup header message"
if grep -q "lacks a required column" err; then fail "a duplicated column called missing: $(cat err)"; fi
# a tariff error names the tariff directory
mkdir badt
cp "$T"/*.csv badt/
echo 'x,y' >>badt/plans.csv
set +e
"$CDRECON" rate --tariff badt a.csv >/dev/null 2>err
set -e
grep -qF "tariff badt: plans.csv:8: 2 fields" err || fail "tariff error without its directory: $(cat err)"
# a full file system, when a tmpfs can be mounted here
mkdir tiny
if mount -t tmpfs -o size=16k tmpfs tiny 2>/dev/null; then
    set +e
    "$CDRECON" rate --tariff "$T" --out tiny/x.csv big.csv >/dev/null 2>err
    rc=$?
    set -e
    umount tiny
    [ "$rc" -eq 2 ] || fail "rate onto a full disk: exit $rc, expected 2"
    grep -qF 'tiny/x.csv' err && grep -q 'No space left on device' err ||
        fail "disk-full message lacks the file or the reason: $(cat err)"
fi
echo ok
