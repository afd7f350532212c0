"""Issue 10 sans-IO layers: MCS domain PDUs, security headers, Client Info, licensing, share PDUs
and capability sets. Byte-exact against the annotated dumps of MS-RDPBCGR section 4 where it
prints them (4.1.5-4.1.8, 4.1.19, 4.2.1, 4.4); every parser whole, fed one byte at a time
(every strict prefix), with trailing bytes, and under mutation: a value or ProtocolError."""

from __future__ import annotations

import ctypes
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from rdprobe.protocol import (
    capabilities,
    clientinfo,
    errinfo,
    licensing,
    mcs,
    mcs_domain,
    sechdr,
    share,
    x224,
)
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.sechdr import HeaderKind, SecurityFlag

# --- MS-RDPBCGR section 4 dumps (tpkt + x224 DT stripped by x224.parse_data) -----------------
ERECT_DOMAIN_4_1_5 = bytes.fromhex("0300000c02f0800401000100")
ATTACH_USER_REQUEST_4_1_6 = bytes.fromhex("0300000802f08028")
ATTACH_USER_CONFIRM_4_1_7 = bytes.fromhex("0300000b02f0802e000006")
CHANNEL_JOIN_REQUEST_4_1_8 = bytes.fromhex("0300000c02f08038000603ef")
CHANNEL_JOIN_CONFIRM_4_1_8 = bytes.fromhex("0300000f02f0803e00000603ef03ef")
SYNCHRONIZE_4_1_19 = bytes.fromhex(
    "0300003002f08068000103eb70220808" "0203f44ed19eb453b6e6d7beccc22b18"
    "a2cf5c9f59dec602e2ff3669b7ff0e27"
)  # fmt: skip
SYNCHRONIZE_PLAIN_4_1_19 = bytes.fromhex("16001700ea03ea030100140016001f00000001006344")
# the hex rows show flags 08 08 where the annotation below them reads "08 00": the bytes win
SHUTDOWN_4_2_1 = bytes.fromhex(
    "0300002c02f08064000603eb701e0808" "7052ca3dba052060e657432cf141f03b"
    "0ca033ff0455d4e69b3c28f6"
)  # fmt: skip
SHUTDOWN_PLAIN_4_2_1 = bytes.fromhex("12001700ef03ea0302000001040024000000")
VCHANNEL_4_4 = bytes.fromhex(
    "0300002e02f08068000103edf01c0808010047bdebcb2951ae0af60733cefca5f709de674ea32a2c3829"
)


def test_mcs_domain_pdus_are_byte_exact_with_section_4():
    assert x224.build_data(mcs_domain.build_erect_domain_request()) == ERECT_DOMAIN_4_1_5
    assert x224.build_data(mcs_domain.build_attach_user_request()) == ATTACH_USER_REQUEST_4_1_6
    assert x224.build_data(mcs_domain.build_attach_user_confirm(0, 1007)) == (
        ATTACH_USER_CONFIRM_4_1_7
    )
    assert x224.build_data(mcs_domain.build_channel_join_request(1007, 1007)) == (
        CHANNEL_JOIN_REQUEST_4_1_8
    )
    assert x224.build_data(mcs_domain.build_channel_join_confirm(0, 1007, 1007, 1007)) == (
        CHANNEL_JOIN_CONFIRM_4_1_8
    )
    parse = mcs_domain.parse_domain_pdu
    assert parse(x224.parse_data(ERECT_DOMAIN_4_1_5)) == mcs_domain.ErectDomainRequest(0, 0)
    assert parse(x224.parse_data(ATTACH_USER_REQUEST_4_1_6)) == mcs_domain.AttachUserRequest()
    confirm = parse(x224.parse_data(ATTACH_USER_CONFIRM_4_1_7))
    assert confirm == mcs_domain.AttachUserConfirm(0, 1007)
    assert confirm.result_name == "RT_SUCCESSFUL"
    assert parse(x224.parse_data(CHANNEL_JOIN_REQUEST_4_1_8)) == (
        mcs_domain.ChannelJoinRequest(1007, 1007)
    )
    assert parse(x224.parse_data(CHANNEL_JOIN_CONFIRM_4_1_8)) == (
        mcs_domain.ChannelJoinConfirm(0, 1007, 1007, 1007)
    )


