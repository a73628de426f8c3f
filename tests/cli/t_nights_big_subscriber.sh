#!/bin/sh
# One subscriber with more records in a night than a block of the month
# state holds (4,096): the night's segment then has several blocks for one
# part, and each must be found at its own offset. (It was not: every block
# of a part was recorded at the part's first offset, so the next night, and
# investigate, failed with "block holds 4096 records, the directory says
# 904" - and so did any state written by a run with more than 4,096 records
# in one of its 256 buckets, e.g. a one-shot run over a big month.)
# Three nights of 5,000 records of one subscriber, the first two in one run:
# the results equal one run over the three files; investigate reads all.
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "$*"; exit 1; }
M=13454172685 # a subscriber of the example tariff (plan b88)
python3 - "$W" "$M" <<'PY'
import gzip, sys
w, m = sys.argv[1], sys.argv[2]
for night in (1, 2, 3):
    with gzip.open("%s/n%d.csv.gz" % (w, night), "wt") as f:
        f.write("record_id,msisdn,service,direction,peer,start_time,duration_s,billed\n")
        for i in range(5000):
            s = i * 17
            f.write("R%d%07d,%s,voice,mo,139%08d,2026-10-%02d %02d:%02d:%02d,%d,%.2f\n"
                    % (night, i, m, i % 97, night, s // 3600, s // 60 % 60, s % 60,
                       5 + i % 50, 0.10 * (1 + i % 3)))
PY
r() { "$CDRECON" run --quiet --tariff "$EX/tariff" "$@" || [ $? -eq 9 ]; }
r --db "$W/n.db" --out "$W/o1" "$W/n1.csv.gz" "$W/n2.csv.gz"
r --db "$W/n.db" --out "$W/o2" "$W/n3.csv.gz"
r --db "$W/one.db" --out "$W/oo" "$W/n1.csv.gz" "$W/n2.csv.gz" "$W/n3.csv.gz"
for x in findings candidates unrated; do
    cmp -s "$W/o2/$x.csv" "$W/oo/$x.csv" || fail "$x.csv of the nights differs from one run"
done
"$CDRECON" investigate --db "$W/n.db" --msisdn "$M" --month 2026-10 --format csv >"$W/inv.csv" ||
    fail "investigate: exit $?"
n=$(grep -c 'n[123]\.csv\.gz,[0-9]' "$W/inv.csv") # (its records; the pools and candidate follow)
[ "$n" = 15000 ] || fail "investigate shows $n of 15000 records"
"$CDRECON" compact --db "$W/n.db" --quiet || fail "compact: exit $?"
"$CDRECON" investigate --db "$W/n.db" --msisdn "$M" --month 2026-10 --format csv >"$W/inv2.csv" ||
    fail "investigate after compact: exit $?"
cmp -s "$W/inv.csv" "$W/inv2.csv" || fail "investigate changed with compact"
echo ok
