#!/bin/sh
# check-tariff on the small valid tariff: exit 0 and a summary that says what
# was loaded; --help; usage errors; a missing directory.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
fail() { echo "FAIL: $*"; exit 1; }
out=$("$CDRECON" check-tariff "$TESTDATA/tariff-mini") || fail "tariff-mini refused (exit $?)"
for want in \
    "plans: 2" \
    "  basic: monthly_fee 18.00, rounding 0.01, sms 70/70 chars, band_rule start" \
    "  split: monthly_fee 38.00, rounding 0.01, sms 70/67 chars, band_rule split" \
    "    bundle voice_min: 100 min" \
    "    bundle data_pool: 500 MB" \
    "    discount voice: 12.5%" \
    "  weekday  00:00-07:00 offpeak 07:00-23:00 peak 23:00-24:00 offpeak" \
    "  weekend  00:00-24:00 offpeak" \
    "rates: 15" \
    "free numbers: 3" \
    "subscribers: 4 plan periods, 3 numbers" \
    "subscriptions: 3" \
    "refunds: 3"; do
    printf '%s\n' "$out" | grep -qxF -- "$want" || fail "summary lacks: $want"
done
sum=$(sha256sum "$TESTDATA/tariff-mini/rates.csv" | cut -c1-64)
printf '%s\n' "$out" | grep -q "rates.csv .* sha256 $sum" || fail "no sha256 of rates.csv"

"$CDRECON" check-tariff --help | grep -q "usage: cdrecon check-tariff DIR" || fail "--help"
"$CDRECON" check-tariff >/dev/null 2>&1; rc=$?
[ "$rc" -eq 1 ] || fail "no argument: exit $rc, want 1"
"$CDRECON" check-tariff --bogus x >/dev/null 2>&1; rc=$?
[ "$rc" -eq 1 ] || fail "bad option: exit $rc, want 1"
err=$("$CDRECON" check-tariff /nonexistent/tariff 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "missing dir: exit $rc, want 2"
printf '%s\n' "$err" | grep -q "^cdrecon: check-tariff: /nonexistent/tariff: " || fail "missing dir message: $err"
echo ok