def test_send_data_and_security_header_of_section_4_dumps():
    sync = mcs_domain.parse_domain_pdu(x224.parse_data(SYNCHRONIZE_4_1_19))
    assert isinstance(sync, mcs_domain.SendData)
    assert (sync.indication, sync.initiator, sync.channel_id) == (True, 1002, 1003)
    assert len(sync.data) == 0x22
    header, rest = sechdr.parse_header(sync.data, HeaderKind.NON_FIPS)
    assert header.flags == SecurityFlag.SEC_ENCRYPT | SecurityFlag.SEC_SECURE_CHECKSUM
    assert header.flags_hi == 0x0302  # "ignored as flags does not contain SEC_FLAGSHI_VALID"
    assert header.signature == bytes.fromhex("f44ed19eb453b6e6")
    assert len(rest) == 22 == len(SYNCHRONIZE_PLAIN_4_1_19)
    # the decrypted payload the spec prints, through the share parser
    pdu = share.parse_share_pdu(SYNCHRONIZE_PLAIN_4_1_19)
    assert isinstance(pdu, share.DataPdu)
    assert (pdu.share_id, pdu.type2_name, pdu.body) == (
        0x000103EA, "PDUTYPE2_SYNCHRONIZE", bytes.fromhex("01006344"),
    )  # fmt: skip
    shutdown = mcs_domain.parse_domain_pdu(x224.parse_data(SHUTDOWN_4_2_1))
    assert isinstance(shutdown, mcs_domain.SendData)
    assert (shutdown.indication, shutdown.initiator, shutdown.channel_id) == (False, 1007, 1003)
    header, rest = sechdr.parse_header(shutdown.data, HeaderKind.NON_FIPS)
    assert header.encrypted and header.flags_hi == 0x5270
    assert header.signature == bytes.fromhex("ca3dba052060e657")
    assert share.parse_share_pdu(SHUTDOWN_PLAIN_4_2_1).type2_name == "PDUTYPE2_SHUTDOWN_REQUEST"
    # rebuilding the Send Data Request gives the spec's bytes again
    assert x224.build_data(mcs_domain.build_send_data(1007, 1003, shutdown.data)) == SHUTDOWN_4_2_1
    # 4.4's TPKT header says 0x2e (46) for its 42 bytes (its annotation says 42): past it
    channel = mcs_domain.parse_domain_pdu(VCHANNEL_4_4[7:])
    assert isinstance(channel, mcs_domain.SendData)
    assert channel.channel_id == 1005 and channel.priority_segmentation == 0xF0


def test_domain_pdu_round_trips_with_distinct_values():
    cases = [
        mcs_domain.build_erect_domain_request(3, 0x1234),
        mcs_domain.build_attach_user_confirm(mcs.Result.RT_TOO_MANY_USERS, None),
        mcs_domain.build_attach_user_confirm(0, 1234),
        mcs_domain.build_channel_join_request(1500, 1003),
        mcs_domain.build_channel_join_confirm(mcs.Result.RT_NO_SUCH_CHANNEL, 1501, 1009, None),
        mcs_domain.build_send_data(1600, 1004, b"x" * 300, indication=True),
    ]
    parsed = [mcs_domain.parse_domain_pdu(c) for c in cases]
    assert parsed[0] == mcs_domain.ErectDomainRequest(3, 0x1234)
    assert parsed[1] == mcs_domain.AttachUserConfirm(13, None)
    assert parsed[1].result_name == "RT_TOO_MANY_USERS"
    assert parsed[2] == mcs_domain.AttachUserConfirm(0, 1234)
    assert parsed[3] == mcs_domain.ChannelJoinRequest(1500, 1003)
    assert parsed[4] == mcs_domain.ChannelJoinConfirm(3, 1501, 1009, None)
    assert parsed[5] == mcs_domain.SendData(True, 1600, 1004, b"x" * 300)
    assert isinstance(
        mcs_domain.parse_domain_pdu(mcs.build_disconnect_provider_ultimatum()),
        mcs.DisconnectProviderUltimatum,
    )
    with pytest.raises(ProtocolError, match="TOKEN"):
        mcs_domain.parse_domain_pdu(bytes([29 << 2, 0, 0]))
    with pytest.raises(ProtocolError):
        mcs_domain.build_channel_join_request(5, 1003)  # user ids start at 1001


# --- Client Info ---------------------------------------------------------------------------


