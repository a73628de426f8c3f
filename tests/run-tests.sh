#!/bin/sh
# Runs every unit test binary (cmocka) and every CLI test script, then prints
# one closing line "N passed, N failed, N skipped". Exit status 0 only if
# nothing failed. A skipped test is never counted as passed: a cmocka test
# that calls skip() is counted from cmocka's "[  SKIPPED ] N test(s)" line; a
# CLI script skips by exiting 77 (the automake convention) after printing why.
set -u
BUILD=${BUILD:-build}
export BUILD
export CDRECON="${CDRECON:-$PWD/$BUILD/cdrecon}"
export CDRGEN="${CDRGEN:-$PWD/$BUILD/tools/cdrgen}"
export TESTDATA="$PWD/testdata"
pass=0
fail=0
skip=0
failed_names=""
skipped_names=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before its summary
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    if [ "$f" -ne 0 ]; then
        failed_names="$failed_names $(basename "$t")"
        cat "$log"
    fi
    if [ "$s" -ne 0 ]; then
        skipped_names="$skipped_names $(basename "$t")($(sed -n 's/^\[  SKIPPED \] \([a-z_0-9]*\)$/\1/p' "$log" | sort -u | tr '\n' ' ' | sed 's/ $//'))"
    fi
    echo "unit  $(basename "$t"): $p passed, $f failed, $s skipped"
done

if [ "${1:-}" != "--unit-only" ]; then
    for t in tests/cli/t_*.sh; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .sh)
        start=$(date +%s)
        sh "$t" >"$log" 2>&1
        rc=$?
        if [ "$rc" -eq 0 ]; then
            pass=$((pass + 1)); res=ok
        elif [ "$rc" -eq 77 ]; then
            skip=$((skip + 1)); res="skipped: $(tail -n 1 "$log")"
            skipped_names="$skipped_names $name"
        else
            fail=$((fail + 1)); res=FAILED
            failed_names="$failed_names $name"
            cat "$log"
        fi
        echo "cli   $name: $res ($(( $(date +%s) - start ))s)"
    done
fi

[ -n "$failed_names" ] && echo "failed:$failed_names"
[ -n "$skipped_names" ] && echo "skipped:$skipped_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
