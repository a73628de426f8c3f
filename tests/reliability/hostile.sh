#!/bin/sh
# Hostile input within bounds: each case must end with a clear error or with
# the bad rows rejected, never a crash, and the process's peak memory (max RSS,
# GNU time or /proc) must stay under BUDGET_MB (default 512) with --mem 256M.
#   field    one row with a FIELD_MB (default 1024) MiB field, through stdin
#   numbers  NUMBERS (default 10,000,000) rows of distinct subscribers
#   bomb     BOMB_MB (default 1024) MiB of zeros, and as many newlines, gzip'd
#   encoding UTF-16 with BOM, Latin-1, invalid and overlong UTF-8, NUL bytes
# usage: hostile.sh [case...]      (default: all)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIELD_MB=${FIELD_MB:-1024}; NUMBERS=${NUMBERS:-10000000}; BOMB_MB=${BOMB_MB:-1024}
BUDGET_MB=${BUDGET_MB:-512}
W=$(mktemp -d /tmp/cdr-hostile.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
rel_month m 100 5 3 || rel_die "cdrgen failed"
HDR='record_id,msisdn,service,direction,peer,start_time,duration_s,bytes,sms_chars,billed'
bad=0
# judge NAME RC (OK0=1: exit 0 is right here; UNRATED=N: unrated.csv must hold N rows): peak RSS from rss.txt (KiB), exit status, message
judge() {
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' rss.txt)
    mb=$(( ${rss:-0} / 1024 ))
    v=ok
    [ "$2" -ge 128 ] && v="crash(rc=$2)"
    [ "$2" -eq 0 ] && [ "${OK0:-0}" = 0 ] && v="accepted-silently"
    [ -n "${UNRATED:-}" ] && [ "$(awk 'END{print NR-1}' out/unrated.csv 2>/dev/null)" != "$UNRATED" ] &&
        v="unrated-count($(awk 'END{print NR-1}' out/unrated.csv 2>/dev/null) != $UNRATED)"
    [ "$mb" -le "$BUDGET_MB" ] || v="over-budget(${mb}MiB)"
    msg=$(grep -m1 '^cdrecon' err | cut -c1-150)
    rej=$(awk 'END{print NR-1}' out/rejects.csv 2>/dev/null || echo -)
    echo "hostile $1: exit $2, peak ${mb} MiB, rejects ${rej}: $v: ${msg:-no message}"
    [ "$v" = ok ] || bad=$((bad + 1))
}
run() { # NAME FILE...: a run with the time/RSS measured
    name=$1; shift
    rm -rf out r.db
    /usr/bin/time -v "$CDRECON" run --quiet --mem 256M --tariff m/tariff --db r.db --out out "$@" \
        2>err <"${STDIN:-/dev/null}"
    rc=$?
    grep 'Maximum resident' err >rss.txt
    judge "$name" "$rc"
}
cases=${*:-field numbers bomb encoding}
command -v /usr/bin/time >/dev/null || rel_die "needs GNU time (apt-get install time)"
for c in $cases; do
    case $c in
    field)
        mkfifo big.fifo
        { echo "$HDR"; echo "R1,13800000001,voice,mo,10086,2026-10-01 08:00:00,60,,,0.19";
          printf 'R2,13800000001,voice,mo,'; head -c $((FIELD_MB * 1048576)) /dev/zero | tr '\0' 7;
          echo ',2026-10-01 09:00:00,60,,,0.19';
          echo "R3,13800000001,voice,mo,10086,2026-10-01 10:00:00,60,,,0.19"; } >big.fifo &
        STDIN=big.fifo run "field-${FIELD_MB}MiB" -
        wait; rm -f big.fifo
        ;;
    numbers)
        awk -v n="$NUMBERS" 'BEGIN { print "'"$HDR"'";
            for (i = 0; i < n; i++)
                printf "N%d,1%010d,sms,mo,10086,2026-10-%02d 12:00:00,,,10,0.10\n", i, i, i % 28 + 1 }' |
            gzip -1 >numbers.csv.gz
        # none of them is a subscriber: every row must come out unrated, none lost
        OK0=1 UNRATED=$NUMBERS run "numbers-$NUMBERS" numbers.csv.gz
        rm -f numbers.csv.gz
        ;;
    bomb)
        head -c $((BOMB_MB * 1048576)) /dev/zero | gzip -9 >zeros.csv.gz
        run "bomb-zeros-${BOMB_MB}MiB($(du -k zeros.csv.gz | cut -f1)KiB)" zeros.csv.gz
        { echo "$HDR"; head -c $((BOMB_MB * 1048576)) /dev/zero | tr '\0' '\n'; } | gzip -9 >nl.csv.gz
        OK0=1 run "bomb-newlines-${BOMB_MB}MiB($(du -k nl.csv.gz | cut -f1)KiB)" nl.csv.gz
        rm -f zeros.csv.gz nl.csv.gz
        ;;
    encoding)
        printf '%s\n%s\n' "$HDR" "R1,13800000001,sms,mo,10086,2026-10-01 08:00:00,,,10,0.10" |
            iconv -f UTF-8 -t UTF-16 >u16.csv
        run utf16-bom u16.csv
        { echo "$HDR"; printf 'R1,13800000001,sms,mo,10086,2026-10-01 08:00:00,,,10,0.10\n';
          printf 'R2\351,13800000001,sms,mo,10086,2026-10-01 08:00:01,,,10,0.10\n';
          printf 'R3,138000\300\2570001,sms,mo,10086,2026-10-01 08:00:02,,,10,0.10\n';
          printf 'R4,13800000001,sms,mo,100\000\00086,2026-10-01 08:00:03,,,10,0.10\n';
          printf 'R5,13800000001,sms,mo,10086,2026-10-01 08:00:04,,,\355\240\200,0.10\n';
          printf '\377\376R6,1380000000\37001,sms,mo,10086,2026-10-01 08:00:05,,,10,0.\34010\n'; } >mixed.csv
        run mixed-encodings mixed.csv
        ;;
    *) rel_die "unknown case $c" ;;
    esac
done
echo "hostile: $(echo $cases | wc -w) case groups, memory budget ${BUDGET_MB} MiB (--mem 256M), $bad problems"
[ "$bad" -eq 0 ]
