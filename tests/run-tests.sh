#!/bin/sh
# Runs every unit test binary (cmocka) and every CLI test script, then prints
# one closing line "N passed, N failed". Exit status 0 only if nothing failed.
set -u
BUILD=${BUILD:-build}
export BUILD
export CDRECON="${CDRECON:-$PWD/$BUILD/cdrecon}"
export CDRGEN="${CDRGEN:-$PWD/$BUILD/tools/cdrgen}"
export TESTDATA="$PWD/testdata"
pass=0
fail=0
failed_names=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before its summary
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -ne 0 ]; then
        failed_names="$failed_names $(basename "$t")"
        cat "$log"
    fi
    echo "unit  $(basename "$t"): $p passed, $f failed"
done

if [ "${1:-}" != "--unit-only" ]; then
    for t in tests/cli/t_*.sh; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .sh)
        start=$(date +%s)
        if sh "$t" >"$log" 2>&1; then
            pass=$((pass + 1)); res=ok
        else
            fail=$((fail + 1)); res=FAILED
            failed_names="$failed_names $name"
            cat "$log"
        fi
        echo "cli   $name: $res ($(( $(date +%s) - start ))s)"
    done
fi

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
