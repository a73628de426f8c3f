#!/bin/sh
# The library reads no environment variable (issue 15): the CLI reads them
# and passes what they choose through the public API. Pinned here for the
# spill directory ($TMPDIR, unless --tmp gives one: cli_engine_opts_init);
# CDRECON_INFLATE is t_inflate_zlib.sh's. `grep getenv` outside src/cli/
# must find nothing.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
T=$TESTDATA/example/tariff
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
F=$TESTDATA/example/cdr/cdr-2026-10-a.csv

# --mem 64K spills the example's records: where to is the CLI's choice.
TMPDIR=$W/missing "$CDRECON" rate --tariff "$T" --mem 64K --out "$W/a.csv" "$F" 2>"$W/err"
rc=$?
[ "$rc" = 2 ] || no "TMPDIR missing: exit $rc, want 2"
grep -q "spill directory in $W/missing" "$W/err" || no "TMPDIR missing: $(cat "$W/err")"

mkdir "$W/tmp"
TMPDIR=$W/missing "$CDRECON" rate --tariff "$T" --mem 64K --tmp "$W/tmp" --out "$W/b.csv" "$F" \
    2>"$W/err" || no "--tmp over a missing TMPDIR: $(cat "$W/err")"
TMPDIR=$W/tmp "$CDRECON" rate --tariff "$T" --mem 64K --out "$W/c.csv" "$F" 2>"$W/err" ||
    no "TMPDIR: $(cat "$W/err")"
# --tmp "" is as without --tmp
TMPDIR=$W/missing "$CDRECON" rate --tariff "$T" --mem 64K --tmp "" --out "$W/d.csv" "$F" 2>/dev/null &&
    no "--tmp '' did not fall back to TMPDIR"
(unset TMPDIR; "$CDRECON" rate --tariff "$T" --mem 64K --out "$W/e.csv" "$F" 2>"$W/err") ||
    no "no TMPDIR (/tmp): $(cat "$W/err")"
"$CDRECON" rate --tariff "$T" --out "$W/f.csv" "$F" 2>/dev/null || no "in memory"
for x in b c e; do
    cmp -s "$W/f.csv" "$W/$x.csv" || no "spilled output $x differs from the in-memory one"
done

# The library's sources call no getenv (the CLI's do).
if [ -d src ]; then
    if grep -rn 'getenv' src --include='*.c' --include='*.h' | grep -v '^src/cli/'; then
        no "getenv in the library"
    fi
fi
[ "$fail" = 0 ] && echo "t_environment: ok"
exit $fail
