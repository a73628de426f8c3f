#!/usr/bin/env python3
"""Independent exact-decimal reference for cdrecon's money arithmetic.

Generates money cases (random amounts and every half-fen midpoint in a range),
runs them through tests/reliability/money_driver (the library's
cdr_money_parse / cdr_money_format / cdr_money_round) and checks every answer
against Python's decimal.Decimal and fractions.Fraction -- no floating point
and no code shared with the C side.

usage: money_ref.py --driver BUILD/money_driver [--count N] [--mid-yuan M] [--seed S]
  --count N     random amounts (default 100000); each gives a parse, a format
                and a round case
  --mid-yuan M  every midpoint k.kk5 yuan in [-M, M] is rounded to 0.01, both
                exactly and as num/den with den in {3, 60, 1024}, with its
                neighbours one unit of num away (default 500)
Prints one summary line; exit 0 only if every case agrees.
"""
import argparse
import random
import re
import subprocess
import sys
from decimal import Decimal, getcontext
from fractions import Fraction

getcontext().prec = 80
MICRO = 10**6
MONEY_MAX = 10**12 * MICRO
OK, E_PARSE, E_RANGE = 0, 13, 14
GRAMMAR = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


def ref_parse(text):
    """(code, micro): the contract grammar ['-'] digit+ ['.' digit+], exact."""
    if not GRAMMAR.match(text):
        return (E_PARSE, 0)
    d = Decimal(text) * MICRO
    if d != d.to_integral_value():
        return (E_RANGE, 0)  # more than 6 significant fractional digits
    v = int(d)
    if abs(v) > MONEY_MAX:
        return (E_RANGE, 0)
    return (OK, v)


def ref_format(v, mind):
    mind = max(0, min(6, mind))
    d = abs(v)
    whole, frac = divmod(d, MICRO)
    digits = "%06d" % frac
    keep = len(digits.rstrip("0"))
    keep = max(keep, mind)
    s = ("-" if v < 0 else "") + str(whole)
    if keep:
        s += "." + digits[:keep]
    return s


def ref_round(num, den, step):
    """Round num/den micro-yuan once, half-up (ties away from zero), to step."""
    if den <= 0 or step <= 0:
        return (E_RANGE, 0)
    q = Fraction(num, den) / step
    a = abs(q)
    n = int(a + Fraction(1, 2))  # floor(|q| + 1/2): Fraction is exact
    r = n * step
    if r > MONEY_MAX:
        return (E_RANGE, 0)
    return (OK, -r if q < 0 else r)


def random_text(rng):
    """A decimal text: mostly valid amounts, some at the edges, some malformed."""
    k = rng.random()
    if k < 0.70:
        whole = str(rng.choice([0, rng.randrange(10), rng.randrange(1000), rng.randrange(10**13)]))
        nd = rng.randrange(0, 9)
        s = whole if nd == 0 else whole + "." + "".join(rng.choice("0123456789") for _ in range(nd))
        return ("-" + s) if rng.random() < 0.2 else s
    if k < 0.80:  # around the magnitude limit
        v = MONEY_MAX + rng.randrange(-3, 4)
        s = str(v // MICRO) + "." + "%06d" % (v % MICRO)
        return ("-" + s) if rng.random() < 0.5 else s
    if k < 0.87:  # exact with trailing zeros beyond 6 digits
        return "%d.%06d%s" % (rng.randrange(1000), rng.randrange(MICRO), "0" * rng.randrange(1, 4))
    bad = ["", "-", ".", "1.", ".5", "+1", "1e3", " 1", "1 ", "1,000", "0x10", "1..2",
           "--1", "1-", "１", "1.2.3", "-.5", "NaN", "inf", "12a", "1.\u00a0"]
    return rng.choice(bad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--mid-yuan", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261001)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cases, expect = [], []

    for _ in range(a.count):
        t = random_text(rng)
        cases.append("P " + t)
        expect.append("P %d %d" % ref_parse(t))
        v = rng.randrange(-MONEY_MAX, MONEY_MAX + 1) if rng.random() < 0.3 else rng.randrange(-10**9, 10**9)
        mind = rng.randrange(0, 7)
        cases.append("F %d %d" % (v, mind))
        expect.append("F " + ref_format(v, mind))
        # a rating product: price (micro) x usage / unit, rounded to the plan step
        price = rng.randrange(0, 5 * MICRO)
        usage = rng.randrange(0, 10**7)
        den = rng.choice([1, 60, 1024, 3, 7, 100, rng.randrange(1, 10**6)])
        num = price * usage * (-1 if rng.random() < 0.1 else 1)
        step = rng.choice([10000, 10000, 1000, 100000, 1, 50000])
        cases.append("R %d %d %d" % (num, den, step))
        expect.append("R %d %d" % ref_round(num, den, step))
    n_random = len(cases)

    # every exact half-fen midpoint in [-M, M] yuan, and its rational forms
    lim = a.mid_yuan * 100  # in fen
    mids = 0
    for fen in range(-lim, lim):
        m = fen * 10000 + 5000
        for den in (1, 3, 60, 1024):
            for d in ((0,) if den == 1 else (-1, 0, 1)):
                num = m * den + d
                cases.append("R %d %d 10000" % (num, den))
                expect.append("R %d %d" % ref_round(num, den, 10000))
                mids += 1

    data = ("\n".join(cases) + "\n").encode()
    p = subprocess.run([a.driver], input=data, stdout=subprocess.PIPE)
    got = p.stdout.decode().splitlines()
    if p.returncode != 0 or len(got) != len(expect):
        print("money_ref: driver failed (exit %d, %d of %d answers)" % (p.returncode, len(got), len(expect)))
        return 1
    bad = 0
    for c, e, g in zip(cases, expect, got):
        if e != g:
            # malformed text: any rejection is right, the code may be PARSE or RANGE
            if c.startswith("P ") and e.startswith("P 13") and g.split()[1] in ("13", "14"):
                continue
            bad += 1
            if bad <= 10:
                print("disagree: %r: reference %r, cdrecon %r" % (c, e, g))
    print("money_ref: %d random amounts (%d parse/format/round cases) and %d half-fen midpoint"
          " cases within +-%d yuan: %d disagreements" % (a.count, n_random, mids, a.mid_yuan, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
