#!/bin/sh
# Regenerates one small refused tariff directory per refusal reason.
# Each directory is the base tariff below with one table changed; its file
# `expected` is the exact message (after "cdrecon: check-tariff: ") that
# tests/cli/t_tariff_bad.sh checks; @DIR@ stands for the directory path.
# Run from anywhere: sh testdata/tariff-bad/regen.sh
set -eu
cd "$(dirname "$0")"
for d in */; do [ -f "$d/expected" ] && rm -rf "$d"; done

base() {
    mkdir -p "$1"
    printf 'plan,monthly_fee,rounding,sms_single_chars,sms_part_chars,band_rule\np,10,0.01,70,70,start\n' >"$1/plans.csv"
    printf 'band,days,from,to\npeak,weekday,08:00,20:00\noff,weekday,20:00,08:00\noff,weekend,00:00,24:00\n' >"$1/bands.csv"
    printf 'plan,service,direction,prefix,band,price,unit,increment,pool\np,voice,mo,*,peak,0.19,60,60,vmin\np,voice,mo,*,off,0.10,60,60,vmin\np,sms,mo,*,*,0.10,1,1,\n' >"$1/rates.csv"
    printf 'plan,pool,allowance,unit\np,vmin,100,min\n' >"$1/bundles.csv"
    printf 'plan,service,percent\np,voice,10\n' >"$1/discounts.csv"
    printf 'prefix,label\n110,police\n' >"$1/free_numbers.csv"
    printf 'msisdn,plan,valid_from,valid_to,vip,join_date\n13800000001,p,2024-01-01,,0,\n' >"$1/subscribers.csv"
    printf 'msisdn,service_code,valid_from,valid_to\n13800000001,SP1,2024-01-01,2024-01-31\n' >"$1/subscriptions.csv"
    printf 'msisdn,date,amount,company_liable,border_roaming\n13800000001,2024-01-05,1.00,0,0\n' >"$1/refunds.csv"
}
# case NAME FILE CONTENT EXPECTED  (CONTENT "-" removes FILE)
case_() {
    base "$1"
    if [ "$3" = "-" ]; then rm -f "$1/$2"; else printf "$3" >"$1/$2"; fi
    printf '%s\n' "$4" >"$1/expected"
}
R='plan,service,direction,prefix,band,price,unit,increment,pool\n'
B='band,days,from,to\n'
S='msisdn,plan,valid_from,valid_to,vip,join_date\n'
P='plan,monthly_fee,rounding,sms_single_chars,sms_part_chars,band_rule\n'

