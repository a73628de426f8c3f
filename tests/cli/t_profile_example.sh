#!/bin/sh
# The bundled month in each bundled profile's layout (testdata/example/profiles,
# written by `cdrgen --profile`) read with --profile gives what the contract's
# files give: scan counts (plus the skipped header and trailer records), every
# `rate` row (file and offset mapped: they name the operator's file; line
# numbers are equal), the investigate statement of every candidate of a
# sample, and `run --profile`'s findings.csv and candidates.csv (the month over
# many nights and the sharded night: t_profile_nights.sh).
# Then: rejects of a damaged profile-format file name its file and line, the
# evidence manifest carries the profile's SHA-256, check-profile's output.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
EX="$TESTDATA/example"
here=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

"$CDRECON" scan --quiet "$EX"/cdr/* >"$W/scan0"
acc0=$(sed -n 's/^total: .*, \([0-9]*\) accepted, .*/\1/p' "$W/scan0")
"$CDRECON" rate --tariff "$EX/tariff" --out "$W/rate0.csv" "$EX"/cdr/* 2>/dev/null

# rate rows with file and offset blanked, the extra column dropped
norm_rate() {
    python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
h = rows[0]
f, o, x = h.index("file"), h.index("offset"), h.index("extra")
for r in rows:
    r[f] = r[f].rsplit("/", 1)[-1].split(".")[0] if r is not rows[0] else r[f]
    r[o] = ""
    del r[x]
    print(",".join(r))
PY
}
norm_rate "$W/rate0.csv" >"$W/rate0.norm"
[ "$(wc -l <"$W/rate0.norm")" -gt 11000 ]

for p in 3gpp-32298 pipe-fen vendor-ms; do
    P="$here/profiles/$p.profile"
    D="$EX/profiles/$p"
    "$CDRECON" scan --quiet --profile "$P" "$D"/* >"$W/scan-$p"
    tot=$(grep '^total:' "$W/scan-$p")
    read_=$(echo "$tot" | sed -n 's/.* \([0-9]*\) read, .*/\1/p')
    acc=$(echo "$tot" | sed -n 's/.*, \([0-9]*\) accepted, .*/\1/p')
    rej=$(echo "$tot" | sed -n 's/.*, \([0-9]*\) rejected, .*/\1/p')
    skip=$(echo "$tot" | sed -n 's/.*, \([0-9]*\) skipped, .*/\1/p')
    [ "$acc" = "$acc0" ] && [ "$rej" = 0 ] && [ "$skip" -ge 3 ] &&
        [ "$read_" -eq $((acc + rej + skip)) ] ||
        { echo "FAIL $p: scan $tot (contract files: $acc0 accepted)"; exit 1; }

    "$CDRECON" rate --profile "$P" --tariff "$EX/tariff" --out "$W/rate-$p.csv" "$D"/* 2>/dev/null
    norm_rate "$W/rate-$p.csv" >"$W/rate-$p.norm"
    cmp "$W/rate0.norm" "$W/rate-$p.norm" || { echo "FAIL $p: rate rows differ"; exit 1; }
    # the files named are the operator's own
    grep -q "profiles/$p/cdr-2026-10-b.csv.gz," "$W/rate-$p.csv"

    # investigate: five candidates, statement text with the file names mapped
    for n in $(tail -n +2 "$EX/truth-candidates.csv" | cut -d, -f1 | sed -n '1p;7p;19p;33p;51p'); do
        "$CDRECON" investigate --msisdn "$n" --month 2026-10 --tariff "$EX/tariff" "$EX"/cdr/* |
            sed 's|[^ (]*/cdr-2026-10-\([abc]\)[.a-z]*|F\1|g' >"$W/i0"
        "$CDRECON" investigate --msisdn "$n" --month 2026-10 --tariff "$EX/tariff" --profile "$P" "$D"/* |
            sed 's|[^ (]*/cdr-2026-10-\([abc]\)[.a-z]*|F\1|g' >"$W/i1"
        cmp "$W/i0" "$W/i1" || { echo "FAIL $p: investigate $n differs"; diff "$W/i0" "$W/i1" | head; exit 1; }
    done
done

