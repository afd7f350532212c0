"""Fuzz: `rdprobe pcap` on mutated captures exits 0, 1 or 2, with one-line errors, and a fault
inside one connection leaves the other connections' rows as they were.

Inputs are the Zeek captures as pcap, pcapng (editcap) and gzip, mutated inside a packet,
anywhere in the file, or inside the gzip stream (seeded: the same files on every run).
scripts/fuzz.py runs the same harness on thousands of files.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import pytest
from fuzzkit import captures, seeds

pytestmark = pytest.mark.skipif(shutil.which("editcap") is None, reason="needs Wireshark's editcap")


def _rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _fuzz_captures(tmp_path: Path, formats: tuple[str, ...], count: int, seed: int) -> list:
    """(file, defect) for every mutated capture that breaks the contract."""
    rng = random.Random(seed)
    base = [(n, d) for n, d in captures.seed_files(tmp_path) if n.endswith(formats)]
    files = []
    for i in range(count):
        name, data = captures.mutate_capture(rng, *rng.choice(base))
        path = tmp_path / f"{i:04d}-{name}"
        path.write_bytes(data)
        files.append(path)
    broken = []
    for k in range(0, len(files), 50):
        batch = files[k : k + 50]
        run = captures.run_pcap(batch, "--json")
        if run.defect():
            broken += [(f.name, d) for f in batch if (d := captures.run_pcap([f]).defect())]
        for line in run.stdout.splitlines():
            json.loads(line)  # every row is whole JSON
    return broken


def test_mutated_pcap_and_gzip_files_exit_0_1_or_2_with_one_line_errors(tmp_path: Path) -> None:
    assert _fuzz_captures(tmp_path, (".pcap",), 150, 14) == []


def test_mutated_pcapng_files_exit_0_1_or_2_with_one_line_errors(tmp_path: Path) -> None:
    assert _fuzz_captures(tmp_path, (".pcapng",), 50, 15) == []


def test_unreadable_file_is_one_line_and_the_good_file_still_reports(tmp_path: Path) -> None:
    good = seeds.CAPTURES / "rdp-x509.pcap"
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(good.read_bytes()[:24] + b"\xff" * 64)  # a record header no reader accepts
    junk = tmp_path / "junk.pcap.gz"
    junk.write_bytes(b"\x1f\x8b\x08\x00" + bytes(40))  # a broken gzip stream
    run = captures.run_pcap([bad, good, junk], "--json")
    assert run.defect() is None
    assert run.returncode in (1, 2)
    assert len(_rows(run.stdout)) == 1  # the good file's connection
    for name in ("junk.pcap.gz",):
        lines = [line for line in run.stderr.splitlines() if name in line]
        assert len(lines) == 1, run.stderr


def test_a_fault_inside_one_connection_leaves_the_others(tmp_path: Path) -> None:
    zeek = seeds.CAPTURES
    first = (zeek / "rdp-x509.pcap").read_bytes()
    data = captures.merged(zeek / "rdp-x509.pcap", zeek / "rdp-to-ssl.pcap")
    plain = tmp_path / "merged.pcap"
    plain.write_bytes(data)
    want = {
        r["connection"]["client_port"]: r
        for r in _rows(captures.run_pcap([plain], "--json").stdout)
    }
    others = {p for p in want if p in (49206, 49207)}
    assert others == {49206, 49207}
    rng = random.Random(3)
    inside_first = [(o, n) for o, n in captures.records(data) if o < len(first)]
    for i in range(12):
        out = bytearray(data)
        for offset, length in rng.sample(inside_first, 4):
            start = offset + min(length - 1, 54)  # past Ethernet/IP/TCP headers: the payload
            for j in range(start, offset + length):
                if rng.random() < 0.2:
                    out[j] = rng.randrange(256)
        path = tmp_path / f"hit-{i}.pcap"
        path.write_bytes(bytes(out))
        run = captures.run_pcap([path], "--json")
        assert run.defect() is None, run.stderr
        got = {r["connection"]["client_port"]: r for r in _rows(run.stdout)}
        for port in others:
            assert got[port]["findings"] == want[port]["findings"]
            assert got[port]["connection"]["tls"] == want[port]["connection"]["tls"]


@pytest.mark.parametrize(
    "options",
    [
        [(14, struct.pack("<q", 1 << 40))],  # if_tsoffset: year ~36,000
        [(9, b"\x81"), (14, struct.pack("<q", -(1 << 40)))],
    ],
)
def test_pcapng_impossible_packet_time_is_damage_not_a_crash(tmp_path: Path, options) -> None:
    data = captures.with_interface_options(
        captures.pcapng(seeds.CAPTURES / "rdp-x509.pcap", tmp_path), options
    )
    path = tmp_path / "odd-time.pcapng"
    path.write_bytes(data)
    run = captures.run_pcap([path], "--json")
    assert run.defect() is None, run.stderr


REPRO = Path(__file__).parent / "fuzz_repro"


@pytest.mark.parametrize("name", ["pcapng-year-out-of-range.pcapng", "pcapng-errno-75.pcapng"])
def test_fuzz_reproducers_exit_0_1_or_2(name: str) -> None:
    run = captures.run_pcap([REPRO / name], "--json")
    assert run.defect() is None, run.stderr
