record_id = id
msisdn = m
service = s
billed = b
start_time.format = epoch
