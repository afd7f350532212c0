"""`rdprobe pcap` as a user runs it (subprocess): output forms, filters, and broken input, which
must give a one-line error or a partial result with a warning, never a traceback."""

from __future__ import annotations

import csv
import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ZEEK = ROOT / "captures/zeek"
RUNNER = "from rdprobe import cli\ncli.main()\n"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "pcap", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={
            "COLUMNS": "100",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            # the consistency check of conftest, in the subprocess too
            "RDPROBE_CHECK_CONSISTENCY": os.environ.get("RDPROBE_CHECK_CONSISTENCY", ""),
        },
    )


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr + p.stdout
    assert "internal error" not in p.stderr


def records(path: Path) -> tuple[bytes, list[bytes]]:
    """(file header, [record header + data, ...]) of a little-endian microsecond pcap."""
    data = path.read_bytes()
    head, pos, out = data[:24], 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos : pos + 16 + incl])
        pos += 16 + incl
    return head, out


def test_json_one_object_per_connection_with_connection_facts() -> None:
    p = run(ZEEK / "rdp-proprietary-encryption.pcap", "--json")
    no_traceback(p)
    assert p.returncode == 1  # warnings (Standard RDP Security only)
    out = rows(p.stdout)
    assert len(out) == 2
    first, second = out
    assert first["schema"] == "rdprobe.report/2" and first["target"] == "10.226.24.52:3389"
    assert first["connection"]["failure"] == "SSL_NOT_ALLOWED_BY_SERVER"
    assert "neg.rdp_security_only" in {f["id"] for f in first["findings"]}
    conn = second["connection"]
    assert conn["cookie"] == "FTBCO\\A70" and conn["client"] == "172.21.128.16"
    assert conn["client_info"]["client_name"] == "FROG-POND"
    assert conn["server_info"]["cert_type"] == "proprietary"
    assert conn["server_info"]["cert_verified"] is True
    assert conn["end_reason"] == "fin" and conn["ended_by"] == "client"
    assert conn["timing_ms"]["cc"] < conn["timing_ms"]["mcs_cr"]
    assert second["stages"]["mcs"]["server_data"]["security"]["encryption_level"] == 3


def test_human_report_groups_by_server() -> None:
    p = run(ZEEK / "rdp-to-ssl.pcap", ZEEK / "rdpeudp-handshake-success.pcap")
    no_traceback(p)
    assert "192.168.1.150:3389 TCP - 2 connection(s)" in p.stdout
    assert "[::1]:3389 UDP - 1 connection(s)" in p.stdout
    assert "TLSv1 TLS_RSA_WITH_AES_128_CBC_SHA" in p.stdout
    # HYBRID selected on each connection: NLA was used, whether it is required is not known
    # (this said "Network Level Authentication is not required" before issue 9)
    assert "NLA was used on this connection" in p.stdout
    assert "Network Level Authentication is not required" not in p.stdout


def test_filters_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    p = run(ZEEK / "rdp-to-ssl.pcap", "--json", "--port", "3389", "--csv", out)
    no_traceback(p)
    assert len(rows(p.stdout)) == 2
    table = list(csv.DictReader(out.open()))
    assert [r["client_port"] for r in table] == ["49206", "49207"]
    assert table[0]["security_protocol"] == "HYBRID" and table[0]["tls_version"] == "TLSv1"
    p = run(ZEEK / "rdp-to-ssl.pcap", "--json", "--host", "192.168.1.200")
    assert len(rows(p.stdout)) == 2
    p = run(ZEEK / "rdp-to-ssl.pcap", "--json", "--host", "10.9.9.9")
    assert rows(p.stdout) == [] and "no RDP connection found" in p.stderr and p.returncode == 1
    p = run(ZEEK / "rdp-to-ssl.pcap", "--host", "not-an-ip")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


def test_gzip_gives_the_same_answer(tmp_path: Path) -> None:
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress((ZEEK / "rdp-x509.pcap").read_bytes()))
    plain, packed = (
        rows(run(ZEEK / "rdp-x509.pcap", "--json").stdout),
        rows(run(gz, "--json").stdout),
    )
    assert [r["connection"] for r in plain] == [r["connection"] for r in packed]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("not-a-capture.txt", b"root:x:0:0:root:/root:/bin/bash\n" * 4),
        ("empty.pcap", b""),
        ("short-header.pcap", bytes.fromhex("d4c3b2a1020004000000")),
    ],
)
def test_not_a_capture_is_one_line_error(tmp_path: Path, name: str, content: bytes) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    p = run(bad, "--json")
    no_traceback(p)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and name in p.stderr


def test_missing_file_and_one_bad_among_good(tmp_path: Path) -> None:
    p = run(tmp_path / "nope.pcap")
    no_traceback(p)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage" * 10)
    p = run(bad, ZEEK / "rdp-x509.pcap", "--json")
    no_traceback(p)
    assert "bad.pcap" in p.stderr and len(rows(p.stdout)) == 1


def test_truncated_file_gives_partial_result_and_warning(tmp_path: Path) -> None:
    head, recs = records(ZEEK / "rdp-proprietary-encryption.pcap")
    whole = head + b"".join(recs)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - len(recs[-1]) // 2])  # last record cut in half
    p = run(cut, "--json")
    no_traceback(p)
    assert "warning" in p.stderr and "cut.pcap" in p.stderr
    assert len(rows(p.stdout)) == 2


def test_corrupt_record_header_keeps_records_before_it(tmp_path: Path) -> None:
    head, recs = records(ZEEK / "rdp-proprietary-encryption.pcap")
    # find the first record of the second connection (source port 1312) and corrupt it
    idx = next(
        i for i, r in enumerate(recs) if b"\x05\x20\x0d\x3d" in r[16 + 14 + 20 : 16 + 14 + 24]
    )
    broken = bytearray(recs[idx])
    broken[8:12] = struct.pack("<I", 0x7FFFFFF0)  # absurd captured length
    bad = tmp_path / "corrupt.pcap"
    bad.write_bytes(head + b"".join(recs[:idx]) + bytes(broken) + b"".join(recs[idx + 1 :]))
    p = run(bad, "--json")
    no_traceback(p)
    assert "warning" in p.stderr
    out = rows(p.stdout)
    assert len(out) == 1 and out[0]["connection"]["client_port"] == 1311


def test_snaplen_cut_packets(tmp_path: Path) -> None:
    head, recs = records(ZEEK / "rdp-x509.pcap")
    snap = 120  # Ethernet + IP + TCP with options + 54 payload bytes: CR and CC fit, MCS not
    cut = []
    for r in recs:
        incl, orig = struct.unpack_from("<II", r, 8)
        keep = min(incl, snap)
        cut.append(r[:8] + struct.pack("<II", keep, orig) + r[16 : 16 + keep])
    f = tmp_path / "snap.pcap"
    f.write_bytes(head[:16] + struct.pack("<I", snap) + head[20:] + b"".join(cut))
    p = run(f, "--json")
    no_traceback(p)
    assert "snaplen" in p.stderr
    (row,) = rows(p.stdout)
    conn = row["connection"]
    assert conn["cookie"] == "JOHN-PC  " and conn["selected_name"] == "RDP"
    assert conn["client_info"] is None and conn["gaps"]  # never guessed: reported as gaps
