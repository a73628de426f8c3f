# A switch's pipe-separated export without a header row, charges in fen
# (integer hundredths of a yuan). The first field is a record type: 00 is
# the file's header record and 99 its trailer (both skipped and counted),
# the others say what the record is. Times are YYYYMMDDhhmmss, operator-local.
#
#   cdrecon scan --profile profiles/pipe-fen.profile CDR_20261001.dat
#
# Example: testdata/example/profiles/pipe-fen/. docs/profiles.md explains
# each line.
name = pipe-fen
separator = |
quote = none
header = no
columns = 16

record_type = $1
type 00 = skip
type 99 = skip
type 10 = voice mo
type 11 = voice mt
type 20 = sms mo
type 21 = sms mt
type 30 = data mo
type 40 = vas mo

record_id = $2
msisdn = $3
peer = $4
start_time = $5
start_time.format = %Y%m%d%H%M%S
duration_s = $6
bytes = $7
sms_chars = $8
sms_ref = $9
sms_part = $10
sms_parts = $11
call_id = $12
partial_seq = $13
billed = $14
billed.unit = fen
# $15 (cell) and $16 (MSC) are kept as unknown columns
