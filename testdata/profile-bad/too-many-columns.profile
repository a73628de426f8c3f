record_id = id
msisdn = m
service = s
start_time = t
billed = b
bytes = a + b + c + d + e + f + g + h + i
