#!/bin/sh
# cdrecon evidence: the pack's files, manifest hashes, masking in the customer
# copy, the SMS character for character, HTML escaping, refusal to overwrite,
# symlinked DIR, a number without records, reproducibility, the bundled
# example month. No browser here (--no-pdf): see t_evidence_render.sh.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
HERE=$(cd "$(dirname "$0")/.." && pwd)
CDR="$HERE/evidence/cdr-complaint.csv"
T="$TESTDATA/rate-hand"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

ev() { "$CDRECON" evidence --no-pdf --tariff "$T" --date 2026-11-05 --run-id test-run "$@"; }

# ---- a pack with four kinds of error ---------------------------------------
ev --msisdn 13900000001 --month 2026-10 --out "$W/p" "$CDR" 2>"$W/err" || fail "pack: $(cat "$W/err")"
for f in manifest internal/evidence.html internal/records.csv customer/evidence.html \
         customer/records.csv customer/sms.txt; do
    [ -s "$W/p/$f" ] || fail "missing $f"
done
[ ! -e "$W/p/customer/evidence.pdf" ] || fail "--no-pdf wrote a PDF"

# The SMS, character for character (DOMAIN.md template).
expected='尊敬的客户,您反映的异常重复话单收费、拨打免费电话产生收费、多收/错收信息费、短信条数计量差错问题,已于2026年11月05日对您完成退费处理,退费金额11.54元,感谢您的支持与关注。中国移动'
[ "$(cat "$W/p/customer/sms.txt")" = "$expected" ] || fail "SMS text: $(cat "$W/p/customer/sms.txt")"
grep -qF "$expected" "$W/p/customer/evidence.html" || fail "SMS not on the customer page"
grep -qF "$expected" "$W/p/internal/evidence.html" || fail "SMS not on the internal page"

# The arithmetic of the long SMS, as the issue writes it.
grep -qF '145 字 ÷ 70 字/条 = 3 条' "$W/p/customer/evidence.html" || fail "sms arithmetic"
grep -qF '计费 5 条;多收 2 条 × 0.10 元 = 0.20 元' "$W/p/customer/evidence.html" || fail "sms overcharge"
grep -qF '5.77 × 2 = 11.54 元' "$W/p/customer/evidence.html" || fail "refund line"

# Manifest: every input and tariff table with the SHA-256 that sha256sum gives.
h=$(sha256sum "$CDR" | cut -d' ' -f1)
grep -q "^input	$h	$(wc -c <"$CDR" | tr -d ' ')	" "$W/p/manifest" || fail "input hash"
n=0
for f in "$T"/*.csv; do
    h=$(sha256sum "$f" | cut -d' ' -f1)
    grep -q "^tariff	$h	.*/$(basename "$f")\$" "$W/p/manifest" || fail "tariff hash $f"
    n=$((n + 1))
done
[ "$(grep -c '^tariff	' "$W/p/manifest")" -eq "$n" ] || fail "tariff table count"
# ... and every file of the pack.
grep '^file	' "$W/p/manifest" | while IFS='	' read -r _ hex _ rel; do
    [ "$(sha256sum "$W/p/$rel" | cut -d' ' -f1)" = "$hex" ] || { echo "file hash $rel" >&2; exit 1; }
done || fail "pack file hashes"
grep -q '^command	cdrecon evidence .*--date 2026-11-05' "$W/p/manifest" || fail "command line"

# Masking: no other party's number in full anywhere in the customer copy.
others=$(awk -F, 'NR > 1 && $2 == "13900000001" { print $5 }' "$CDR" | sed 's/^+86//' |
         grep -E '^[0-9]{8,}$' | sort -u)
[ -n "$others" ] || fail "test data has no other-party numbers"
for num in $others 8613755556666; do
    if grep -rqF "$num" "$W/p/customer"; then fail "customer copy shows $num"; fi
done
grep -rqF '13812341234' "$W/p/internal" || fail "internal copy should show 13812341234"
grep -qF '138****1234' "$W/p/customer/evidence.html" || fail "masked form missing"
grep -qF '13900000001' "$W/p/customer/evidence.html" || fail "own number missing"
# No internal notes in the customer copy.
for word in cdr-complaint.csv approval approver 'special customer' policy_reason 'run id' engine:; do
    if grep -rqiF "$word" "$W/p/customer"; then fail "customer copy contains '$word'"; fi
done
grep -qF 'cdr-complaint.csv' "$W/p/internal/evidence.html" || fail "internal lacks file:line"

# HTML escaping of data: the record id and the extra column are text.
for f in "$W/p/internal/evidence.html" "$W/p/customer/evidence.html"; do
    if grep -qF '<script>' "$f"; then fail "unescaped <script> in $f"; fi
    if grep -qF '<img' "$f"; then fail "unescaped <img> in $f"; fi
    grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' "$f" || fail "escaped id missing in $f"
    # self-contained: no external resources
    if grep -qiE '<[a-z]+[^>]*[[:space:]](src|href)=|url\(|@import' "$f"; then
        fail "external resource in $f"
    fi
    if grep -oiE 'https?://[^" ]*' "$f" | grep -qv '^http://www.w3.org/2000/svg$'; then
        fail "external URL in $f"
    fi
done

