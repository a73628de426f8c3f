#!/bin/sh
# Issue 14, items 1 and 2: money sums never wrap, and what the reader accepts
# can always be rated (docs/rating.md "Limits and sums", docs/cdr-format.md
# "Limits", docs/tariff.md "Limits"). Built from the reproductions: five rows
# of one number billed 999999999999.999999 gave refund -8446744073711.09 and
# an SMS with a negative amount; ten made the candidate disappear; a voice row
# of 10^14 s stopped `run` with exit 14 naming no file or line.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
T=$TESTDATA/example/tariff
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
H=record_id,msisdn,service,direction,peer,start_time,duration_s,sms_chars,bytes,billed,call_id,partial_seq
BIG=999999999999.999999

# An amount in a CSV cell that is negative: nothing may show one.
no_negative() { # file...
    if grep -n -- ',-[0-9]' "$@"; then no "negative amount in $*"; fi
}

# --- 1. five and ten rows of one number billed 10^12 yuan ------------------
for k in 5 10; do
    {
        echo "$H"
        i=1
        while [ "$i" -le "$k" ]; do
            echo "r$i,13754317498,voice,mo,13800000001,2026-10-0$((i % 9 + 1)) 10:00:0$((i % 10)),60,,,$BIG,,"
            i=$((i + 1))
        done
    } >"$W/one$k.csv"
    "$CDRECON" run --tariff "$T" --db "$W/one$k.db" --out "$W/one$k" "$W/one$k.csv" >"$W/one$k.log" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || { no "$k rows: run exit $rc"; cat "$W/one$k.log"; }
    # the month's billed total passes 10^12 yuan: every record unrated, with
    # the reason; no candidate with a wrapped refund
    [ "$(wc -l <"$W/one$k/candidates.csv")" -eq 1 ] || no "$k rows: a candidate was made"
    n=$(grep -c 'billed amounts of this subscriber-month add up to more than 1000000000000 yuan' \
        "$W/one$k/unrated.csv")
    [ "$n" -eq "$k" ] || no "$k rows: $n of $k records unrated with the reason"
    grep -q "records     $k rated, 0 duplicates, $k unrated" "$W/one$k.log" || no "$k rows: summary"
    no_negative "$W/one$k/candidates.csv" "$W/one$k/findings.csv"
done

# --- 1. ten subscriber-months of 10^12 yuan each: run totals out of range --
subs=$(sed -n '2,11p' "$T/subscribers.csv" | cut -d, -f1)
{
    echo "$H"
    i=0
    for m in $subs; do
        i=$((i + 1))
        echo "t$i,$m,voice,mo,13800000001,2026-10-05 10:00:00,60,,,$BIG,,"
    done
} >"$W/ten.csv"
"$CDRECON" run --tariff "$T" --db "$W/ten.db" --out "$W/ten" "$W/ten.csv" >"$W/ten.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { no "ten subscribers: run exit $rc"; cat "$W/ten.log"; }
[ "$(wc -l <"$W/ten/candidates.csv")" -eq 11 ] || no "ten subscribers: not 10 candidates"
no_negative "$W/ten/candidates.csv" "$W/ten/findings.csv"
# every candidate: refund = 2 x overcharge, exactly (python: exact decimals)
python3 - "$W/ten/candidates.csv" <<'EOF' || no "ten subscribers: refund != 2 x overcharge"
import csv, sys
from decimal import Decimal
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if Decimal(r["refund"]) != 2 * Decimal(r["overcharge"])
       or Decimal(r["overcharge"]) <= 0 or r["tier"] != "4"]
sys.exit(1 if bad or len(rows) != 10 else 0)
EOF
grep -q 'overcharge out of range yuan, refund (x2) out of range yuan' "$W/ten.log" ||
    no "ten subscribers: the run's totals are not shown as out of range"
tot=$(sqlite3 "$W/ten.db" "SELECT overcharge_micro, refund_micro FROM runs") ||
    no "ten subscribers: the database cannot be read"
