header = no
columns = 5
record_id = $1
msisdn = m
service = $3
start_time = $4
billed = $5
