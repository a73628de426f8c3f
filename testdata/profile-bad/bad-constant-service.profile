record_id = id
msisdn = m
service = "fax"
start_time = t
billed = b
