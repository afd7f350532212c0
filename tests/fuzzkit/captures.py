"""Mutated capture files (pcap, pcapng, gzip) from the Zeek test captures, and the CLI run.

`rdprobe pcap` is run as a process (the contract is its exit code and its one-line errors):
several files per run, and a run that breaks the contract is re-run file by file to name the
reproducer.
"""

from __future__ import annotations

import functools
import gzip
import json
import random
import re
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fuzzkit import seeds
from fuzzkit.mutate import mutate

PCAP_HEADER = 24
RECORD_HEADER = 16
ALLOWED_EXIT = {0, 1, 2}


def records(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each packet body in a little-endian classic pcap."""
    out, pos = [], PCAP_HEADER
    while pos + RECORD_HEADER <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        if pos + RECORD_HEADER + incl > len(data):
            break
        out.append((pos + RECORD_HEADER, incl))
        pos += RECORD_HEADER + incl
    return out


def merged(*paths: Path) -> bytes:
    """One classic pcap holding the packets of several (same link type): several connections."""
    first = paths[0].read_bytes()
    body = b"".join(p.read_bytes()[PCAP_HEADER:] for p in paths)
    return first[:PCAP_HEADER] + body


@functools.cache
def pcapng(path: Path, workdir: Path) -> bytes:
    """The capture converted to pcapng by Wireshark's editcap."""
    out = workdir / (path.stem + ".pcapng")
    subprocess.run(["editcap", "-F", "pcapng", str(path), str(out)], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    return out.read_bytes()


def seed_files(workdir: Path) -> list[tuple[str, bytes]]:
    """(name, bytes): every Zeek capture as pcap and pcapng, and two merged ones."""
    out = []
    for path in seeds.capture_files():
        out.append((path.name, path.read_bytes()))
        out.append((path.stem + ".pcapng", pcapng(path, workdir)))
    zeek = seeds.CAPTURES
    out.append(("merged.pcap", merged(zeek / "rdp-x509.pcap", zeek / "rdp-to-ssl.pcap")))
    return out


def with_interface_options(data: bytes, options: list[tuple[int, bytes]]) -> bytes:
    """A little-endian pcapng whose first Interface Description Block carries *options*
    (pcapng §4.2: if_tsresol 9, if_tsoffset 14), its block length fixed."""
    pos = 0
    while pos + 12 <= len(data):
        block_type, length = struct.unpack_from("<II", data, pos)
        if length < 12 or pos + length > len(data):
            break
        if block_type == 1:  # IDB: type, length, linktype u16, reserved u16, snaplen u32
            body = data[pos + 8 : pos + 16]
            opts = b"".join(
                struct.pack("<HH", code, len(v)) + v + b"\x00" * (-len(v) % 4)
                for code, v in options
            )
            opts += b"\x00\x00\x00\x00"  # opt_endofopt
            new_len = 12 + len(body) + len(opts)
            block = struct.pack("<II", 1, new_len) + body + opts + struct.pack("<I", new_len)
            return data[:pos] + block + data[pos + length :]
        pos += length
    return data


def interface_options(rng: random.Random) -> list[tuple[int, bytes]]:
    """Random if_tsresol / if_tsoffset values, the fields behind impossible packet times."""
    out = []
    if rng.random() < 0.8:
        out.append((9, bytes([rng.choice((0, 6, 9, 0x7F, 0x80, 0x81, 0xFF, rng.randrange(256)))])))
    if rng.random() < 0.5:
        out.append(
            (
                14,
                struct.pack(
                    "<q", rng.choice((-(1 << 62), 1 << 62, rng.randrange(-(1 << 40), 1 << 40)))
                ),
            )
        )
    return out


def mutate_capture(
    rng: random.Random, name: str, data: bytes, *, time_options: bool = True
) -> tuple[str, bytes]:
    """A mutated capture: inside one packet's bytes, anywhere (headers too), gzipped, or (pcapng)
    with odd interface time options."""
    choice = rng.randrange(5)
    if choice == 4 and name.endswith(".pcapng") and time_options:
        return name, with_interface_options(data, interface_options(rng))
    if choice == 0 and not name.endswith(".pcapng"):
        bodies = records(data)
        if bodies:
            offset, length = rng.choice(bodies)
            packet = mutate(rng, data[offset : offset + length], rng.randint(1, 3))
            packet = packet[:length].ljust(length, b"\x00")  # the record length stays right
            return name, data[:offset] + packet + data[offset + length :]
    if choice == 1:
        return name + ".gz", gzip.compress(mutate(rng, data))
    if choice == 2:
        return name + ".gz", mutate(rng, gzip.compress(data), 1)
    return name, mutate(rng, data)


@dataclass(frozen=True)
class PcapRun:
    returncode: int
    stdout: str
    stderr: str

    def defect(self) -> str | None:
        """None when the contract holds: exit 0/1/2, no traceback, short error lines."""
        if "Traceback" in self.stderr:
            return "pcap: traceback"
        if self.returncode not in ALLOWED_EXIT:
            found = re.search(r"internal error: (\w+)", self.stderr)
            return f"pcap: exit {self.returncode}" + (f" ({found.group(1)})" if found else "")
        if any(len(line) > 400 for line in self.stderr.splitlines()):
            return "pcap: error line longer than 400 characters"
        return None


def run_pcap(files: list[Path], *args: str, timeout: float = 300) -> PcapRun:
    cmd = [sys.executable, "-m", "rdprobe", "pcap", *args, *map(str, files)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return PcapRun(-1, "", "timeout")
    return PcapRun(p.returncode, p.stdout, p.stderr)


def run_pcap_many(files: list[Path], timeout: float = 900) -> list[tuple[Path, PcapRun]]:
    """Every file through the CLI's entry point in one worker process (see pcap_worker)."""
    worker = Path(__file__).with_name("pcap_worker.py")
    cmd = [sys.executable, str(worker), *map(str, files)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = []
    seen = set()
    for line in p.stdout.splitlines():
        row = json.loads(line)
        seen.add(row["file"])
        out.append((Path(row["file"]), PcapRun(row["returncode"], "", row["stderr"])))
    for path in files:  # the worker itself died: those files are the defect
        if str(path) not in seen:
            out.append((path, PcapRun(-2, "", p.stderr[-2000:] or "worker died")))
            break
    return out
