#!/bin/sh
# Write errors (ENOSPC) on the database, read errors (EIO) on the inputs and
# fsync failures, at a few points each (the long version with a full tmpfs:
# make reliability).
set -eu
BUILD=${BUILD:-build}
case $BUILD in *asan*) echo "skipped: the LD_PRELOAD shim cannot run beside ASan's allocator"; exit 77 ;; esac
make -s --no-print-directory BUILD="$BUILD" "$BUILD/reliability/failshim.so" >/dev/null
export FAILSHIM="$PWD/$BUILD/reliability/failshim.so"
IOFAIL_STRICT=${IOFAIL_STRICT-1} sh tests/reliability/iofail.sh --points 4 --no-tmpfs
