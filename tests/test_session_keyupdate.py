"""The RC4 key update every 4,096 packets (MS-RDPBCGR 5.3.7) against a real peer: past the
Demand Active, 4,200 encrypted Synchronize PDUs then a Shutdown Request; xrdp, which checks the
MAC of every PDU, answers the Shutdown Request (PDUTYPE2_SHUTDOWN_DENIED) only when our keys
after the update are its keys. A deliberately wrong update makes it drop the connection with
"MAC checksum error": the test can fail. (This runs through the walk's continue_with hook, the
one a later feature uses; rdprobe's own check never goes past the Demand Active.)"""

from __future__ import annotations

import struct

import pytest

from rdprobe.live.negotiate import Request
from rdprobe.live.session_io import Stop, Walk, unwrap
from rdprobe.live.session_open import probe_session
from rdprobe.live.timing import Deadline, Timeouts
from rdprobe.protocol import mcs_domain, rdpcrypt, share
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
PACKETS = 4200


async def _past_the_update(walk: Walk, seen: dict) -> None:
    share_id = walk.facts.demand_active.share_id
    sync = share.build_data_pdu(share_id, walk.user, share.PduType2.PDUTYPE2_SYNCHRONIZE,
                                struct.pack("<HH", 1, 1002))  # fmt: skip
    for _ in range(PACKETS):
        await walk.send_data(sync)
    await walk.send_data(
        share.build_data_pdu(share_id, walk.user, share.PduType2.PDUTYPE2_SHUTDOWN_REQUEST, b"")
    )
    seen["sent"] = walk.crypt.sent
    try:
        for _ in range(8):
            pdu = await walk.read_domain()
            if isinstance(pdu, mcs_domain.SendData):
                _header, body = unwrap(walk, pdu.data)
                message = share.parse_share_pdu(body)
                if isinstance(message, share.DataPdu):
                    seen.setdefault("answers", []).append(message.type2_name)
                    if message.type2_name == "PDUTYPE2_SHUTDOWN_DENIED":
                        return
    except Stop as stop:
        seen["stop"] = stop.reason


@pytest.mark.parametrize(("crypt_level", "updates"), [("low", True), ("high", True),
                                                      ("high", False)])  # fmt: skip
async def test_xrdp_decrypts_past_the_key_update(tmp_path, monkeypatch, crypt_level, updates):
    require_root()
    require_binaries("xrdp")
    if not updates:  # the control: a wrong next key
        monkeypatch.setattr(rdpcrypt, "update_key", lambda initial, current, m: current[::-1])
    seen: dict = {}

    async def after(walk: Walk) -> None:
        await _past_the_update(walk, seen)

    with start_xrdp(tmp_path, address=loopback_address(), security_layer="rdp",
                    crypt_level=crypt_level) as srv:  # fmt: skip
        facts = await probe_session(
            srv.host, srv.port, Request("RDP", 0), cookie="rdprobe",
            timeouts=Timeouts(2.0, 4.0, 30.0), deadline=Deadline(30.0), continue_with=after,
        )  # fmt: skip
        log = (srv.workdir / "xrdp.log").read_text()
    assert facts.reached_logon
    if updates:
        assert seen["sent"] > rdpcrypt.KEY_UPDATE_PACKETS + 100
        assert seen.get("answers", [])[-1:] == ["PDUTYPE2_SHUTDOWN_DENIED"], seen
        assert "MAC checksum error" not in log
    else:
        assert "answers" not in seen
        assert "MAC checksum error for non-FIPS PDU" in log
