"""Issue 9: the proprietary certificate's key (RSA, bit length, exponent) is reported where Zeek
reports ``cert_type`` "RSA": in the MCS facts' JSON and on the report's MCS line, from the real
Windows vectors and live from the emulator that serves them."""

from __future__ import annotations

import io

import pytest
from test_rdpsec import PROPRIETARY, X509

from rdprobe.analysis.consistency import violations
from rdprobe.analysis.facts import McsFacts
from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.protocol import gcc_server, rdpsec
from rdprobe.render.human import render
from rdprobe.render.terminal import Terminal

TIMEOUTS = Timeouts(connect=2.0, read=3.0, total=20.0)


@pytest.mark.parametrize(("vid", "sec", "summary"), PROPRIETARY, ids=[c[0] for c in PROPRIETARY])
def test_key_type_in_the_mcs_facts(vid, sec, summary):
    cert = rdpsec.parse_server_certificate(sec.certificate_bytes)
    assert cert.key_type == "RSA"
    data = gcc_server.ServerData(None, None, sec)
    facts = McsFacts("RDP", 0, 0x03, server_data=data)
    d = facts.to_dict()["server_data"]["security"]["certificate"]
    assert d["key_type"] == "RSA"
    assert (d["bit_length"], d["public_exponent"]) == (summary["rsa_bitlen"], 65537)
    assert f"proprietary certificate (RSA {summary['rsa_bitlen']}-bit, exponent 65537)" in (
        facts.summary
    )


@pytest.mark.parametrize(("vid", "sec", "summary"), X509, ids=[c[0] for c in X509])
def test_x509_chain_names_its_server_key(vid, sec, summary):
    cert = rdpsec.parse_server_certificate(sec.certificate_bytes)
    assert isinstance(cert, rdpsec.X509Chain)
    leaf = cert.infos[-1]
    assert leaf.key_bits and leaf.public_exponent
    facts = McsFacts("RDP", 0, 0x03, server_data=gcc_server.ServerData(None, None, sec))
    expected = f"x509 certificate (RSA {leaf.key_bits}-bit, exponent {leaf.public_exponent})"
    assert expected in facts.summary


async def test_key_type_on_the_report_line_live():
    async with await serve("rdp-proprietary", "127.0.0.1", 0) as server:
        opts = CheckOptions(timeouts=TIMEOUTS, stages=frozenset({"mcs"}))
        (report,) = await check_target(Target("127.0.0.1", server.port, True), opts)
    assert not violations(report)
    mcs = report.observation.stages["mcs"]
    cert = mcs["server_data"]["security"]["certificate"]
    assert cert["key_type"] == "RSA" and cert["verified"] is True
    expected = f"RSA {cert['bit_length']}-bit, exponent {cert['public_exponent']}"
    assert expected in mcs["summary"]
    out = io.StringIO()
    render([report], out, terminal=Terminal(width=200))
    line = next(x for x in out.getvalue().splitlines() if "MCS:" in x)
    assert f"proprietary certificate ({expected}), signature OK" in line
