# Shared by the report tests (tests/cli/t_report_*.sh): the bundled example
# month delivered as nights (31 nightly files and a late one), one
# `cdrecon run` each into W/n.db, outputs in W/out; the last night with
# --report (not quiet: its summary and the report's path go to W/last.txt).
# W/nights lists, per run, its input file and a copy of its changes.csv
# (W/n/changes.K.csv, and W/n/rejects.K.csv beside it).
nights_db() {
    nd_w=$1
    mkdir -p "$nd_w/n"
    : >"$nd_w/nights"
    nd_k=0
    for nd_f in "$TESTDATA"/example/nights/cdr-2026-10-[0-9]*.csv.gz \
        "$TESTDATA/example/nights/cdr-2026-10-late.csv.gz"; do
        nd_k=$((nd_k + 1))
        case $nd_f in
        *late*) "$CDRECON" run --report --tariff "$TESTDATA/example/tariff" --db "$nd_w/n.db" \
                    --out "$nd_w/out" "$nd_f" >"$nd_w/last.txt" ;;
        *) "$CDRECON" run --quiet --tariff "$TESTDATA/example/tariff" --db "$nd_w/n.db" \
               --out "$nd_w/out" "$nd_f" ;;
        esac
        cp "$nd_w/out/changes.csv" "$nd_w/n/changes.$nd_k.csv"
        cp "$nd_w/out/rejects.csv" "$nd_w/n/rejects.$nd_k.csv"
        echo "$nd_f $nd_w/n/changes.$nd_k.csv" >>"$nd_w/nights"
    done
}
