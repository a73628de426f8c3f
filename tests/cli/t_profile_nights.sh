#!/bin/sh
# Input profiles over many nights and many machines (issues 17, 13 and 16).
#
# The bundled example month as a switch delivers it (tools/gen-example.sh's
# nights/: one file per start day, 3 % of the records held back into a late
# file), written by `cdrgen --profile` in each bundled profile's layout, one
# `run --profile` per file into one database, ends with the findings.csv and
# candidates.csv of the contract's files: candidates byte for byte; findings
# byte for byte once the file column, which names the profile's own file
# (checked), is reduced to its base name, and the offset blanked (it is the
# byte offset in the operator's file, whose rows are longer or shorter). The
# line is the operator's too, and the same: each layout keeps one record a line.
# Every run records its profile and the profile's SHA-256 (runs, files).
#
# Then: nights in three different profiles into one database give the same;
# and `split --profile` + `run --cluster --shard` + `cluster report` over
# three nights and 2 shards (t_cluster_nights.sh has 4) equals one machine's
# `run --profile` of the same nights, byte for byte (all five CSVs), for each
# profile; a night split with two profiles records each file's own.
set -eu
: "${CDRECON:?}" "${CDRGEN:?}" "${TESTDATA:?}"
EX="$TESTDATA/example"
T="$EX/tariff"
here=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PROFILES="3gpp-32298 pipe-fen vendor-ms"
prof() { echo "$here/profiles/$1.profile"; }

# the nights in each profile's layout: gen-example.sh's arguments for nights/
for p in $PROFILES; do
    "$CDRGEN" --seed 20261001 --month 2026-10 --subscribers 300 --rows 12000 \
        --out-dir "$W/n-$p" --by-day --late 0.03 --errors 0.015 --profile "$(prof "$p")" \
        2>/dev/null || fail "cdrgen --profile $p"
done
# the files in delivery order: 31 nights, then the late file
nights() { ls "$1"/cdr-2026-10-[0-9]*.csv.gz; echo "$1/cdr-2026-10-late.csv.gz"; }
[ "$(nights "$EX/nights" | wc -l)" -eq 32 ] && [ "$(nights "$W/n-3gpp-32298" | wc -l)" -eq 32 ] ||
    fail "expected 31 nights and a late file"

# the contract's nights in one run (equal to one run a night: t_nights_example)
# shellcheck disable=SC2046
"$CDRECON" run --quiet --tariff "$T" --db "$W/c.db" --out "$W/c" $(nights "$EX/nights") ||
    fail "the contract's nights: exit $?"

# findings.csv with the file column reduced to its base name (after checking
# that every row names a file in $2) and the offset blanked. (awk: the columns
# up to offset never hold a comma; the explanation after it is kept as it is.)
norm() { # findings.csv, the directory its files must be in
    awk -F, -v OFS=, -v dir="$2" '
        NR == 1 { if ($4 != "file" || $14 != "offset") { print "columns moved: " $0; exit 1 }
                  print; next }
        { b = $4; sub(/.*\//, "", b)
          if (substr($4, 1, length($4) - length(b) - 1) != dir) {
              print "row " NR " names " $4 ", not a file of " dir; exit 1 }
          $4 = b; $14 = ""; print }' "$1"
}
norm "$W/c/findings.csv" "$EX/nights" >"$W/c.norm" || fail "the contract's findings"
[ "$(wc -l <"$W/c.norm")" -gt 250 ] || fail "only $(wc -l <"$W/c.norm") findings: the test proves little"
same_as_contract() { # out dir, the directory of its files, what
    cmp -s "$W/c/candidates.csv" "$1/candidates.csv" ||
        { diff "$W/c/candidates.csv" "$1/candidates.csv" | head -n 5 >&2; fail "$3: candidates.csv"; }
    norm "$1/findings.csv" "$2" >"$1.norm" || fail "$3: findings.csv names other files"
    cmp -s "$W/c.norm" "$1.norm" ||
        { diff "$W/c.norm" "$1.norm" | head -n 5 >&2; fail "$3: findings.csv"; }
}
q() { sqlite3 -readonly "$1" "$2"; }

# 1. each profile: one run a night
for p in $PROFILES; do
    P=$(prof "$p")
    n=0
    for f in $(nights "$W/n-$p"); do
        n=$((n + 1))
        set +e
        "$CDRECON" run --quiet --profile "$P" --tariff "$T" --db "$W/$p.db" --out "$W/o-$p" "$f"
        rc=$?
        set -e
        [ $rc -eq 0 ] || fail "$p, night $n: exit $rc"
    done
    same_as_contract "$W/o-$p" "$W/n-$p" "$p, 32 nights"
    sum=$(sha256sum "$P" | cut -d' ' -f1)
    # (each file has its trailer record, skipped; some layouts more)
    [ "$(q "$W/$p.db" "SELECT count(*), count(DISTINCT profile || profile_sha256), min(profile),
            min(profile_sha256), sum(rows_read = rows_accepted + rows_rejected + rows_skipped
            AND rows_skipped >= 1) FROM runs")" = "32|1|$P|$sum|32" ] ||
        fail "$p: runs do not record the profile: $(q "$W/$p.db" "SELECT * FROM runs LIMIT 1")"
    [ "$(q "$W/$p.db" "SELECT count(*) FROM files WHERE profile = '$P' AND profile_sha256 = '$sum'
            AND rows_skipped >= 1")" = 32 ] || fail "$p: files do not record the profile"
done

# 2. nights in three layouts into one database: days 1-10 as 3GPP, 11-20 in
# the vendor's layout, 21-31 and the late file pipe-separated
mixed() { # night number (1..3), profile
    case $1 in
    1) ls "$W/n-$2"/cdr-2026-10-0*.csv.gz "$W/n-$2"/cdr-2026-10-10.csv.gz ;;
    2) ls "$W/n-$2"/cdr-2026-10-1[1-9].csv.gz "$W/n-$2"/cdr-2026-10-20.csv.gz ;;
    3) ls "$W/n-$2"/cdr-2026-10-2[1-9].csv.gz "$W/n-$2"/cdr-2026-10-3*.csv.gz \
          "$W/n-$2"/cdr-2026-10-late.csv.gz ;;
    esac
}
i=0
for p in 3gpp-32298 vendor-ms pipe-fen; do
    i=$((i + 1))
    # shellcheck disable=SC2046
    "$CDRECON" run --quiet --profile "$(prof "$p")" --tariff "$T" --db "$W/mix.db" --out "$W/mix" \
        $(mixed $i $p) || fail "mixed night $i ($p): exit $?"
