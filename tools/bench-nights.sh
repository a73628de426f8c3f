#!/bin/sh
# make bench (a month over many nights, issue 13): the fixed-seed bench month
# (seed 42, BENCH_ROWS rows, 30 days) as 30 nightly files (cdrgen --by-day),
# run night by night into one database, BENCH_NIGHT_RUNS times from a fresh
# database. Each night's run is paired with `zcat` of that night's file; the
# table shows the medians per night, and the line that matters: night 30
# against night 1 (target <= 1.5: cost follows the new records, not the
# month to date). Night 1 and night 30 then run back to back
# BENCH_NIGHT_PAIRS times (night 30 on a copy of the state before it), a
# paired figure that this VM's drifting speed moves less. Then the state's
# size against the gzip it came from
# (target <= 0.5), before and after `cdrecon compact`, and one run over all
# 30 files.
set -eu
BUILD=${1:-build}
ROWS=${BENCH_ROWS:-10000000}
RUNS=${BENCH_NIGHT_RUNS:-3}
C="${BENCH_CDRECON:-$BUILD/cdrecon}"
D="$BUILD/bench/nights30-seed42-$ROWS"
if [ ! -s "$D/cdr/cdr-2026-10-30.csv.gz" ] || [ ! -s "$D/tariff/plans.csv" ]; then
    echo "bench-nights: generating $D (30 nightly files, seed 42)" >&2
    rm -rf "$D"
    mkdir -p "$D"
    "$BUILD/tools/cdrgen" --seed 42 --rows "$ROWS" --errors 0.01 --days 30 --tariff "$D/tariff" \
        --out-dir "$D/cdr" --by-day >&2
fi
W="$D/work"
rm -rf "$W"
mkdir -p "$W"
ls "$D"/cdr/cdr-2026-10-[0-9]*.csv.gz >"$W/nights"
NN=$(wc -l <"$W/nights")
PAIRS=${BENCH_NIGHT_PAIRS:-5}
echo "bench-nights: machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$W/times"
r=0
while [ "$r" -lt "$RUNS" ]; do
    r=$((r + 1))
    rm -rf "$W/db" "$W/db.state" "$W/out"
    n=0
    while read -r f; do
        n=$((n + 1))
        # (the previous night's files reach the disk first, untimed: its
        # writeback is its own cost, and a real night comes a day later)
        sync
        /usr/bin/time -f "%e %U %S" -o "$W/z" sh -c "zcat '$f' >/dev/null"
        /usr/bin/time -f "%e %M %U %S" -o "$W/t" "$C" run --tariff "$D/tariff" --db "$W/db" \
            --out "$W/out" "$f" >"$W/sum.$n" 2>"$W/err" || [ $? -eq 9 ] ||
            { cat "$W/err"; echo "bench-nights: night $n failed"; exit 1; }
        echo "$n $(tail -n 1 "$W/t") $(tail -n 1 "$W/z")" >>"$W/times"
        if [ "$r" -eq "$RUNS" ] && [ "$n" -eq $((NN - 1)) ]; then
            # (the state before the last night, for the paired rounds below)
            rm -rf "$W/pre"
            mkdir -p "$W/pre"
            cp -a "$W/db" "$W/db.state" "$W/pre/"
        fi
    done <"$W/nights"
done
gz=$(cat "$D"/cdr/cdr-2026-10-[0-9]*.csv.gz | wc -c)
st=$(du -sb "$W/db.state" | cut -f1)
dbb=$(wc -c <"$W/db")
python3 - "$W/times" "$gz" "$st" "$dbb" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
per = {}
for n, t, rss, tu, ts, z, zu, zs in rows:
    per.setdefault(int(n), []).append((float(t), int(rss), float(z),
                                       float(tu) + float(ts), float(zu) + float(zs)))
med = lambda xs: statistics.median(xs)
# wall times, and CPU times (user + sys) beside them: on a shared machine
# the CPU ratio is the steadier one
print("bench-nights: night   run s  zcat s  ratio  run cpu  zcat cpu  cpu ratio  peak MB")
out = {}
for n in sorted(per):
    t = med([x[0] for x in per[n]]); z = med([x[2] for x in per[n]])
    ratio = med([x[0] / x[2] for x in per[n]]); rss = max(x[1] for x in per[n]) // 1024
    c = med([x[3] for x in per[n]]); zc = med([x[4] for x in per[n]])
    cr = med([x[3] / max(x[4], 0.01) for x in per[n]])
    out[n] = (t, z, ratio, c, cr)
    if n <= 3 or n % 5 == 0 or n == max(per):
        print("bench-nights: %5d %7.2f %7.2f %6.2f %8.2f %9.2f %10.2f %8d"
              % (n, t, z, ratio, c, zc, cr, rss))
last = max(per)
print("bench-nights: night %d / night 1: time %.2f, ratio to zcat %.2f, CPU time %.2f "
      "(target <= 1.5)" % (last, out[last][0] / out[1][0], out[last][2] / out[1][2],
                           out[last][3] / out[1][3]))
