#!/bin/sh
# Issue 15 (engine.c taken apart): the outputs of a build are byte for byte
# those of a reference binary built before the change.
#
#   sh tools/dev/same-outputs-engine.sh REF_CDRECON NEW_CDRECON [CDRGEN]
#
# On the bundled example (testdata/example) and on a generated month (seed 5,
# 300,000 rows over 10 days and a late file; generated once with CDRGEN,
# default /tmp/cdrgen-ref15, kept in $SAME_DIR, default /tmp/same-outputs-15):
#   - rate: default, --threads 1, spilling (--mem 16M);
#   - run one shot (and spilling with --threads 1), then night by night into
#     one database (on the generated month the late file with other
#     --tolerance / --max-duration: whole re-rating), then --rerate: every
#     output CSV file after every run, the exit codes, and the database as
#     a canonical dump with the month state's manifest and checkpoints;
#   - investigate (text, csv, json; from the database and from the files)
#     and evidence --no-pdf (from the database and from the files) for a
#     few numbers.
# Each binary runs in its own directory, moved to the same path while it
# runs, so that the paths the outputs record are equal. Not compared:
# the runs' start and end times, an evidence pack's creation time, and the
# month-state segment files' bytes and hashes (compressed with isa-l, whose
# output is not the same from one run of the same binary to the next; what
# they hold is compared through investigate, evidence and the later nights,
# which read them back).
# Exit 0 if everything is equal; else the first differences are printed.
set -eu
REF=$(readlink -f "${1:?usage: same-outputs-engine.sh REF_CDRECON NEW_CDRECON [CDRGEN]}")
NEW=$(readlink -f "${2:?usage: same-outputs-engine.sh REF_CDRECON NEW_CDRECON [CDRGEN]}")
GEN=${3:-/tmp/cdrgen-ref15}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
EX="$TOP/testdata/example"
D=${SAME_DIR:-/tmp/same-outputs-15}
mkdir -p "$D"
if [ ! -s "$D/gen/cdr/cdr-2026-10-late.csv.gz" ]; then
    rm -rf "$D/gen"
    mkdir -p "$D/gen"
    "$GEN" --seed 5 --rows 300000 --errors 0.02 --tariff "$D/gen/tariff" --out-dir "$D/gen/cdr" \
        --by-day --days 10 --late 0.03 >/dev/null 2>&1
fi
G="$D/gen"
W=$(mktemp -d "${TMPDIR:-/tmp}/same-outputs.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
mkdir "$W/ref" "$W/new"
bad=0
checks=0

# both NAME ARGS...: the command with both binaries, each side's directory
# moved to $W/x while it runs (the paths the outputs record are then the
# same); stdout, stderr and the exit code are kept
both() {
    name=$1
    shift
    for side in ref new; do
        bin=$REF
        [ $side = new ] && bin=$NEW
        mv "$W/$side" "$W/x"
        set +e
        (cd "$W/x" && "$bin" "$@" >"$name.stdout" 2>"$name.stderr")
        echo $? >"$W/x/$name.rc"
        set -e
        mv "$W/x" "$W/$side"
    done
    same "$name.rc" "$name.stdout" "$name.stderr"
}

# same FILES...: each file (relative to the sides' directories) equal
same() {
    for f in "$@"; do
        checks=$((checks + 1))
        if ! cmp -s "$W/ref/$f" "$W/new/$f"; then
            echo "DIFF: $f"
            diff "$W/ref/$f" "$W/new/$f" 2>&1 | head -n 6
            bad=$((bad + 1))
        fi
    done
}

# samedir DIR: the same files in DIR on both sides, each equal (an evidence
# pack's manifest without its creation time and the hashes and sizes of the
# segment files it lists)
samedir() {
    (cd "$W/ref/$1" && find . -type f | sort) >"$W/l.ref"
    (cd "$W/new/$1" && find . -type f | sort) >"$W/l.new"
    checks=$((checks + 1))
    cmp -s "$W/l.ref" "$W/l.new" || { echo "DIFF: $1: other files"; bad=$((bad + 1)); }
    for side in ref new; do
        if [ -f "$W/$side/$1/manifest" ]; then
            sed -E '/^created\t/d; s/^input\t[0-9a-f]+\t[0-9]+\t(.*\.cds)$/input\tH\tN\t\1/' \
                "$W/$side/$1/manifest" >"$W/$side/$1.manifest"
        fi
    done
    [ -f "$W/ref/$1/manifest" ] && same "$1.manifest"
    # shellcheck disable=SC2046
    same $(grep -v '^\./manifest$' "$W/l.ref" | sed "s|^\./|$1/|")
}

# dbsame DB: the database as a canonical dump (times of the runs and the
# segment files' byte counts left out), and the state's manifest
dbsame() {
    for side in ref new; do
        sqlite3 "$W/$side/$1" .dump |
            sed -E "s/'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z'/'T'/g;
                    s/^(INSERT INTO state_files VALUES\('seg-[^']*','[^']*','segment',[0-9]+,[0-9]+),[0-9]+\)/\1,B)/" \
                >"$W/$side/$1.dump"
        cp "$W/$side/$1.state/MANIFEST" "$W/$side/$1.manifest"
        ls "$W/$side/$1.state" >"$W/$side/$1.files"
    done
    same "$1.dump" "$1.manifest" "$1.files"
    for f in "$W/ref/$1.state"/ckp-*; do
        [ -f "$f" ] && same "$1.state/$(basename "$f")"
    done
}

