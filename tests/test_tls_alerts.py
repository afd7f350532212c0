"""Issue 9, TLS alerts: every alert is named (RFC 8446 §6) and the handshake's alert gets the
advice of its class (versions, cipher suites, the client's certificate, the server's own failure,
malformed input), live and from a capture of the same handshake (tcpdump on lo)."""

from __future__ import annotations

import random
import ssl
from datetime import UTC, datetime

import pytest
from test_pcap_tshark import tcpdump
from test_tls_fallback import record, scripted_server

from rdprobe.analysis.alerts import ALERT_FINDINGS
from rdprobe.analysis.consistency import violations
from rdprobe.analysis.facts import TlsFacts, alert_text
from rdprobe.analysis.findings import CATALOGUE, Severity
from rdprobe.analysis.judges import judge_tls
from rdprobe.analysis.observations import TargetObservation
from rdprobe.capture.analyze import analyze, judge
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.live.tls import received_alert
from rdprobe.protocol import tlsrec
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TIMEOUTS = Timeouts(connect=2.0, read=4.0, total=30.0)
OPTIONS = CheckOptions(timeouts=TIMEOUTS, stages=frozenset({"tls"}))


def judged(alert: tlsrec.Alert, error: str = "handshake failed") -> list:
    obs = TargetObservation("srv.example.test", 3389, "10.0.0.5", NOW)
    obs.tls = TlsFacts("SSL", "SSL", None, None, None, error, server_name="srv.example.test",
                       alert=alert)  # fmt: skip
    return judge_tls(obs, NOW)


@pytest.mark.parametrize("code", sorted(tlsrec.ALERT_NAMES))
def test_every_alert_is_named_and_judged_by_its_class(code):
    name = tlsrec.ALERT_NAMES[code]
    (f,) = judged(tlsrec.Alert(2, code))
    assert f.id == ALERT_FINDINGS.get(name, "tls.alert_other")
    assert f"fatal alert {name} ({code})" in f.title
    assert "level 2" not in f.title
    assert f.severity is Severity.ERROR
    assert f.evidence["alert_name"] == name and f.evidence["alert_description"] == code


@pytest.mark.parametrize(
    ("name", "fid", "advice"),
    [
        ("protocol_version", "tls.alert_protocol_version", "SCHANNEL\\Protocols"),
        ("handshake_failure", "tls.alert_cipher", "Get-TlsCipherSuite"),
        ("insufficient_security", "tls.alert_cipher", "Cipher Suite Order"),
        ("bad_certificate", "tls.alert_certificate", "client certificate"),
        ("unsupported_certificate", "tls.alert_certificate", "client certificate"),
        ("certificate_expired", "tls.alert_certificate", "client certificate"),
        ("unknown_ca", "tls.alert_certificate", "client certificate"),
        ("certificate_required", "tls.alert_certificate", "client certificate"),
        ("internal_error", "tls.alert_internal_error", "private key"),
        ("decode_error", "tls.alert_decode_error", "TLS stack"),
        ("illegal_parameter", "tls.alert_decode_error", "TLS stack"),
        ("unrecognized_name", "tls.alert_unrecognized_name", "SNI"),
        ("no_application_protocol", "tls.alert_other", "SChannel"),
    ],
)
def test_alert_classes_get_their_advice(name, fid, advice):
    code = next(c for c, n in tlsrec.ALERT_NAMES.items() if n == name)
    (f,) = judged(tlsrec.Alert(2, code))
    spec = CATALOGUE[fid]
    assert f.id == fid
    assert advice in spec.cause + spec.fix


def test_unknown_alert_code_is_named_by_its_number():
    (f,) = judged(tlsrec.Alert(1, 200))
    assert f.id == "tls.alert_other" and "warning alert alert_200 (200)" in f.title


def test_without_an_alert_the_generic_finding_stays():
    obs = TargetObservation("h", 3389, "10.0.0.5", NOW)
    obs.tls = TlsFacts("SSL", "SSL", None, None, None, "connection closed by the server")
    assert [f.id for f in judge_tls(obs, NOW)] == ["tls.handshake_failed"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)", 70),
        ("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1006)", 40),
        ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required", 116),
        ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:1006)", 48),
        ("[SSL: TLSV1_UNRECOGNIZED_NAME] tlsv1 unrecognized name (_ssl.c:1006)", 112),
        ("[SSL: TLSV1_ALERT_USER_CANCELLED] tlsv1 alert user cancelled", 90),
        ("[SSL: TLSV1_ALERT_INTERNAL_ERROR] tlsv1 alert internal error (_ssl.c:1006)", 80),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", None),
        ("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol", None),
    ],
)
def test_openssl_errors_name_the_received_alert(text, expect):
    got = received_alert(ssl.SSLError(1, text))
    assert (None if got is None else got.description) == expect
    if got is not None:
        assert got.level == 2
    assert received_alert(ConnectionResetError(text)) is None


