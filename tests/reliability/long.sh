#!/bin/sh
# `make reliability`: the long tiers, each printing its one-line figure
# (copied into docs/reliability.md).
set -u
BUILD=${BUILD:-build}
export CDRECON="${CDRECON:-$PWD/$BUILD/cdrecon}" CDRGEN="${CDRGEN:-$PWD/$BUILD/tools/cdrgen}"
export TESTDATA="${TESTDATA:-$PWD/testdata}"
export FAILSHIM="$PWD/$BUILD/reliability/failshim.so"
rc=0
step() { echo "== $*"; s=$(date +%s); "$@" || rc=1; echo "   ($(( $(date +%s) - s )) s)"; }
step make -s --no-print-directory BUILD="$BUILD" fuzz-replay
step sh tests/reliability/allocfail.sh --jobs 2
step sh tests/reliability/allocfail.sh --persist --sample 500 --jobs 2
step sh tests/reliability/iofail.sh --points 24
step sh tests/reliability/crashresume.sh --trials 60 --rows 100000 --seed 1
step sh tests/reliability/crashnights.sh --trials 60 --rows 100000 --seed 1 --min-killed 40
NIGHTS_SEEDS="21 22 23 24 25 26 27 28" step sh tests/cli/t_nights_property.sh
step python3 tools/money_ref.py --driver "$BUILD/reliability/money_driver" --count 1000000 --mid-yuan 1000
step sh tests/reliability/hostile.sh
exit $rc
