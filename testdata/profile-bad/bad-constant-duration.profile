record_id = id
msisdn = m
service = s
start_time = t
billed = b
duration_s = "1.5"
