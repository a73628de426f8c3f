#!/bin/sh
# The default test suite under valgrind memcheck: every unit test binary, every
# CLI test with CDRECON pointing at a valgrind wrapper, and the fuzz corpora.
# Any memcheck error (invalid access, uninitialised use, definite/indirect
# leak) makes the run exit 99 and the test fail.
# usage: valgrind.sh [BUILD]
set -u
BUILD=${1:-build}
ROOT=$PWD
export CDRECON_SLOW_TESTS=1 # timing bounds in tests do not hold under memcheck
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --track-origins=yes"
W=$(mktemp -d /tmp/cdr-vg.XXXXXX)
trap 'rm -rf "$W"' EXIT
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$VG" "$ROOT/$BUILD/cdrecon" >"$W/cdrecon"
chmod +x "$W/cdrecon"
fail=0; n=0
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    $VG "$t" >"$W/log" 2>&1 || { fail=$((fail + 1)); echo "valgrind: $(basename "$t") FAILED"; tail -40 "$W/log"; }
done
for t in "$BUILD"/fuzz-replay/fuzz_*; do
    n=$((n + 1))
    $VG "$t" "fuzz/corpus/$(basename "$t")" >"$W/log" 2>&1 ||
        { fail=$((fail + 1)); echo "valgrind: replay $(basename "$t") FAILED"; tail -40 "$W/log"; }
done
# CLI tests with the wrapper; the shim-based ones cannot run under valgrind
for t in tests/cli/t_*.sh; do
    case $t in *t_rel_allocfail*|*t_rel_iofail*) continue ;; esac
    n=$((n + 1))
    CDRECON="$W/cdrecon" CDRGEN="$ROOT/$BUILD/tools/cdrgen" TESTDATA="$ROOT/testdata" BUILD=$BUILD \
        sh "$t" >"$W/log" 2>&1 || { fail=$((fail + 1)); echo "valgrind: $(basename "$t") FAILED"; tail -40 "$W/log"; }
done
echo "valgrind: $n test programs and scripts under memcheck, $fail failed"
[ "$fail" -eq 0 ]
