#!/bin/sh
# cdrecon investigate on a hand-computed month (testdata/rate-hand, plan pb:
# 2 min voice, 3 SMS segments, 1 MB data included): the bundle running down
# record by record, the per-pool summary, the verdict, an unknown column with
# non-ASCII text and quotes carried into JSON exactly, and the month and
# number filters. Store path and scan path must agree byte for byte.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
TAB=$(printf '\t')
cat >"$T/hand.csv" <<EOF
record_id,msisdn,service,direction,peer,start_time,duration_s,bytes,sms_chars,billed,note
v1,13900000005,voice,mo,13800000001,2026-10-02 10:00:00,90,,,0.30,"备注 ""quoted"", tab${TAB}x"
v2,13900000005,voice,mo,13800000001,2026-10-02 11:00:00,30,,,0.15,
s1,13900000005,sms,mo,13800000001,2026-10-03 09:00:00,,,145,0.00,
s2,13900000005,sms,mo,13800000001,2026-10-03 09:05:00,,,10,0.20,
d1,13900000005,data,mo,cmnet,2026-10-04 12:00:00,,2097152,,10.24,
o1,13900000001,voice,mo,13800000001,2026-10-02 10:00:00,60,,,0.19,
p1,13900000005,voice,mo,13800000001,2026-09-30 23:59:59,60,,,0.15,
EOF
cd "$T"
"$CDRECON" run --quiet --tariff "$TESTDATA/rate-hand" --db db --out out hand.csv ||
    fail "run exit $?"
for f in text csv json; do
    "$CDRECON" investigate --msisdn 8613900000005 --month 2026-10 --db db \
        --format $f >"st.$f" || fail "state $f"
    "$CDRECON" investigate --msisdn 13900000005 --month 2026-10 --tariff "$TESTDATA/rate-hand" \
        --format $f hand.csv >"sc.$f" || fail "scan $f"
    cmp -s "st.$f" "sc.$f" || { diff "st.$f" "sc.$f" >&2; fail "state/scan differ ($f)"; }
done
has() { grep -qF -- "$1" st.text || { cat st.text >&2; fail "missing line: $1"; }; }
has "Statement of 13900000005 for 2026-10"
has "plan pb; VIP no; joined 2026-01-01"
has "5 records (0 duplicates, 0 unrated); billed 10.89 yuan, rebuilt 10.49 yuan; 2 findings"
has "  vmin         pb                   2:00           2:00           0:00"
has "  sseg         pb                  3 seg          3 seg          0 seg"
has "  dmb          pb                1024 KB        1024 KB           0 KB"
has "  overcharge  0.40 yuan on 2 records"
has "  refund      0.80 yuan"
has "  categories  bundle_not_applied;sms_segments"
has "  approval    tier 0: agent refunds directly"
has "  deadline    refund within 48 hours of confirming the amount"
# the bundle running down, record by record (balance after each record)
grep -E '^2026-10-02 10:00:00 voice .* 0\.30 +0\.00 +0\.30 vmin 0:00 ' st.text >/dev/null ||
    fail "v1 line"
grep -E '^2026-10-03 09:00:00 sms .*3 seg \(145 ch\) +0\.00 +0\.00 +0\.00 sseg 0 seg ' st.text \
    >/dev/null || fail "s1 line"
grep -q "record o1\|13900000001" st.text && fail "another number's record in the statement"
grep -q "p1" st.csv && fail "a September record in October"
python3 - <<'EOF' || fail "json content"
import json
j = json.load(open("st.json", encoding="utf-8"))
assert [r["record_id"] for r in j["records"]] == ["v1", "v2", "s1", "s2", "d1"]
assert j["records"][0]["extra"] == 'note=备注 "quoted", tab\tx', j["records"][0]["extra"]
assert j["records"][0]["pool_after"] == 0 and j["records"][0]["covered"] == 120
assert [(p["pool"], p["allowance"], p["used"], p["left"], p["unit"]) for p in j["pools"]] == \
    [("vmin", 120, 120, 0, "s"), ("sseg", 3, 3, 0, "seg"), ("dmb", 1024, 1024, 0, "KB")]
v = j["verdict"]
assert v["candidate"] and v["overcharge"] == "0.40" and v["refund"] == "0.80"
assert v["categories"] == ["bundle_not_applied", "sms_segments"] and v["tier"] == 0
assert v["policy"] == "refund_first"
assert j["vip"] is False and j["join_date"] == "2026-01-01"
EOF
# September: only p1
"$CDRECON" investigate --msisdn 13900000005 --month 2026-09 --db db \
    --format csv >sep.csv || fail "september"
[ "$(grep -c '^hand.csv,' sep.csv)" -eq 1 ] && grep -q '^hand.csv,8,.*,p1,' sep.csv ||
    { cat sep.csv >&2; fail "september statement"; }
echo ok
