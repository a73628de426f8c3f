#!/usr/bin/env python3
"""Checks of the month report (cdrecon report, docs/report.md).

usage: check_report.py MODE PAGE DB [args]

  sql PAGE DB              every figure's table equals the rows its shown query
                           gives in `sqlite3 -readonly -json DB` (run in the
                           current directory); every figure has a query
  csv PAGE DB OUT TARIFF NIGHTS
                           every figure recomputed independently from the run's
                           CSV outputs in OUT (findings.csv, candidates.csv,
                           rejects.csv), the tariff's CSV tables and NIGHTS (a
                           file: one line per run, "input-file changes.csv-copy")
  dom DOM DB               the rendered DOM (chromium --dump-dom): charts present
                           with one bar per category, totals equal the database's

Everything prints "check_report: ok ..." or raises.
"""
import csv
import datetime
import gzip
import html.parser
import json
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal

MICRO = Decimal(1000000)


class Page(html.parser.HTMLParser):
    """Tables (id t-MONTH-FIG: rows of data-v), shown queries, cards, svgs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.heads, self.sql, self.cards = {}, {}, {}, {}
        self.svgs = []  # (id, class, [rect/circle attrs])
        self.text = []
        self._t = self._row = self._pre = self._svg = None
        self._none = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id", "").startswith("t-"):
            self._t = a["id"][2:]
            self.tables[self._t], self.heads[self._t] = [], []
        elif tag == "th" and self._t and "data-key" in a:
            self.heads[self._t].append(a["data-key"])
        elif tag == "tr" and self._t:
            self._none = a.get("class") == "none"
            self._row = []
        elif tag == "td" and self._row is not None and not self._none:
            self._row.append(None if a.get("data-null") else a.get("data-v"))
        elif tag == "pre" and a.get("class") == "sql":
            self._pre = a["data-month"] + "-" + a["data-fig"]
            self.sql[self._pre] = ""
        elif tag == "div" and a.get("class") == "card":
            self.cards[a["id"]] = a["data-v"]
        elif tag == "svg":
            self._svg = (a.get("id"), a.get("class"), [])
            self.svgs.append(self._svg)
        elif self._svg and tag in ("rect", "circle"):
            self._svg[2].append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self._t = None
        elif tag == "tr" and self._row is not None:
            if self._row and not self._none:
                self.tables[self._t].append(self._row)
            self._row = None
        elif tag == "pre":
            self._pre = None
        elif tag == "svg":
            self._svg = None

    def handle_data(self, data):
        if self._pre:
            self.sql[self._pre] += data
        self.text.append(data)


def parse(path):
    p = Page()
    p.feed(open(path, encoding="utf-8").read())
    return p


def mask_number(s):
    return s[:3] + "*" * (len(s) - 7) + s[-4:] if len(s) >= 8 else s


def mask_text(s):
    return re.sub(r"[0-9]{8,}", lambda m: mask_number(m.group(0)), s)


def yuan(v):
    return Decimal(v) / MICRO


def same(key, unit, page_v, sql_v):
    """Is the page's data-v the query's value?"""
    if sql_v is None or page_v is None:
        return sql_v is None and page_v is None
    if key.endswith("_micro") or (unit == "micro" and key in ("now", "previous", "change")):
        return Decimal(page_v) == yuan(sql_v)
    if key == "price":
        return Decimal(page_v) == Decimal(str(sql_v))
    if key == "msisdn":
        return page_v == mask_number(str(sql_v))
    return page_v == mask_text(str(sql_v))


def check_sql(page_path, db):
    p = parse(page_path)
    assert p.tables, "no table on the page"
    n = 0
    for tid, rows in p.tables.items():
        assert tid in p.sql, "figure %s has no query on the page" % tid
        q = p.sql[tid]
        r = subprocess.run(["sqlite3", "-readonly", "-json", "-bail", db], input=q,
                           capture_output=True, text=True)
        assert r.returncode == 0, "%s: sqlite3 failed: %s" % (tid, r.stderr)
        got = json.loads(r.stdout) if r.stdout.strip() else []
        keys = p.heads[tid]
        assert len(got) == len(rows), "%s: %d rows on the page, the query gives %d" % (
            tid, len(rows), len(got))
        for i, (prow, srow) in enumerate(zip(rows, got)):
            assert list(srow.keys()) == keys, "%s: columns %s vs %s" % (tid, keys, list(srow))
            unit = srow.get("unit")
            for k, pv in zip(keys, prow):
                assert same(k, unit, pv, srow[k]), "%s row %d %s: page %r, query %r" % (
                    tid, i, k, pv, srow[k])
        n += 1
    print("check_report: ok: %d figures equal their queries" % n)


# ---------------------------------------------------------------------------
# Independent recomputation from the CSV outputs and the tariff.

def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def dec(s):
    return Decimal(s.lstrip("'"))


def table(p, month, fig):
    return p.tables[month + "-" + fig], p.heads[month + "-" + fig]


def col(p, month, fig, key):
    rows, heads = table(p, month, fig)
    i = heads.index(key)
    return [r[i] for r in rows]


def rowmap(p, month, fig, key):
    rows, heads = table(p, month, fig)
    i = heads.index(key)
    return {r[i]: dict(zip(heads, r)) for r in rows}


def sum_pos(rows):
    return sum((max(dec(r["difference"]), 0) for r in rows), Decimal(0))


def sum_neg(rows):
    return sum((max(-dec(r["difference"]), 0) for r in rows), Decimal(0))


def check_totals(p, month, fnd, cand, unr, rej, records):
    t = rowmap(p, month, "totals", "metric")
    want = {
        "findings": len(fnd), "candidates": len(cand),
        "overcharge": sum((dec(c["overcharge"]) for c in cand), Decimal(0)),
        "refund": sum((dec(c["refund"]) for c in cand), Decimal(0)),
        "leakage": sum_neg(fnd), "rejects": len(rej), "unrated": len(unr),
    }
    if records is not None:
        want["records"] = records
    for k, v in want.items():
        assert Decimal(t[k]["now"]) == Decimal(v), "totals %s: page %s, CSV %s" % (k, t[k]["now"], v)
    # the refund is twice the overcharge, and the findings' overcharge is the candidates'
    assert want["refund"] == 2 * want["overcharge"]
    assert sum_pos(fnd) == want["overcharge"], (sum_pos(fnd), want["overcharge"])
    assert p.cards[f"total-{month}-refund"] == t["refund"]["now"]


def check_categories(p, month, fnd):
    page = rowmap(p, month, "category", "category")
    cats = sorted({r["category"] for r in fnd if r["category"]})
    assert sorted(page) == cats, (sorted(page), cats)
    for c in cats:
        rs = [r for r in fnd if r["category"] == c]
        row = page[c]
        assert int(row["findings"]) == len(rs)
        assert Decimal(row["overcharge_micro"]) == sum_pos(rs)
        assert Decimal(row["refund_micro"]) == 2 * sum_pos(rs)
        assert Decimal(row["leakage_micro"]) == sum_neg(rs)
    # services
    page = rowmap(p, month, "services", "service")
    for s in {r["service"] for r in fnd}:
        rs = [r for r in fnd if r["service"] == s]
        assert int(page[s]["findings"]) == len(rs), s
        assert Decimal(page[s]["overcharge_micro"]) == sum_pos(rs), s
    assert len(page) == len({r["service"] for r in fnd})


def check_heat(p, month, fnd):
    rows, heads = table(p, month, "heat")
    grid = {}
    for r in fnd:
        if r["category"] != "wrong_band":
            continue
        t = datetime.datetime.strptime(r["start_time"], "%Y-%m-%d %H:%M:%S")
        key = ((t.weekday() + 1) % 7, t.hour)  # strftime %w: 0 = Sunday
        grid[key] = grid.get(key, 0) + 1
    assert len(rows) == 7
    for r in rows:
        d = int(r[0])
        for h in range(24):
            assert int(r[2 + h]) == grid.get((d, h), 0), (d, h)
        assert int(r[1]) == sum(grid.get((d, h), 0) for h in range(24))


def check_candidates(p, month, cand):
    groups = {}
    for c in cand:
        g = groups.setdefault((c["tier"], c["policy"]), [0, Decimal(0), 0])
        g[0] += 1
        g[1] += dec(c["refund"])
        g[2] += int(c["special"])
    rows, heads = table(p, month, "tiers")
    got = {(r[0], r[1]): [int(r[2]), Decimal(r[4]), int(r[5])] for r in rows}
    assert got == groups, (got, groups)
    sp = [c for c in cand if c["special"] == "1"]
    rows, heads = table(p, month, "special")
    s = dict(zip(heads, rows[0]))
    assert int(s["candidates"]) == len(sp)
    assert Decimal(s["refund_micro"]) == sum((dec(c["refund"]) for c in sp), Decimal(0))
    top = sorted(cand, key=lambda c: (-dec(c["refund"]), c["msisdn"]))[:20]
    rows, heads = table(p, month, "top")
    assert len(rows) == len(top)
    for r, c in zip(rows, top):
        d = dict(zip(heads, r))
        assert d["msisdn"] == mask_number(c["msisdn"])
        assert Decimal(d["refund_micro"]) == dec(c["refund"])
        assert d["categories"] == c["categories"] and d["policy"] == c["policy"]
    # deadlines: every candidate in one row, by policy
    rows, heads = table(p, month, "deadlines")
    for pol in ("refund_first", "verify_first"):
        n = sum(int(r[2]) for r in rows if r[0] == pol)
        assert n == sum(1 for c in cand if c["policy"] == pol), pol


def tariff_tables(tdir):
    subs = read_csv(tdir + "/subscribers.csv")
    bands = read_csv(tdir + "/bands.csv")
    rates = read_csv(tdir + "/rates.csv")
    return subs, bands, rates


def plan_of(subs, msisdn, day):
    for s in subs:
        if s["msisdn"] == msisdn and s["valid_from"] <= day and (
                not s.get("valid_to") or day <= s["valid_to"]):
            return s["plan"]
    return None


def band_of(bands, start):
    t = datetime.datetime.strptime(start, "%Y-%m-%d %H:%M:%S")
    dk = "weekend" if t.weekday() >= 5 else "weekday"
    hm = start[11:16]
    for b in bands:
        if (b.get("days") or "all").lower() not in ("all", dk):
            continue
        f, to = b["from"], b["to"]
        if (f < to and f <= hm < to) or (to <= f and (hm >= f or hm < to)):
            return b["band"]
    return None


def rate_of(rates, plan, service, peer, band):
    best, key = None, None
    for i, r in enumerate(rates):
        pre = r.get("prefix") or "*"
        rb = r.get("band") or "*"
        if r["plan"] != plan or r["service"].lower() != service or \
                (r.get("direction") or "mo").lower() != "mo" or rb not in ("*", band):
            continue
        if pre != "*" and not peer.startswith(pre):
            continue
        k = (0 if pre == "*" else len(pre), rb != "*")
        if key is None or k > key:
            best, key = i + 2, k
    return best


def check_tariff_figs(p, month, fnd, tdir):
    subs, bands, rates = tariff_tables(tdir)
    plans, lines = {}, {}
    for r in fnd:
        d = dec(r["difference"])
        if d == 0:
            continue
        plan = plan_of(subs, r["msisdn"], r["start_time"][:10])
        if plan is None:
            continue
        g = plans.setdefault(plan, [0, Decimal(0), Decimal(0)])
        g[0] += 1
        g[1] += max(d, 0)
        g[2] += max(-d, 0)
        if r["category"] in ("duplicate", "free_number", "vas_no_subscription"):
            continue
        line = rate_of(rates, plan, r["service"], r["peer"], band_of(bands, r["start_time"]))
        if line is None:
            continue
        g = lines.setdefault(str(line), [0, Decimal(0), Decimal(0)])
        g[0] += 1
        g[1] += max(d, 0)
        g[2] += max(-d, 0)
    want = sorted(plans.items(), key=lambda kv: (-kv[1][1], -kv[1][2], kv[0]))[:10]
    rows, heads = table(p, month, "plans")
    got = [(r[0], [int(r[1]), Decimal(r[2]), Decimal(r[3])]) for r in rows]
    assert got == want, (got, want)
    want = sorted(lines.items(), key=lambda kv: (-kv[1][1], -kv[1][2], int(kv[0])))[:15]
    rows, heads = table(p, month, "rates")
    got = [(r[0], [int(r[7]), Decimal(r[8]), Decimal(r[9])]) for r in rows]
    assert got == want, (got, want)


def data_lines(path):
    """Lines of a CDR file but its header (gzip or not)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f) - 1


