"""Mutated captures (issue 14): reading, judging and the JSON view are total on any file.

Real captures (Zeek's test traces) and the hand-built shapes, mutated with a fixed seed (byte
flips, cut tails, repeated or dropped ranges, pcapng with random if_tsresol / if_tsoffset): the
reader gives records or one CaptureError, and every connection it finds is judged and rendered
without an exception. A budget of a few hundred inputs keeps this in CI time; run
``RDPROBE_FUZZ=5000 pytest tests/test_pcap_fuzz.py`` for a longer campaign.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pcapgen as g
import pytest
from certgen import self_signed
from cryptography.hazmat.primitives import serialization

from rdprobe.capture.analyze import CaptureError, analyze, judge
from rdprobe.render import jsonl
from rdprobe.render.jsonl import report_dict

ROOT = Path(__file__).resolve().parent.parent
_HERE = ROOT / "captures" / "zeek"
ZEEK = _HERE if list(_HERE.glob("*.pcap")) else Path("/work/shared/captures/zeek")
BUDGET = int(os.environ.get("RDPROBE_FUZZ", "240"))


def seeds() -> list[bytes]:
    out = [p.read_bytes() for p in sorted(ZEEK.glob("*.pcap")) if p.stat().st_size < 400_000]
    der = self_signed("fuzz.example.test")[1].public_bytes(serialization.Encoding.DER)
    shapes = [
        g.Tcp().handshake().c(g.CR).s(g.CC_SSL).c(g.client_hello()).s(g.server_flight([der])),
        g.Tcp().syn().syn_ack().rst_c(),
        g.Tcp(sport=1080).handshake().c(b"\x05\x01\x00\x05\x01\x00\x01\x0a\x09\x09\x09\x0d\x3d")
        .s(b"\x05\x00\x05\x00\x00\x01\x0a\x00\x00\x02\x9c\x40").c(g.CR).s(g.CC_SSL),
    ]  # fmt: skip
    out += [g.pcap_bytes(s.fin_c().frames) for s in shapes]
    out.append(g.pcapng_bytes(shapes[0].frames))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # flip bytes
        for _ in range(rng.randrange(1, 16)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:  # cut the tail
        del buf[rng.randrange(24, len(buf)) :]
    elif kind == 2:  # repeat a range
        a = rng.randrange(24, len(buf))
        b = min(len(buf), a + rng.randrange(1, 2000))
        buf[a:a] = buf[a:b]
    elif kind == 3:  # drop a range
        a = rng.randrange(24, len(buf))
        del buf[a : a + rng.randrange(1, 200)]
    elif kind == 4:  # flip bytes in the payload area only (headers intact more often)
        for _ in range(rng.randrange(1, 64)):
            buf[rng.randrange(54, len(buf))] ^= 1 << rng.randrange(8)
    else:  # pcapng interface with random time resolution and offset
        frames = []
        pos = 24
        while pos + 16 <= len(data):
            sec, usec, incl, _ = struct.unpack_from("<IIII", data, pos)
            frames.append((sec + usec / 1e6, data[pos + 16 : pos + 16 + incl]))
            pos += 16 + incl
        return g.pcapng_bytes(
            frames, tsresol=rng.randrange(256), tsoffset=rng.randrange(-(2**63), 2**63)
        )
    return bytes(buf)


def test_mutated_captures_are_read_judged_and_rendered_without_exception(tmp_path: Path) -> None:
    rng = random.Random(14)
    corpus = seeds()
    counts = {"inputs": 0, "unreadable": 0, "connections": 0}
    f = tmp_path / "m.pcap"
    for i in range(BUDGET):
        f.write_bytes(mutate(corpus[i % len(corpus)], rng))
        counts["inputs"] += 1
        found = []
        try:
            analyze(f, emit=found.append)
        except CaptureError as exc:
            counts["unreadable"] += 1
            assert "\n" not in str(exc)
            continue
        for conn in found:
            report = judge(conn)
            jsonl.dumps({**report_dict(report), "connection": conn.to_dict()})
            assert conn.error is None, (i, conn.error)
            counts["connections"] += 1
    assert counts["connections"] > BUDGET // 2  # the mutations left most files readable


RUNNER = "from rdprobe import cli\ncli.main()\n"


@pytest.mark.parametrize("form", [[], ["--json"], ["--csv", "out.csv"]])
def test_cli_on_mutated_files_exits_0_1_or_2_without_traceback(tmp_path: Path, form) -> None:
    rng = random.Random(len(form))
    corpus = seeds()
    files = []
    for i in range(12):
        path = tmp_path / f"m{i}.pcap"
        path.write_bytes(mutate(corpus[i % len(corpus)], rng))
        files.append(path)
    args = [a if a != "out.csv" else str(tmp_path / a) for a in form]
    p = subprocess.run(
        [sys.executable, "-c", RUNNER, "pcap", *map(str, files), *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert p.returncode in (0, 1, 2), p.stderr[-2000:]
    assert "Traceback" not in p.stderr + p.stdout and "internal error" not in p.stderr
    for line in p.stderr.splitlines():  # each message is one line naming its file, or a warning
        assert line.startswith("rdprobe: "), line
