# A billing vendor's semicolon-separated export: the date and the time of a
# record in two columns, durations in milliseconds, charges in jiao (tenths
# of a yuan), service type codes, numbers as the switch wrote them (some
# with the trunk prefix 0), and a TOTAL trailer line with the row count.
#
#   cdrecon scan --profile profiles/vendor-ms.profile VENDOR_202610.csv
#
# Example: testdata/example/profiles/vendor-ms/. docs/profiles.md explains
# each line.
name = vendor-ms
separator = ;
quote = "
header = yes
skip_prefix = TOTAL;

record_id = CDR_ID
record_type = SERVICE_TYPE
type MOC = voice mo
type MTC = voice mt
type MOSMS = sms mo
type MTSMS = sms mt
type GPRS = data mo
type SP = vas mo
# supplementary-service records (call forwarding set-up, ...) are not rated
type SS = skip

msisdn = SERV_NBR
peer = OPP_NBR
number.trunk_prefix = 0
start_time = START_DATE & START_TIME
start_time.format = %Y%m%d %H:%M:%S
duration_s = DURATION_MS
duration_s.unit = ms
bytes = FLUX_BYTES
sms_chars = SMS_LEN
sms_ref = SMS_REF
sms_part = SMS_SEQ
sms_parts = SMS_TOTAL
call_id = SESSION_ID
partial_seq = SESSION_SEQ
billed = CHARGE_JIAO
billed.unit = jiao

#cdrgen extra = CELL_ID, MSC_ID
