#!/bin/sh
# Tests of meaning (issue 14, items 19-22): a generated month whose truth is
# computed by the generator's own code (tools/cdrgen.c, docs/generator.md) at
# the edges the bundled example does not reach, and `cdrecon run` must find
# exactly that truth: every finding (category, flags, billed, rebuilt,
# difference) and every candidate (records, amounts, categories, special,
# tier, policy, policy_reason).
#   --bundle-changes  numbers change between the two bundle plans mid-month:
#                     each (plan, pool) has its own allowance (19: an allowance
#                     looked up without the plan fails here)
#   --refund-edges    earlier refunds on both sides of every edge of the
#                     special-customer window (m-3 / m-4, 99.99 / 100.00, the
#                     month after, company-liable and border-roaming), of
#                     "first refund" and "this year / last three months", and
#                     join dates at the one-year tenure edge (21: a window of
#                     three months fails here; 20: the tier computed on the
#                     overcharge fails here and in t_run_example)
#   --same-second     group SMS and parallel data sessions: records that differ
#                     only in the peer and are not duplicates (22: a duplicate
#                     key without the peer fails here)
# Each of the four bugs was planted in src/engine.c and this test failed.
# The preconditions below make sure the month still holds those edges.
set -u
: "${CDRECON:?}" "${CDRGEN:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }

"$CDRGEN" --seed 14 --month 2027-02 --subscribers 400 --rows 16000 --tariff "$W/tariff" \
    --out-dir "$W/cdr" --files 2 --errors 0.03 --truth "$W/truth.csv" \
    --truth-candidates "$W/cand.csv" --bundle-changes --refund-edges --same-second \
    2>"$W/gen.log" || { cat "$W/gen.log"; echo "FAIL: cdrgen"; exit 1; }

# --- preconditions: the edges are in the month ------------------------------
python3 - "$W" <<'EOF' || no "the generated month lacks its edges"
import csv, collections, gzip, glob, sys
w = sys.argv[1]
bad = []
plans = collections.defaultdict(list)
for r in csv.DictReader(open(w + "/tariff/subscribers.csv")):
    plans[r["msisdn"]].append(r["plan"])
bb = sum(1 for v in plans.values() if len(v) == 2 and set(v) <= {"b58", "b88"} and v[0] != v[1])
if bb < 20: bad.append("%d numbers change between b58 and b88" % bb)
groups = collections.defaultdict(set)
for f in glob.glob(w + "/cdr/*.gz"):
    for r in csv.DictReader(gzip.open(f, "rt", encoding="utf-8")):
        if r["service"] in ("sms", "data"):
            groups[(r["msisdn"], r["service"], r["start_time"], r["sms_chars"], r["bytes"])].add(r["peer"])
same = sum(1 for v in groups.values() if len(v) >= 2)
if same < 100: bad.append("%d same-second groups with different peers" % same)
refs = collections.defaultdict(list)
for r in csv.DictReader(open(w + "/tariff/refunds.csv")):
    refs[r["msisdn"]].append(r["date"][:7])
cands = list(csv.DictReader(open(w + "/cand.csv")))
# special customers whose window is decided in m-3 (2026-11) or just outside (m-4)
edge3 = sum(1 for c in cands if c["special"] == "1" and refs[c["msisdn"]].count("2026-11") >= 3)
edge4 = sum(1 for c in cands if c["special"] == "0" and refs[c["msisdn"]].count("2026-10") >= 3)
if edge3 < 3 or edge4 < 3: bad.append("window edges: %d special by m-3, %d not by m-4" % (edge3, edge4))
reasons = collections.Counter(c["policy_reason"] for c in cands)
if len(reasons) != 6 or min(reasons.values()) < 5: bad.append("policy reasons %s" % dict(reasons))
tiers = collections.Counter(c["tier"] for c in cands)
if tiers["0"] < 10 or tiers["1"] < 10: bad.append("tiers %s" % dict(tiers))
# refunds of 10..20 yuan: tier 0 on the overcharge, 1 on the refund
near = sum(1 for c in cands if c["tier"] == "1" and float(c["overcharge"]) <= 20)
if near < 5: bad.append("%d candidates with tier 1 and an overcharge <= 20" % near)
for b in bad: print("precondition:", b)
sys.exit(1 if bad else 0)
EOF

# --- the run must find exactly the truth ------------------------------------
"$CDRECON" run --quiet --tariff "$W/tariff" --db "$W/r.db" --out "$W/out" "$W"/cdr/* ||
    no "run exit $?"
python3 - "$W" <<'EOF' || no "findings or candidates differ from the generator's truth"
import csv, sys
w = sys.argv[1]
def load(p, key):
    return {tuple(r[k] for k in key): r for r in csv.DictReader(open(p, encoding="utf-8"))}
t = load(w + "/truth.csv", ("msisdn", "record_id"))
g = load(w + "/out/findings.csv", ("msisdn", "record_id"))
bad = 0
def say(*a):
    global bad
    bad += 1
    if bad <= 20: print(*a)
for k in sorted(set(t) | set(g)):
    if k not in g: say("missing finding", dict(t[k])); continue
    if k not in t: say("unexpected finding", g[k]["category"], k, g[k]["explanation"]); continue
    for f in ("month", "category", "flags", "billed", "rebuilt", "difference"):
        if t[k][f] != g[k][f]: say("finding", k, f, "expected", t[k][f], "got", g[k][f])
tc = load(w + "/cand.csv", ("msisdn", "month"))
gc = load(w + "/out/candidates.csv", ("msisdn", "month"))
for k in sorted(set(tc) | set(gc)):
    if k not in gc or k not in tc: say("candidate set differs at", k); continue
    for f in tc[k]:
        if tc[k][f] != gc[k].get(f): say("candidate", k, f, "expected", tc[k][f], "got", gc[k].get(f))
print(len(t), "findings and", len(tc), "candidates checked;", bad, "problems")
sys.exit(1 if bad else 0)
EOF

[ "$fail" -eq 0 ] && echo "truth at the edges: ok"
exit "$fail"