def check_nights(p, month, nights_file, fnd, cand):
    nights = [l.split() for l in open(nights_file) if l.strip()]
    rows, heads = table(p, month, "nights")
    assert len(rows) == len(nights), (len(rows), len(nights))
    for r, (inp, changes) in zip(rows, nights):
        d = dict(zip(heads, r))
        ch = read_csv(changes)
        for st, k in (("new", "proposed"), ("increased", "increased"),
                      ("decreased", "decreased"), ("withdrawn", "withdrawn")):
            assert int(d[k]) == sum(1 for c in ch if c["status"] == st), (inp, k)
        assert Decimal(d["refund_delta_micro"]) == sum((dec(c["delta"]) for c in ch), Decimal(0))
    last = dict(zip(heads, rows[-1]))
    assert Decimal(last["refund_to_date_micro"]) == sum((dec(c["refund"]) for c in cand), Decimal(0))
    assert int(last["findings_to_date"]) == len(fnd)
    # files per night, and late findings: a finding is late when its start day
    # is before the latest start day of the findings of earlier nights
    night_of = {inp: i for i, (inp, _) in enumerate(nights)}
    rows, heads = table(p, month, "files")
    for r, (inp, changes) in zip(rows, nights):
        d = dict(zip(heads, r))
        assert int(d["files"]) == 1, (inp, d)
        # (a file with rejected rows may hold quoted line ends: rows are not lines)
        if not read_csv(changes.replace("changes", "rejects")):
            assert int(d["rows_read"]) == data_lines(inp), (inp, d)
    by = {}
    for r in fnd:
        by.setdefault(night_of[r["file"]], []).append(r["start_time"][:10])
    rows, heads = table(p, month, "late")
    seen, want = None, []
    for n in sorted(by):
        days = by[n]
        want.append([str(n + 1), str(len(days)), seen,
                     str(sum(1 for x in days if seen and x < seen))])
        seen = max([seen] + days) if seen else max(days)
    assert rows == want, (rows, want)


