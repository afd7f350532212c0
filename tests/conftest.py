"""Shared test helpers: the vectors from real Windows servers, and the rig on sys.path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

# Every report made anywhere in the suite (subprocesses inherit this) is checked for
# contradictions by classify() (rdprobe.analysis.consistency).
os.environ["RDPROBE_CHECK_CONSISTENCY"] = "1"
# The network rule: a certificate's names are resolved only through --resolve overrides and the
# RFC 6761 localhost names, never by a DNS query that leaves the machine (rdprobe.live.names).
os.environ["RDPROBE_NAME_LOOKUP"] = "local"

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

VECTORS = json.loads((TESTS / "vectors" / "windows-handshakes.json").read_text())


def vector_pdus(what_prefix: str) -> list[tuple[str, dict, dict]]:
    """(vector id, pdu, decoded facts) for every PDU whose 'what' starts with the prefix."""
    out = []
    for v in VECTORS:
        for pdu in v["pdus"]:
            if pdu["what"].startswith(what_prefix):
                out.append((v["id"], pdu, v["facts"].get("decoded", {})))
    return out


@pytest.fixture
def vectors() -> list[dict]:
    return VECTORS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every real-server test must run: a skip there is a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and item.get_closest_marker("servers"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every server test must run: {report.longrepr}"
