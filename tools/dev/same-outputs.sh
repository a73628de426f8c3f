#!/bin/sh
# tools/dev/same-outputs.sh — are two builds' outputs byte-identical?
#
#   sh tools/dev/same-outputs.sh REF_CDRECON [NEW_CDRECON [REF_CDRGEN [NEW_CDRGEN]]]
#
# For a change that must not change behaviour (a restructuring, issue 15):
# REF_* is a binary built from the starting point (e.g. `make` in another
# worktree, then copy build/cdrecon and build/tools/cdrgen); NEW_* default to
# build/cdrecon and build/tools/cdrgen. Each binary runs the same commands in
# the same directory ($WORK/run, moved aside to $WORK/ref or $WORK/new
# afterwards, so every absolute path it records is the same), over
#   (a) the bundled example month: check-tariff, scan, rate, run over
#       testdata/example/cdr (then the bad file), run night by night over
#       testdata/example/nights into one database (with --report), run
#       --rerate, compact, report, and investigate (text/csv/json, from the
#       database and from the files) and evidence --no-pdf (from the database
#       and from the files) for a few numbers;
#   (b) a generated month (cdrgen --seed 5 --rows 300000, 4 files, errors
#       and malformed rows): rate, run, run file by file, investigate and
#       evidence of its largest candidates;
# and then every file either wrote is compared with `cmp`, and every
# command's stdout, stderr and exit status. What is compared otherwise, and
# why:
#   *.db        `sqlite3 .dump` of a copy in which runs.started_at and
#               runs.finished_at (the wall clock of the run) and
#               state_files.bytes (see *.cds) are blanked;
#   manifest    the evidence manifest without its `created` line (wall clock)
#               and without the SHA-256 and size of its state files (*.cds);
#   report.html without the time it was made (`made ...Z`, wall clock);
#   *.cds *.cdk the month state's segments and checkpoints are not compared
#               byte for byte: the same binary writes different bytes for
#               the same records from one run to the next (ISA-L's stateless
#               deflate reads fields of the stack-allocated isal_zstream
#               that isal_deflate_stateless_init leaves unset; valgrind:
#               compress_col in stcodec.c), so the reference cannot be
#               matched. What they hold is compared through what is read
#               back from them: run --rerate over every stored month,
#               investigate --db, evidence --db, compact.
# report.html also shows each run's day (from runs.started_at): both
# sessions run within minutes, so they agree unless midnight UTC falls
# between them.
# The generated month is written once by REF_CDRGEN; NEW_CDRGEN writes it
# again and the two are compared too (cdrgen is built on the library).
#
# Exit 0 when everything is identical; 1 with the differences listed.
# WORK=DIR keeps the sessions in DIR (default: a temporary directory,
# removed at the end unless KEEP=1). Takes about a minute.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REF=${1:?usage: same-outputs.sh REF_CDRECON [NEW_CDRECON [REF_CDRGEN [NEW_CDRGEN]]]}
NEW=${2:-$ROOT/build/cdrecon}
NEW_GEN=${4:-$ROOT/build/tools/cdrgen}
REF_GEN=${3:-$NEW_GEN}
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
REF=$(abs "$REF"); NEW=$(abs "$NEW"); REF_GEN=$(abs "$REF_GEN"); NEW_GEN=$(abs "$NEW_GEN")
for b in "$REF" "$NEW" "$REF_GEN" "$NEW_GEN"; do
    [ -x "$b" ] || { echo "same-outputs: $b: not an executable" >&2; exit 2; }
done
if [ -n "${WORK:-}" ]; then
    rm -rf "$WORK" && mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/same-outputs.XXXXXX")
fi
WORK=$(abs "$WORK")
EX=$ROOT/testdata/example
G=$WORK/gen

