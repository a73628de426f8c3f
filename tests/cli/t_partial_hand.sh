#!/bin/sh
# Partial records of one call or session, hand-computed (issue 14, items 16
# and 17; docs/rating.md "Records that belong together" and "Probes of
# partial_rounding").
#
# 16: the later parts are rebuilt at 0 (CONTRACT.md): `rate`, the statement
#     (investigate, from the files and from the store) and the evidence show
#     rebuilt 0.00 and difference 0.00 for them, never empty cells.
# 17: "rounding every part up to a minute is an overcharge": a pay-as-you-go
#     call at 0.25/min with 6 s increments billed as two parts of 61 s, each
#     rounded up to the minute: 0.50 + 0.50.
#       merged: 122 s -> 126 s (6 s) -> 126 x 0.25 / 60 = 0.525 -> 0.53
#       each part to the increment: 66 + 66 = 132 s -> 0.55 (not the billed 1.00)
#       each part to a whole minute: 120 + 120 = 240 s -> 1.00 = billed
#     -> partial_rounding, overcharge 1.00 - 0.53 = 0.47, refund 0.94.
#     Data, plan p6 (0.01 per KB, 10 KB increments), two parts of 1,100,000
#     bytes, each billed as whole MB: 2 x 1024 KB x 0.01 = 20.48 + 20.48:
#       merged: 2,200,000 B -> 2149 KB -> 2150 KB (10 KB) -> 21.50
#       each part to the increment: 1075 KB -> 1080 KB, x 2 = 2160 KB -> 21.60
#       each part to a whole MB: 1075 KB -> 2048 KB, x 2 = 4096 KB -> 40.96 = billed
#     -> partial_rounding, overcharge 40.96 - 21.50 = 19.46.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }

# the hand tariff, plus a pay-as-you-go plan at 0.25/min, 6 s increments
cp -r "$TESTDATA/rate-hand" "$W/tariff"
echo 'pg,0,0.01,70,70,start' >>"$W/tariff/plans.csv"
echo 'pg,voice,mo,*,*,0.25,60,6,' >>"$W/tariff/rates.csv"
echo '13900000007,pg,2026-01-01,,0,2026-01-01' >>"$W/tariff/subscribers.csv"
cat >"$W/p.csv" <<'EOF'
record_id,msisdn,service,direction,peer,start_time,duration_s,bytes,billed,call_id,partial_seq
g1,13900000007,voice,mo,13800000001,2026-10-05 10:00:00,61,,0.50,C1,1
g2,13900000007,voice,mo,13800000001,2026-10-05 10:01:01,61,,0.50,C1,2
k1,13900000002,data,mo,cmnet,2026-10-06 10:00:00,,1100000,20.48,D1,1
k2,13900000002,data,mo,cmnet,2026-10-06 11:00:00,,1100000,20.48,D1,2
EOF
cd "$W"

# --- rate: the later parts' rebuilt and difference are 0.00 ---------------
"$CDRECON" rate --tariff tariff --out rate.csv p.csv || no "rate exit $?"
python3 - <<'EOF' || no "rate rows"
import csv
rows = {r["record_id"]: r for r in csv.DictReader(open("rate.csv"))}
def want(rid, **kv):
    got = {k: rows[rid][k] for k in kv}
    assert got == kv, (rid, got, kv)
want("g1", status="partial_first", usage="122", billable="126", billed="1.00", rebuilt="0.53",
     difference="0.47", category="partial_rounding", parts="2")
want("g2", status="partial_rest", billed="0.50", rebuilt="0.00", difference="0.00")
want("k1", status="partial_first", usage="2200000", billable="2150", billed="40.96",
     rebuilt="21.50", difference="19.46", category="partial_rounding")
want("k2", status="partial_rest", billed="20.48", rebuilt="0.00", difference="0.00")
assert "each rounded up to a whole minute (240 billable seconds instead of 126 merged)" in \
    rows["g1"]["explanation"], rows["g1"]["explanation"]
assert "each rounded up to a whole MB (4096 billable KB instead of 2150 merged)" in \
    rows["k1"]["explanation"], rows["k1"]["explanation"]
EOF

# --- run: the findings and the candidate ------------------------------------
"$CDRECON" run --quiet --tariff tariff --db db --out out p.csv || no "run exit $?"
grep -q '^13900000007,2026-10,g1,[^,]*,2,partial_rounding,,1\.00,0\.53,0\.47,' out/findings.csv ||
    no "g1 finding"
grep -q '^13900000002,2026-10,k1,[^,]*,4,partial_rounding,,40\.96,21\.50,19\.46,' out/findings.csv ||
    no "k1 finding"
grep -q '^13900000007,2026-10,1,0\.47,0\.94,partial_rounding,' out/candidates.csv || no "g candidate"

# --- investigate, from the store and from the files: the same, 0.00 ---------
for f in text csv json; do
    "$CDRECON" investigate --msisdn 13900000007 --month 2026-10 --db db \
        --format $f >"st.$f" || no "investigate store $f"
    "$CDRECON" investigate --msisdn 13900000007 --month 2026-10 --tariff tariff --format $f \
        p.csv >"sc.$f" || no "investigate scan $f"
    cmp -s "st.$f" "sc.$f" || { diff "st.$f" "sc.$f"; no "store and scan differ ($f)"; }
done
python3 - <<'EOF' || no "investigate json"
import json
j = json.load(open("st.json", encoding="utf-8"))
r = {x["record_id"]: x for x in j["records"]}
assert (r["g2"]["rebuilt"], r["g2"]["difference"]) == ("0.00", "0.00"), r["g2"]
assert (r["g1"]["rebuilt"], r["g1"]["difference"]) == ("0.53", "0.47"), r["g1"]
assert j["verdict"]["overcharge"] == "0.47" and j["verdict"]["refund"] == "0.94", j["verdict"]
EOF
grep -E '^2026-10-05 10:01:01 voice .* 0\.50 +0\.00 +0\.00 ' st.text >/dev/null ||
    { grep 10:01:01 st.text; no "investigate text: g2 not 0.50 0.00 0.00"; }

# --- evidence: the later part's rebuilt is 0.00, not a dash -----------------
"$CDRECON" evidence --msisdn 13900000007 --month 2026-10 --out ev --tariff tariff --no-pdf \
    --date 2026-11-02 p.csv >/dev/null 2>&1 || no "evidence exit $?"
python3 - <<'EOF' || no "evidence records.csv"
import csv
rows = {r["record_id"]: r for r in csv.DictReader(open("ev/internal/records.csv", encoding="utf-8"))}
assert rows["g2"]["rebuilt"] == "0.00", rows["g2"]
EOF

[ "$fail" -eq 0 ] && echo "partial hand: ok"
exit "$fail"
