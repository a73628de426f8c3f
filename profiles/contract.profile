# The contract's own CDR layout (CONTRACT.md "CDR files", docs/cdr-format.md)
# written as an input profile. Reading with it gives the same rows, rejects
# and counts as reading without a profile (tests/unit/test_profile.c checks
# it on every reader test input); only the words of a header refusal differ.
# Start from a copy of it to describe an export that is close to the contract.
name = contract
separator = ,
quote = "
header = yes

record_id = record_id
msisdn = msisdn
service = service
# "?": the column may be absent from the header (then it reads as empty)
direction = direction?
peer = peer?
start_time = start_time
duration_s = duration_s?
bytes = bytes?
sms_chars = sms_chars?
sms_ref = sms_ref?
sms_part = sms_part?
sms_parts = sms_parts?
call_id = call_id?
partial_seq = partial_seq?
billed = billed