# run: findings and candidates
"$CDRECON" run --tariff "$EX/tariff" --db "$W/r0.db" --out "$W/o0" "$EX"/cdr/* >/dev/null
for p in 3gpp-32298 pipe-fen vendor-ms; do
    "$CDRECON" run --profile "$here/profiles/$p.profile" --tariff "$EX/tariff" \
        --db "$W/r-$p.db" --out "$W/o-$p" "$EX/profiles/$p"/* >/dev/null
    cmp "$W/o0/candidates.csv" "$W/o-$p/candidates.csv" || { echo "FAIL $p: candidates.csv"; exit 1; }
    # file reduced to its base name without suffixes, offset blanked (awk: the
    # columns up to offset never hold a comma; python3 takes 0.4 s to start here)
    for f in "$W/o0/findings.csv" "$W/o-$p/findings.csv"; do
        awk -F, -v OFS=, 'NR == 1 { if ($4 != "file" || $14 != "offset") exit 1; next }
            { sub(/.*\//, "", $4); sub(/\..*/, "", $4); $14 = ""; print }' "$f" >"$f.norm" ||
            { echo "FAIL: findings.csv columns moved"; exit 1; }
    done
    [ "$(wc -l <"$W/o-$p/findings.csv.norm")" -gt 250 ] || { echo "FAIL $p: few findings"; exit 1; }
    cmp "$W/o0/findings.csv.norm" "$W/o-$p/findings.csv.norm" || { echo "FAIL $p: findings.csv"; exit 1; }
done

# a damaged file in the pipe layout: its rejects name the operator's file and line
zcat "$EX/profiles/pipe-fen/cdr-2026-10-b.csv.gz" | sed '5s/|2026/|2o26/; 9s/^[0-9]*|/55|/' >"$W/damaged.dat"
set +e
"$CDRECON" scan --profile "$here/profiles/pipe-fen.profile" --rejects "$W/rej.csv" "$W/damaged.dat" >/dev/null
rc=$?
set -e
[ "$rc" -eq 9 ] || { echo "FAIL: damaged file: exit $rc, want 9"; exit 1; }
python3 - "$W/rej.csv" "$W/damaged.dat" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
lines = open(sys.argv[2], encoding="utf-8").read().split("\n")
got = [(r["file"], r["line"], r["reason"].split(" '")[0]) for r in rows]
assert [g[1] for g in got] == ["5", "9"], got
assert all(g[0] == sys.argv[2] for g in got), got
assert got[0][2] == "bad start_time" and got[1][2] == "bad record_type", got
for r in rows:  # the raw text is the operator's line
    assert r["raw"] == lines[int(r["line"]) - 1], (r["raw"], lines[int(r["line"]) - 1])
offs = [int(r["offset"]) for r in rows]
data = open(sys.argv[2], "rb").read()
for r, o in zip(rows, offs):
    assert data[o:o + len(r["raw"].encode())].decode() == r["raw"]
PY

# evidence: the profile and its SHA-256 in the manifest
n=$(tail -n +2 "$EX/truth-candidates.csv" | cut -d, -f1 | head -n 1)
"$CDRECON" evidence --no-pdf --msisdn "$n" --month 2026-10 --out "$W/ev" --date 2026-11-05 \
    --run-id t --tariff "$EX/tariff" --profile "$here/profiles/vendor-ms.profile" \
    "$EX/profiles/vendor-ms"/* 2>/dev/null
sum=$(sha256sum "$here/profiles/vendor-ms.profile" | cut -d' ' -f1)
size=$(wc -c <"$here/profiles/vendor-ms.profile")
grep -qx "profile	$sum	$size	$here/profiles/vendor-ms.profile" "$W/ev/manifest" ||
    { echo "FAIL: no profile line in the manifest"; cat "$W/ev/manifest"; exit 1; }
grep -q -- "--profile $here/profiles/vendor-ms.profile" "$W/ev/manifest"

# check-profile: the profile in words and the first rows as contract fields
"$CDRECON" check-profile --rows 3 "$here/profiles/pipe-fen.profile" "$EX/profiles/pipe-fen/cdr-2026-10-a.csv" |
    sed "s|$here/||; s|$TESTDATA/|testdata/|" >"$W/check.out"
diff "$TESTDATA/profile-check/pipe-fen.expected" "$W/check.out"
echo ok
