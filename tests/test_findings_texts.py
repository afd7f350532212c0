"""The catalogue's texts as an admin reads them: every finding says how to confirm it on the
server, placeholders are filled from the evidence, and the jargon is explained."""

from __future__ import annotations

import re

from rdprobe.analysis.findings import CATALOGUE, CONFIRM, fill, finding


def test_every_finding_has_a_confirm_command():
    for spec in CATALOGUE.values():
        assert spec.confirm.strip(), spec.id
    assert set(CONFIRM) <= set(CATALOGUE)  # no command for a finding that does not exist


def test_confirm_is_in_the_json_and_filled():
    row = finding("tcp.refused", host="ts1.example", port=3390).to_dict()
    assert "Get-NetTCPConnection -LocalPort 3390 -State Listen" in row["confirm"]
    assert "qwinsta" in row["confirm"]
    assert "SecurityLayer,UserAuthentication,PortNumber,MinEncryptionLevel" in row["confirm"]


def test_placeholders_are_filled_and_rdprobe_find_is_named():
    conflict = finding("service.conflict", service="HTTP", port=3390)
    assert "(the PID on :3390)" in conflict.fix and ":port" not in conflict.fix
    refused = finding("tcp.refused", host="ts1.example", port=3389)
    assert "`rdprobe find ts1.example`" in refused.fix and "--ports" not in refused.fix
    # a text whose key is missing keeps its placeholder rather than failing
    assert "{port}" in fill(CATALOGUE["service.conflict"].fix, {})


def test_jargon_is_explained_where_it_appears():
    udp = finding("udp.enabled", port=3389, ratio=1.0)
    assert (
        udp.title == "RDP over UDP answers on udp/3389 (its answer is 1.0 times the probe's size)"
    )
    assert "the negotiation request" in CATALOGUE["neg.legacy_clients_refused"].cause
    assert "TPKT version byte 0x03" in CATALOGUE["service.unknown"].cause


def test_no_unbalanced_braces_in_any_text():
    """Every text survives fill() with no evidence: doubled braces become single, and what is
    left in braces is an evidence key."""
    for spec in CATALOGUE.values():
        for text in (spec.title, spec.cause, spec.fix, spec.confirm):
            shown = fill(text, {})
            for key in re.findall(r"\{([^{}]*)\}", shown):
                assert re.fullmatch(
                    r"[a-z_][a-z0-9_]*|\$_\..*|n='.*|SSLCertificateSHA1Hash=.*", key
                ), (
                    spec.id,
                    key,
                )
