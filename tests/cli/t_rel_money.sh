#!/bin/sh
# 100,000 random amounts (parse, format, round) and every half-fen midpoint in
# +-50 yuan (exact and as fractions) against Python's exact Decimal/Fraction
# (the long version: 1,000,000 amounts and +-10,000 yuan, make reliability).
set -eu
BUILD=${BUILD:-build}
make -s --no-print-directory BUILD="$BUILD" "$BUILD/reliability/money_driver" >/dev/null
python3 tools/money_ref.py --driver "$BUILD/reliability/money_driver" --count 100000 --mid-yuan 50
