#!/bin/sh
# Regenerate testdata/example/ (the bundled example month) with a fixed seed.
# Usage: sh tools/gen-example.sh [CDRGEN] [DEST]
# The output is byte-for-byte reproducible; tests/cli/t_cdrgen_example.sh
# checks that the committed copy equals a fresh regeneration.
set -eu
CDRGEN=${1:-build/tools/cdrgen}
DEST=${2:-testdata/example}
SEED=20261001
HERE=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$DEST/tariff" "$DEST/cdr" "$DEST/bad" "$DEST/nights" "$DEST/profiles"
mkdir -p "$DEST/tariff" "$DEST/cdr" "$DEST/bad" "$DEST/nights" "$DEST/profiles"
"$CDRGEN" --seed "$SEED" --month 2026-10 --subscribers 300 --rows 12000 \
    --tariff "$DEST/tariff" --out-dir "$DEST/cdr" \
    --names cdr-2026-10-a.csv,cdr-2026-10-b.csv,cdr-2026-10-c.csv.gz \
    --errors 0.015 --truth "$DEST/truth.csv" --truth-candidates "$DEST/truth-candidates.csv" \
    2>"$DEST/cdr/.stats"
# The same month as a switch delivers it: one file per start day, and 3 % of
# the records held back into a late file (the same records as cdr/).
"$CDRGEN" --seed "$SEED" --month 2026-10 --subscribers 300 --rows 12000 \
    --out-dir "$DEST/nights" --by-day --late 0.03 --errors 0.015 2>/dev/null
# One small file with malformed rows (same tariff: same seed, same subscribers).
"$CDRGEN" --seed "$SEED" --month 2026-10 --subscribers 300 --rows 1500 \
    -o "$DEST/bad/cdr-2026-10-bad.csv" --faults 0.05 --faults-out "$DEST/bad/faults.csv" \
    2>/dev/null
# The same month in the layout of each bundled input profile (profiles/):
# the same rows in the same files and order (docs/generator.md, --profile).
for p in 3gpp-32298 pipe-fen vendor-ms; do
    mkdir -p "$DEST/profiles/$p"
    "$CDRGEN" --seed "$SEED" --month 2026-10 --subscribers 300 --rows 12000 \
        --out-dir "$DEST/profiles/$p" \
        --names cdr-2026-10-a.csv,cdr-2026-10-b.csv.gz,cdr-2026-10-c.csv.gz \
        --errors 0.015 --profile "$HERE/profiles/$p.profile" 2>/dev/null
done
stats=$(cat "$DEST/cdr/.stats"); rm -f "$DEST/cdr/.stats"
cat >"$DEST/README.md" <<EOT
# The bundled example month (generated — do not edit by hand)

Regenerate with \`sh tools/gen-example.sh\` (seed $SEED; see docs/generator.md).

- \`tariff/\` — the tariff directory: 6 plans (basic, b58, b88, d20, split, s67),
  peak/off-peak bands, rates, bundles, the d20 discount, free numbers, 300
  subscribers (some change plan mid-month), SP subscriptions, earlier refunds.
- \`cdr/\` — October 2026, three CDR files (one gzip), rows shuffled, every
  subscriber's records spread over the three files. No malformed rows.
  Extra columns \`cell_id\` and \`msc_id\` are not in the contract (kept as unknown).
- \`nights/\` — the same records as \`cdr/\` as a switch delivers them: one file
  per start day (\`cdr-2026-10-01.csv.gz\` … \`cdr-2026-10-31.csv.gz\`) and 3 % of the
  records held back into \`cdr-2026-10-late.csv.gz\`, delivered after the month.
  Run night by night into one database, they give exactly the results of one run
  over \`cdr/\` (\`make example\` does it; tests/cli/t_nights_example.sh checks it).
- \`truth.csv\` — every finding a correct re-rating must report:
  \`msisdn,month,record_id,category,flags,billed,rebuilt,difference\`
  (injected overcharges, \`leakage\` undercharges, duplicates even at 0.00,
  and flag-only \`overlap\`/\`overlong\` rows). Everything else is billed exactly right.
- \`truth-candidates.csv\` — the refund candidates those findings give:
  \`msisdn,month,records,overcharge,refund,categories,special,tier,policy,policy_reason\`
  (refund = 2 x overcharge; special, tier and policy by the generator's own reading of
  the refund rules, docs/generator.md).
- \`bad/cdr-2026-10-bad.csv\` — a small file of the same month with about 5%
  malformed rows added; \`bad/faults.csv\` lists each one (\`file,line,kind\`).
  Its good rows are billed right, but it shares record ids with \`cdr/\`: use it alone.
- \`profiles/NAME/\` — the files of \`cdr/\` (same rows, same order, the same
  findings) in the layout of the bundled input profile \`profiles/NAME.profile\`
  (docs/profiles.md): \`3gpp-32298\`, \`pipe-fen\`, \`vendor-ms\`. Read them with
  \`cdrecon run --profile profiles/NAME.profile ...\`.

Generator summary: $stats
EOT
