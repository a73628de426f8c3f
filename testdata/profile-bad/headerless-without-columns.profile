header = no
record_id = $1
msisdn = $2
service = $3
start_time = $4
billed = $5
