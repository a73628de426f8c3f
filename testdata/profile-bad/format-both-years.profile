record_id = id
msisdn = m
service = s
start_time = t
billed = b
start_time.format = %Y%y%m%d%H%M
