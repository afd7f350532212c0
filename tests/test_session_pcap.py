"""`rdprobe pcap` and the walk past the MCS exchange: a real Windows capture (Zeek's
rdp-proprietary-encryption trace, level High) shows the MCS domain PDUs and the Security
Exchange in clear, then only encrypted PDUs: the session facts say so, and judge nothing."""

from __future__ import annotations

from pathlib import Path

from rdprobe.analysis.session_facts import Step, StopKind
from rdprobe.capture.analyze import analyze, judge
from rdprobe.capture.connection import to_observation

TRACE = Path(__file__).parent.parent / "captures" / "zeek" / "rdp-proprietary-encryption.pcap"


def test_windows_capture_decodes_to_the_encrypted_part():
    connections, warnings = analyze(TRACE)
    assert warnings == []
    walked = [c for c in connections if c.transport == "tcp" and c.session_pdus]
    assert len(walked) == 1  # the connection that got past the MCS exchange
    facts = to_observation(walked[0]).session
    assert facts is not None and not facts.reached_logon
    assert (facts.encryption_method, facts.encryption_level) == ("128BIT", "HIGH")
    assert facts.user_channel == 1008 and facts.io_channel == 1003
    assert facts.joined_channels == (1008, 1003, 1004, 1005, 1006, 1007)
    assert [s.step for s in facts.steps] == [
        Step.ERECT_DOMAIN, Step.ATTACH_USER, Step.CHANNEL_JOIN, Step.SECURITY_EXCHANGE,
        Step.CLIENT_INFO,
    ]  # fmt: skip
    assert facts.stop_kind is StopKind.ENCRYPTED and facts.stopped_at is Step.LICENSING
    report = judge(walked[0])
    assert report.observation.stages["session"]["stop_reason"] == "the rest was encrypted"
    assert not any(f.id.startswith("session.") for f in report.findings)
