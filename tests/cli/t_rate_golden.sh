#!/bin/sh
# `cdrecon rate` on the bundled example month, byte for byte: the checksums
# below were taken from the cell-by-cell row writer (cdr_stmt_rec_write)
# before rows were rendered in place (cdr_stmt_rated_write). Any change to a
# column, quoting, the leading apostrophe, money or date formatting shows
# here. If the canonical row changes on purpose, update them (and say why).
# Changed (issue 14, item 16): a later part of a merged call (partial_rest)
# shows rebuilt 0.00 and difference 0.00 instead of empty cells: the 884
# partial_rest rows of the example, nothing else.
set -eu
EX="$TESTDATA/example"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$EX"   # relative file names: the file column must not depend on the checkout

check() { # name expected-sha256 file
    got=$(sha256sum "$3" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "$1: rate output changed: sha256 $got, expected $2"
        exit 1
    fi
}

# the clean month, written through a temporary file and renamed
"$CDRECON" rate --tariff tariff --out "$W/a.csv" cdr/* 2>/dev/null
[ "$(wc -l <"$W/a.csv")" -eq 11626 ] || { echo "expected 11,625 rows and a header"; exit 1; }
check example 8aee8e3d6c34891c67800effbd38e2c40f53d36d223d59dbdebed3f0693dae65 "$W/a.csv"

# with the malformed file (rejects; the rows that are read carry odd text),
# to standard output
rc=0
"$CDRECON" rate --tariff tariff cdr/* bad/cdr-2026-10-bad.csv >"$W/b.csv" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || { echo "rejects must give a non-zero exit"; exit 1; }
check example+bad 60076168b9af46d389f667f14a6f983677b088c92a74ea134fe29d88a0c60843 "$W/b.csv"
echo ok
