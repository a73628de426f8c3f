#!/bin/sh
# The bundled example month: `cdrecon run` must find exactly the injected
# billing errors (truth.csv, written by the generator's own independent
# rating) with exactly their categories, amounts and flags, and exactly the
# expected candidates. Then: a rerun changes nothing (exit 8), the database
# passes integrity_check, and `rate` gives byte-identical output when
# forced to spill.
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

"$CDRECON" run --tariff "$EX/tariff" --db "$W/r.db" --out "$W/out" "$EX"/cdr/* >"$W/summary.txt"
python3 - "$EX" "$W/out" <<'PY'
import csv, sys
ex, out = sys.argv[1], sys.argv[2]
def load(p, key):
    return {tuple(r[k] for k in key): r for r in csv.DictReader(open(p, encoding="utf-8"))}
t = load(ex + "/truth.csv", ("msisdn", "record_id"))
g = load(out + "/findings.csv", ("msisdn", "record_id"))
bad = 0
for k in sorted(set(t) | set(g)):
    if k not in g:
        print("missing finding", t[k]); bad += 1; continue
    if k not in t:
        print("unexpected finding", g[k]); bad += 1; continue
    for f in ("month", "category", "flags", "billed", "rebuilt", "difference"):
        if t[k][f] != g[k][f]:
            print("finding", k, f, "expected", t[k][f], "got", g[k][f]); bad += 1
tc = load(ex + "/truth-candidates.csv", ("msisdn", "month"))
gc = load(out + "/candidates.csv", ("msisdn", "month"))
for k in sorted(set(tc) | set(gc)):
    if k not in gc or k not in tc:
        print("candidate set differs at", k); bad += 1; continue
    for f in tc[k]:
        if tc[k][f] != gc[k].get(f):
            print("candidate", k, f, "expected", tc[k][f], "got", gc[k].get(f)); bad += 1
# candidate totals equal the sums of their findings
over = {}
for r in g.values():
    d = r["difference"]
    if r["category"] not in ("leakage", "") and not d.startswith("-") and d != "0.00":
        over[(r["msisdn"], r["month"])] = over.get((r["msisdn"], r["month"]), 0) + round(float(d) * 100)
for k, c in gc.items():
    if round(float(c["overcharge"]) * 100) != over.get(k, 0):
        print("candidate total is not the sum of its findings", k); bad += 1
    if round(float(c["refund"]) * 100) != 2 * round(float(c["overcharge"]) * 100):
        print("refund is not twice the overcharge", k); bad += 1
print(len(t), "findings and", len(tc), "candidates checked;", bad, "problems")
sys.exit(1 if bad else 0)
PY

# every category of the contract occurs in the example
for c in duplicate free_number zero_duration partial_rounding vas_no_subscription data_no_usage \
         bundle_not_applied discount_not_applied wrong_band sms_segments data_rounding rate_mismatch leakage; do
    grep -q ",$c," "$W/out/findings.csv" || { echo "category $c missing from the example"; exit 1; }
done

# rerun: nothing new, exit 8, totals unchanged
cp "$W/out/findings.csv" "$W/findings.before"
before=$(sqlite3 "$W/r.db" "select count(*), sum(difference_micro) from findings" 2>/dev/null || sqlite3 "$W/r.db" "select count(*) from findings")
set +e
"$CDRECON" run --tariff "$EX/tariff" --db "$W/r.db" --out "$W/out" "$EX"/cdr/* >/dev/null 2>"$W/rerun.err"
rc=$?
set -e
[ "$rc" -eq 8 ] || { echo "rerun exit $rc, expected 8"; cat "$W/rerun.err"; exit 1; }
grep -q "already ingested" "$W/rerun.err"
after=$(sqlite3 "$W/r.db" "select count(*), sum(difference_micro) from findings" 2>/dev/null || sqlite3 "$W/r.db" "select count(*) from findings")
[ "$before" = "$after" ] || { echo "rerun changed the database: $before -> $after"; exit 1; }
cmp "$W/findings.before" "$W/out/findings.csv"
[ "$(sqlite3 "$W/r.db" "pragma integrity_check")" = "ok" ]
[ "$(sqlite3 "$W/r.db" "select count(*) from runs where status is not null")" -ge 1 ]

# one rating thread gives byte-identical outputs
"$CDRECON" run --threads 1 --tariff "$EX/tariff" --db "$W/r1.db" --out "$W/out1" "$EX"/cdr/* >/dev/null
for f in findings.csv candidates.csv rejects.csv unrated.csv; do cmp "$W/out/$f" "$W/out1/$f"; done

# rate: spilling gives byte-identical output
"$CDRECON" rate --tariff "$EX/tariff" --out "$W/rate1.csv" "$EX"/cdr/* 2>/dev/null
"$CDRECON" rate --tariff "$EX/tariff" --mem 64K --tmp "$W" --out "$W/rate2.csv" "$EX"/cdr/* 2>"$W/rate2.err"
grep -q "spilled" "$W/rate2.err" || { echo "--mem 64K did not spill"; exit 1; }
cmp "$W/rate1.csv" "$W/rate2.csv"
# order independence: the files in reverse order give the same charges
"$CDRECON" rate --tariff "$EX/tariff" --out "$W/rate3.csv" $(ls -r "$EX"/cdr/*) 2>/dev/null
cut -d, -f4,15-17 "$W/rate1.csv" | sort >"$W/a"
cut -d, -f4,15-17 "$W/rate3.csv" | sort >"$W/b"
cmp "$W/a" "$W/b"
echo ok
