#!/bin/sh
# kill -9 a random night's `cdrecon run` of a month delivered as nightly
# files, at a random moment; rerun it and the remaining nights; the month
# must equal the uninterrupted nights and nothing of the killed run remain
# (the long version: make reliability, 60 trials).
set -eu
sh tests/reliability/crashnights.sh --trials 6 --rows 20000 --seed 5 --min-killed 3
