"""Confirm Active, the client's finalization PDUs and the Save Session Info logon notification
(MS-RDPBCGR 2.2.1.13.2-2.2.1.18, 2.2.10.1): built and parsed both ways with distinct values,
cut anywhere, with trailing bytes, and under mutation."""

from __future__ import annotations

import random
import struct

import pytest

from rdprobe.protocol import capabilities, finalize, share
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.finalize import InfoType, LogonErrorData, LogonErrorType, LogonNotification

NOTES = [
    LogonNotification(InfoType.INFOTYPE_LOGON, 0x1234),
    LogonNotification(InfoType.INFOTYPE_LOGON_LONG, 0x0BCD),
    LogonNotification(InfoType.INFOTYPE_LOGON_PLAINNOTIFY),
    LogonNotification(InfoType.INFOTYPE_LOGON_EXTENDED_INFO),
    LogonNotification(InfoType.INFOTYPE_LOGON_EXTENDED_INFO, None,
                      LogonErrorType.LOGON_FAILED_OTHER, LogonErrorData.LOGON_MSG_NO_PERMISSION),
    LogonNotification(InfoType.INFOTYPE_LOGON_EXTENDED_INFO, None,
                      LogonErrorType.LOGON_WARNING, LogonErrorData.LOGON_MSG_SESSION_CONTINUE),
]  # fmt: skip


def test_confirm_active_layout():
    pdu = finalize.build_confirm_active(0x000103EA, 1007)
    header = share.parse_control_header(pdu)
    assert header.pdu_type == share.PduType.PDUTYPE_CONFIRMACTIVEPDU and header.source == 1007
    assert header.total_length == len(pdu)
    share_id, originator, len_source, len_caps = struct.unpack_from("<IHHH", pdu, 6)
    assert (share_id, originator) == (0x000103EA, 0x03EA)
    source = pdu[16 : 16 + len_source]
    assert source == b"MSTSC\x00"
    number = struct.unpack_from("<H", pdu, 16 + len_source)[0]
    sets = capabilities.parse_sets(pdu[16 + len_source + 4 : 16 + len_source + len_caps], number)
    assert 16 + len_source + len_caps == len(pdu)
    names = [s.name for s in sets]
    for required in ("CAPSTYPE_GENERAL", "CAPSTYPE_BITMAP", "CAPSTYPE_ORDER",
                     "CAPSTYPE_BITMAPCACHE", "CAPSTYPE_POINTER", "CAPSTYPE_INPUT",
                     "CAPSTYPE_BRUSH", "CAPSTYPE_GLYPHCACHE", "CAPSTYPE_OFFSCREENCACHE",
                     "CAPSTYPE_VIRTUALCHANNEL", "CAPSTYPE_SOUND"):  # fmt: skip
        assert required in names  # the sets 2.2.1.13.2.1 lists for a client
    lengths = {s.name: len(s.body) + 4 for s in sets}
    assert lengths["CAPSTYPE_ORDER"] == 88 and lengths["CAPSTYPE_INPUT"] == 88
    assert lengths["CAPSTYPE_BITMAPCACHE"] == 40 and lengths["CAPSTYPE_GLYPHCACHE"] == 52
    general = next(s for s in sets if s.name == "CAPSTYPE_GENERAL")
    assert struct.unpack_from("<H", general.body, 10)[0] == finalize.GENERAL_EXTRA_FLAGS


def test_finalization_pdus_in_order():
    pdus = [share.parse_share_pdu(p) for p in finalize.build_finalization(0x000103EA, 1007)]
    assert [p.type2_name for p in pdus] == [
        "PDUTYPE2_SYNCHRONIZE", "PDUTYPE2_CONTROL", "PDUTYPE2_CONTROL", "PDUTYPE2_FONTLIST",
    ]  # fmt: skip
    assert all(p.share_id == 0x000103EA for p in pdus)
    assert struct.unpack("<HH", pdus[0].body) == (1, 0x03EA)
    assert struct.unpack("<HHI", pdus[1].body)[0] == 4  # cooperate
    assert struct.unpack("<HHI", pdus[2].body)[0] == 1  # request control
    assert struct.unpack("<HHHH", pdus[3].body) == (0, 0, 3, 50)


@pytest.mark.parametrize("note", NOTES)
def test_save_session_info_round_trip_cut_and_trailing(note):
    raw = finalize.build_save_session_info(note)
    assert finalize.parse_save_session_info(raw) == note
    assert finalize.parse_save_session_info(raw + b"\x01\x02\x03") == note
    minimal = {0: 4 + 576, 1: 4 + 10, 2: 4, 3: 4 + 6 + (12 if note.error_type is not None else 0)}
    for cut in range(minimal[note.info_type]):
        with pytest.raises(ProtocolError):
            finalize.parse_save_session_info(raw[:cut])


def test_notification_meanings():
    ok, long, _plain, _ext, noperm, cont = NOTES
    assert ok.logged_on and ok.final and ok.info_type_name == "INFOTYPE_LOGON"
    assert noperm.error_name == "LOGON_FAILED_OTHER"
    assert noperm.error_data_name == "LOGON_MSG_NO_PERMISSION" and not noperm.logged_on
    assert not cont.final  # winlogon carries on: another notification follows
    assert LogonNotification(3, None, 7, 5).error_data_name == "session 5"
    assert LogonNotification(3, None, 7, 5).error_name == "0x00000007"
    assert long.to_dict() == {"info_type": "INFOTYPE_LOGON_LONG", "session_id": 0x0BCD,
                              "logon_error": None, "logon_error_data": None}  # fmt: skip
    with pytest.raises(ProtocolError):
        finalize.parse_save_session_info(struct.pack("<I", 9) + bytes(600))


def test_save_session_info_under_mutation():
    rng = random.Random(11)
    samples = [finalize.build_save_session_info(n) for n in NOTES]
    for _ in range(2000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(min(len(data), 40))] = rng.randrange(256)
        try:
            finalize.parse_save_session_info(bytes(data))
        except ProtocolError:
            pass
