record_id = id
msisdn = m
service = s
start_time = t
billed = b
start_time.format = %Y-%m-%d %H:%M:%Q
