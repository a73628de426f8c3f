#!/bin/sh
# The bundled example month delivered as a switch delivers it (issue 13):
# 31 nightly files and one late file, one `cdrecon run` each into one
# database. After every night the current findings, candidates and unrated
# records equal a fresh one-shot run over the files so far (byte for byte),
# and after the last they equal one run over testdata/example/cdr/ (the
# same records in three files: candidates byte for byte, findings but for
# the file, line and offset columns) and the generator's truth. changes.csv
# lists exactly the candidates that changed, with their old and new refunds.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

ls "$EX"/nights/cdr-2026-10-[0-9]*.csv.gz >"$W/list"
echo "$EX/nights/cdr-2026-10-late.csv.gz" >>"$W/list"
[ "$(wc -l <"$W/list")" -eq 32 ] || fail "expected 31 nights and a late file"

n=0
: >"$W/sofar"
cp /dev/null "$W/prev.csv"
printf 'msisdn,month,records,overcharge,refund,categories,tier,policy,special,flags,policy_reason\n' \
    >"$W/prev.csv"
while read -r f; do
    n=$((n + 1))
    set +e
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/n.db" --out "$W/night" "$f"
    rc=$?
    set -e
    [ $rc -eq 0 ] || fail "night $n ($f): exit $rc"
    echo "$f" >>"$W/sofar"
    rm -rf "$W/one"
    mkdir "$W/one"
    # shellcheck disable=SC2046
    "$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/one/r.db" --out "$W/one/out" \
        $(cat "$W/sofar") || fail "one-shot over $n files: exit $?"
    for x in findings candidates unrated; do
        cmp -s "$W/night/$x.csv" "$W/one/out/$x.csv" ||
            { diff "$W/night/$x.csv" "$W/one/out/$x.csv" | head -n 5 >&2;
              fail "night $n: $x.csv differs from one run over the files so far"; }
    done
    # changes.csv: exactly the candidates whose refund changed since the
    # previous night, with both refunds
    python3 - "$W/prev.csv" "$W/night/candidates.csv" "$W/night/changes.csv" <<'PY' ||
import csv, sys
prev = {(r["msisdn"], r["month"]): r["refund"] for r in csv.DictReader(open(sys.argv[1]))}
now = {(r["msisdn"], r["month"]): r["refund"] for r in csv.DictReader(open(sys.argv[2]))}
ch = {(r["msisdn"], r["month"]): r for r in csv.DictReader(open(sys.argv[3]))}
c = lambda s: round(float(s) * 100)
want = {}
for k in set(prev) | set(now):
    a, b = c(prev.get(k, "0")), c(now.get(k, "0"))
    if a != b or (k in now) != (k in prev):
        st = "new" if k not in prev else "withdrawn" if k not in now else \
             "increased" if b > a else "decreased"
        want[k] = (a, b, b - a, st)
got = {k: (c(r["previous_refund"]), c(r["refund"]), c(r["delta"]), r["status"])
       for k, r in ch.items()}
if want != got:
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            print("change", k, "want", want.get(k), "got", got.get(k))
    sys.exit(1)
PY
        fail "night $n: changes.csv"
    cp "$W/night/candidates.csv" "$W/prev.csv"
done <"$W/list"
echo "$n runs, each equal to one run over the files so far"

# the same records in three files
"$CDRECON" run --quiet --tariff "$EX/tariff" --db "$W/c.db" --out "$W/c" "$EX"/cdr/* ||
    fail "one run over cdr/"
cmp "$W/night/candidates.csv" "$W/c/candidates.csv" || fail "candidates differ from cdr/"
strip() { python3 -c '
import csv, sys
r = csv.reader(open(sys.argv[1])); h = next(r)
drop = {h.index(c) for c in ("file", "line", "offset")}
for row in sorted(r):
    print(",".join(v for i, v in enumerate(row) if i not in drop))' "$1"; }
strip "$W/night/findings.csv" >"$W/f1"
strip "$W/c/findings.csv" >"$W/f2"
cmp -s "$W/f1" "$W/f2" || { diff "$W/f1" "$W/f2" | head >&2; fail "findings differ from cdr/"; }
# and the generator's truth
python3 - "$EX/truth-candidates.csv" "$W/night/candidates.csv" <<'PY' || fail "truth"
import csv, sys
t = {(r["msisdn"], r["month"]): r for r in csv.DictReader(open(sys.argv[1]))}
g = {(r["msisdn"], r["month"]): r for r in csv.DictReader(open(sys.argv[2]))}
assert set(t) == set(g), "candidate sets differ"
for k in t:
    for f in t[k]:
        assert t[k][f] == g[k][f], (k, f, t[k][f], g[k][f])
PY
# investigate shows the month to date: every record of the number
num=$(sed -n 2p "$W/c/candidates.csv" | cut -d, -f1)
"$CDRECON" investigate --db "$W/n.db" --msisdn "$num" --month 2026-10 --format csv >"$W/i.csv"
recs=$(awk 'BEGIN { RS = ""; } NR == 1' "$W/i.csv" | tail -n +2 | wc -l)
want=$(gzip -dc "$EX"/nights/*.gz | grep -c ",$num,\|,86$num,\|,+86$num," || true)
[ "$recs" -eq "$want" ] || fail "investigate shows $recs records of $num, the files hold $want"
echo ok