[ "$tot" = "9223372036854775807|9223372036854775807" ] || no "ten subscribers: runs totals '$tot'"
# the customer SMS of one of them: the refund as computed, never negative
m=$(echo "$subs" | head -n 1)
"$CDRECON" evidence --msisdn "$m" --month 2026-10 --out "$W/ev" --tariff "$T" --no-pdf \
    --date 2026-11-02 "$W/ten.csv" >/dev/null 2>&1 || no "evidence exit $?"
want=$(sed -n "s/^$m,2026-10,1,[^,]*,\([0-9.]*\),.*/\1/p" "$W/ten/candidates.csv")
grep -q "退费金额${want}元" "$W/ev/customer/sms.txt" 2>/dev/null ||
    { no "SMS does not say the refund $want"; cat "$W/ev/customer/sms.txt"; }
grep -q '退费金额-' "$W/ev/customer/sms.txt" && no "SMS with a negative refund"

# --- 2. usage the rating cannot compute: rejected by the reader ------------
{
    echo "$H"
    echo "d1,13754317498,voice,mo,0044123456,2026-10-01 10:00:00,100000000000000,,,1.00,,"
    echo "d2,13754317498,voice,mo,13800000001,2026-10-01 11:00:00,1000000000000000,,,1.00,,"
    echo "d3,13754317498,sms,mo,13800000001,2026-10-01 12:00:00,,1000000000000000,,0.10,,"
    echo "d4,13754317498,voice,mo,13800000001,2026-10-01 13:00:00,1000000001,,,1.00,,"
    echo "d5,13754317498,sms,mo,13800000001,2026-10-01 14:00:00,,1000000001,,0.10,,"
    echo "d6,13754317498,data,mo,cmnet,2026-10-01 15:00:00,,,1000000000000001,0.10,,"
    echo "ok1,13754317498,voice,mo,13800000001,2026-10-02 10:00:00,1000000000,,,1.00,,"
    echo "ok2,13754317498,sms,mo,13800000001,2026-10-02 11:00:00,,1000000000,,1.00,,"
    echo "ok3,13754317498,data,mo,cmnet,2026-10-02 12:00:00,,,1000000000000000,1.00,,"
    echo "ok4,13754317498,voice,mo,13800000001,2026-10-02 13:00:00,60,,,0.50,,"
} >"$W/usage.csv"
"$CDRECON" scan --rejects "$W/scan-rejects.csv" "$W/usage.csv" >"$W/scan.log" 2>&1
rc=$?
[ "$rc" -eq 9 ] || no "scan exit $rc (want 9: rejects)"
for want in \
    "usage.csv,2,.*duration_s out of range '100000000000000' (above 10^9)" \
    "usage.csv,3,.*duration_s out of range '1000000000000000' (above 10^9)" \
    "usage.csv,4,.*sms_chars out of range '1000000000000000' (above 10^9)" \
    "usage.csv,5,.*duration_s out of range '1000000001' (above 10^9)" \
    "usage.csv,6,.*sms_chars out of range '1000000001' (above 10^9)" \
    "usage.csv,7,.*bytes out of range '1000000000000001' (above 10^15)"; do
    grep -q "$want" "$W/scan-rejects.csv" || no "scan: no reject like: $want"
done
[ "$(grep -c '^[^,]*usage.csv,' "$W/scan-rejects.csv")" -eq 6 ] || no "scan: not exactly 6 rejects"
# run: the night goes on, the accepted rows at the limits are rated
"$CDRECON" run --tariff "$T" --db "$W/u.db" --out "$W/u" "$W/usage.csv" >"$W/u.log" 2>&1
rc=$?
[ "$rc" -eq 9 ] || { no "run with rejects: exit $rc (want 9)"; cat "$W/u.log"; }
grep -q 'rows        10 read = 4 accepted + 6 rejected' "$W/u.log" || no "run: row counts"
grep -q 'records     4 rated, 0 duplicates, 0 unrated' "$W/u.log" || no "run: records"
[ "$(wc -l <"$W/u/rejects.csv")" -eq 7 ] || no "run: rejects.csv"

