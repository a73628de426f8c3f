#!/bin/sh
# kill -9 `cdrecon run` at 5 pseudo-random moments, rerun, and compare with an
# uninterrupted run (the long version: make reliability, 60 trials). At least 3
# runs must really be killed mid-run (a run that finished before its kill
# tests nothing of a crash); crashresume.sh adds trials early in the run until
# they are, and fails if they cannot be.
set -eu
sh tests/reliability/crashresume.sh --trials 5 --rows 20000 --seed 7 --min-killed 3
