#!/bin/sh
# gzip input has two engines (src/read/inflate_gz.c): ISA-L by default, zlib with
# CDRECON_INFLATE=zlib. The default suite runs the reader's unit tests with
# ISA-L; run them again with zlib (and the scan corpus and golden CLI tests),
# and check that scan gives the same output and exit code with both engines on
# the test data and on damaged files.
set -eu
CDRECON_INFLATE=zlib "$BUILD/tests/test_reader" >/dev/null 2>&1
CDRECON_INFLATE=zlib "$BUILD/tests/test_reader_sha256" >/dev/null 2>&1
"$BUILD/tests/test_reader_inflate" >/dev/null 2>&1
# the scan corpus (every cut and flip of a gzip) and the golden scans, with zlib
CDRECON_INFLATE=zlib sh tests/cli/t_scan_corpus.sh >/dev/null 2>&1 \
    || { echo "t_scan_corpus fails with CDRECON_INFLATE=zlib" >&2; exit 1; }
CDRECON_INFLATE=zlib sh tests/cli/t_scan_golden.sh >/dev/null 2>&1 \
    || { echo "t_scan_golden fails with CDRECON_INFLATE=zlib" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CDRGEN" --seed 7 --rows 20000 -o "$tmp/m.csv.gz" >/dev/null 2>&1
# three members, the middle one empty, then the same with damage
gzip -dc "$tmp/m.csv.gz" >"$tmp/m.csv"
head -c 300000 "$tmp/m.csv" | gzip -c >"$tmp/multi.csv.gz"
printf '' | gzip -c >>"$tmp/multi.csv.gz"
tail -c +300001 "$tmp/m.csv" | gzip -9 -c >>"$tmp/multi.csv.gz"
size=$(wc -c <"$tmp/multi.csv.gz")
head -c $((size - 3)) "$tmp/multi.csv.gz" >"$tmp/cut.csv.gz"
cp "$tmp/multi.csv.gz" "$tmp/crc.csv.gz"
printf '\377' | dd of="$tmp/crc.csv.gz" bs=1 seek=$((size - 6)) conv=notrunc 2>/dev/null
cp "$tmp/multi.csv.gz" "$tmp/tail.csv.gz"
printf 'garbage' >>"$tmp/tail.csv.gz"
printf 'not gzip\n' >"$tmp/plain.csv.gz"

n=0
find "$TESTDATA" -name '*.gz' | sort >"$tmp/list"
for f in "$tmp/multi.csv.gz" "$tmp/cut.csv.gz" "$tmp/crc.csv.gz" "$tmp/tail.csv.gz" \
         "$tmp/plain.csv.gz" $(cat "$tmp/list"); do
    rc_i=0; rc_z=0
    "$CDRECON" scan --quiet "$f" >"$tmp/i.out" 2>"$tmp/i.err" || rc_i=$?
    CDRECON_INFLATE=zlib "$CDRECON" scan --quiet "$f" >"$tmp/z.out" 2>"$tmp/z.err" || rc_z=$?
    # the words after the offset may differ (ISA-L cannot tell a bad CRC32
    # from a bad ISIZE); the offset, the counts and the code may not
    for e in i z; do
        sed 's/\(compressed offset [0-9]*\): .*/\1/' "$tmp/$e.out" >"$tmp/$e.norm"
    done
    if [ "$rc_i" -ne "$rc_z" ] || ! cmp -s "$tmp/i.norm" "$tmp/z.norm"; then
        echo "engines differ on $f: isal rc $rc_i, zlib rc $rc_z" >&2
        diff "$tmp/i.norm" "$tmp/z.norm" | head -20 >&2
        exit 1
    fi
    n=$((n + 1))
done
# the switch is real: each engine words a bad trailer its own way
"$CDRECON" scan --quiet "$tmp/crc.csv.gz" 2>/dev/null | grep -q 'CRC32 or ISIZE' \
    || { echo "default engine is not ISA-L" >&2; exit 1; }
CDRECON_INFLATE=zlib "$CDRECON" scan --quiet "$tmp/crc.csv.gz" 2>/dev/null \
    | grep 'incorrect data check' | grep -vq 'CRC32 or ISIZE' \
    || { echo "CDRECON_INFLATE=zlib does not select zlib" >&2; exit 1; }
# the damaged files must fail as gzip damage (exit code CDR_E_GZIP), the whole one pass
for f in cut crc tail plain; do
    rc=0; "$CDRECON" scan --quiet "$tmp/$f.csv.gz" >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 3 ] || { echo "$f: exit $rc, expected 3" >&2; exit 1; }
done
"$CDRECON" scan --quiet "$tmp/multi.csv.gz" >/dev/null
[ "$n" -ge 8 ] || { echo "only $n files compared" >&2; exit 1; }
echo "ok ($n files)"
