#!/bin/sh
# The progress line (issue 14, item 18): the first rate printed was absurd
# ("187347556932 rows/s": the rows of the reader's first report over the
# microseconds since). A rate is shown only after a second of the file, and
# every rate shown is at most the file's rows over one second.
# The line is drawn only on a terminal: script(1) gives the command one.
set -u
: "${CDRECON:?}"
command -v script >/dev/null 2>&1 || { echo "SKIP: no script(1)"; exit 77; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# about 36 MiB, 380,000 rows: the reader reports every 16 MiB
awk 'BEGIN {
    print "record_id,msisdn,service,direction,peer,start_time,duration_s,billed,note"
    for (i = 0; i < 380000; i++)
        printf "R%09d,13800000001,voice,mo,13900000000,2026-10-01 10:00:00,60,0.19,%s\n", i,
               "padding-padding-padding"
}' >"$W/big.csv"
rows=380000
# the first 17 MiB, a pause, then the rest: the second report comes more
# than a second after the first
cat >"$W/feed.sh" <<EOS
{ head -c 17825792 "$W/big.csv"; sleep 1.5; tail -c +17825793 "$W/big.csv"; } |
    "$CDRECON" scan - >/dev/null
EOS
script -qec "sh $W/feed.sh" /dev/null >"$W/tty.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: scan exit $rc"; cat "$W/tty.out"; exit 1; }
tr '\r' '\n' <"$W/tty.out" | grep -o '[0-9]* rows/s' | cut -d' ' -f1 >"$W/rates"
n=$(wc -l <"$W/rates")
[ "$n" -ge 1 ] || { echo "FAIL: no rate shown after the pause"; tr '\r' '\n' <"$W/tty.out"; exit 1; }
while read -r r; do
    if [ "$r" -gt "$rows" ]; then
        echo "FAIL: absurd rate $r rows/s (the file has $rows rows)"
        tr '\r' '\n' <"$W/tty.out"
        exit 1
    fi
done <"$W/rates"
echo "progress: $n rates shown, all at most $rows rows/s"
