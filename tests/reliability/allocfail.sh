#!/bin/sh
# Allocation-failure sweep: run `cdrecon run` on a small generated month once
# per N, with the Nth allocation failing (tests/reliability/failshim.c), and
# check each run:
#   - no crash (no signal), and either
#   - it survived (the failure was absorbed): results identical to a clean run, or
#   - it failed: non-zero exit with a "cdrecon:" error message, no output file
#     under a final name (and no temporary left), a database that passes
#     PRAGMA integrity_check and holds no run, no allocation left unfreed
#     beyond what a clean run leaves at exit; and a rerun without the fault
#     gives results identical to the clean run.
# usage: allocfail.sh [--step S] [--sample K] [--from A] [--to B] [--persist] [--jobs J]
#   --step S    every S-th N (default 1: every allocation of the run)
#   --sample K  K points spread evenly over the run instead of --step
#   --persist   the Nth and every later allocation fail (default: only the Nth)
# Prints "allocfail: P points ..." and exits non-zero on the first problem class found.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
step=1; sample=0; from=1; to=0; persist=0; jobs=1; rows=300; subs=10
while [ $# -gt 0 ]; do
    case $1 in
    --step) step=$2; shift ;;
    --sample) sample=$2; shift ;;
    --from) from=$2; shift ;;
    --to) to=$2; shift ;;
    --persist) persist=1 ;;
    --jobs) jobs=$2; shift ;;
    --rows) rows=$2; shift ;;
    *) echo "usage: $0 [--step S|--sample K] [--from A] [--to B] [--persist] [--jobs J]" >&2; exit 2 ;;
    esac
    shift
done
SHIM=${FAILSHIM:-}
case $SHIM in ''|/*) ;; *) SHIM=$PWD/$SHIM ;; esac
W=$(mktemp -d /tmp/cdr-allocfail.XXXXXX)
trap 'rm -rf "$W"' EXIT
if [ -z "$SHIM" ]; then
    SHIM=$W/failshim.so
    ${CC:-cc} -shared -fPIC -O1 -o "$SHIM" "$HERE/failshim.c" -ldl || rel_die "cannot build the shim"
fi
cd "$W" || exit 1
rel_month m "$rows" "$subs" 7 || rel_die "cdrgen failed"
set -- --quiet --tariff m/tariff --db r.db --out out m/cdr/a.csv m/cdr/b.csv.gz

# the clean run: reference results, allocation count, allocations alive at exit
LD_PRELOAD=$SHIM FAILSHIM_REPORT=$W/base.rep "$CDRECON" run "$@" 2>base.err
base_rc=$?
case $base_rc in 0|9) ;; *) cat base.err; rel_die "clean run exit $base_rc" ;; esac
mv out base.out
rel_digest r.db >base.digest || rel_die "digest"
rm -f r.db
total=$(sed -n 's/^allocs \([0-9]*\) .*/\1/p' base.rep)
base_live=$(sed -n 's/.* live \([0-9-]*\) .*/\1/p' base.rep)
[ -n "$total" ] && [ "$total" -gt 0 ] || rel_die "the shim did not report (FAILSHIM=$SHIM)"
[ "$to" -gt 0 ] || to=$((total + 5))
if [ "$sample" -gt 0 ]; then
    step=$(( (to - from + 1) / sample )); [ "$step" -ge 1 ] || step=1
fi

# worker J: every N = from + (J + k*jobs)*step
worker() {
    j=$1; shift; d=$W/w$j; mkdir -p "$d"; cd "$d" || exit 1
    ln -s ../m m
    n=$((from + j * step))
    : >res
    while [ "$n" -le "$to" ]; do
        rm -rf out r.db r.db-journal rep err
        LD_PRELOAD=$SHIM FAILSHIM_MALLOC_FAIL=$n FAILSHIM_MALLOC_PERSIST=$persist \
            FAILSHIM_REPORT=$d/rep "$CDRECON" run "$@" 2>err
        rc=$?
        live=$(sed -n 's/.* live \([0-9-]*\) .*/\1/p' rep 2>/dev/null)
        failed=$(sed -n 's/.* failed \([0-9]*\)$/\1/p' rep 2>/dev/null)
        if [ "${failed:-0}" -eq 0 ] && [ "$rc" -lt 128 ]; then
            v=beyond   # the run made fewer than N allocations
        else
            v=$(rel_verdict "$rc" err out r.db ../base.out "$base_rc" ../base.digest)
        fi
        if [ "$v" = failed-clean ] && [ -n "$live" ] && [ "$live" -gt "$base_live" ]; then
            v="leak($live>$base_live)"
        fi
        if [ "$v" = failed-clean ]; then
            # the same run without the fault gives the clean results
            rm -rf out
            "$CDRECON" run "$@" 2>/dev/null
            v2=$(rel_verdict $? /dev/null out r.db ../base.out "$base_rc" ../base.digest)
            [ "$v2" = survived ] || v="rerun-$v2"
        fi
        echo "$n $rc $v $(head -c 200 err | tr '\n' ' ')" >>res
        n=$((n + jobs * step))
    done
}
j=0
while [ "$j" -lt "$jobs" ]; do worker "$j" "$@" & j=$((j + 1)); done
wait
cat "$W"/w*/res | sort -n >"$W/all"
points=$(awk '$3 != "beyond"' "$W/all" | wc -l)
clean=$(awk '$3 == "failed-clean"' "$W/all" | wc -l)
surv=$(awk '$3 == "survived"' "$W/all" | wc -l)
# ALLOCFAIL_KNOWN: comma-separated problem kinds reported but tolerated
# (known defects outside this test's files; see docs/reliability.md)
known=",${ALLOCFAIL_KNOWN:-},"
bad=$(awk -v known="$known" '$3 != "failed-clean" && $3 != "survived" && $3 != "beyond" &&
      index(known, "," $3 ",") == 0' "$W/all")
tol=$(awk -v known="$known" '$3 != "failed-clean" && $3 != "survived" && $3 != "beyond" &&
      index(known, "," $3 ",") > 0' "$W/all")
mode=once; [ "$persist" = 1 ] && mode=persist
echo "allocfail: $points points exercised of $total allocations (N=$from..$to step $step, $mode):" \
     "$clean failed cleanly, $surv absorbed with identical results, $(printf '%s' "$bad" | grep -c .) problems"
awk '$3 != "beyond" {print $2}' "$W/all" | sort | uniq -c | awk '{printf "  exit %s: %s\n", $2, $1}'
if [ -n "$tol" ]; then
    echo "  KNOWN ISSUES tolerated (ALLOCFAIL_KNOWN): $(printf '%s\n' "$tol" | awk '{print $3}' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
    printf '%s\n' "$tol" | awk '!seen[$3]++' | cut -c1-220 | sed 's/^/    e.g. N=/'
fi
if [ -n "$bad" ]; then
    echo "$bad" | head -20
    [ -n "${ALLOCFAIL_KEEP:-}" ] && cp "$W/all" "$ALLOCFAIL_KEEP"
    exit 1
fi
exit 0
