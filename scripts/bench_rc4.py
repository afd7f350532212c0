"""RC4 for Standard RDP Security: cryptography's decrepit ARC4 against a plain-Python RC4.

Both are checked against RFC 6229 (key 0x0102030405, first 16 keystream bytes), then both
encrypt the same packets; prints the time of each and the ratio. rdprobe uses the first
(rdprobe.protocol.rdpcrypt); the second exists only here, as the peer of the measurement.
"""

from __future__ import annotations

import os
import time

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

RFC6229_KEY = bytes.fromhex("0102030405")
RFC6229_STREAM = bytes.fromhex("b2396305f03dc027ccc3524a0a1118a8")
PACKETS, SIZE = 2_000, 1_000


def python_rc4(key: bytes):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    i = j = 0

    def update(data: bytes) -> bytes:
        nonlocal i, j
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
        return bytes(out)

    return update


def main() -> None:
    zeros = b"\x00" * 16
    ours = python_rc4(RFC6229_KEY)(zeros)
    theirs = Cipher(ARC4(RFC6229_KEY), mode=None).encryptor().update(zeros)
    assert ours == theirs == RFC6229_STREAM, "RC4 does not match RFC 6229"
    key, data = os.urandom(16), os.urandom(SIZE)
    lib = Cipher(ARC4(key), mode=None).encryptor()
    start = time.perf_counter()
    for _ in range(PACKETS):
        lib.update(data)
    t_lib = time.perf_counter() - start
    py = python_rc4(key)
    start = time.perf_counter()
    for _ in range(PACKETS):
        py(data)
    t_py = time.perf_counter() - start
    print(
        f"{PACKETS} packets of {SIZE} bytes: cryptography ARC4 {t_lib * 1000:.1f} ms, "
        f"plain Python RC4 {t_py * 1000:.1f} ms, ratio {t_py / t_lib:.0f}x"
    )


if __name__ == "__main__":
    main()
