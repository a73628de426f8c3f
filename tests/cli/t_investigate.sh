#!/bin/sh
# cdrecon investigate on the bundled example month:
#  - for numbers with every kind of finding (candidates, flags, leakage,
#    duplicates) and one without any: the month-state path (--db) and the
#    scan path give byte-identical statements in text, csv and json;
#  - the statement's findings and candidate are exactly the rows of
#    findings.csv and candidates.csv that `cdrecon run` wrote for that number;
#  - json is valid; not found is exit 11; usage errors are exit 1; a damaged
#    or truncated state file is exit 13 with nothing on stdout; numbers are
#    masked on stderr.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
EX="$TESTDATA/example"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CDRECON" run --quiet --tariff "$EX/tariff" --db "$T/db" --out "$T/out" "$EX"/cdr/* ||
    fail "run exit $?"
S="$T/db.state"
[ -s "$S/MANIFEST" ] || fail "run wrote no month state"
ls "$T/out" | grep -q tmp && fail "temporary file left in the output directory"

# the numbers to look at
{
    awk -F, 'NR > 1 {print $1}' "$T/out/candidates.csv" | head -n 6
    awk -F, 'NR > 1 && $7 != "" {print $1}' "$T/out/findings.csv" | head -n 3
    awk -F, 'NR > 1 && $6 == "leakage" {print $1}' "$T/out/findings.csv" | head -n 2
    awk -F, 'NR > 1 && $6 == "duplicate" {print $1}' "$T/out/findings.csv" | head -n 2
    awk -F, 'NR > 1 && $6 == "vas_no_subscription" {print $1}' "$T/out/findings.csv" | head -n 1
} | sort -u >"$T/nums"
# one number without any finding
awk -F, 'NR > 1 {print $1}' "$T/out/findings.csv" | sort -u >"$T/with"
awk -F, 'NR > 1 {print $1}' "$EX/tariff/subscribers.csv" | sort -u | comm -23 - "$T/with" |
    head -n 1 >>"$T/nums"
[ "$(wc -l <"$T/nums")" -ge 8 ] || fail "too few numbers picked"

