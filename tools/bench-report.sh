#!/bin/sh
# make bench (issue 18): `cdrecon report` on the fixed-seed bench month's
# database. The database is made once by one `cdrecon run` over the month
# of tools/bench.sh (DIR/cdr.csv.gz, seed 42) and kept as DIR/report.db
# (made again when the month file is newer, or when report cannot read it).
# Then BENCH_RUNS (5) timed runs of `cdrecon report`; prints the median and
# the slowest wall time, and the peak RSS. Target: under 2 s.
# Usage: sh tools/bench-report.sh BUILD DIR
set -eu
BUILD=${1:-build}
D=$2
C="${BENCH_CDRECON:-$BUILD/cdrecon}"
RUNS=${BENCH_RUNS:-5}
DB="$D/report.db"
mkdir -p "$BUILD/bench"
W=$(mktemp -d "$BUILD/bench/tmp.XXXXXX")
trap 'rm -rf "$W"' EXIT
make_db() {
    echo "bench-report: making $DB (one run over $D/cdr.csv.gz)" >&2
    rm -rf "$DB" "$DB.state" "$D/report-run"
    "$C" run --quiet --tariff "$D/tariff" --db "$DB" --out "$D/report-run" "$D/cdr.csv.gz" ||
        [ $? -eq 9 ] || { echo "bench-report: the run failed"; exit 1; }
}
if [ ! -s "$DB" ] || [ "$D/cdr.csv.gz" -nt "$DB" ]; then
    make_db
elif ! "$C" report --quiet --db "$DB" --out "$W" 2>/dev/null; then
    make_db # (a database of another schema)
fi
sizes=$(sqlite3 -readonly "$DB" "SELECT (SELECT count(*) FROM findings) || ' findings, ' ||
    (SELECT count(*) FROM candidates) || ' candidates, ' ||
    (SELECT coalesce(sum(records), 0) FROM state_files WHERE kind = 'segment') || ' records'")
echo "bench-report: $DB ($sizes, $(du -k "$DB" | cut -f1) KB), load: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$W/times"
i=0
while [ "$i" -lt "$RUNS" ]; do
    /usr/bin/time -f "%e %M" -o "$W/t" "$C" report --quiet --db "$DB" --out "$W/out"
    tail -n 1 "$W/t" >>"$W/times"
    i=$((i + 1))
done
sort -n "$W/times" | awk -v n="$RUNS" -v size="$(wc -c <"$W/out/report.html")" '
    { t[NR] = $1; if ($2 > rss) rss = $2 }
    END { printf "bench-report: cdrecon report  median %.2f s  slowest %.2f s  peak %d MB  page %d KB  (target < 2 s: %s)\n",
                 t[int((n + 1) / 2)], t[n], rss / 1024, size / 1024, t[n] < 2 ? "met" : "NOT MET" }'
