#!/usr/bin/env python3
"""Build the seed corpora fuzz/corpus/<target>/ from testdata (run from the
repository root; idempotent: seeds are named seed-*). The fuzzers add their
own finds next to them (named by content hash)."""
import gzip, os

def put(target, name, data):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# parse: values of every parser, good and bad
vals = ["0.19", "0.0003", "-3.5", "12", "0.000001", "1000000000000", "1000000000000.000001",
        "0.1234567", "0.1234560", "1.", ".5", "+1", "1e3", "-0", "00.10",
        "2026-10-01 12:00:00", "2026-10-01T23:59:59", "2024-02-29 00:00:00", "2026-02-29 00:00:00",
        "2026-13-01 00:00:00", "1900-01-01 00:00:00", "9999-12-31 23:59:59", "2026-10-01",
        "00:00", "24:00", "23:60", "2026-10", "2026-00", "13812345678", "+8613812345678",
        "008613812345678", "8613812345678", "10086", "+", "123456789012345678901234567890123",
        "voice", "sms", "data", "vas", "mo", "mt", "VOICE"]
for i, v in enumerate(vals):
    put("fuzz_parse", "%02d" % i, v.encode())

def head(path, n):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        return b"".join(f.readlines()[:n])

ex = "testdata/example"
a = head(ex + "/cdr/cdr-2026-10-a.csv", 40)
b = head(ex + "/cdr/cdr-2026-10-c.csv.gz", 25)
bad = head(ex + "/bad/cdr-2026-10-bad.csv", 120)
quoted = (b'record_id,msisdn,service,direction,peer,start_time,duration_s,billed,note\r\n'
          b'"R1","13800000001","voice","mo","10086","2026-10-01 08:00:00","61","0.38","a ""quoted"", multi\nline"\r\n'
          b'R2,13800000001,sms,mo,13900000000,2026-10-01T09:00:00,,0.10,\r\n'
          b'R3,13800000001,voice,,120,2026-10-01 10:00:00,0,0.19,x\r\n')
for sel in (0, 1, 4, 8, 17, 48):
    put("fuzz_reader", "a-%d" % sel, bytes([sel]) + a)
put("fuzz_reader", "c-1", bytes([1]) + b)
put("fuzz_reader", "bad-0", bytes([0]) + bad)
put("fuzz_reader", "bad-24", bytes([24]) + bad)
put("fuzz_reader", "quoted-0", bytes([0]) + quoted)
put("fuzz_reader", "quoted-16", bytes([16]) + quoted)
# raw gzip bytes (two members) through the .gz name: the inflate path itself
put("fuzz_reader", "gz-raw-2", bytes([2]) + gzip.compress(a[:600]) + gzip.compress(a[600:1200]))
put("fuzz_reader", "gz-trunc-2", bytes([2]) + gzip.compress(a)[:-9])
put("fuzz_reader", "empty-0", bytes([0]))

for sel in (0, 1, 2, 4):
    put("fuzz_run", "a-%d" % sel, bytes([sel]) + a)