def test_client_info_has_no_credentials_by_default_and_round_trips():
    raw = clientinfo.build_info_packet()
    info = clientinfo.parse_info_packet(raw)
    assert info.user_name == info.domain == info.password == ""
    assert not info.autologon and not info.flags & clientinfo.InfoFlag.INFO_AUTOLOGON
    assert info.flags & 0x33 == 0x33  # mouse, no Ctrl+Alt+Del, Unicode, maximised shell
    assert info.client_address == "0.0.0.0" and len(info.time_zone) == 172
    # the lengths: 5 empty strings = five 2-byte terminators after the 18-byte head
    assert struct.unpack_from("<HHHHH", raw, 8) == (0, 0, 0, 0, 0)
    assert raw[18:28] == b"\x00" * 10


def test_client_info_carries_credentials_but_never_shows_the_password():
    secret = "Sekr3t-Pass!"
    given = clientinfo.InfoPacket(
        flags=clientinfo.PROBE_FLAGS | clientinfo.InfoFlag.INFO_AUTOLOGON,
        domain="LAB", user_name="alice", password=secret, session_id=7,
        performance_flags=0x81, client_address="10.1.2.3", client_dir="C:\\x",
    )  # fmt: skip
    back = clientinfo.parse_info_packet(clientinfo.build_info_packet(given))
    assert back == given
    assert secret not in repr(back) and secret not in str(back.to_dict())
    assert back.to_dict()["password_present"] is True
    short = clientinfo.InfoPacket(user_name="bob", client_address=None)
    assert clientinfo.parse_info_packet(clientinfo.build_info_packet(short)) == short


# --- licensing -----------------------------------------------------------------------------


def test_licensing_pdus_round_trip():
    alert = licensing.parse_license_pdu(licensing.build_error_alert())
    assert isinstance(alert, licensing.ErrorAlert) and alert.valid_client
    assert (alert.error_name, alert.transition_name) == ("STATUS_VALID_CLIENT", "ST_NO_TRANSITION")
    # the 2.2.1.12 Valid Client bytes (after the security header)
    assert licensing.build_error_alert() == bytes.fromhex("ff031000070000000200000004000000")
    error = licensing.parse_license_pdu(
        licensing.build_error_alert(
            licensing.LicenseError.ERR_NO_LICENSE_SERVER,
            licensing.StateTransition.ST_TOTAL_ABORT,
            b"\x01\x02",
        )
    )
    assert (error.error_name, error.transition_name, error.error_info) == (
        "ERR_NO_LICENSE_SERVER", "ST_TOTAL_ABORT", b"\x01\x02",
    )  # fmt: skip
    request = licensing.parse_license_pdu(
        licensing.build_license_request(
            bytes(range(32)),
            company="Contoso",
            product_id="A02",
            certificate=b"\xaa" * 10,
            scopes=("microsoft.com", "contoso.test"),
        )
    )
    assert isinstance(request, licensing.LicenseRequest)
    assert request.server_random == bytes(range(32))
    assert request.product == licensing.ProductInfo(0x00060000, "Contoso", "A02")
    assert request.key_exchange == 1 and request.certificate == b"\xaa" * 10
    assert request.scopes == ("microsoft.com", "contoso.test")
    new = licensing.parse_license_pdu(
        licensing.build_new_license_request(b"\x11" * 32, b"\x22" * 72, user_name="u")
    )
    assert isinstance(new, licensing.NewLicenseRequest)
    assert (new.client_random, new.encrypted_premaster, new.user_name, new.machine_name) == (
        b"\x11" * 32, b"\x22" * 72, "u", "rdprobe",
    )  # fmt: skip
    challenge = licensing.parse_license_pdu(licensing.build_platform_challenge(b"\x33" * 10))
    assert isinstance(challenge, licensing.PlatformChallenge)
    assert challenge.encrypted_challenge == b"\x33" * 10 and challenge.mac == b"\x00" * 16


# --- share PDUs and capability sets ----------------------------------------------------------


