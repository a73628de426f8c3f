record_id = id
msisdn = m
service = s
start_time = t
billed = b
record_type = rt
type 0 = voice
