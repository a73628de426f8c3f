#!/bin/sh
# Every directory under testdata/tariff-bad/ is refused by check-tariff with
# exit status 5 (CDR_E_TARIFF) and exactly the message in its `expected`.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
n=0
bad=0
for d in "$TESTDATA"/tariff-bad/*/; do
    d=${d%/}
    [ -f "$d/expected" ] || continue
    n=$((n + 1))
    want="cdrecon: check-tariff: $(sed "s|@DIR@|$d|" "$d/expected")"
    got=$("$CDRECON" check-tariff "$d" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 5 ] || [ "$got" != "$want" ]; then
        echo "FAIL $(basename "$d"): exit $rc"
        echo "  want: $want"
        echo "  got:  $got"
        bad=$((bad + 1))
    fi
done
echo "$n refused tariffs checked, $bad wrong"
[ "$n" -ge 40 ] && [ "$bad" -eq 0 ]
