#!/bin/sh
# A month over two nights, hand-computed (tariff testdata/rate-hand): each
# rule that spans nights, with the amounts worked out below. Night 2 must
# continue night 1's bundle, see night 1's records as the originals of its
# duplicates, merge a partial call whose parts came on different nights,
# flag a call that overlaps the previous night's last call, and re-rate a
# subscriber-month whose late record starts before the stored ones. The
# results equal one run over both files, and changes.csv says what changed.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
T="$TESTDATA/rate-hand"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
H=record_id,msisdn,service,direction,peer,start_time,duration_s,sms_chars,call_id,partial_seq,billed
# 13900000005 (plan pb: 120 s of voice bundle, then 0.15 a minute, 60 s steps)
#   b1  Mon 10:00, 90 s -> 120 s, all of the bundle: 0.00
# 13900000006 (plan pd: 0.15 a minute, 60 s steps, 20 % off voice)
#   o1  23:55, 900 s (ends 00:10 the next day): 15 x 0.15 x 0.8 = 1.80
# 13900000001 (plan p60: SMS 0.10)
#   d1  SMS 12:00, 10 chars: 0.10
# 13900000002 (plan p6: 6 s steps; 0.10 off-peak)
#   p1  part 1 of call C1, 23:58, 61 s, billed alone 66 s: 0.11
cat >"$W/n1.csv" <<EOF
$H
b1,13900000005,voice,mo,13800000001,2026-10-05 10:00:00,90,,,,0.00
o1,13900000006,voice,mo,13800000002,2026-10-05 23:55:00,900,,,,1.80
d1,13900000001,sms,mo,13800000003,2026-10-05 12:00:00,,10,,,0.10
p1,13900000002,voice,mo,13800000004,2026-10-05 23:58:00,61,,C1,1,0.11
EOF
# Night 2:
#   b2  13900000005 Tue 10:00, 60 s: the bundle is used up: 0.15 (correct)
#   L   13900000005 Mon 09:00 (late), 60 s billed 0.00: first in time, it
#       takes 60 s of the bundle, so b1 gets 60 s covered and 60 s charged:
#       b1 rebuilt 0.15, billed 0.00: leakage 0.15 (b1's finding changes)
#   o2  13900000006 Tue 00:05, 60 s: 0.12, billed 0.30: overcharge 0.18
#       (rate_mismatch) and flag overlap (o1 ends at 00:10); its month is
#       continued from night 1's checkpoint (the last call's end is in it)
#   d2  13900000001 the same record as d1 again (record_id d1): duplicate 0.10
#   z2  13900000001 d1's usage under a new record_id: duplicate 0.10 (a later id:
#       at the same start time the record_id decides which is the original)
#   p2  13900000002 part 2 of C1, Tue 00:00:30, 31 s, billed alone 36 s 0.06:
#       merged 92 s -> 96 s: 0.16; billed 0.11 + 0.06 = 0.17: partial_rounding 0.01
cat >"$W/n2.csv" <<EOF
$H
b2,13900000005,voice,mo,13800000001,2026-10-06 10:00:00,60,,,,0.15
L,13900000005,voice,mo,13800000001,2026-10-05 09:00:00,60,,,,0.00
o2,13900000006,voice,mo,13800000005,2026-10-06 00:05:00,60,,,,0.30
d1,13900000001,sms,mo,13800000003,2026-10-05 12:00:00,,10,,,0.10
z2,13900000001,sms,mo,13800000003,2026-10-05 12:00:00,,10,,,0.10
p2,13900000002,voice,mo,13800000004,2026-10-06 00:00:30,31,,C1,2,0.06
EOF
"$CDRECON" run --quiet --tariff "$T" --db "$W/n.db" --out "$W/o1" "$W/n1.csv" || fail "night 1"
[ "$(tail -n +2 "$W/o1/candidates.csv" | wc -l)" -eq 0 ] || fail "night 1: no candidate expected"
"$CDRECON" run --tariff "$T" --db "$W/n.db" --out "$W/o2" "$W/n2.csv" >"$W/night2.txt" ||
    fail "night 2"
"$CDRECON" run --quiet --tariff "$T" --db "$W/one.db" --out "$W/one" "$W/n1.csv" "$W/n2.csv" ||
    fail "one run"
for x in findings candidates unrated; do
    cmp -s "$W/o2/$x.csv" "$W/one/$x.csv" ||
        { diff "$W/o2/$x.csv" "$W/one/$x.csv" >&2; fail "$x.csv differs from one run"; }
done
python3 - "$W/o2" <<'PY' || fail "night 2's results are not the hand-computed ones"
import csv, sys
d = sys.argv[1]
f = {(r["msisdn"], r["record_id"], r["file"].rsplit("/", 1)[-1]): r
     for r in csv.DictReader(open(d + "/findings.csv"))}
