#!/bin/sh
# Every profile under testdata/profile-bad/ is refused with exit 17
# (CDR_E_PROFILE) and exactly the message in its .expected, by check-profile
# and by scan, rate, investigate, evidence, run and split before any CDR file
# (or database, or sharded directory) is opened
# (the CDR file given does not exist: a command that read first would say
# so). Then the refusals that need a CDR file's header (exit 4, CDR_E_HEADER).
set -u
: "${CDRECON:?}" "${TESTDATA:?}"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
n=0
bad=0
check() { # name, want, exit-want, command...
    name=$1; want=$2; wantrc=$3; shift 3
    got=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne "$wantrc" ] || [ "$got" != "$want" ]; then
        echo "FAIL $name: exit $rc (want $wantrc)"
        echo "  want: $want"
        echo "  got:  $got"
        bad=$((bad + 1))
    fi
}
# a profile larger than 64 KiB, made here
{ printf '# %070000d\n' 0; cat "$TESTDATA/profile-bad/field-twice.profile"; } >"$T/too-large.profile"
echo '@FILE@: larger than 65536 bytes: not a profile' >"$T/too-large.expected"
for p in "$TESTDATA"/profile-bad/*.profile "$T/too-large.profile"; do
    exp=${p%.profile}.expected
    [ -f "$exp" ] || { echo "FAIL: $p has no .expected"; bad=$((bad + 1)); continue; }
    n=$((n + 1))
    msg="$(sed "s|@FILE@|$p|" "$exp"): input profile refused [CDR_E_PROFILE]"
    name=$(basename "$p" .profile)
    check "$name" "cdrecon: check-profile: profile refused: $msg" 17 "$CDRECON" check-profile "$p"
    check "$name (scan)" "cdrecon: scan: profile refused: $msg" 17 \
        "$CDRECON" scan --profile "$p" "$T/no-such.csv"
    check "$name (rate)" "cdrecon: rate: profile refused: $msg" 17 \
        "$CDRECON" rate --profile "$p" --tariff "$TESTDATA/example/tariff" "$T/no-such.csv"
done
check missing-file "cdrecon: check-profile: profile refused: $T/none.profile: cannot open: No such file or directory: file cannot be opened, read or written [CDR_E_IO]" \
    2 "$CDRECON" check-profile "$T/none.profile"
p="$TESTDATA/profile-bad/field-twice.profile"
msg="cdrecon: investigate: profile refused: $(sed "s|@FILE@|$p|" "${p%.profile}.expected"): input profile refused [CDR_E_PROFILE]"
check investigate "$msg" 17 "$CDRECON" investigate --msisdn 13800138000 --month 2026-10 \
    --tariff "$TESTDATA/example/tariff" --profile "$p" "$T/no-such.csv"
msg="cdrecon: evidence: profile refused: $(sed "s|@FILE@|$p|" "${p%.profile}.expected"): input profile refused [CDR_E_PROFILE]"
check evidence "$msg" 17 "$CDRECON" evidence --no-pdf --msisdn 13800138000 --month 2026-10 \
    --out "$T/ev" --tariff "$TESTDATA/example/tariff" --profile "$p" "$TESTDATA/example/cdr/cdr-2026-10-a.csv"
[ ! -e "$T/ev" ] || { echo "FAIL: evidence wrote a pack with a refused profile"; bad=$((bad + 1)); }
msg="cdrecon: run: profile refused: $(sed "s|@FILE@|$p|" "${p%.profile}.expected"): input profile refused [CDR_E_PROFILE]"
check run "$msg" 17 "$CDRECON" run --tariff "$TESTDATA/example/tariff" --db "$T/r.db" \
    --out "$T/out" --profile "$p" "$TESTDATA/example/cdr/cdr-2026-10-a.csv"
[ ! -e "$T/r.db" ] && [ ! -e "$T/out" ] && [ ! -e "$T/r.db.state" ] ||
    { echo "FAIL: run made its database or outputs with a refused profile"; bad=$((bad + 1)); }
"$CDRECON" cluster init --parts 2 "$T/D" >/dev/null
msg="cdrecon: split: profile refused: $(sed "s|@FILE@|$p|" "${p%.profile}.expected"): input profile refused [CDR_E_PROFILE]"
check split "$msg" 17 "$CDRECON" split --cluster "$T/D" --profile "$p" "$TESTDATA/example/cdr/cdr-2026-10-a.csv"
[ -z "$(ls "$T/D/routed" "$T/D"/shard-*/incoming 2>/dev/null | grep -v ':$' | grep .)" ] ||
    { echo "FAIL: split routed with a refused profile"; bad=$((bad + 1)); }
# run: no profile with --rerate (it reads no files) nor with --cluster (split read them)
check run-rerate "cdrecon: run: --rerate reads no files, so no profile: the stored records were read through theirs: bad command line or argument [CDR_E_USAGE]" \
    1 "$CDRECON" run --rerate --tariff "$TESTDATA/example/tariff" --db "$T/r.db" --out "$T/out" \
    --profile "$TESTDATA/../profiles/pipe-fen.profile"

# Refusals at a CDR file's header: the file fails (exit 4) before its first row.
printf 'recordType,id,servedMSISDN\n0,r1,13800138000\n' >"$T/short.csv"
printf 'record_id = id\nmsisdn = servedMSISDN\nrecord_type = recordType\ntype 0 = voice\n\nstart_time = [opening time]\nbilled = charge\npeer = other?\n' >"$T/small.profile"
check header-lacks "cdrecon: scan: $T/short.csv: header lacks column(s) named by profile $T/small.profile: 'opening time' (line 6), 'charge' (line 7): CDR file header missing or invalid [CDR_E_HEADER]" \
    4 "$CDRECON" scan --profile "$T/small.profile" "$T/short.csv"
# many missing: as many as fit, then how many more
{ cat "$T/small.profile"; printf 'bytes = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%02d' 1
  for k in 2 3 4 5 6 7 8; do printf ' + aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%02d' $k; done; echo; } >"$T/many.profile"
a=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
check header-lacks-many "cdrecon: scan: $T/short.csv: header lacks column(s) named by profile $T/many.profile: 'opening time' (line 6), '${a}01' (line 9), '${a}02' (line 9), '${a}03' (line 9), '${a}04' (line 9), '${a}05' (line 9), '${a}06' (line 9) and 3 more: CDR file header missing or invalid [CDR_E_HEADER]" \
    4 "$CDRECON" scan --profile "$T/many.profile" "$T/short.csv"
printf 'a,b\n1,2\n' >"$T/two.csv"
printf 'record_id = $1\nmsisdn = $2\nservice = $3\nstart_time = $4\nbilled = $5\n' >"$T/idx.profile"
check header-index "cdrecon: scan: $T/two.csv: header has 2 columns, no \$3 (service, profile $T/idx.profile line 3): CDR file header missing or invalid [CDR_E_HEADER]" \
    4 "$CDRECON" scan --profile "$T/idx.profile" "$T/two.csv"
echo "$n refused profiles checked, $bad wrong"
[ "$n" -ge 60 ] && [ "$bad" -eq 0 ]
