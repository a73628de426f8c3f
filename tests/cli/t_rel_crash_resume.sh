#!/bin/sh
# kill -9 `cdrecon run` at 5 pseudo-random moments, rerun, and compare with an
# uninterrupted run (the long version: make reliability, 60 trials).
set -eu
sh tests/reliability/crashresume.sh --trials 5 --rows 20000 --seed 7
