#!/bin/sh
# Replays every fuzz corpus input and every kept crashing input (fuzz/) through
# the fuzz targets built with the ordinary compiler (no clang needed).
set -eu
BUILD=${BUILD:-build}
out=$(make -s --no-print-directory BUILD="$BUILD" fuzz-replay 2>&1) || { echo "$out"; exit 1; }
echo "$out"
# every target replayed something
for t in fuzz/fuzz_*.c; do
    t=$(basename "$t" .c)
    echo "$out" | grep -Eq "/$t: [1-9][0-9]* inputs replayed" || { echo "FAIL: $t replayed nothing"; exit 1; }
done
