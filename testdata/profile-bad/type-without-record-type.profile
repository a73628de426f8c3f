record_id = id
msisdn = m
start_time = t
billed = b
type 0 = voice
