#!/bin/sh
# Golden tests of `cdrecon scan`: each testdata/scan/NAME/ holds the inputs,
# `args` (the command line after `scan --quiet`), expected.stdout,
# expected.rc and, when --rejects is used, expected.rejects.csv. The command
# runs in a scratch copy of the directory; stdout, exit code and rejects CSV
# must match exactly.
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for d in "$TESTDATA"/scan/*/; do
    name=$(basename "$d")
    rm -rf "$tmp/w"
    cp -R "$d" "$tmp/w"
    rm -f "$tmp/w/rejects.csv"
    # shellcheck disable=SC2046
    (cd "$tmp/w" && "$CDRECON" scan --quiet $(cat args) >out.stdout 2>out.stderr)
    rc=$?
    n=$((n + 1))
    if [ "$rc" != "$(cat "$d/expected.rc")" ]; then
        echo "FAIL $name: exit $rc, expected $(cat "$d/expected.rc")"; cat "$tmp/w/out.stderr"; fail=1
    fi
    if ! diff -u "$d/expected.stdout" "$tmp/w/out.stdout"; then
        echo "FAIL $name: stdout differs"; fail=1
    fi
    if [ -f "$d/expected.rejects.csv" ] && ! diff -u "$d/expected.rejects.csv" "$tmp/w/rejects.csv"; then
        echo "FAIL $name: rejects differ"; fail=1
    fi
    # read = accepted + rejected on every line of the output
    if ! awk -F'[:,] *' '/ read, / { for (i = 1; i <= NF; i++) { split($i, w, " ");
            if (w[2] == "read") r = w[1]; if (w[2] == "accepted") a = w[1]; if (w[2] == "rejected") j = w[1] }
            if (r != a + j) { print "counts do not add up: " $0; bad = 1 } } END { exit bad }' "$tmp/w/out.stdout"; then
        echo "FAIL $name: counts"; fail=1
    fi
done
[ "$n" -ge 5 ] || { echo "FAIL: only $n golden cases found"; exit 1; }
exit $fail