case_ missing-plans plans.csv - "plans.csv: required table is missing from @DIR@"
case_ missing-rates rates.csv - "rates.csv: required table is missing from @DIR@"
case_ missing-subscribers subscribers.csv - "subscribers.csv: required table is missing from @DIR@"
case_ empty-plans plans.csv "" "plans.csv:1: empty file: no header row"
case_ no-plans plans.csv "$P" "plans.csv:1: no plans"
case_ missing-column rates.csv 'plan,service,prefix\np,voice,*\n' "rates.csv:1: missing required column 'price'"
case_ duplicate-column rates.csv 'plan,service,price,PRICE\np,voice,1,1\n' "rates.csv:1: column 'price' appears twice"
case_ broken-quoting rates.csv "${R}p,voice,mo,\"1\"38,*,0.1,60,60,\n" "rates.csv:2: malformed CSV (bad quoting)"
case_ unterminated-quote rates.csv "${R}p,sms,mo,*,*,0.10,1,1,\"\n" "rates.csv:2: malformed CSV (unterminated quote)"
case_ field-count subscribers.csv "${S}13800000001,p,2024-01-01\n" "subscribers.csv:2: 3 fields, but the header has 6"
case_ duplicate-plan plans.csv "${P}p,10,,,,\nq,5,,,,\np,12,,,,\n" "plans.csv:4: duplicate plan 'p' (first at line 2)"
case_ negative-fee plans.csv "${P}p,-10,,,,\n" "plans.csv:2: negative monthly_fee -10"
case_ bad-money plans.csv "${P}p,10.5.1,,,,\n" "plans.csv:2: bad monthly_fee '10.5.1' (a decimal amount in yuan, e.g. 0.19)"
case_ money-7-decimals rates.csv "${R}p,sms,mo,*,*,0.0000001,1,1,\n" "rates.csv:2: price '0.0000001' has more than 6 decimals or is too large"
case_ bad-rounding plans.csv "${P}p,10,0.03,,,\n" "plans.csv:2: rounding 0.03 must divide 1 yuan (0.01, 0.05, 0.1, ...) or be whole yuan"
case_ zero-rounding plans.csv "${P}p,10,0,,,\n" "plans.csv:2: rounding 0 must be positive"
case_ sms-chars-zero plans.csv "${P}p,10,,0,,\n" "plans.csv:2: sms_single_chars '0' must be a whole number from 1 to 1000000"
case_ sms-part-chars-bad plans.csv "${P}p,10,,,7x,\n" "plans.csv:2: sms_part_chars '7x' must be a whole number from 1 to 1000000"
case_ bad-band-rule plans.csv "${P}p,10,,,,spilt\n" "plans.csv:2: bad band_rule 'spilt' (start or split)"
case_ bad-days bands.csv "${B}peak,weekdays,00:00,24:00\n" "bands.csv:2: bad days 'weekdays' (all, weekday or weekend)"
case_ bad-time bands.csv "${B}peak,all,25:00,08:00\n" "bands.csv:2: bad from '25:00' (HH:MM, 00:00 to 23:59)"
case_ bad-time-to bands.csv "${B}peak,all,08:00,8:00\n" "bands.csv:2: bad to '8:00' (HH:MM, 00:00 to 24:00)"
case_ band-from-equals-to bands.csv "${B}peak,all,08:00,08:00\n" "bands.csv:2: from equals to (08:00): a band must cover a time span"
case_ bands-overlap bands.csv "${B}peak,weekday,08:00,20:00\noff,weekday,19:00,08:00\noff,weekend,00:00,24:00\n" "bands.csv:3: band 'off' overlaps band 'peak' (line 2) on weekdays at 19:00"
case_ bands-overlap-all bands.csv "${B}peak,all,08:00,20:00\noff,weekday,20:00,08:00\noff,weekend,00:00,24:00\n" "bands.csv:4: band 'off' overlaps band 'peak' (line 2) on weekends at 08:00"
case_ bands-overlap-wrap bands.csv "${B}off,weekday,22:00,08:00\npeak,weekday,07:00,22:00\noff,weekend,00:00,24:00\n" "bands.csv:3: band 'peak' overlaps band 'off' (line 2) on weekdays at 07:00"
case_ bands-gap bands.csv "${B}peak,weekday,08:00,20:00\noff,weekday,21:00,08:00\noff,weekend,00:00,24:00\n" "bands.csv:2: bands leave a gap on weekdays from 20:00 to 21:00 (every minute of weekdays and weekends needs exactly one band)"
case_ bands-gap-weekend bands.csv "${B}peak,weekday,08:00,20:00\noff,weekday,20:00,08:00\n" "bands.csv:3: bands leave a gap on weekends from 00:00 to 24:00 (every minute of weekdays and weekends needs exactly one band)"
case_ band-star bands.csv "${B}*,all,00:00,24:00\n" "bands.csv:2: band '*' is reserved (it means any band in rates.csv)"
case_ unknown-plan-rate rates.csv "${R}q,sms,mo,*,*,0.10,1,1,\n" "rates.csv:2: unknown plan 'q' (not in plans.csv)"
case_ unknown-service rates.csv "${R}p,mms,mo,*,*,0.10,1,1,\n" "rates.csv:2: unknown service 'mms' (voice, sms, data or vas)"
case_ unknown-direction rates.csv "${R}p,sms,out,*,*,0.10,1,1,\n" "rates.csv:2: unknown direction 'out' (mo or mt)"
case_ bad-prefix rates.csv "${R}p,voice,mo,+86,*,0.10,60,60,\n" "rates.csv:2: bad prefix '+86' (digits, or * for any)"
case_ unknown-band rates.csv "${R}p,voice,mo,*,peak,0.19,60,60,\np,voice,mo,*,peek,0.10,60,60,\n" "rates.csv:3: band 'peek' is not in bands.csv"
case_ band-without-bands-table bands.csv - "rates.csv:2: band 'peak' is not in bands.csv"
case_ negative-price rates.csv "${R}p,sms,mo,*,*,-0.10,1,1,\n" "rates.csv:2: negative price -0.10"
case_ empty-price rates.csv "${R}p,sms,mo,*,*,,1,1,\n" "rates.csv:2: price is empty"
case_ unit-zero rates.csv "${R}p,voice,mo,*,*,0.19,0,60,\n" "rates.csv:2: unit '0' must be a whole number > 0"
case_ increment-zero rates.csv "${R}p,voice,mo,*,*,0.19,60,0,\n" "rates.csv:2: increment '0' must be a whole number > 0"
case_ increment-over-limit rates.csv "${R}p,voice,mo,*,*,0.19,60,10000000000000000000,\n" "rates.csv:2: increment '10000000000000000000' out of range (at most 1000000000000)"
case_ increment-negative rates.csv "${R}p,data,mo,*,*,0.29,1024,-1,\n" "rates.csv:2: increment '-1' must be a whole number > 0"
case_ sms-unit rates.csv "${R}p,sms,mo,*,*,0.10,2,1,\n" "rates.csv:2: sms is priced per segment: unit and increment must be 1 (or empty)"
case_ duplicate-rate rates.csv "${R}p,sms,mo,106,*,0.10,1,1,\np,voice,mo,*,*,0.1,60,60,\np,sms,,106,*,0.05,1,1,\n" "rates.csv:4: duplicate rate: plan 'p' sms mo prefix '106' band '*' is already at line 2"
case_ pool-no-bundle rates.csv "${R}p,sms,mo,*,*,0.10,1,1,smspool\n" "rates.csv:2: pool 'smspool' has no bundles.csv row for plan 'p'"
case_ bundle-unit-mismatch rates.csv "${R}p,sms,mo,*,*,0.10,1,1,vmin\n" "rates.csv:2: sms usage draws from pool 'vmin', whose allowance is in min (bundles.csv:2); sms needs seg"
case_ vas-pool rates.csv "${R}p,vas,mo,SP1,*,5,1,1,vmin\n" "rates.csv:2: vas usage cannot draw from a bundle pool"
case_ unknown-plan-bundle bundles.csv 'plan,pool,allowance,unit\nx,vmin,100,min\n' "bundles.csv:2: unknown plan 'x' (not in plans.csv)"
case_ negative-allowance bundles.csv 'plan,pool,allowance,unit\np,vmin,-100,min\n' "bundles.csv:2: negative allowance -100"
case_ bad-allowance bundles.csv 'plan,pool,allowance,unit\np,vmin,1.5,min\n' "bundles.csv:2: bad allowance '1.5' (a whole number >= 0)"
case_ allowance-over-limit bundles.csv 'plan,pool,allowance,unit\np,vmin,1000000000001,min\n' "bundles.csv:2: allowance '1000000000001' out of range (at most 1000000000000)"
case_ bad-bundle-unit bundles.csv 'plan,pool,allowance,unit\np,vmin,100,hours\n' "bundles.csv:2: unknown bundle unit 'hours' (min, seg or MB)"
case_ duplicate-bundle bundles.csv 'plan,pool,allowance,unit\np,vmin,100,min\np,vmin,50,min\n' "bundles.csv:3: duplicate bundle for plan 'p' pool 'vmin' (first at line 2)"
case_ unknown-plan-discount discounts.csv 'plan,service,percent\nz,voice,10\n' "discounts.csv:2: unknown plan 'z' (not in plans.csv)"
case_ duplicate-discount discounts.csv 'plan,service,percent\np,voice,10\np,VOICE,20\n' "discounts.csv:3: duplicate discount for plan 'p' voice (first at line 2)"
case_ percent-zero discounts.csv 'plan,service,percent\np,voice,0\n' "discounts.csv:2: percent 0 must be > 0 and <= 100"
case_ percent-over-100 discounts.csv 'plan,service,percent\np,voice,100.5\n' "discounts.csv:2: percent 100.5 must be > 0 and <= 100"
case_ bad-percent discounts.csv 'plan,service,percent\np,voice,20%%\n' "discounts.csv:2: bad percent '20%' (a decimal such as 20 or 12.5)"
case_ free-star free_numbers.csv 'prefix,label\n*,all\n' "free_numbers.csv:2: bad prefix '*' (digits; '*' would make every call free)"
case_ duplicate-free free_numbers.csv 'prefix,label\n110,police\n120,ambulance\n110,again\n' "free_numbers.csv:4: duplicate free-number prefix '110' (first at line 2)"
case_ bad-number subscribers.csv "${S}138-0000-0001,p,2024-01-01,,0,\n" "subscribers.csv:2: bad msisdn '138-0000-0001' (digits, optional leading +)"
case_ unknown-plan-subscriber subscribers.csv "${S}13800000001,gold,2024-01-01,,0,\n" "subscribers.csv:2: unknown plan 'gold' (not in plans.csv)"
case_ bad-date subscribers.csv "${S}13800000001,p,2024-02-30,,0,\n" "subscribers.csv:2: bad valid_from '2024-02-30' (YYYY-MM-DD)"
case_ empty-valid-from subscribers.csv "${S}13800000001,p,,,0,\n" "subscribers.csv:2: valid_from is empty"
case_ valid-to-before-from subscribers.csv "${S}13800000001,p,2024-03-01,2024-02-29,0,\n" "subscribers.csv:2: valid_to 2024-02-29 is before valid_from 2024-03-01"
case_ subscriber-overlap subscribers.csv "${S}13800000001,p,2024-03-01,,0,\n13900000001,p,2024-01-01,,0,\n+8613800000001,p,2024-01-01,2024-03-01,0,\n" "subscribers.csv:4: msisdn 13800000001 has overlapping plan periods (with line 2, both in force on 2024-03-01)"
case_ bad-vip subscribers.csv "${S}13800000001,p,2024-01-01,,maybe,\n" "subscribers.csv:2: bad vip 'maybe' (0/1, yes/no, true/false)"
case_ bad-join-date subscribers.csv "${S}13800000001,p,2024-01-01,,0,2024/01/01\n" "subscribers.csv:2: bad join_date '2024/01/01' (YYYY-MM-DD)"
case_ subscription-bad-dates subscriptions.csv 'msisdn,service_code,valid_from,valid_to\n13800000001,SP1,2024-01-31,2024-01-01\n' "subscriptions.csv:2: valid_to 2024-01-01 is before valid_from 2024-01-31"
case_ subscription-bad-date subscriptions.csv 'msisdn,service_code,valid_from,valid_to\n13800000001,SP1,2024-13-01,\n' "subscriptions.csv:2: bad valid_from '2024-13-01' (YYYY-MM-DD)"
case_ subscription-no-code subscriptions.csv 'msisdn,service_code,valid_from,valid_to\n13800000001,,2024-01-01,\n' "subscriptions.csv:2: service_code is empty"
case_ negative-refund refunds.csv 'msisdn,date,amount,company_liable,border_roaming\n13800000001,2024-01-05,-1.00,0,0\n' "refunds.csv:2: negative amount -1.00"
case_ refund-bad-flag refunds.csv 'msisdn,date,amount,company_liable,border_roaming\n13800000001,2024-01-05,1.00,2,0\n' "refunds.csv:2: bad company_liable '2' (0/1, yes/no, true/false)"
# Limits (issue 14): rating must be able to compute the largest usage the
# reader accepts (docs/tariff.md "Limits").
case_ price-too-large rates.csv "${R}p,voice,mo,*,peak,999999999999.999999,60,60,vmin\np,voice,mo,*,off,0.10,60,60,vmin\n" "rates.csv:2: price 999999999999.999999 per 60 is too large: the longest call the reader accepts (10^9 s) is billed as 1000000020 seconds, which would cost more than 1000000000000 yuan (the limit of one record's charge): rating cannot compute it"
case_ price-too-large-data rates.csv "${R}p,data,mo,*,*,2,1,1,\n" "rates.csv:2: price 2.00 per 1 is too large: the largest session the reader accepts (10^15 bytes) is billed as 976562500000 KB, which would cost more than 1000000000000 yuan (the limit of one record's charge): rating cannot compute it"
case_ price-too-large-sms rates.csv "${R}p,sms,mo,*,*,100000,1,1,\n" "rates.csv:2: price 100000.00 per 1 is too large: the longest SMS the reader accepts (10^9 characters) is 14285715 segments, which would cost more than 1000000000000 yuan (the limit of one record's charge): rating cannot compute it"
case_ price-too-large-increment rates.csv "${R}p,voice,mo,*,peak,1000,1,1,\np,voice,mo,*,off,0.10,60,1200000000,\n" "rates.csv:2: price 1000.00 per 1 is too large: the longest call the reader accepts (10^9 s) is billed as 1200000000 seconds, which would cost more than 1000000000000 yuan (the limit of one record's charge): rating cannot compute it"
case_ unit-too-large rates.csv "${R}p,voice,mo,*,*,0.19,2000000000,60,\n" "rates.csv:2: unit 2000000000 is above 1073741824 (2^30): rating cannot compute it"
