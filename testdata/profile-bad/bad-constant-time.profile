record_id = id
msisdn = m
service = s
start_time = "2026-02-30 00:00:00"
billed = b