def test_alert_round_trips_through_json():
    tls = TlsFacts("SSL", "SSL", None, None, None, "x", alert=tlsrec.Alert(2, 70))
    d = tls.to_dict()
    assert d["alert"] == {"level": 2, "description": 70, "name": "protocol_version"}
    assert "fatal alert protocol_version (70)" in d["summary"]
    assert TlsFacts.from_dict(d) == tls
    assert alert_text(tlsrec.Alert(1, 0)) == "warning alert close_notify (0)"


# -- live: a scripted server's alert, and a real xrdp with no cipher suite in common --------------


@pytest.mark.parametrize(
    ("code", "fid"),
    [
        (70, "tls.alert_protocol_version"),
        (42, "tls.alert_certificate"),
        (80, "tls.alert_internal_error"),
        (50, "tls.alert_decode_error"),
    ],
)
async def test_live_handshake_ending_in_an_alert(code, fid):
    alert = record(21, bytes([2, code]), version=0x0303)
    async with scripted_server(alert) as (port, _hellos):
        (report,) = await check_target(Target("127.0.0.1", port, True), OPTIONS)
    assert not violations(report)
    tls = report.observation.stages["tls"]
    assert tls["alert"]["description"] == code
    f = next(f for f in report.findings if f.id == fid)
    assert f"fatal alert {tlsrec.ALERT_NAMES[code]} ({code})" in f.title
    assert "tls.handshake_failed" not in {f.id for f in report.findings}


@pytest.mark.servers
async def test_xrdp_without_a_common_cipher_suite_live_and_captured(tmp_path):
    require_root()
    require_binaries("xrdp", "openssl", "tcpdump")
    address = loopback_address()
    pcap = tmp_path / "alert.pcap"
    with start_xrdp(
        tmp_path,
        address=address,
        security_layer="tls",
        ssl_protocols="TLSv1.2",
        tls_ciphers="PSK-AES128-CBC-SHA",  # never offered by a client without a PSK
    ) as srv:
        with tcpdump(pcap, address):
            (live,) = await check_target(Target(srv.host, srv.port, True), OPTIONS)
    assert not violations(live)
    assert live.observation.stages["tls"]["alert"]["name"] == "handshake_failure"
    assert "tls.alert_cipher" in {f.id for f in live.findings}
    # the capture of the same handshakes: the server's alert, named, with the same advice
    conns, warnings = analyze(pcap, port=srv.port)
    assert warnings == []
    alerted = [c for c in conns if c.tls_alert_code is not None]
    assert (2, 40) in {c.tls_alert_code for c in alerted}, [c.tls_alert for c in conns]
    for conn in alerted:  # the main handshake, and the version probes and the TLS 1.0 fallback
        captured = judge(conn)
        assert not violations(captured)
        alert = captured.observation.tls.alert
        assert alert == tlsrec.Alert(*conn.tls_alert_code)
        f = next(f for f in captured.findings if f.id.startswith("tls.alert_"))
        assert f.id == ALERT_FINDINGS.get(alert.name, "tls.alert_other")
        assert f"fatal alert {alert.name} ({alert.description})" in f.title


def test_any_openssl_text_gives_a_named_alert_or_none():
    """Mutated OpenSSL reasons (seeded, bounded): a named alert or None, never an exception."""
    rng = random.Random(9)
    seeds = ["[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert", "SSLV3_ALERT_", "TLSV13_ALERT_X"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_ 19[]:"
    for _ in range(2000):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            text.insert(rng.randint(0, len(text)), rng.choice(alphabet))
            if len(text) > 1 and rng.random() < 0.5:
                del text[rng.randrange(len(text))]
        got = received_alert(ssl.SSLError(1, "".join(text)))
        assert got is None or (got.level == 2 and got.description in tlsrec.ALERT_NAMES)
