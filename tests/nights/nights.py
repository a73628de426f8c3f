#!/usr/bin/env python3
"""Split a generated month into nightly deliveries, as switches deliver them.

usage: nights.py OUTDIR SEED [--late RATE] [--copies RATE] [--redeliver N] FILES...

Reads the CDR FILES (CSV or .csv.gz, one header), writes OUTDIR/night-NN.csv[.gz]
(one file per start day, gzip or plain at random, rows shuffled) and prints
the delivery order, one path a line, shuffled:
  --late RATE       this fraction of the records is delivered 1-4 nights after
                    its start day (after the month's last day: in a late file)
  --copies RATE     this fraction of the records is sent again on a later
                    night: half as the same record (same record_id), half as
                    the same usage under a new record_id - duplicates that
                    span nights
  --split-calls     the later parts of partial calls (call_id, partial_seq > 1)
                    are delivered one night after the first part
  --redeliver N     N files of the delivery are delivered once more later:
                    recompressed, decompressed or renamed copies (same content)
"""
import csv
import gzip
import io
import os
import random
import sys


def main():
    args = sys.argv[1:]
    out, seed = args[0], int(args[1])
    late = copies = 0.0
    redeliver = 0
    split_calls = False
    files = []
    i = 2
    while i < len(args):
        a = args[i]
        if a == "--late":
            late = float(args[i + 1]); i += 2
        elif a == "--copies":
            copies = float(args[i + 1]); i += 2
        elif a == "--redeliver":
            redeliver = int(args[i + 1]); i += 2
        elif a == "--split-calls":
            split_calls = True; i += 1
        else:
            files.append(a); i += 1
    rnd = random.Random(seed)
    header, rows = None, []
    for f in files:
        op = gzip.open if f.endswith(".gz") else open
        with op(f, "rt", newline="", encoding="utf-8") as fh:
            r = csv.reader(fh)
            h = next(r)
            if header is None:
                header = h
            if h != header:
                sys.exit("nights.py: files with different headers")
            rows.extend(r)
    ix = {c: k for k, c in enumerate(header)}
    nights = {}

    def day(row):
        return int(row[ix["start_time"]][8:10])

    def put(d, row):
        nights.setdefault(d, []).append(row)

    for row in rows:
        d = day(row)
        if split_calls and "partial_seq" in ix and row[ix["partial_seq"]] not in ("", "0", "1"):
            d += 1
        if rnd.random() < late:
            d += rnd.randint(1, 4)
        put(d, row)
        if rnd.random() < copies:
            again = list(row)
            if rnd.random() < 0.5:
                again[ix["record_id"]] = again[ix["record_id"]] + "X%d" % rnd.randint(0, 9999)
            put(d + rnd.randint(1, 3), again)
    os.makedirs(out, exist_ok=True)
    order = []
    for d, rs in sorted(nights.items()):
        rnd.shuffle(rs)
        name = os.path.join(out, "night-%02d.csv" % d)
        gz = rnd.random() < 0.5
        if gz:
            name += ".gz"
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rs)
        data = buf.getvalue().encode("utf-8")
        if gz:
            with gzip.GzipFile(name, "wb", mtime=0) as g:
                g.write(data)
        else:
            with open(name, "wb") as fh:
                fh.write(data)
        order.append(name)
    rnd.shuffle(order)
    # re-deliveries: the same content again, later, as another file
    for k in range(min(redeliver, len(order))):
        src = order[rnd.randrange(len(order))]
        raw = gzip.open(src).read() if src.endswith(".gz") else open(src, "rb").read()
        kind = rnd.choice(["recompressed", "decompressed", "renamed"])
        base = os.path.join(out, "again-%d-%s" % (k, kind))
        if kind == "recompressed" or (kind == "renamed" and src.endswith(".gz")):
            dst = base + ".csv.gz"
            with gzip.GzipFile(dst, "wb", mtime=0, compresslevel=1 if kind != "renamed" else 9) as g:
                g.write(raw)
            if kind == "renamed":
                with open(src, "rb") as a, open(dst, "wb") as b:
                    b.write(a.read())
        else:
            dst = base + ".csv"
            with open(dst, "wb") as fh:
                fh.write(raw)
        pos = order.index(src) + 1
        order.insert(rnd.randint(pos, len(order)), dst)
    print("\n".join(order))


main()