def reason_kind(reason):
    if "'" in reason:
        reason = reason[:reason.index("'")]
    return reason.rstrip(" :")


def check_rejects(p, month, rej):
    kinds = {}
    for r in rej:
        k = reason_kind(r["reason"])
        kinds.setdefault(k, set()).add(r["file"])
        kinds[k + "#n"] = kinds.get(k + "#n", 0) + 1
    rows, heads = table(p, month, "reject-reasons")
    want = sorted(((k, kinds[k + "#n"], len(kinds[k])) for k in kinds if not k.endswith("#n")),
                  key=lambda x: (-x[1], x[0]))[:20]
    got = [(r[0], int(r[1]), int(r[2])) for r in rows]
    assert got == [(mask_text(k), n, f) for k, n, f in want], (got, want)
    rows, heads = table(p, month, "reject-files")
    per = {}
    for r in rej:
        per[r["file"]] = per.get(r["file"], 0) + 1
    got = {r[0]: int(r[4]) for r in rows}
    assert got == per, (got, per)


def check_csv(page_path, db, out, tdir, nights_file):
    p = parse(page_path)
    month = re.search(r'data-month="([0-9]{4}-[0-9]{2})"', open(page_path).read()).group(1)
    fnd = [r for r in read_csv(out + "/findings.csv") if r["month"] == month]
    cand = [r for r in read_csv(out + "/candidates.csv") if r["month"] == month]
    unr = [r for r in read_csv(out + "/unrated.csv") if r["month"] == month]
    nights = [l.split() for l in open(nights_file) if l.strip()]
    rej = []
    for _, changes in nights:
        rj = changes.replace("changes", "rejects")
        rej += read_csv(rj)
    # records stored: the rows of the files (when none was rejected: a file
    # with rejected rows may hold quoted line ends)
    records = None if rej else sum(data_lines(inp) for inp, _ in nights)
    check_totals(p, month, fnd, cand, unr, rej, records)
    check_categories(p, month, fnd)
    check_heat(p, month, fnd)
    check_candidates(p, month, cand)
    check_tariff_figs(p, month, fnd, tdir)
    check_nights(p, month, nights_file, fnd, cand)
    check_rejects(p, month, rej)
    print("check_report: ok: the page's figures recomputed from the CSV outputs and the tariff "
          "(%d findings, %d candidates, %d rejects)" % (len(fnd), len(cand), len(rej)))