done
# each file read with its night's profile; then the three directories as one
awk -F, -v OFS=, -v w="$W" '
    NR == 1 { print; next }
    { b = $4; sub(/.*\//, "", b); d = substr($4, 1, length($4) - length(b) - 1)
      day = substr(b, 13, 2); if (day == "la") day = "99"
      want = day <= "10" ? "3gpp-32298" : day <= "20" ? "vendor-ms" : "pipe-fen"
      if (d != w "/n-" want) { print "row " NR ": " $4 " is not " want; exit 1 }
      $4 = w "/n-x/" b; print }' "$W/mix/findings.csv" >"$W/mix.csv" || fail "mixed: $(tail -n 1 "$W/mix.csv")"
mkdir "$W/mixo"
cp "$W/mix.csv" "$W/mixo/findings.csv"
cp "$W/mix/candidates.csv" "$W/mixo/candidates.csv"
same_as_contract "$W/mixo" "$W/n-x" "nights in three profiles"
[ "$(q "$W/mix.db" "SELECT group_concat(profile, ' ') FROM runs")" = \
    "$(prof 3gpp-32298) $(prof vendor-ms) $(prof pipe-fen)" ] || fail "mixed: runs.profile"

# 3. the sharded night, three nights over 2 shards, against one machine's
# run --profile of the same nights (t_cluster_nights.sh's helpers)
stages() { # cluster dir, profile, files...
    d=$1 pp=$2
    shift 2
    "$CDRECON" split --quiet --profile "$pp" --cluster "$d" "$@" || fail "split: exit $?"
    for k in 0 1; do
        "$CDRECON" run --quiet --cluster "$d" --shard "$k" --tariff "$T" || fail "rate $k: exit $?"
    done
}
same_as_one() { # report dir, single-machine dir
    for f in findings candidates unrated changes rejects; do
        cmp -s "$1/$f.csv" "$2/$f.csv" || {
            diff "$1/$f.csv" "$2/$f.csv" | head -5 >&2
            fail "$1/$f.csv differs from one machine's"
        }
    done
}
for p in $PROFILES; do
    P=$(prof "$p")
    D="$W/D-$p"
    "$CDRECON" cluster init --parts 2 "$D" >/dev/null
    for i in 1 2 3; do
        # shellcheck disable=SC2046
        stages "$D" "$P" $(mixed $i "$p")
        "$CDRECON" cluster report --cluster "$D" --out "$W/rep-$p-$i" >"$W/rep-$p-$i.txt" ||
            fail "$p: report $i: exit $?"
        # shellcheck disable=SC2046
        "$CDRECON" run --quiet --profile "$P" --tariff "$T" --db "$W/one-$p.db" \
            --out "$W/one-$p-$i" $(mixed $i "$p") || fail "$p: one machine, night $i: exit $?"
        same_as_one "$W/rep-$p-$i" "$W/one-$p-$i"
    done
    same_as_contract "$W/rep-$p-3" "$W/n-$p" "$p, sharded"
    grep -q "^rows .* + [1-9][0-9]* skipped;" "$W/rep-$p-3.txt" ||
        fail "$p: the report does not count the skipped records: $(grep '^rows' "$W/rep-$p-3.txt")"
    # the shards' runs record the profile split read the files with
    sum=$(sha256sum "$P" | cut -d' ' -f1)
    for k in 0 1; do
        [ "$(q "$D/shard-$k/cdrecon.db" "SELECT count(*) = 3 AND count(*) = sum(profile = '$P' AND
                profile_sha256 = '$sum') FROM runs")" = 1 ] || fail "$p: shard $k: runs.profile"
    done
done
# run --shard takes no profile: split read the files
if "$CDRECON" run --cluster "$W/D-pipe-fen" --shard 0 --profile "$(prof pipe-fen)" \
    >/dev/null 2>"$W/err"; then fail "run --cluster --profile accepted"; fi
grep -q "goes to .cdrecon split." "$W/err" || fail "run --cluster --profile: $(cat "$W/err")"

# one night split with two profiles: each file records its own, the run none
D="$W/D-two"
"$CDRECON" cluster init --parts 2 "$D" >/dev/null
"$CDRECON" split --quiet --profile "$(prof 3gpp-32298)" --cluster "$D" "$W/n-3gpp-32298/cdr-2026-10-01.csv.gz"
"$CDRECON" split --quiet --profile "$(prof vendor-ms)" --cluster "$D" "$W/n-vendor-ms/cdr-2026-10-02.csv.gz"
"$CDRECON" run --quiet --cluster "$D" --shard 1 --tariff "$T" || fail "two profiles: exit $?"
[ "$(q "$D/shard-1/cdrecon.db" "SELECT r.profile IS NULL, group_concat(f.profile, ' ')
        FROM runs r JOIN files f USING (run_id)")" = \
    "1|$(prof 3gpp-32298) $(prof vendor-ms)" ] || fail "two profiles in one shard run"
echo ok