def _demand_active() -> bytes:
    sets = (
        capabilities.build_general(major=4, minor=7, extra=0x0415)
        + capabilities.build_bitmap(1280, 1024, 16)
        + capabilities.build_set(capabilities.CapsType.CAPSTYPE_POINTER, b"\x01\x00\x14\x00\x15\x00")
        + capabilities.build_set(capabilities.CapsType.CAPSTYPE_INPUT, b"\x35\x00\x00\x00\x09\x04"
                                 b"\x00\x00" + b"\x00" * 76)
        + capabilities.build_set(capabilities.CapsType.CAPSTYPE_VIRTUALCHANNEL,
                                 struct.pack("<II", 1, 1600))
        + capabilities.build_set(capabilities.CapsType.CAPSETTYPE_MULTIFRAGMENTUPDATE,
                                 struct.pack("<I", 0x3F0000))
        + capabilities.build_set(capabilities.CapsType.CAPSETTYPE_LARGE_POINTER, b"\x01\x00")
        + capabilities.build_set(capabilities.CapsType.CAPSTYPE_ORDER, b"\x00" * 84)
        + capabilities.build_set(99, b"\x01\x02")
    )  # fmt: skip
    return share.build_demand_active(0x000103EA, sets, 9, session_id=5)


def test_demand_active_capabilities_by_name():
    pdu = share.parse_share_pdu(_demand_active())
    assert isinstance(pdu, share.DemandActive)
    assert pdu.share_id == 0x000103EA and pdu.session_id == 5
    assert pdu.source_descriptor == b"RDP\x00"
    names = [c.name for c in pdu.capability_sets]
    assert names == [
        "CAPSTYPE_GENERAL", "CAPSTYPE_BITMAP", "CAPSTYPE_POINTER", "CAPSTYPE_INPUT",
        "CAPSTYPE_VIRTUALCHANNEL", "CAPSETTYPE_MULTIFRAGMENTUPDATE", "CAPSETTYPE_LARGE_POINTER",
        "CAPSTYPE_ORDER", "UNKNOWN_99",
    ]  # fmt: skip
    general = pdu.find(capabilities.CapsType.CAPSTYPE_GENERAL)
    assert general.get("os_major") == "OSMAJORTYPE_UNIX"
    assert general.get("os_minor") == "OSMINORTYPE_NATIVE_XSERVER"
    assert general.get("extra_flags") == [
        "FASTPATH_OUTPUT_SUPPORTED", "LONG_CREDENTIALS_SUPPORTED", "ENC_SALTED_CHECKSUM",
        "NO_BITMAP_COMPRESSION_HDR",
    ]  # fmt: skip
    bitmap = pdu.find(capabilities.CapsType.CAPSTYPE_BITMAP)
    assert (bitmap.get("desktop_width"), bitmap.get("desktop_height")) == (1280, 1024)
    assert bitmap.get("color_depth") == 16
    pointer = pdu.find(capabilities.CapsType.CAPSTYPE_POINTER)
    assert (pointer.get("color_cache"), pointer.get("pointer_cache")) == (20, 21)
    assert pdu.find(capabilities.CapsType.CAPSTYPE_INPUT).get("input_flags") == [
        "INPUT_FLAG_SCANCODES", "INPUT_FLAG_MOUSEX", "INPUT_FLAG_UNICODE", "INPUT_FLAG_FASTPATH_INPUT2",
    ]  # fmt: skip
    assert pdu.find(capabilities.CapsType.CAPSTYPE_VIRTUALCHANNEL).get("vc_chunk_size") == 1600
    assert (
        pdu.find(capabilities.CapsType.CAPSETTYPE_MULTIFRAGMENTUPDATE).get("max_request_size")
        == 0x3F0000
    )


def test_set_error_info_deactivate_all_and_every_errinfo_name():
    pdu = share.parse_share_pdu(share.build_set_error_info(0x0000010A))
    assert isinstance(pdu, share.SetErrorInfo)
    assert pdu.name == "ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS"
    assert share.parse_share_pdu(share.build_deactivate_all(0x1234)) == share.DeactivateAll(
        0x1234, b"\x00"
    )
    assert errinfo.error_info_name(0x1195) == "ERRINFO_DECRYPTFAILED2"
    assert errinfo.error_info_name(0xABCDEF) == "UNKNOWN_0x00ABCDEF"
    assert errinfo.error_group(0x101) is errinfo.ErrorGroup.LICENSING
    assert errinfo.error_group(0x409) is errinfo.ErrorGroup.BROKER
    assert errinfo.error_group(0x10E0) is errinfo.ErrorGroup.PROTOCOL
    assert errinfo.error_group(0x1192) is errinfo.ErrorGroup.SECURITY


LIBFREERDP = Path("/usr/lib/x86_64-linux-gnu/libfreerdp2.so.2")