want = {
    ("13900000005", "b1", "n1.csv"): ("leakage", "", "0.00", "0.15", "-0.15"),
    ("13900000006", "o2", "n2.csv"): ("rate_mismatch", "overlap", "0.30", "0.12", "0.18"),
    ("13900000001", "d1", "n2.csv"): ("duplicate", "", "0.10", "0.00", "0.10"),
    ("13900000001", "z2", "n2.csv"): ("duplicate", "", "0.10", "0.00", "0.10"),
    ("13900000002", "p1", "n1.csv"): ("partial_rounding", "", "0.17", "0.16", "0.01"),
}
got = {k: (r["category"], r["flags"], r["billed"], r["rebuilt"], r["difference"])
       for k, r in f.items()}
assert got == want, "findings:\n%s\n%s" % (sorted(got.items()), sorted(want.items()))
c = {r["msisdn"]: r for r in csv.DictReader(open(d + "/candidates.csv"))}
assert set(c) == {"13900000001", "13900000002", "13900000006"}, sorted(c)
a = c["13900000001"]
assert (a["records"], a["overcharge"], a["refund"], a["categories"], a["flags"], a["policy"]) == \
    ("2", "0.20", "0.40", "duplicate", "", "refund_first"), a
o = c["13900000006"]
assert (o["records"], o["overcharge"], o["refund"], o["categories"], o["flags"], o["policy"]) == \
    ("1", "0.18", "0.36", "rate_mismatch", "overlap", "verify_first"), o
b = c["13900000002"]
assert (b["records"], b["overcharge"], b["refund"], b["categories"]) == \
    ("1", "0.01", "0.02", "partial_rounding"), b
ch = sorted((r["msisdn"], r["previous_refund"], r["refund"], r["delta"], r["status"])
            for r in csv.DictReader(open(d + "/changes.csv")))
assert ch == [("13900000001", "0.00", "0.40", "0.40", "new"),
              ("13900000002", "0.00", "0.02", "0.02", "new"),
              ("13900000006", "0.00", "0.36", "0.36", "new")], ch
PY
# night 2 re-rated 13900000005 (a record before its stored ones) and
# 13900000001 (a stored record_id again) whole, 13900000002 (the next part
# of its last call, stored on night 1) from its rewind point, and continued
# 13900000006
[ "$(sqlite3 "$W/n.db" "select submonths, submonths_full from runs where run_id = 2")" = "4|2" ] ||
    fail "night 2: not 2 of 4 subscriber-months re-rated whole"
grep -q "^state .*4 subscriber-months: 0 new, 1 continued, 2 re-rated whole, 1 from a rewind point$" \
    "$W/night2.txt" || fail "night 2: $(grep '^state' "$W/night2.txt")"
[ "$(sqlite3 "$W/n.db" "select count(*) from current_findings where record_id = 'b1'")" -eq 1 ] ||
    fail "b1's leakage is not current"
# a third night, a correct record after everything: continued, nothing changes
printf '%s\nb3,13900000005,voice,mo,13800000001,2026-10-20 10:00:00,60,,,,0.15\n' "$H" >"$W/n3.csv"
"$CDRECON" run --quiet --tariff "$T" --db "$W/n.db" --out "$W/o3" "$W/n3.csv" || fail "night 3"
[ "$(sqlite3 "$W/n.db" "select submonths, submonths_full from runs where run_id = 3")" = "1|0" ] ||
    fail "night 3 did not continue the subscriber-month"
[ "$(tail -n +2 "$W/o3/changes.csv" | wc -l)" -eq 0 ] || fail "night 3 changed a candidate"
cmp -s "$W/o2/candidates.csv" "$W/o3/candidates.csv" || fail "night 3 changed candidates.csv"
# a fourth night: record_id b1 again, after every stored record of its month
# (a later start, another peer): its id was seen, so it is a duplicate
# (CONTRACT.md "duplicates"), billed 0.15: overcharge 0.15. Only the stored
# ids' fingerprints can tell: the month is rated whole, as one run over the
# four files rates it.
printf '%s\nb1,13900000005,voice,mo,13800000009,2026-10-21 10:00:00,60,,,,0.15\n' "$H" >"$W/n4.csv"
"$CDRECON" run --quiet --tariff "$T" --db "$W/n.db" --out "$W/o4" "$W/n4.csv" || fail "night 4"
"$CDRECON" run --quiet --tariff "$T" --db "$W/one4.db" --out "$W/one4" "$W/n1.csv" "$W/n2.csv" \
    "$W/n3.csv" "$W/n4.csv" || fail "one run over four nights"
for x in findings candidates unrated; do
    cmp -s "$W/o4/$x.csv" "$W/one4/$x.csv" ||
        { diff "$W/o4/$x.csv" "$W/one4/$x.csv" >&2; fail "night 4: $x.csv differs from one run"; }
done
grep -q '^13900000005,2026-10,b1,.*n4.csv,2,duplicate,,0.15,0.00,0.15,' "$W/o4/findings.csv" ||
    fail "night 4: b1 again is not a duplicate: $(grep b1 "$W/o4/findings.csv")"
[ "$(sqlite3 "$W/n.db" "select submonths, submonths_full from runs where run_id = 4")" = "1|1" ] ||
    fail "night 4 did not re-rate the subscriber-month whole"
echo ok