gz, st, dbb = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("bench-nights: state after %d nights: %.1f MB for %.1f MB of gzip (%.2f; target <= 0.50); "
      "database %.1f MB" % (last, st / 1e6, gz / 1e6, st / gz, dbb / 1e6))
PY
# Paired rounds: whole passes drift with this VM's speed (a slow pass moves
# night 30 but not night 1, or the other way), so night 1 (a new database)
# and the last night (on a copy of the state before it, synced) also run
# back to back, PAIRS times, each with its zcat; the median of the rounds'
# ratios is the steadier figure.
if [ "$PAIRS" -gt 0 ] && [ -d "$W/pre" ]; then
    first=$(head -n 1 "$W/nights")
    lastf=$(tail -n 1 "$W/nights")
    : >"$W/pairs"
    p=0
    while [ "$p" -lt "$PAIRS" ]; do
        p=$((p + 1))
        rm -rf "$W/p1" "$W/pn"
        mkdir -p "$W/p1" "$W/pn"
        cp -a "$W/pre/db" "$W/pre/db.state" "$W/pn/"
        line=""
        for which in 1 n; do
            if [ "$which" = 1 ]; then f=$first; else f=$lastf; fi
            sync
            /usr/bin/time -f "%e %U %S" -o "$W/z" sh -c "zcat '$f' >/dev/null"
            /usr/bin/time -f "%e %U %S" -o "$W/t" "$C" run --quiet --tariff "$D/tariff" \
                --db "$W/p$which/db" --out "$W/p$which/out" "$f" >/dev/null 2>"$W/err" ||
                [ $? -eq 9 ] || { cat "$W/err"; echo "bench-nights: paired night failed"; exit 1; }
            line="$line $(tail -n 1 "$W/t") $(tail -n 1 "$W/z")"
        done
        echo "$line" >>"$W/pairs"
    done
    python3 - "$W/pairs" "$NN" <<'PY'
import statistics, sys
med = statistics.median
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
t1 = [r[0] for r in rows]; tn = [r[6] for r in rows]
c1 = [r[1] + r[2] for r in rows]; cn = [r[7] + r[8] for r in rows]
z1 = [r[3] for r in rows]; zn = [r[9] for r in rows]
rt = [b / a for a, b in zip(t1, tn)]
rz = [(b / max(zb, 0.01)) / (a / max(za, 0.01)) for a, b, za, zb in zip(t1, tn, z1, zn)]
rc = [b / a for a, b in zip(c1, cn)]
print("bench-nights: paired rounds (night 1 on a new database, night %s on a copy of the "
      "state before it), %d rounds:" % (sys.argv[2], len(rows)))
print("bench-nights:   night 1 s   %s" % " ".join("%.2f" % x for x in t1))
print("bench-nights:   night %s s  %s" % (sys.argv[2], " ".join("%.2f" % x for x in tn)))
print("bench-nights:   ratio       %s" % " ".join("%.2f" % x for x in rt))
print("bench-nights: paired night %s / night 1 (medians): time %.2f, ratio to zcat %.2f, "
      "CPU time %.2f (target <= 1.5)" % (sys.argv[2], med(rt), med(rz), med(rc)))
PY
    rm -rf "$W/p1" "$W/pn"
fi
if "$C" help compact >/dev/null 2>&1; then
    /usr/bin/time -f "bench-nights: compact: %e s, %M KB peak" "$C" compact --db "$W/db" --quiet
    st2=$(du -sb "$W/db.state" | cut -f1)
    echo "bench-nights: state after compact: $st2 bytes ($(awk -v a="$st2" -v b="$gz" 'BEGIN {printf "%.2f", a / b}') of the gzip)"
fi
# one run over all the nights
rm -rf "$W/db1" "$W/db1.state" "$W/out1"
/usr/bin/time -f "%e %M" -o "$W/t1" "$C" run --quiet --tariff "$D/tariff" --db "$W/db1" \
    --out "$W/out1" $(cat "$W/nights") >/dev/null 2>&1 || [ $? -eq 9 ]
/usr/bin/time -f "%e" -o "$W/z1" sh -c "cat $(tr '\n' ' ' <"$W/nights") | zcat >/dev/null"
st1=$(du -sb "$W/db1.state" | cut -f1)
echo "bench-nights: one run over the 30 files: $(cut -d' ' -f1 "$W/t1") s ($(awk -v a="$(cut -d' ' -f1 "$W/t1")" -v b="$(cat "$W/z1")" 'BEGIN {printf "%.2f", a / b}') x zcat), state $st1 bytes ($(awk -v a="$st1" -v b="$gz" 'BEGIN {printf "%.2f", a / b}') of the gzip)"
for x in findings candidates; do
    cmp -s "$W/out/$x.csv" "$W/out1/$x.csv" || echo "bench-nights: MISMATCH: $x.csv of the nights and of one run differ"
done
