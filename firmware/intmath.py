# Exact integer helpers shared by the dose scheduler and the drivers: no floats,
# no true division, and no long ints on a 32-bit port while the stated bounds hold
# (muldiv). The pump writes no decimal text: a volume in its texts is a token, "{n20000000}",
# that pumpctl writes as "20 mL" (host/pumpctl/words.py).

from firmware import const

_TOP_BIT = const(0x20000000)  # 2**29: the highest bit of a multiplier muldiv handles

remainder = 0  # a * b mod d of the last muldiv(): a module global, so reading it allocates nothing


def muldiv(a, b, d):
    """floor(a * b / d) for 0 <= a < 2**30, 0 <= b < 2**30, 0 < d < 2**29, when the
    quotient is below 2**30; leaves a * b mod d in `remainder`.

    a = q*d + r, so a*b/d = q*b + r*b/d; r*b/d is a shift-and-add long
    multiplication whose running remainder stays below 2*d, so a 32-bit port
    makes no long int and this allocates nothing."""
    global remainder
    q = a // d
    r = a - q * d
    acc = 0
    rem = 0
    bit = _TOP_BIT
    while bit:
        acc += acc
        rem += rem  # < 2d
        if rem >= d:
            rem -= d
            acc += 1
        if b & bit:
            rem += r  # < 2d
            if rem >= d:
                rem -= d
                acc += 1
        bit >>= 1
    remainder = rem
    return q * b + acc


def gcd(a, b):
    """The greatest common divisor of a >= 0 and b >= 0 (Euclid; long ints allowed: command path)."""
    while b:
        a, b = b, a % b
    return a
