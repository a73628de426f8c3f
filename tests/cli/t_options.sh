#!/bin/sh
# The option parser (src/cli/opts.c) and the help it generates from each
# command's option table (issue 15):
#  - every option `cdrecon help CMD` lists is accepted by CMD (never
#    "unknown option"), and is in the man page under CMD;
#  - every option declared in a table in src/cli/ is in some command's help;
#  - an unknown option and a missing value fail with exit 1 and say so;
#  - `--opt=VALUE` is read as `--opt VALUE`, except where the option is
#    declared without it (scan --rejects, --threads), and `--` ends the options.
set -eu
: "${CDRECON:?}" "${TESTDATA:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
T="$TESTDATA/example/tariff"
groff -k -man -Tutf8 -P-cbou docs/cdrecon.1 2>/dev/null >"$W/page"
cmds=$("$CDRECON" help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ -n "$cmds" ] || fail "no commands in cdrecon help"
for c in $cmds; do
    [ "$c" = help ] || [ "$c" = version ] && continue
    "$CDRECON" help "$c" >"$W/help" || fail "cdrecon help $c"
    "$CDRECON" "$c" --help >"$W/help2" || fail "cdrecon $c --help"
    cmp -s "$W/help" "$W/help2" || fail "help $c and $c --help differ"
    cat "$W/help" >>"$W/all-help"
    # the man page's section of the command: from its heading to the next
    awk -v c="$c" '$0 == "   " c {on = 1; next} on && /^   [a-z-]+$/ {on = 0} on' \
        "$W/page" >"$W/section"
    [ -s "$W/section" ] || fail "no section for $c in the man page"
    grep -o '^  \(-[a-z], \)\?--[a-z0-9-]*\( [A-Z][A-Z0-9|-]*\)\?' "$W/help" |
        sed 's/^  -[a-z], /  /' >"$W/opts"
    while read -r o v; do
        grep -q -- "$o" "$W/section" || fail "$c: $o is not in the man page under $c"
        [ "$o" = --help ] && continue
        mkdir -p "$W/run/$c" && cd "$W/run/$c"
        if [ -n "$v" ]; then set -- "$o" x; else set -- "$o"; fi
        [ "$c" = cluster ] && set -- report "$@"
        [ "$c" = cluster ] && [ "$o" = --parts ] && set -- init "$o" x
        "$CDRECON" "$c" "$@" >/dev/null 2>"$W/err" </dev/null || true
        cd - >/dev/null
        ! grep -q "unknown option" "$W/err" || fail "$c does not take $o, which its help lists"
    done <"$W/opts"
    # an unknown option: exit 1, said
    rc=0
    if [ "$c" = cluster ]; then
        "$CDRECON" cluster report --no-such-option 2>"$W/err" || rc=$?
    else
        "$CDRECON" "$c" --no-such-option 2>"$W/err" || rc=$?
    fi
    [ "$rc" = 1 ] || fail "$c --no-such-option: exit $rc, not 1"
    grep -q "unknown option --no-such-option" "$W/err" || fail "$c: no 'unknown option' message"
done
# every option of every table in src/cli/ is listed by some help
for o in $(grep -ho '{"--[a-z0-9-]*"' src/cli/*.c | tr -d '{"' | sort -u); do
    grep -q -- "  $o\b\|, $o\b" "$W/all-help" || fail "$o is declared but in no command's help"
done
# a missing value: exit 1, said, and nothing else done
rc=0; "$CDRECON" rate --tariff "$T" "$TESTDATA/example/cdr/cdr-2026-10-a.csv" --out \
    >/dev/null 2>"$W/err" || rc=$?
[ "$rc" = 1 ] || fail "missing value: exit $rc"
[ "$(cat "$W/err")" = "cdrecon: rate: option --out needs a value" ] || fail "missing value: $(cat "$W/err")"
# --opt=VALUE is --opt VALUE
"$CDRECON" rate --tariff "$T" --msisdn 13800000001 "$TESTDATA/example/cdr/cdr-2026-10-a.csv" \
    >"$W/a.csv" 2>/dev/null || true
"$CDRECON" rate --tariff="$T" --msisdn=13800000001 "$TESTDATA/example/cdr/cdr-2026-10-a.csv" \
    >"$W/b.csv" 2>/dev/null || true
[ -s "$W/a.csv" ] && cmp -s "$W/a.csv" "$W/b.csv" || fail "--opt=VALUE differs from --opt VALUE"
# ... but not where the option is declared without it
rc=0; "$CDRECON" scan --rejects="$W/r.csv" "$TESTDATA/example/cdr/cdr-2026-10-a.csv" \
    >/dev/null 2>"$W/err" || rc=$?
[ "$rc" = 1 ] && grep -q "unknown option --rejects=" "$W/err" || fail "scan --rejects=FILE taken"
# a flag takes no value
rc=0; "$CDRECON" run --quiet=1 2>"$W/err" || rc=$?
[ "$rc" = 1 ] && grep -q "unknown option --quiet=1" "$W/err" || fail "run --quiet=1 taken"
# -- ends the options: what follows is a file, even if it looks like an option
cp "$TESTDATA/example/cdr/cdr-2026-10-a.csv" "$W/--quiet"
(cd "$W" && "$CDRECON" scan -- --quiet) >"$W/out" 2>&1 || true
grep -q "^--quiet: .* read" "$W/out" || fail "scan -- --quiet did not read the file --quiet"
(cd "$W" && "$CDRECON" rate --tariff "$T" -- --quiet) >"$W/out" 2>"$W/err" || true
grep -q "records rated" "$W/err" || fail "rate -- --quiet did not read the file --quiet"
echo ok
