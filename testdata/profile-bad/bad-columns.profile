header = no
columns = 5000
record_id = id
msisdn = m
service = s
start_time = t
billed = b
