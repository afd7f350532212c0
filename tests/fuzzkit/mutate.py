"""Deterministic byte mutations: flips, interesting values, cuts, splices, length fields."""

from __future__ import annotations

import random

INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFE, 0xFF)


def mutate(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """One to four mutations of *data* (never longer than 4x plus 64 bytes)."""
    out = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(out)
        if op == 0 and n:  # flip a bit
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # an interesting byte
            out[rng.randrange(n)] = rng.choice(INTERESTING)
        elif op == 2 and n:  # a random byte
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 3 and n:  # truncate
            del out[rng.randrange(n) :]
        elif op == 4 and n:  # delete a run
            i = rng.randrange(n)
            del out[i : i + rng.randint(1, 16)]
        elif op == 5:  # insert random bytes
            i = rng.randrange(n + 1)
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 6 and n:  # duplicate a run
            i = rng.randrange(n)
            out[i:i] = out[i : i + rng.randint(1, 64)]
        elif op == 7 and n >= 2:  # a 16-bit field to an extreme (length fields)
            i = rng.randrange(n - 1)
            out[i : i + 2] = rng.choice((b"\x00\x00", b"\xff\xff", b"\x7f\xff", b"\x80\x00"))
        elif op == 8:  # trailing bytes
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    if len(out) > 4 * len(data) + 64:
        del out[4 * len(data) + 64 :]
    return bytes(out)
