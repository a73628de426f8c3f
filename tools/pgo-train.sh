#!/bin/sh
# The training run of the profile-guided build (Makefile, PGO=1;
# docs/building.md): the instrumented cdrecon in DIR reads, rates and
# reconciles a generated month, and leaves its counts as DIR/src/**/*.gcda.
#
# The month is generated with seed 7, not the bench's seed 42, so that the
# bench does not measure a binary trained on its own input. Its shape is the
# generator's usual one (voice, SMS, data, VAS; duplicates, partial calls,
# long SMS; 1 % injected billing errors) in two files; the commands are the
# ones a nightly job and an investigator run, including a spilling `rate`.
set -eu
D=${1:?usage: tools/pgo-train.sh PGO_DIR}
ROWS=${PGO_ROWS:-300000}
find "$D" -name '*.gcda' -exec rm -f {} +
W=$(mktemp -d "${TMPDIR:-/tmp}/cdrecon-pgo.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
LOG="$D/train.log"
: >"$LOG"
# each step's output goes to the log, shown only if the step fails
step() {
    "$@" >>"$LOG" 2>&1 || {
        rc=$?
        cat "$LOG" >&2
        echo "pgo: training step failed (exit $rc): $*" >&2
        exit 1
    }
}

# cdrgen links the instrumented library too: its counts go elsewhere
step env GCOV_PREFIX="$W/cdrgen-profile" "$D/cdrgen" --seed 7 --rows "$ROWS" --errors 0.01 \
    --tariff "$W/tariff" --out-dir "$W/cdr" --files 2 --level 1
echo "pgo: training the profile-guided build on $ROWS generated rows (log: $LOG)"

step "$D/cdrecon" check-tariff "$W/tariff"
step "$D/cdrecon" scan --quiet "$W"/cdr/*
step "$D/cdrecon" rate --tariff "$W/tariff" --out /dev/null "$W"/cdr/*
step "$D/cdrecon" rate --mem 16M --tmp "$W" --tariff "$W/tariff" --out /dev/null "$W"/cdr/*
step "$D/cdrecon" run --quiet --tariff "$W/tariff" --db "$W/run.db" --out "$W/out" "$W"/cdr/*
# the profile path (docs/profiles.md): the same month in the bundled 3GPP layout
step env GCOV_PREFIX="$W/cdrgen-profile" "$D/cdrgen" --seed 7 --rows "$ROWS" --errors 0.01 \
    --out-dir "$W/cdr3gpp" --files 2 --level 1 --profile profiles/3gpp-32298.profile
step "$D/cdrecon" scan --quiet --profile profiles/3gpp-32298.profile "$W"/cdr3gpp/*
step "$D/cdrecon" rate --profile profiles/3gpp-32298.profile --tariff "$W/tariff" \
    --out /dev/null "$W"/cdr3gpp/*
step "$D/cdrecon" run --quiet --profile profiles/3gpp-32298.profile --tariff "$W/tariff" \
    --db "$W/run3gpp.db" --out "$W/out3gpp" "$W"/cdr3gpp/*
n=$(sed -n '2s/,.*//p' "$W/out/candidates.csv")
if [ -n "$n" ]; then
    step "$D/cdrecon" investigate --db "$W/run.db" --msisdn "$n" --month 2026-10
fi