def test_errinfo_codes_agree_with_freerdps_table():
    """FreeRDP's own code -> name table (a second implementer) has the same codes; its names
    are spelt with more underscores. The spec's 0x19/0x1A are missing from FreeRDP 2."""
    if not LIBFREERDP.exists():
        pytest.skip("libfreerdp2 not installed")
    lib = ctypes.CDLL(str(LIBFREERDP))
    name_of = lib.freerdp_get_error_info_name
    name_of.restype, name_of.argtypes = ctypes.c_char_p, [ctypes.c_uint32]
    theirs = {c: name_of(c).decode() for c in range(0x2000)}
    theirs = {c: n for c, n in theirs.items() if n != "ERRINFO_UNKNOWN"}
    ours = {e.value: e.name for e in errinfo.ErrorInfo}
    assert set(ours) - set(theirs) == {0x19, 0x1A}
    assert set(theirs) - set(ours) == {0x1196}  # ERRINFO_PEER_DISCONNECTED: FreeRDP's own
    for code in set(ours) & set(theirs):
        if code:
            assert ours[code].replace("_", "")[:14] == theirs[code].replace("_", "")[:14] or (
                code in (0x10C9, 0x10D4, 0x10D5, 0x10E3, 0x10EC, 0x10F3, 0x10F6, 0x10F7, 0x1194)
            ), (hex(code), ours[code], theirs[code])


# --- totality: whole, every prefix, trailing bytes, mutations --------------------------------

PARSERS: dict[str, tuple[Callable[[bytes], object], bytes, bool]] = {
    # name: (parser, a valid input, whether trailing bytes are tolerated)
    "attach_user_confirm": (mcs_domain.parse_domain_pdu, x224.parse_data(ATTACH_USER_CONFIRM_4_1_7),
                            False),
    "channel_join_confirm": (mcs_domain.parse_domain_pdu,
                             x224.parse_data(CHANNEL_JOIN_CONFIRM_4_1_8), False),
    "send_data": (mcs_domain.parse_domain_pdu, x224.parse_data(SYNCHRONIZE_4_1_19), False),
    "non_fips_header": (lambda d: sechdr.parse_header(d, HeaderKind.NON_FIPS),
                        sechdr.build_header(HeaderKind.NON_FIPS, 8, signature=b"s" * 8), True),
    "fips_header": (lambda d: sechdr.parse_header(d, HeaderKind.FIPS),
                    sechdr.build_header(HeaderKind.FIPS, 8, signature=b"s" * 8, fips_padding=3),
                    True),
    "security_exchange": (sechdr.parse_security_exchange,
                          sechdr.build_security_exchange(b"\x55" * 64), False),
    "client_info": (clientinfo.parse_info_packet, clientinfo.build_info_packet(), True),
    "license_request": (licensing.parse_license_pdu,
                        licensing.build_license_request(b"\x01" * 32, certificate=b"c" * 20), True),
    "error_alert": (licensing.parse_license_pdu, licensing.build_error_alert(), True),
    "new_license_request": (licensing.parse_license_pdu,
                            licensing.build_new_license_request(b"r" * 32, b"p" * 72), True),
    "platform_challenge": (licensing.parse_license_pdu,
                           licensing.build_platform_challenge(b"c" * 10), True),
    "deactivate_all": (share.parse_share_pdu, share.build_deactivate_all(0x103EA), True),
    "domain_pdu_ultimatum": (mcs_domain.parse_domain_pdu, mcs.build_disconnect_provider_ultimatum(),
                             True),
    "demand_active": (share.parse_share_pdu, _demand_active(), True),
    "set_error_info": (share.parse_share_pdu, share.build_set_error_info(7), True),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PARSERS))
def test_parser_whole_prefixes_trailing_and_mutations(name):
    parse, good, trailing_ok = PARSERS[name]
    whole = parse(good)
    for cut in range(len(good)):  # fed one byte at a time: every prefix
        try:
            parse(good[:cut])
        except ProtocolError:
            pass
    try:
        with_tail = parse(good + b"\x99\x98\x97")
        assert trailing_ok, "trailing bytes accepted by a parser that must refuse them"
        if name == "client_info" or name.endswith("header"):
            pass
        else:
            assert with_tail == whole
    except ProtocolError:
        assert not trailing_ok
    rng = random.Random(name)
    for _ in range(600):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        try:
            parse(bytes(data))
        except ProtocolError:
            pass