# records.csv: one canonical row per record of the month (7 records + header).
[ "$(wc -l <"$W/p/internal/records.csv")" -eq 8 ] || fail "internal records.csv rows"
[ "$(wc -l <"$W/p/customer/records.csv")" -eq 8 ] || fail "customer records.csv rows"

# ---- an existing pack is not overwritten ----------------------------------
before=$(sha256sum "$W/p/manifest")
set +e
ev --msisdn 13900000001 --month 2026-10 --out "$W/p" "$CDR" 2>"$W/err"
rc=$?
set -e
[ "$rc" -eq 12 ] || fail "existing pack: exit $rc, want 12"
[ "$(sha256sum "$W/p/manifest")" = "$before" ] || fail "existing pack was changed"
touch "$W/p/keep.txt"
ev --force --msisdn 13900000001 --month 2026-10 --out "$W/p" "$CDR" 2>"$W/err" || fail "--force"
[ -f "$W/p/keep.txt" ] || fail "--force removed a file that is not the pack's"

# Reproducible: the same command gives the same pages byte for byte.
ev --msisdn 13900000001 --month 2026-10 --out "$W/p2" "$CDR" 2>"$W/err" || fail "second pack"
cmp -s "$W/p/internal/evidence.html" "$W/p2/internal/evidence.html" || fail "not reproducible"
cmp -s "$W/p/customer/records.csv" "$W/p2/customer/records.csv" || fail "records.csv not reproducible"

# ---- the month state gives the same pack as the scan path ------------------
"$CDRECON" run --tariff "$T" --db "$W/db" --out "$W/run" "$CDR" >/dev/null 2>&1 || fail "run"
ev --db "$W/db" --msisdn 13900000001 --month 2026-10 --out "$W/ps" 2>"$W/err" ||
    fail "state pack: $(cat "$W/err")"
cmp -s "$W/p/customer/evidence.html" "$W/ps/customer/evidence.html" || fail "state/scan pages differ"
cmp -s "$W/p/internal/records.csv" "$W/ps/internal/records.csv" || fail "state/scan records differ"
seg=$(ls "$W/db.state"/seg-2026-10-*.cds | head -n 1)
grep -q "^input	$(sha256sum "$seg" | cut -d' ' -f1)	" "$W/ps/manifest" ||
    fail "state file hash in manifest"

# ---- a symlinked DIR is refused; nothing written through it ---------------
mkdir "$W/target"
ln -s "$W/target" "$W/link"
set +e
ev --msisdn 13900000001 --month 2026-10 --out "$W/link" "$CDR" 2>"$W/err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "symlinked DIR accepted"
[ -z "$(ls -A "$W/target")" ] || fail "wrote through the symlink"

# ---- a number with no record that month: 11, no directory ------------------
set +e
ev --msisdn 13900000009 --month 2026-10 --out "$W/none" "$CDR" 2>"$W/err"
rc=$?
set -e
[ "$rc" -eq 11 ] || fail "no records: exit $rc, want 11"
[ ! -e "$W/none" ] || fail "a pack was created for a number without records"

# ---- a month with bundle pools: the chart has a step line ------------------
ev --msisdn 13900000005 --month 2026-10 --out "$W/b" "$CDR" 2>"$W/err" || fail "bundle pack"
grep -q '<polyline' "$W/b/internal/evidence.html" || fail "no allowance line"
grep -qF '套餐 sseg 抵扣 1 条,计费 0 条' "$W/b/internal/evidence.html" || fail "bundle arithmetic"
# A number with records but no overcharge: a pack without an SMS.
ev --msisdn 13900000002 --month 2026-10 --out "$W/ok" "$CDR" 2>"$W/err" || fail "clean pack"
[ ! -e "$W/ok/customer/sms.txt" ] || fail "SMS for a month without refund"
grep -qF '未发现多收费用' "$W/ok/customer/evidence.html" || fail "no-overcharge wording"

# ---- the bundled example month (when present) -----------------------------
EX="$TESTDATA/example"
if [ -f "$EX/truth-candidates.csv" ]; then
    line=$(sed -n 2p "$EX/truth-candidates.csv")
    num=$(echo "$line" | cut -d, -f1)
    refund=$(echo "$line" | cut -d, -f5)
    "$CDRECON" evidence --no-pdf --tariff "$EX/tariff" --date 2026-11-05 --msisdn "$num" \
        --month 2026-10 --out "$W/ex" "$EX"/cdr/* 2>"$W/err" || fail "example pack: $(cat "$W/err")"
    grep -qF "退费金额${refund}元" "$W/ex/customer/sms.txt" || fail "example refund $refund"
    for h in $(cd "$EX/cdr" && sha256sum * | cut -d' ' -f1); do
        grep -q "^input	$h	" "$W/ex/manifest" || fail "example input hash"
    done
    # every other party of that number, in full, must be absent from the customer copy
    for p in $( (cat "$EX"/cdr/*.csv; gzip -dc "$EX"/cdr/*.gz) |
                awk -F, -v n="$num" '$2 == n { print $5 }' | grep -E '^[0-9]{8,}$' | sort -u); do
        if grep -rqF "$p" "$W/ex/customer"; then fail "example: customer copy shows $p"; fi
    done
fi
echo ok
