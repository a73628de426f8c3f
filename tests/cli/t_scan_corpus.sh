#!/bin/sh
# The bad-input corpus (tests/corpus/bad/, expectations in EXPECT) plus inputs
# generated here: a good gzip truncated after every 1..N-1 bytes, every byte
# of it flipped, and a 100 MB field that must be rejected in bounded memory.
# Every run must give a clear error or reject, and read = accepted + rejected.
set -u
: "${CDRECON:?}"
dir=tests/corpus/bad
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

counts_ok() { # stdout file: every per-file and total line must add up
    sed -n 's/.*[ :]\([0-9][0-9]*\) read, \([0-9][0-9]*\) accepted, \([0-9][0-9]*\) rejected.*/\1 \2 \3/p' "$1" |
        awk '{ n++; if ($1 != $2 + $3) { print "counts do not add up: " $0; bad = 1 } }
             END { if (n < 2) { print "no count lines"; bad = 1 } exit bad }'
}

grep -v '^#' "$dir/EXPECT" | while read -r name rc text; do
    "$CDRECON" scan --quiet --rejects "$tmp/rej.csv" "$dir/$name" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" != "$rc" ]; then echo "FAIL $name: exit $got, expected $rc"; cat "$tmp/out" "$tmp/err"; exit 1; fi
    if ! cat "$tmp/out" "$tmp/rej.csv" | grep -qF -- "$text"; then
        echo "FAIL $name: no '$text' in:"; cat "$tmp/out" "$tmp/rej.csv"; exit 1; fi
    counts_ok "$tmp/out" || exit 1
done || fail=1

# Truncated and flipped gzip, generated from one good gzip.
good="$tmp/good.csv.gz"
gzip -n -c tests/corpus/bad/crlf.csv > "$good"
size=$(wc -c < "$good")
k=1
while [ "$k" -lt "$size" ]; do
    head -c "$k" "$good" > "$tmp/cut.csv.gz"
    "$CDRECON" scan --quiet "$tmp/cut.csv.gz" >"$tmp/out" 2>/dev/null
    got=$?
    if [ "$got" != 3 ] || ! grep -qE "truncated gzip stream|corrupt gzip" "$tmp/out"; then
        echo "FAIL: gzip cut after $k of $size bytes: exit $got"; cat "$tmp/out"; fail=1; break; fi
    counts_ok "$tmp/out" || { fail=1; break; }
    k=$((k + 1))
done
echo "truncated gzip: $((k - 1)) cuts checked"
mkdir "$tmp/flip"
python3 -c "
import sys
d = open(sys.argv[1], 'rb').read()
for k in range(len(d)):
    e = bytearray(d); e[k] ^= 0x5a
    open('%s/%d.csv.gz' % (sys.argv[2], k), 'wb').write(e)
" "$good" "$tmp/flip"
k=0
while [ "$k" -lt "$size" ]; do
    "$CDRECON" scan --quiet "$tmp/flip/$k.csv.gz" >"$tmp/out" 2>/dev/null
    got=$?
    # the mtime/xfl/OS header bytes (4..9) may be harmless; anything else must fail
    if [ "$k" -ge 4 ] && [ "$k" -le 9 ]; then ok="0 3"; else ok="3 4"; fi
    case " $ok " in *" $got "*) ;; *) echo "FAIL: flip at $k: exit $got"; cat "$tmp/out"; fail=1; break;; esac
    counts_ok "$tmp/out" || { fail=1; break; }
    k=$((k + 1))
done
echo "flipped gzip: $k offsets checked"

# A 100 MB field: rejected, next row read, peak RSS well under 64 MB.
{
    printf 'record_id,msisdn,service,peer,start_time,duration_s,billed\nbig,13800138000,voice,10086,2024-03-01 08:00:00,60,'
    head -c 100000000 /dev/zero | tr '\0' 'x'
    printf '\nr2,13800138000,voice,10086,2024-03-01 08:00:00,60,0.19\n'
} > "$tmp/big.csv"
/usr/bin/time -f '%M' -o "$tmp/rss" "$CDRECON" scan --quiet --rejects "$tmp/rej.csv" "$tmp/big.csv" >"$tmp/out" 2>/dev/null
got=$?
rss=$(tail -n 1 "$tmp/rss")
echo "100 MB field: exit $got, peak RSS ${rss} KB"
[ "$got" = 9 ] || { echo "FAIL: 100 MB field exit $got"; fail=1; }
grep -q "1 read, 1 accepted, 1 rejected" "$tmp/out" || { grep -q "2 read, 1 accepted, 1 rejected" "$tmp/out" || { echo "FAIL: counts"; cat "$tmp/out"; fail=1; }; }
grep -q "row longer than 1048576 bytes (a field longer than 65536 bytes)" "$tmp/rej.csv" || { echo "FAIL: reason"; head -c 300 "$tmp/rej.csv"; fail=1; }
[ -n "${CDRECON_SLOW_TESTS:-}" ] || [ "$rss" -lt 65536 ] || { echo "FAIL: peak RSS $rss KB >= 64 MB"; fail=1; }
# The same through gzip on stdin.
gzip -1 -c "$tmp/big.csv" | /usr/bin/time -f '%M' -o "$tmp/rss" "$CDRECON" scan --quiet - >"$tmp/out" 2>/dev/null
got=$?
rss=$(tail -n 1 "$tmp/rss")
echo "100 MB field, gzip on stdin: exit $got, peak RSS ${rss} KB"
[ "$got" = 9 ] && { [ -n "${CDRECON_SLOW_TESTS:-}" ] || [ "$rss" -lt 65536 ]; } &&
    grep -q "2 read, 1 accepted, 1 rejected" "$tmp/out" || { echo "FAIL: gzip stdin big field"; cat "$tmp/out"; fail=1; }
exit $fail
