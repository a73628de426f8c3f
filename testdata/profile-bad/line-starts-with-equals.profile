record_id = id
msisdn = m
service = s
start_time = t
billed = b
= peer
