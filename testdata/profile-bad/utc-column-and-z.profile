record_id = id
msisdn = m
service = s
start_time = t
billed = b
start_time.format = %Y%m%d%H%M%S%z
start_time.utc_offset = tz
local_utc_offset = +08:00