# --- 2. at the limits of a tariff that check-tariff accepts ----------------
# voice at 1000 yuan/s: a 10^9-s call costs exactly 10^12 yuan, the largest
# charge of one record; a second one in the month would pass the month's sum
L=$W/tariff-limits
mkdir -p "$L"
printf 'plan,monthly_fee,rounding,sms_single_chars,sms_part_chars,band_rule\np,0,0.01,70,70,start\n' >"$L/plans.csv"
printf 'plan,service,direction,prefix,band,price,unit,increment,pool\np,voice,mo,*,*,1000,1,1,\np,data,mo,*,*,1,1,1,\n' >"$L/rates.csv"
{
    echo 'msisdn,plan,valid_from,valid_to,vip,join_date'
    i=10
    while [ "$i" -le 21 ]; do echo "139000000$i,p,2020-01-01,,0,2020-01-01"; i=$((i + 1)); done
} >"$L/subscribers.csv"
"$CDRECON" check-tariff "$L" >/dev/null 2>&1 || no "check-tariff refuses the limits tariff"
{
    echo "$H"
    # one subscriber: two calls of 10^12 yuan each; the second passes the sum
    echo "a1,13900000010,voice,mo,13800000001,2026-10-01 10:00:00,1000000000,,,0,,"
    echo "a2,13900000010,voice,mo,13800000001,2026-10-02 10:00:00,1000000000,,,0,,"
    # a partial call whose parts add up beyond 10^9 s
    echo "p1,13900000011,voice,mo,13800000001,2026-10-01 10:00:00,600000000,,,0,c1,1"
    echo "p2,13900000011,voice,mo,13800000001,2026-10-08 10:00:00,600000000,,,0,c1,2"
    # ten subscribers with 10^12 yuan of leakage each: the run's leakage total
    # passes 64 bits (SQLite's sum() failed the commit: "database error")
    i=12
    while [ "$i" -le 21 ]; do
        echo "l$i,139000000$i,voice,mo,13800000001,2026-10-03 10:00:00,1000000000,,,0,,"
        i=$((i + 1))
    done
} >"$W/lim.csv"
"$CDRECON" rate --tariff "$L" --out "$W/lim-rate.csv" "$W/lim.csv" >"$W/lim-rate.log" 2>&1 ||
    { no "rate at the limits: exit $?"; cat "$W/lim-rate.log"; }
"$CDRECON" run --tariff "$L" --db "$W/lim.db" --out "$W/lim" "$W/lim.csv" >"$W/lim.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { no "run at the limits: exit $rc"; cat "$W/lim.log"; }
grep -q '^13900000010,2026-10,a1,[^,]*,2,leakage,overlong,0\.00,1000000000000\.00,-1000000000000\.00,' \
    "$W/lim/findings.csv" || no "a1 is not rated at exactly 10^12 yuan"
grep -q '"the rebuilt charges of this subscriber-month would add up to more than 1000000000000 yuan: out of range, not rated"' \
    "$W/lim/unrated.csv" && grep -q ',a2,' "$W/lim/unrated.csv" || no "a2 not unrated with the month's reason"
grep -q ',p1,.*usage above the limit rating computes' "$W/lim/unrated.csv" ||
    no "the merged partial call is not unrated with its reason"
grep -q 'leakage     11 records undercharged by out of range yuan' "$W/lim.log" ||
    no "the leakage total is not shown as out of range"
lk=$(sqlite3 "$W/lim.db" "SELECT leakage_micro, leakage_records FROM runs") ||
    no "the database cannot be read"
[ "$lk" = "9223372036854775807|11" ] || no "runs leakage '$lk'"
no_negative "$W/lim/candidates.csv"

[ "$fail" -eq 0 ] && echo "limits: ok"
exit "$fail"
