record_id = id
msisdn = m
service = s
start_time = t
billed = b
start_time.utc_offset = "+08:00"
local_utc_offset = +08:00