n=0
while read -r num; do
    for f in text csv json; do
        "$CDRECON" investigate --msisdn "$num" --month 2026-10 --db "$T/db" --format $f \
            >"$T/st.$f" 2>"$T/err" || fail "state path $num $f: exit $?: $(cat "$T/err")"
        "$CDRECON" investigate --msisdn "$num" --month 2026-10 --format $f \
            --tariff "$EX/tariff" "$EX"/cdr/* >"$T/sc.$f" 2>"$T/err" ||
            fail "scan path $num $f: exit $?: $(cat "$T/err")"
        cmp -s "$T/st.$f" "$T/sc.$f" || {
            diff "$T/st.$f" "$T/sc.$f" | head -n 10 >&2; fail "state and scan differ: $num $f"; }
    done
    grep -q "^Statement of $num for 2026-10" "$T/st.text" || fail "text header $num"
    python3 - "$num" "$T/st.csv" "$T/st.json" "$T/out/findings.csv" "$T/out/candidates.csv" <<'EOF' ||
import csv, io, json, sys
num, st_csv, st_json, fnd, cnd = sys.argv[1:]
text = open(st_csv, encoding="utf-8").read()
recs, pools, cand = text.split("\n\n")
rows = list(csv.DictReader(io.StringIO(recs)))
assert rows and all(r["msisdn"] == num for r in rows), "records of another number"
key = lambda r: (r["record_id"], r["category"], r["flags"], r["billed"], r["rebuilt"],
                 r["difference"])
mine = sorted(key(r) for r in rows if r["category"] or r["flags"])
run = sorted(key(r) for r in csv.DictReader(open(fnd, encoding="utf-8")) if r["msisdn"] == num)
assert mine == run, "findings differ from run's findings.csv:\n%s\n%s" % (mine, run)
run_c = [l for l in open(cnd, encoding="utf-8").read().splitlines()[1:]
         if l.split(",")[0] == num]
my_c = cand.strip("\n").split("\n")[1:]
assert my_c == run_c, "candidate differs from candidates.csv: %s vs %s" % (my_c, run_c)
j = json.load(open(st_json, encoding="utf-8"))
assert j["msisdn"] == num and j["month"] == "2026-10"
assert len(j["records"]) == len(rows)
assert j["verdict"]["candidate"] == bool(run_c)
if run_c:
    c = run_c[0].split(",")
    assert j["verdict"]["overcharge"] == c[3] and j["verdict"]["refund"] == c[4]
EOF
        fail "statement of $num does not match run"
    n=$((n + 1))
done <"$T/nums"
echo "compared $n numbers"

# not found: exit 11, nothing on stdout, the number masked on stderr
set +e
"$CDRECON" investigate --msisdn 13912345678 --month 2026-10 --db "$T/db" >"$T/o" 2>"$T/e"
rc=$?
set -e
[ $rc -eq 11 ] || fail "not found: exit $rc, want 11"
[ -s "$T/o" ] && fail "not found wrote to stdout"
grep -q "139\*\*\*\*5678" "$T/e" || fail "not found: masked number missing: $(cat "$T/e")"
grep -q 13912345678 "$T/e" && fail "full number on stderr"
num=$(head -n 1 "$T/nums")
set +e
"$CDRECON" investigate --msisdn "$num" --month 2026-09 --tariff "$EX/tariff" "$EX"/cdr/* \
    >"$T/o" 2>"$T/e"
rc=$?
set -e
[ $rc -eq 11 ] || fail "scan path, other month: exit $rc, want 11"
"$CDRECON" investigate --msisdn "+86$num" --month 2026-10 --db "$T/db" --timing \
    >"$T/o" 2>"$T/e" || fail "+86 form not accepted"
grep -q "$num" "$T/e" && fail "full number on stderr (--timing)"
grep -q "records from the month state" "$T/e" || fail "--timing line missing"
# the state directory alone (--store DIR) gives the same statement as --db
"$CDRECON" investigate --msisdn "$num" --month 2026-10 --store "$S" --format csv >"$T/s1" ||
    fail "--store DIR"
"$CDRECON" investigate --msisdn "$num" --month 2026-10 --db "$T/db" --format csv >"$T/s2"
cmp -s "$T/s1" "$T/s2" || fail "--store DIR and --db differ"

# usage errors: exit 1
for args in "--month 2026-10 --db $T/db" "--msisdn $num --db $T/db" \
            "--msisdn $num --month 2026-10" "--msisdn $num --month 2026-13 --db $T/db" \
            "--msisdn $num --month 2026-10 --db $T/db --format xml" \
            "--msisdn abc --month 2026-10 --db $T/db" \
            "--msisdn $num --month 2026-10 --db $T/db --store $S" \
            "--msisdn $num --month 2026-10 --db $T/db $EX/cdr/cdr-2026-10-a.csv" \
            "--msisdn $num --month 2026-10 --tariff $EX/tariff"; do
    set +e
    # shellcheck disable=SC2086
    "$CDRECON" investigate $args >"$T/o" 2>"$T/e"
    rc=$?
    set -e
    [ $rc -eq 1 ] || fail "usage error ($args): exit $rc, want 1"
done

# damaged month state: exit 13 (parse) or 2 (io), never a statement; the
# message names the file
seg=$(cd "$S" && ls seg-*.cds | head -n 1)
damage() { # NAME: a copy of the state with one file damaged by the caller
    rm -rf "$T/$1"; cp -r "$S" "$T/$1"; }
damage cut; size=$(wc -c <"$T/cut/$seg"); head -c $((size - 10)) "$S/$seg" >"$T/cut/$seg"
damage flip; printf "X" | dd of="$T/flip/$seg" bs=1 seek=$((size - 90)) conv=notrunc 2>/dev/null
damage gone; rm "$T/gone/$seg"
damage newer; printf '\011' | dd of="$T/newer/$seg" bs=1 seek=8 conv=notrunc 2>/dev/null
damage nomanifest; rm "$T/nomanifest/MANIFEST"
for bad in cut flip gone newer nomanifest; do
    set +e
    "$CDRECON" investigate --msisdn "$num" --month 2026-10 --store "$T/$bad" >"$T/o" 2>"$T/e"
    rc=$?
    set -e
    want=13
    case $bad in gone|nomanifest) want=2 ;; esac
    [ $rc -eq $want ] || fail "$bad state: exit $rc, want $want: $(cat "$T/e")"
    [ -s "$T/o" ] && fail "$bad state: something on stdout"
    grep -q "$T/$bad" "$T/e" || fail "$bad state: message does not name the file: $(cat "$T/e")"
done
grep -q "version" "$T/e" || true
set +e
"$CDRECON" investigate --msisdn "$num" --month 2026-10 --store "$T/newer" >"$T/o" 2>"$T/e"
set -e
grep -q "format version 9" "$T/e" || fail "newer state file: message: $(cat "$T/e")"
echo ok