# ---- the generated month, twice ------------------------------------------
gen() { # CDRGEN DIR
    "$1" --seed 5 --rows 300000 --tariff "$2/tariff" --out-dir "$2/cdr" --files 4 --level 1 \
        --errors 0.01 --truth "$2/truth.csv" --truth-candidates "$2/truth-candidates.csv" \
        --faults 0.0005 --faults-out "$2/faults.csv" --refund-edges >"$2.out" 2>"$2.err"
    echo $? >"$2.rc"
}
mkdir -p "$G" "$WORK/gen-new"
gen "$REF_GEN" "$G"
gen "$NEW_GEN" "$WORK/gen-new"

# ---- one session ---------------------------------------------------------
# c NAME CMD...: run CMD, its stdout/stderr/exit status into NAME.{out,err,rc}.
c() {
    cname=$1
    shift
    "$@" >"cmd/$cname.out" 2>"cmd/$cname.err"
    echo $? >"cmd/$cname.rc"
}
# The numbers investigated: the three largest refunds of a month's
# candidates.csv, and the first number of its findings.csv (chosen in the
# reference session, kept for the new one).
pick() { # CANDIDATES FINDINGS OUTFILE
    [ -s "$3" ] && return
    { tail -n +2 "$1" | sort -t, -k5,5gr -k1,1 | head -n 3 | cut -d, -f1
      tail -n +2 "$2" | head -n 1 | cut -d, -f1; } | sort -u >"$3"
}
session() { # BIN TAG
    B=$1
    rm -rf "$WORK/run"
    mkdir -p "$WORK/run/cmd"
    cd "$WORK/run" || exit 2
    T=$EX/tariff
    # (a) the example month
    c check-tariff "$B" check-tariff "$T"
    c scan "$B" scan "$EX"/cdr/* "$EX/bad/cdr-2026-10-bad.csv"
    c rate "$B" rate --tariff "$T" --out rate.csv --rejects rate-rejects.csv "$EX"/cdr/*
    c rate-month "$B" rate --tariff "$T" --month 2026-10 --threads 1 "$EX"/cdr/*
    c run-one "$B" run --quiet --tariff "$T" --db one.db --out one "$EX"/cdr/*
    c run-one-bad "$B" run --quiet --tariff "$T" --db one.db --out one-bad \
        "$EX/bad/cdr-2026-10-bad.csv"
    for f in "$EX"/nights/cdr-2026-10-*.csv.gz; do
        nm=$(basename "$f" .csv.gz)
        c "night-$nm" "$B" run --quiet --report --tariff "$T" --db nights.db \
            --out "nights/$nm" --operator 中国移动 "$f"
    done
    c rerate "$B" run --quiet --tariff "$T" --db nights.db --out rerate --rerate --month 2026-10
    c rerate-one "$B" run --quiet --tariff "$T" --db one.db --out rerate-one --rerate
    c report "$B" report --quiet --db nights.db --out report --as-of 2026-11-05
    pick one/candidates.csv one/findings.csv "$WORK/numbers-example"
    for n in $(cat "$WORK/numbers-example"); do
        for fmt in text csv json; do
            c "inv-db-$n-$fmt" "$B" investigate --db nights.db --msisdn "$n" --month 2026-10 --format $fmt
        done
        c "inv-files-$n" "$B" investigate --tariff "$T" --msisdn "$n" --month 2026-10 \
            --format json "$EX"/cdr/*
        c "ev-db-$n" "$B" evidence --no-pdf --db nights.db --msisdn "$n" --month 2026-10 \
            --out "ev-db-$n" --date 2026-11-05 --run-id same-outputs
        c "ev-files-$n" "$B" evidence --no-pdf --tariff "$T" --msisdn "$n" --month 2026-10 \
            --out "ev-files-$n" --date 2026-11-05 --run-id same-outputs "$EX"/cdr/*
    done
    c compact "$B" compact --db nights.db
    for n in $(cat "$WORK/numbers-example"); do
        c "inv-compacted-$n" "$B" investigate --db nights.db --msisdn "$n" --month 2026-10 --format csv
    done
    # (b) the generated month
    c gen-rate "$B" rate --tariff "$G/tariff" --out gen-rate.csv --rejects gen-rate-rejects.csv "$G"/cdr/*
    c gen-run "$B" run --quiet --tariff "$G/tariff" --db gen.db --out gen-one "$G"/cdr/*
    for f in "$G"/cdr/*; do
        nm=$(basename "$f" .csv.gz)
        c "gen-night-$nm" "$B" run --quiet --tariff "$G/tariff" --db gen-nights.db --out "gen-nights/$nm" "$f"
    done
    c gen-rerate "$B" run --quiet --tariff "$G/tariff" --db gen-nights.db --out gen-rerate --rerate
    pick gen-one/candidates.csv gen-one/findings.csv "$WORK/numbers-gen"
    for n in $(cat "$WORK/numbers-gen"); do
        c "gen-inv-$n" "$B" investigate --db gen-nights.db --msisdn "$n" --month 2026-10 --format json
        c "gen-ev-$n" "$B" evidence --no-pdf --db gen.db --msisdn "$n" --month 2026-10 \
            --out "gen-ev-$n" --date 2026-11-05 --run-id same-outputs
    done
    cd "$WORK" || exit 2
    mv run "$2"
}
session "$REF" ref
session "$NEW" new

# ---- compare -------------------------------------------------------------
cd "$WORK" || exit 2
bad=0
differ() { echo "DIFFERENT: $1"; bad=1; }
canon_db() { # DB OUT
    cp "$1" "$2.tmp.db"
    sqlite3 "$2.tmp.db" "UPDATE runs SET started_at = '', finished_at = '';
                         UPDATE state_files SET bytes = 0;" &&
        sqlite3 "$2.tmp.db" .dump >"$2"
    rm -f "$2.tmp.db"
}
canon_manifest() {
    awk -F '\t' -v OFS='\t' '$1 == "created" { next }
        $1 == "input" && $4 ~ /\.(cds|cdk)$/ { $2 = "-"; $3 = "-" } { print }' "$1"
}
for d in gen.out gen.err gen.rc; do
    cmp -s "$d" "gen-new.${d#gen.}" || differ "cdrgen $d"
done
(cd gen && find . -type f | sort) >gen.files
(cd gen-new && find . -type f | sort) >gen-new.files
cmp -s gen.files gen-new.files || differ "cdrgen: the files written"
while read -r f; do
    [ -f "gen-new/$f" ] && { cmp -s "gen/$f" "gen-new/$f" || differ "cdrgen: $f"; }
done <gen.files
(cd ref && find . -type f | sort) >ref.files
(cd new && find . -type f | sort) >new.files
if ! cmp -s ref.files new.files; then
    differ "the files written (diff ref.files new.files)"
    diff ref.files new.files | head -n 20
fi
same=0 st=0
while read -r f; do
    [ -f "new/$f" ] || continue
    case $f in
    *.db)
        canon_db "ref/$f" "ref.dump"
        canon_db "new/$f" "new.dump"
        if cmp -s ref.dump new.dump; then same=$((same + 1)); else differ "$f (sqlite3 .dump)"; fi ;;
    *.cds|*.cdk)
        st=$((st + 1)) ;;
    */report.html)
        sed 's/made<\/span> [0-9T:-]*Z/made<\/span> -/' "ref/$f" >ref.html
        sed 's/made<\/span> [0-9T:-]*Z/made<\/span> -/' "new/$f" >new.html
        if cmp -s ref.html new.html; then same=$((same + 1)); else differ "$f (without made)"; fi ;;
    */manifest)
        canon_manifest "ref/$f" >ref.man
        canon_manifest "new/$f" >new.man
        if cmp -s ref.man new.man; then same=$((same + 1)); else differ "$f (without created)"; fi ;;
    *)
        if cmp -s "ref/$f" "new/$f"; then same=$((same + 1)); else differ "$f"; fi ;;
    esac
done <ref.files
echo "same-outputs: $same of $(wc -l <ref.files) files identical, $st state files compared through what is read back; numbers: $(cat numbers-example numbers-gen | tr '\n' ' ')"
if [ $bad = 0 ]; then
    echo "same-outputs: identical (work in $WORK)"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
else
    echo "same-outputs: outputs differ; kept in $WORK"
fi
exit $bad
