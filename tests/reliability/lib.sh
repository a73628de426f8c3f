# Shared helpers of the reliability scripts (sourced, POSIX sh).
# Needs CDRECON (binary) and CDRGEN (generator); sqlite3 for database checks.
: "${CDRECON:=$PWD/build/cdrecon}"
: "${CDRGEN:=$PWD/build/tools/cdrgen}"

rel_die() { echo "FAIL: $*" >&2; exit 1; }

# rel_month DIR ROWS SUBS SEED: a generated month in DIR (tariff/, cdr/a.csv,
# cdr/b.csv.gz) with injected billing errors and a few malformed rows.
rel_month() {
    mkdir -p "$1/cdr" || return 1
    "$CDRGEN" --seed "$4" --rows "$2" --subscribers "$3" --tariff "$1/tariff" \
        --out-dir "$1/cdr" --names a.csv,b.csv.gz --errors 0.1 --faults 0.02 \
        --faults-out "$1/faults.csv" >/dev/null 2>&1
}

# rel_digest DB: the database's results as text, without ids and times, so
# two databases holding the same results print the same text.
rel_digest() {
    sqlite3 -batch -csv "$1" "
      SELECT 'runs', count(*), sum(files), sum(rows_read), sum(rows_accepted), sum(rows_rejected),
             sum(rows_unrated), sum(findings), sum(candidates), sum(overcharge_micro),
             sum(refund_micro), sum(leakage_micro), group_concat(status) FROM runs;
      SELECT 'file', name, sha256, size, rows_read, rows_accepted, rows_rejected, status
        FROM files ORDER BY name;
      SELECT 'finding', msisdn, month, record_id, file, line, category, flags, billed_micro,
             rebuilt_micro, difference_micro FROM findings
        ORDER BY msisdn, month, record_id, file, line, category;
      SELECT 'candidate', msisdn, month, records, overcharge_micro, refund_micro, categories,
             tier, policy, special FROM candidates ORDER BY msisdn, month;
      SELECT 'reject', file, line, offset, reason FROM rejects ORDER BY file, line;"
}

# rel_current DB: the month's current results (issue 13: what many runs must
# agree on with one): the files ingested, current findings and candidates.
rel_current() {
    sqlite3 -batch -csv "$1" "
      SELECT 'file', name, sha256, size, rows_read, rows_accepted, rows_rejected
        FROM files WHERE state = 'ingested' ORDER BY name;
      SELECT 'finding', msisdn, month, record_id, file, line, category, flags, billed_micro,
             rebuilt_micro, difference_micro FROM current_findings
        ORDER BY msisdn, month, record_id, file, line, category;
      SELECT 'candidate', msisdn, month, records, overcharge_micro, refund_micro, categories,
             tier, policy, special FROM current_candidates ORDER BY msisdn, month;"
}

# rel_db_ok DB: integrity_check says ok (a missing database is fine).
rel_db_ok() {
    [ -f "$1" ] || return 0
    [ "$(sqlite3 -batch "$1" 'PRAGMA integrity_check;' 2>&1)" = ok ]
}

# rel_db_runs DB: number of runs stored (0 for a missing database).
rel_db_runs() {
    if [ -f "$1" ] && [ "$(sqlite3 -batch "$1" "SELECT count(*) FROM sqlite_master WHERE name = 'runs';")" = 1 ]; then
        sqlite3 -batch "$1" 'SELECT count(*) FROM runs;'
    else
        echo 0
    fi
}

# rel_no_outputs DIR: no output under a final name and no temporary left.
rel_no_outputs() {
    [ -d "$1" ] || return 0
    [ -z "$(ls -A "$1")" ]
}

# rel_same_outputs DIR1 DIR2: the four CSV outputs are byte-identical.
rel_same_outputs() {
    for f in findings.csv candidates.csv rejects.csv unrated.csv; do
        cmp -s "$1/$f" "$2/$f" || { echo "differs: $f" >&2; return 1; }
    done
}

# rel_names_within DIR BASE: every name in DIR is also in BASE (no temporaries)
rel_names_within() {
    for _f in $(ls -A "$1"); do [ -e "$2/$_f" ] || return 1; done
}

# rel_verdict RC ERRFILE OUTDIR DB BASEOUT BASERC BASEDIGEST: judge one run
# that had a fault injected. Prints one word:
#   survived       the fault was absorbed: exit, outputs and database as the clean run
#   failed-clean   non-zero exit, a "cdrecon:" message, no outputs, database
#                  intact and holding no run
#   anything else  a problem (crash, partial output, corrupt database, ...)
rel_verdict() {
    _rc=$1; _err=$2; _out=$3; _db=$4; _bout=$5; _brc=$6; _bdig=$7
    if [ "$_rc" -ge 128 ]; then echo "crash(rc=$_rc)"; return; fi
    if [ "$_rc" -eq "$_brc" ] && [ -f "$_out/findings.csv" ]; then
        if ! rel_same_outputs "$_out" "$_bout" 2>/dev/null; then echo survived-but-outputs-differ
        elif [ "$(rel_digest "$_db" 2>/dev/null)" != "$(cat "$_bdig")" ]; then echo survived-but-db-differs
        else echo survived; fi
        return
    fi
    _v=failed-clean
    case $_rc in 0|8|9) _v="wrong-exit($_rc)" ;; esac
    grep -q '^cdrecon' "$_err" || _v=no-error-message
    if ! rel_no_outputs "$_out"; then
        if rel_same_outputs "$_out" "$_bout" 2>/dev/null && rel_names_within "$_out" "$_bout"; then
            _v=outputs-complete-uncommitted
        else
            _v="outputs-partial($(ls -A "$_out" | tr '\n' ' '))"
        fi
    fi
    rel_db_ok "$_db" || _v=db-corrupt
    [ "$(rel_db_runs "$_db")" = 0 ] || _v=db-holds-failed-run
    echo "$_v"
}
