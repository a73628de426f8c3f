record_id = id
msisdn = m
start_time = t
billed = b
record_type = "0"
type 0 = voice