outs() { same "$1/findings.csv" "$1/candidates.csv" "$1/rejects.csv" "$1/changes.csv" "$1/unrated.csv"; }

echo "same-outputs: $REF against $NEW"

# ---- the bundled example ----
both ex-rate rate --tariff "$EX/tariff" --out ex-rate.csv "$EX"/cdr/*
same ex-rate.csv
both ex-rate-spill rate --threads 1 --mem 64K --tmp . --tariff "$EX/tariff" --out ex-rate-spill.csv "$EX"/cdr/*
same ex-rate-spill.csv
both ex-run run --quiet --tariff "$EX/tariff" --db ex.db --out ex-out "$EX"/cdr/*
outs ex-out
dbsame ex.db
n=0
for f in "$EX"/nights/cdr-2026-10-[0-9]*.csv.gz "$EX/nights/cdr-2026-10-late.csv.gz"; do
    n=$((n + 1))
    both "exn-$n" run --quiet --tariff "$EX/tariff" --db exn.db --out "exn-$n" "$f"
    outs "exn-$n"
done
dbsame exn.db
both exn-rerate run --quiet --tariff "$EX/tariff" --db exn.db --out exn-rerate --rerate
outs exn-rerate
dbsame exn.db
echo "same-outputs: example done ($checks checks, $bad differences)"

# ---- the generated month ----
both g-rate rate --tariff "$G/tariff" --out g-rate.csv "$G"/cdr/*
same g-rate.csv
both g-rate-1 rate --threads 1 --tariff "$G/tariff" --out g-rate-1.csv "$G"/cdr/*
same g-rate-1.csv
both g-rate-spill rate --mem 16M --tmp . --tariff "$G/tariff" --out g-rate-spill.csv "$G"/cdr/*
same g-rate-spill.csv
both g-run run --quiet --tariff "$G/tariff" --db g.db --out g-out "$G"/cdr/*
outs g-out
dbsame g.db
both g-run-spill run --quiet --threads 1 --mem 16M --tmp . --tariff "$G/tariff" --db gs.db --out gs-out "$G"/cdr/*
outs gs-out
dbsame gs.db
n=0
for f in "$G"/cdr/cdr-2026-10-[0-9]*.csv.gz; do
    n=$((n + 1))
    both "gn-$n" run --quiet --tariff "$G/tariff" --db gn.db --out "gn-$n" "$f"
    outs "gn-$n"
done
dbsame gn.db
# the late file with other options: what it touches is re-rated whole (and
# the rest is left as the other options rated it)
both gn-late run --quiet --tolerance 0.01 --max-duration 3600 --tariff "$G/tariff" --db gn.db \
    --out gn-late "$G/cdr/cdr-2026-10-late.csv.gz"
outs gn-late
dbsame gn.db
# every stored subscriber-month re-rated with the default options
both gn-rerate run --quiet --tariff "$G/tariff" --db gn.db --out gn-rerate --rerate
outs gn-rerate
dbsame gn.db
echo "same-outputs: generated month rated and run ($checks checks, $bad differences)"

# ---- investigate and evidence for a few numbers ----
nums=$( (sed -n '2p;40p;400p' "$W/ref/g-out/candidates.csv"; sed -n '2p' "$W/ref/g-out/findings.csv") |
    cut -d, -f1 | sort -u)
for m in $nums; do
    for fmt in text csv json; do
        both "inv-$m-$fmt" investigate --db gn.db --msisdn "$m" --month 2026-10 --format "$fmt"
    done
    both "inv-scan-$m" investigate --tariff "$G/tariff" --msisdn "$m" --month 2026-10 "$G"/cdr/*
    both "ev-$m" evidence --no-pdf --date 2026-11-05 --run-id same-15 --db gn.db --msisdn "$m" \
        --month 2026-10 --out "ev-$m"
    samedir "ev-$m"
    both "evs-$m" evidence --no-pdf --date 2026-11-05 --run-id same-15 --tariff "$G/tariff" \
        --msisdn "$m" --month 2026-10 --out "evs-$m" "$G"/cdr/*
    samedir "evs-$m"
done
for m in $(sed -n '2p;3p' "$W/ref/ex-out/candidates.csv" | cut -d, -f1); do
    both "exinv-$m" investigate --db exn.db --msisdn "$m" --month 2026-10
    both "exev-$m" evidence --no-pdf --date 2026-11-05 --run-id same-15 --db exn.db --msisdn "$m" \
        --month 2026-10 --out "exev-$m"
    samedir "exev-$m"
done

echo "same-outputs: $checks checks, $bad differences (numbers: $(echo $nums | tr '\n' ' '))"
[ "$bad" -eq 0 ]
