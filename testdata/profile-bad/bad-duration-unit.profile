record_id = id
msisdn = m
service = s
start_time = t
billed = b
duration_s = d
duration_s.unit = min