put("fuzz_run", "c-0", bytes([0]) + b)
put("fuzz_run", "bad-1", bytes([1]) + bad)
# the limits (issue 14; docs/rating.md "Limits and sums"): usage and amounts at
# and beyond them, partial calls summed past them, against both tariffs (bit
# 16: fuzz/tariff-limits, every price at the largest check-tariff accepts)
H = b"record_id,msisdn,service,direction,peer,start_time,duration_s,sms_chars,bytes,billed,call_id,partial_seq,sms_ref,sms_part,sms_parts\n"
lim = H + b"".join([l + b"\n" for l in [
    b"v1,13800000001,voice,mo,13900000000,2026-10-01 22:59:50,1000000000,,,999999999999.999999,,,,,",
    b"v2,13800000001,voice,mo,0044123,2026-10-02 10:00:00,1000000000,,,0,,,,,",
    b"v3,13800000001,voice,mo,13900000000,2026-10-03 10:00:00,1000000001,,,1,,,,,",
    b"v4,13800000001,voice,mt,13900000000,2026-10-03 11:00:00,100000000000000,,,1,,,,,",
    b"p1,13800000001,voice,mo,13900000000,2026-10-04 10:00:00,999999999,,,500000000000,c1,1,,,",
    b"p2,13800000001,voice,mo,13900000000,2026-10-04 10:00:01,999999999,,,500000000000,c1,2,,,",
    b"s1,13800000001,sms,mo,13900000000,2026-10-05 10:00:00,,1000000000,,999999999999.999999,,,,,",
    b"s2,13800000002,sms,mo,13900000000,2026-10-05 10:00:00,,1000000000,,0,,,r1,1,3",
    b"d1,13800000001,data,mo,cmnet,2026-10-06 10:00:00,,,1000000000000000,1,d,1,,,",
    b"d2,13800000001,data,mo,cmnet,2026-10-06 10:00:00,,,1000000000000000,1,d,2,,,",
    b"d3,13800000002,data,mo,cmwap,2026-10-06 10:00:00,,,1000000000000000,999999999999.999999,,,,,",
    b"x1,13800000001,vas,mo,SP1,2026-10-07 10:00:00,,,,999999999999.999999,,,,,",
    b"x2,13800000002,vas,mo,SP9,2026-10-07 10:00:00,,,,999999999999.999999,,,,,",
    b"m1,13800000003,voice,mo,13900000000,2026-10-15 23:59:59,1000000000,,,0,,,,,",
    b"m2,13800000003,voice,mo,13900000000,2026-10-16 00:00:00,1000000000,,,0,,,,,",
    b"m3,13800000002,voice,mo,13900000000,2026-10-08 10:00:00,1000000000,,,999999999999.999999,,,,,",
    b"m4,13800000002,voice,mo,13900000001,2026-10-09 10:00:00,1000000000,,,999999999999.999999,,,,,",
]])
for sel in (0, 16, 17, 18, 20, 24):
    put("fuzz_run", "limits-%d" % sel, bytes([sel]) + lim)
put("fuzz_reader", "limits-0", bytes([0]) + lim)
put("fuzz_reader", "limits-8", bytes([8]) + lim)

tables = ["plans.csv", "bands.csv", "rates.csv", "bundles.csv", "discounts.csv",
          "free_numbers.csv", "subscribers.csv", "subscriptions.csv", "refunds.csv"]
def tariff(d, maxlines=40):
    parts = []
    for t in tables:
        p = os.path.join(d, t)
        parts.append(b"".join(open(p, "rb").readlines()[:maxlines]) if os.path.exists(p) else b"")
    return b"@@\n".join(p if (not p or p.endswith(b"\n")) else p + b"\n" for p in parts)
for d in ("testdata/rate-hand", "testdata/tariff-mini", "testdata/example/tariff", "fuzz/tariff-limits"):
    if os.path.isdir(d):
        put("fuzz_tariff", os.path.basename(d.rstrip("/")) if "example" not in d else "example", tariff(d))
bd = "testdata/tariff-bad"
if os.path.isdir(bd):
    for k in sorted(os.listdir(bd))[:60]:
        put("fuzz_tariff", "bad-" + k, tariff(os.path.join(bd, k)))

# fuzz_profile: a profile, a line "%%", the start of a file in its layout;
# and every refused profile alone
pd = "profiles"
for name in ("3gpp-32298", "pipe-fen", "vendor-ms", "contract"):
    prof = open(os.path.join(pd, name + ".profile"), "rb").read()
    if name == "contract":
        body = a
    else:
        d = os.path.join(ex, "profiles", name)
        body = head(os.path.join(d, "cdr-2026-10-a.csv"), 30)
    for sel in (0, 3, 4 | (5 << 4)):
        put("fuzz_profile", "%s-%d" % (name, sel), bytes([sel]) + prof + b"%%\n" + body)
pb = "testdata/profile-bad"
if os.path.isdir(pb):
    for k in sorted(os.listdir(pb)):
        if k.endswith(".profile"):
            put("fuzz_profile", "bad-" + k[:-8], bytes([0]) + open(os.path.join(pb, k), "rb").read())
# fuzz_reader: the bundled month's layouts through the second pass
for name in ("3gpp-32298", "pipe-fen", "vendor-ms"):
    body = head(os.path.join(ex, "profiles", name, "cdr-2026-10-a.csv"), 30)
    put("fuzz_reader", "profile-" + name, bytes([0]) + body)
