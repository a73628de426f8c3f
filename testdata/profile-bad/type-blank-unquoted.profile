record_id = id
msisdn = m
start_time = t
billed = b
record_type = rt
type a b = voice
