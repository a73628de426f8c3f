header = no
columns = 5
record_id = $1
msisdn = $2
service = $3
start_time = $4
billed = $5
peer = $5?
