#!/bin/sh
# cdrecon(1) (issue 18): docs/cdrecon.1 is generated from the binary's own
# help (tools/gen-man.py; `make man`), so the page and `cdrecon help` cannot
# drift: the page in the tree must equal what this binary's help gives. It
# renders without a groff warning, and holds every command and, for run,
# every option its help lists.
set -eu
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "$*"; exit 1; }
python3 tools/gen-man.py "$CDRECON" docs/exit-codes.md >"$W/cdrecon.1"
cmp -s "$W/cdrecon.1" docs/cdrecon.1 ||
    { diff docs/cdrecon.1 "$W/cdrecon.1" | head -n 10; fail "docs/cdrecon.1 is stale: run make man"; }
groff -k -man -Tutf8 -ww -z docs/cdrecon.1 2>"$W/warn" || fail "groff failed"
[ ! -s "$W/warn" ] || { cat "$W/warn"; fail "groff warnings"; }
groff -k -man -Tutf8 -P-cbou docs/cdrecon.1 2>/dev/null >"$W/page"
for c in $("$CDRECON" help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'); do
    [ "$c" = help ] && continue
    grep -q "^   $c\$" "$W/page" || fail "command $c is not in the man page"
done
for o in $("$CDRECON" help run | grep -o '^  --[a-z-]*' | sort -u); do
    grep -q -- "$o" "$W/page" || fail "run's option $o is not in the man page"
done
grep -q "^EXIT STATUS" "$W/page" || fail "no EXIT STATUS section"
grep -q "CDR_E_REFUSED" "$W/page" || fail "exit 16 missing"
echo ok