# ---------------------------------------------------------------------------

def check_dom(dom_path, db):
    p = parse(dom_path)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    month = con.execute("SELECT max(month) FROM state_files").fetchone()[0]
    ncat = con.execute("SELECT count(DISTINCT category) FROM current_findings "
                       "WHERE month = ? AND category <> ''", (month,)).fetchone()[0]
    assert ncat > 0
    svgs = {s[0]: s for s in p.svgs}
    for sid in ("c-%s" % month, "c-%s-money" % month):
        assert sid in svgs, "chart %s missing" % sid
        bars = [a for a in svgs[sid][2] if a.get("class") == "bar"]
        assert len(bars) == ncat, "%s: %d bars, %d categories in the database" % (
            sid, len(bars), ncat)
    nights = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    lines = svgs["c-%s-nights" % month]
    assert len([a for a in lines[2] if a.get("class") == "pt"]) == 3 * nights
    heat = svgs["c-%s-heat" % month]
    cells = [a for a in heat[2] if a.get("class") == "cell"]
    assert len(cells) == 168
    wb = con.execute("SELECT count(*) FROM current_findings WHERE month = ? AND "
                     "category = 'wrong_band'", (month,)).fetchone()[0]
    assert sum(int(a["data-v"]) for a in cells) == wb
    # the totals on the page are the database's
    one = lambda q: con.execute(q, (month,)).fetchone()[0] or 0
    want = {
        "findings": one("SELECT count(*) FROM current_findings WHERE month = ?"),
        "candidates": one("SELECT count(*) FROM current_candidates WHERE month = ?"),
        "overcharge": yuan(one("SELECT sum(overcharge_micro) FROM current_candidates "
                               "WHERE month = ?")),
        "refund": yuan(one("SELECT sum(refund_micro) FROM current_candidates WHERE month = ?")),
        "leakage": yuan(one("SELECT -sum(difference_micro) FROM current_findings "
                            "WHERE month = ? AND category = 'leakage'")),
        "unrated": one("SELECT count(*) FROM current_unrated WHERE month = ?"),
        "records": one("SELECT sum(records) FROM state_files WHERE month = ? "
                       "AND kind = 'segment'"),
    }
    for k, v in want.items():
        card = p.cards.get("total-%s-%s" % (month, k))
        assert card is not None and Decimal(card) == Decimal(v), "total %s: page %s, database %s" % (
            k, card, v)
    text = "\n".join(p.text)
    assert not re.search(r"[0-9]{11}", text), "an 11-digit number in the rendered text"
    print("check_report: ok: %d bars per category chart, totals equal the database" % ncat)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sql":
        check_sql(sys.argv[2], sys.argv[3])
    elif mode == "csv":
        check_csv(*sys.argv[2:7])
    elif mode == "dom":
        check_dom(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
