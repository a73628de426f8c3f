# A CSV export of 3GPP TS 32.298-style charging records (one row a record,
# the ASN.1 field names as column names), as a mediation system writes them
# for a billing team: recordType picks the record, servedMSISDN is in
# international form (86...), recordOpeningTime is the 3GPP TimeStamp
# YYMMDDhhmmss+hhmm (the offset of the network element's clock), data volume
# is written as uplink + downlink, and a charge has been added in yuan.
#
#   cdrecon scan --profile profiles/3gpp-32298.profile export.csv.gz
#
# Example: testdata/example/profiles/3gpp-32298/ (the bundled month in this
# layout, written by `cdrgen --profile`). docs/profiles.md explains each line.
name = 3gpp-32298
separator = ,
quote = "
header = yes

# record types (TS 32.298 CallEventRecordType); pGWRecord is the PGW's data
# session; the SGW writes its own copy of each session (sGWRecord), which is
# not rated: skipped and counted. 100 is this operator's content-charging
# (SP) record, not a 3GPP value.
record_type = recordType
type 0 = voice mo
type 1 = voice mt
type 6 = sms mo
type 7 = sms mt
type 85 = data mo
type 84 = skip
type 100 = vas mo

record_id = localRecordSequenceNumber
msisdn = servedMSISDN
# the IMSI names IMSI-only records in their reject (it is not rated)
imsi = servedIMSI
number.imsi_prefix = 460

# the other party: calledNumber / callingNumber / SMS destination / SP code;
# a data session names its APN instead
peer = otherPartyNumber | accessPointNameNI
start_time = recordOpeningTime
start_time.format = %y%m%d%H%M%S%z
local_utc_offset = +08:00
duration_s = duration
bytes = dataVolumeGPRSUplink + dataVolumeGPRSDownlink
sms_chars = messageLength
sms_ref = messageReference
sms_part = concatenatedSegment
sms_parts = concatenatedTotal
# partial records of one call or session: chargingID and recordSequenceNumber
call_id = chargingID
partial_seq = recordSequenceNumber
billed = chargedAmount
billed.unit = yuan

#cdrgen extra = cellIdentity, recordingEntity
