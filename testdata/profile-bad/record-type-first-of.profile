record_id = id
msisdn = m
start_time = t
billed = b
record_type = a | b
type 0 = voice
