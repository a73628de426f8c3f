#!/bin/sh
# cdrgen: determinism, gzip validity, spreading over files, tariff coverage,
# fault list, truth consistency. Small sizes: runs in about a second.
set -eu
: "${CDRGEN:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

gen() { # gen DIR SEED [extra...]
    d=$1; s=$2; shift 2
    mkdir -p "$d"
    "$CDRGEN" --seed "$s" --rows 4000 --subscribers 80 --tariff "$d/tariff" \
        --out-dir "$d/cdr" --files 3 --errors 0.02 --truth "$d/truth.csv" \
        --truth-candidates "$d/cand.csv" "$@" 2>"$d/stats"
}
gen "$T/a" 42
gen "$T/b" 42
gen "$T/c" 43

# 1. same seed -> identical bytes; different seed -> different
for f in cdr/cdr-001.csv.gz cdr/cdr-002.csv.gz cdr/cdr-003.csv.gz truth.csv cand.csv \
         tariff/subscribers.csv tariff/rates.csv tariff/refunds.csv tariff/subscriptions.csv; do
    cmp -s "$T/a/$f" "$T/b/$f" || fail "same seed, different $f"
done
cmp -s "$T/a/cdr/cdr-001.csv.gz" "$T/c/cdr/cdr-001.csv.gz" && fail "different seed, same CDRs"
cmp -s "$T/a/truth.csv" "$T/c/truth.csv" && fail "different seed, same truth"

# 2. gzip output is valid
for f in "$T"/a/cdr/*.gz; do gzip -t "$f" || fail "bad gzip $f"; done
zcat "$T"/a/cdr/*.gz | grep -v '^record_id,' >"$T/rows.csv"
n=$(wc -l <"$T/rows.csv")
[ "$n" -gt 3000 ] || fail "too few rows: $n"
grep -q "$n rows" "$T/a/stats" || fail "row count in stats differs from files ($n)"

# 3. one subscriber's rows are spread over several files
top=$(cut -d, -f2 "$T/rows.csv" | sed 's/^86//' | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
k=0
for f in "$T"/a/cdr/*.gz; do zcat "$f" | cut -d, -f2 | grep -q "$top\$" && k=$((k + 1)); done
[ "$k" -ge 2 ] || fail "subscriber $top only in $k file(s)"
# rows are not in time order
cut -d, -f7 "$T/rows.csv" | sort -c 2>/dev/null && fail "rows are sorted by start time"

# 4. every msisdn of the CDRs is in subscribers.csv
cut -d, -f2 "$T/rows.csv" | sed 's/^86\(1[0-9]\{10\}\)$/\1/' | sort -u >"$T/cdr_ms"
tail -n +2 "$T/a/tariff/subscribers.csv" | cut -d, -f1 | sort -u >"$T/sub_ms"
missing=$(comm -23 "$T/cdr_ms" "$T/sub_ms" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing CDR msisdns not in subscribers.csv"

# 5. truth: every record_id exists in the CDRs; every category appears
tail -n +2 "$T/a/truth.csv" | cut -d, -f3 | sort -u >"$T/truth_ids"
cut -d, -f1 "$T/rows.csv" | sort -u >"$T/cdr_ids"
[ "$(comm -23 "$T/truth_ids" "$T/cdr_ids" | wc -l)" -eq 0 ] || fail "truth names unknown record ids"
tail -n +2 "$T/a/truth.csv" | awk -F, '$4 != "leakage" && $4 != "" && $4 != "duplicate" && $8 + 0 <= 0 {bad=1} END {exit bad}' \
    || fail "an injected overcharge with difference <= 0"
# candidates: refund = 2 x overcharge, overcharge = sum of positive differences
awk -F, 'FNR==1{next} FILENAME==ARGV[1] && $8+0>0 {s[$1]+=$8*100} FILENAME==ARGV[2] {
         if (int($4*100+0.5) != int(s[$1]+0.5) || int($5*100+0.5) != 2*int($4*100+0.5)) bad=1; n++ }
         END {exit bad || n==0}' "$T/a/truth.csv" "$T/a/cand.csv" || fail "candidates do not add up"

# 6. faults: the list matches the malformed rows, line by line
"$CDRGEN" --seed 5 --rows 3000 --subscribers 60 --out-dir "$T/f" --names x.csv,y.csv \
    --faults 0.05 --faults-out "$T/faults.csv" 2>"$T/fstats"
nf=$(tail -n +2 "$T/faults.csv" | wc -l)
[ "$nf" -gt 50 ] || fail "too few faults: $nf"
grep -q "$nf fault rows" "$T/fstats" || fail "fault count differs from the list"
for f in x.csv y.csv; do
    # fault rows carry record ids starting with F (or a quoted "F)
    awk -v f="$f" 'substr($0,1,1)=="F" || substr($0,1,2)=="\"F" {print f "," NR}' "$T/f/$f"
done | sort >"$T/seen"
tail -n +2 "$T/faults.csv" | cut -d, -f1,2 | sort >"$T/listed"
cmp -s "$T/seen" "$T/listed" || fail "fault list does not match the files"
kinds=$(tail -n +2 "$T/faults.csv" | cut -d, -f3 | sort -u | wc -l)
[ "$kinds" -eq 9 ] || fail "only $kinds fault kinds"
# and with faults the good rows are the same as without
"$CDRGEN" --seed 5 --rows 3000 --subscribers 60 --out-dir "$T/g" --names x.csv,y.csv 2>/dev/null
cat "$T"/f/*.csv | grep -av '^"\?F' | sort >"$T/good1"
cat "$T"/g/*.csv | sort >"$T/good2"
cmp -s "$T/good1" "$T/good2" || fail "faults changed the good rows"
echo ok
