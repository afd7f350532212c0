"""MCS Connect-Initial/Response and GCC blocks against real Windows PDUs, Zeek's logs, and xrdp."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rdprobe.analysis.encryption_level import infer_encryption_level
from rdprobe.analysis.facts import McsFacts
from rdprobe.live import mcs as live_mcs
from rdprobe.protocol import gcc, gcc_client, gcc_server, mcs, rdpsec, tpkt, x224
from rdprobe.protocol.errors import ProtocolError

ROOT = Path(__file__).parent.parent
VECTORS = json.loads((ROOT / "tests/vectors/windows-handshakes.json").read_text())
BASELINE = ROOT / "captures/zeek/baseline"


def _pdus(what: str) -> list[tuple[str, bytes, dict]]:
    return [
        (v["id"], bytes.fromhex(p["hex"]), v["facts"])
        for v in VECTORS
        for p in v["pdus"]
        if p["what"] == what
    ]


CRS = _pdus("mcs_cr")
CIS = _pdus("mcs_ci")


def zeek_log(name: str, log: str) -> list[dict[str, str]]:
    lines = (BASELINE / name / log).read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(fields, line.split("\t"), strict=True)) for line in lines if line[:1] != "#"]


def parse_cr(pdu: bytes) -> gcc_server.ServerData:
    return gcc_server.parse_conference_create_response(
        mcs.parse_connect_response(x224.parse_data(pdu)).user_data
    )


def parse_ci(pdu: bytes) -> gcc_client.ClientData:
    return gcc_client.parse_conference_create_request(
        mcs.parse_connect_initial(x224.parse_data(pdu)).user_data
    )


def test_vectors_present() -> None:
    assert len(CRS) == 16 and len(CIS) == 16


@pytest.mark.parametrize(("vid", "pdu", "facts"), CRS, ids=[c[0] for c in CRS])
def test_connect_response_matches_recorded_facts(vid: str, pdu: bytes, facts: dict) -> None:
    s = facts["summary"]
    cr = mcs.parse_connect_response(x224.parse_data(pdu))
    assert cr.result == 0
    assert list(cr.domain_parameters.as_tuple()) == facts["decoded"]["mcs_cr"]["domainParameters"]
    data = gcc_server.parse_conference_create_response(cr.user_data)
    assert f"0x{data.core.version:08x}" == s["server_core_version"]
    assert data.core.version_name == "RDP 5.0-8.1 (0x00080004)"
    assert data.core.length == s["sc_core_len"]
    if s["sc_core_len"] >= 12:
        assert data.core.client_requested_protocols == s["sc_clientRequestedProtocols"]
    assert data.network.io_channel == s["MCSChannelId"]
    assert list(data.network.channel_ids) == s["channelIdArray"]
    assert [f"0x{t:04x}" for t in data.block_order] == s["sc_block_order"]
    sec = data.security
    assert sec.encryption_method == s["encryptionMethod"]
    assert sec.encryption_level == s["encryptionLevel"]
    assert sec.certificate_error is None
    if s.get("cert_type") is None:
        assert sec.certificate is None and sec.server_random == b""
        return
    assert len(sec.server_random) == s["serverRandomLen"] == 32
    assert len(sec.certificate_bytes) == s["serverCertLen"]
    assert sec.certificate.cert_type == s["cert_type"]
    assert f"0x{sec.certificate.dw_version:08x}" == s["cert_dwVersion"]
    if s["cert_type"] == "proprietary":
        assert sec.certificate.bit_length == s["rsa_bitlen"]
        assert sec.certificate.key_len == s["rsa_keylen"]
        assert sec.certificate.verified
    json.dumps(data.to_dict())  # JSON-safe


@pytest.mark.parametrize(("vid", "pdu", "facts"), CIS, ids=[c[0] for c in CIS])
def test_connect_initial_matches_recorded_facts(vid: str, pdu: bytes, facts: dict) -> None:
    blocks = {b.get("name"): b for b in facts["decoded"]["mcs_ci_client_blocks"]}
    data = parse_ci(pdu)
    core, want = data.core, blocks["CS_CORE"]
    assert core.client_name == want["clientName"]
    assert core.client_build == want["clientBuild"]
    assert (core.desktop_width, core.desktop_height) == (
        want["desktopWidth"],
        want["desktopHeight"],
    )
    assert f"0x{core.keyboard_layout:08x}" == want["keyboardLayout"]
    assert core.high_color_depth == want["highColorDepth"]
    assert f"0x{core.early_capability_flags:04x}" == want["earlyCapabilityFlags"]
    assert core.client_dig_product_id == want["clientDigProductId"]
    assert core.server_selected_protocol == want["serverSelectedProtocol"]
    assert data.encryption_methods == blocks["CS_SECURITY"]["encryptionMethods"]
    if "CS_NET" in blocks:
        assert [n for n, _ in data.channels] == [c[0] for c in blocks["CS_NET"]["channels"]]
        assert [f"0x{o:08x}" for _, o in data.channels] == [
            c[1] for c in blocks["CS_NET"]["channels"]
        ]
    else:
        assert data.channels is None
    json.dumps(data.to_dict())


@pytest.mark.parametrize(
    ("trace", "vid"),
    [
        ("rdp-proprietary-encryption", "zeek-rdp-proprietary-cert"),
        ("rdp-x509", "zeek-rdp-x509-temporary-chain"),
    ],
)
def test_fields_agree_with_zeek_rdp_log(trace: str, vid: str) -> None:
    row = next(r for r in zeek_log(trace, "rdp.log") if r["result"] == "Success")
    pdus = {
        p["what"]: bytes.fromhex(p["hex"]) for v in VECTORS if v["id"] == vid for p in v["pdus"]
    }
    client, server = parse_ci(pdus["mcs_ci"]), parse_cr(pdus["mcs_cr"])
    assert client.core.client_name == row["client_name"]
    assert (str(client.core.desktop_width), str(client.core.desktop_height)) == (
        row["desktop_width"],
        row["desktop_height"],
    )
    assert client.core.requested_color_depth == row["requested_color_depth"]
    assert ",".join(n for n, _ in client.channels) == row["client_channels"]
    assert (client.core.client_dig_product_id or "(empty)") == row["client_dig_product_id"]
    sec = server.security
    assert f"{sec.method_name.lower()}" == row["encryption_method"]
    zeek_level = {"HIGH": "High", "CLIENT_COMPATIBLE": "Client compatible"}[sec.level_name]
    assert zeek_level == row["encryption_level"]
    cert = sec.certificate
    assert {"proprietary": "RSA", "x509": "X.509"}[cert.cert_type] == row["cert_type"]
    assert cert.permanent == (row["cert_permanent"] == "T")
    count = len(cert.certs) if isinstance(cert, rdpsec.X509Chain) else 1
    assert str(count) == row["cert_count"]


def test_client_data_round_trip_distinct_values() -> None:
    core = gcc_client.ClientCore(
        version=0x0008000C, desktop_width=1366, desktop_height=911, color_depth=0xCA03,
        sas_sequence=0xAA03, keyboard_layout=0x41E, client_build=19041, client_name="PROBE-Ü",
        keyboard_type=7, keyboard_sub_type=2, keyboard_function_key=24,
        post_beta2_color_depth=0xCA02, client_product_id=3, high_color_depth=16,
        supported_color_depths=0x0F, early_capability_flags=0x0B, client_dig_product_id="abc-123",
        connection_type=6, server_selected_protocol=1,
    )  # fmt: skip
    blocks = (
        gcc_client.build_client_core(core)
        + gcc_client.build_client_security(0x1B, 0x05)
        + gcc_client.build_client_network((("rdpdr", 0x80800000), ("cliprdr", 0xC0A00000)))
    )
    ci = mcs.build_connect_initial(gcc.build_conference_create_request(blocks))
    parsed = mcs.parse_connect_initial(ci)
    assert parsed.target_parameters == mcs.MSTSC_TARGET
    assert parsed.maximum_parameters == mcs.MSTSC_MAXIMUM
    data = gcc_client.parse_conference_create_request(parsed.user_data)
    assert data.core == core
    assert (data.encryption_methods, data.ext_encryption_methods) == (0x1B, 0x05)
    assert data.channels == (("rdpdr", 0x80800000), ("cliprdr", 0xC0A00000))
    assert data.core.requested_color_depth == "32bit"


def test_default_request_is_mstsc_shaped() -> None:
    request = x224.build_data(
        mcs.build_connect_initial(gcc_client.build_client_data(selected_protocol=1))
    )
    assert tpkt.frame_length(request) == len(request)
    ci = mcs.parse_connect_initial(x224.parse_data(request))
    # same MCS parameters and GCC header as the redemption client Windows 2000-2012 accepted
    known = mcs.parse_connect_initial(x224.parse_data(CIS[0][1]))
    assert ci.target_parameters == known.target_parameters == mcs.MSTSC_TARGET
    assert (ci.minimum_parameters, ci.maximum_parameters) == (
        known.minimum_parameters,
        known.maximum_parameters,
    )
    assert ci.user_data[:7] + ci.user_data[9:21] == known.user_data[:7] + known.user_data[9:21]
    data = gcc_client.parse_conference_create_request(ci.user_data)
    assert data.block_order == (0xC001, 0xC002, 0xC003)
    assert data.core.client_name == "rdprobe"
    assert data.core.server_selected_protocol == 1
    assert data.encryption_methods == 0x1B and data.channels == ()


def test_server_data_round_trip_distinct_values() -> None:
    cert = rdpsec.build_proprietary_certificate((1 << 1023) + 12345, 65537)
    server = gcc_server.ServerData(
        core=gcc_server.ServerCore(0x00080011, 0x0B, 0x07, 16),
        network=gcc_server.ServerNetwork(1003, (1004, 1005, 1006)),
        security=gcc_server.ServerSecurity(0x08, 2, bytes(range(1, 33)), cert),
    )
    cr = mcs.build_connect_response(gcc_server.build_server_data(server), called_connect_id=7)
    parsed = mcs.parse_connect_response(cr)
    assert parsed.called_connect_id == 7 and parsed.result == 0
    back = gcc_server.parse_conference_create_response(parsed.user_data)
    assert back.core == server.core and back.core.version_name == "RDP 10.12 (0x00080011)"
    assert back.network == server.network
    assert back.security.server_random == bytes(range(1, 33))
    assert back.security.method_name == "56BIT" and back.security.level_name == "CLIENT_COMPATIBLE"
    assert back.security.certificate.verified and back.security.certificate.bit_length == 1024


@pytest.mark.parametrize(
    ("version", "name"),
    [(0x00080001, "RDP 4.0"), (0x00080005, "RDP 10.0"), (0x0008000F, "RDP 10.10"),
     (0x00080012, "unknown RDP version"), (0x00040001, "unknown RDP version")],
)  # fmt: skip
def test_version_names(version: int, name: str) -> None:
    assert gcc.version_name(version) == f"{name} (0x{version:08X})"


def test_disconnect_provider_ultimatum() -> None:
    assert mcs.build_disconnect_provider_ultimatum() == b"\x21\x80"
    xrdp = x224.parse_data(bytes.fromhex("0300000902f0802180"))
    assert mcs.parse_server_pdu(xrdp).reason_name == "RN_USER_REQUESTED"
    for reason in mcs.Reason:
        assert (
            mcs.parse_disconnect_provider_ultimatum(
                mcs.build_disconnect_provider_ultimatum(reason)
            ).reason
            == reason
        )


def test_malformed_certificate_is_kept_not_raised() -> None:
    good = CRS[2][1]  # Windows 2003, proprietary
    data = parse_cr(good)
    broken = bytearray(data.security.certificate_bytes)
    broken[16:20] = b"XXXX"  # RSA1 magic
    sec = gcc_server.ServerSecurity(2, 2, data.security.server_random, bytes(broken))
    again = gcc_server.parse_server_security(gcc_server.build_server_security(sec)[4:])
    assert again.certificate is None and "magic" in again.certificate_error


def _only_protocol_errors(parse, data: bytes) -> None:
    try:
        parse(data)
    except ProtocolError:
        pass


@pytest.mark.parametrize("what", ["mcs_cr", "mcs_ci"])
def test_truncations_and_flips_raise_only_protocol_error(what: str) -> None:
    parse = parse_cr if what == "mcs_cr" else parse_ci
    pdu = _pdus(what)[-3][1]  # a Zeek PDU, x509 chain for the response
    for cut in range(len(pdu)):
        _only_protocol_errors(parse, pdu[:cut])
        _only_protocol_errors(lambda d: mcs.parse_server_pdu(x224.parse_data(d)), pdu[:cut])
    rng = random.Random(4)
    for _ in range(1000):
        mutated = bytearray(pdu)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(7, len(mutated))] = rng.randrange(256)
        _only_protocol_errors(parse, bytes(mutated))


# --- live adapter against scripted servers --------------------------------------------------


async def _serve(reply: bytes | None):
    received: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await live_mcs.read_tpkt(reader, 2))
        if reply:
            writer.write(reply)
            await writer.drain()
            try:
                received.append(await live_mcs.read_tpkt(reader, 2))
            except (asyncio.IncompleteReadError, TimeoutError):
                pass
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.done = done  # type: ignore[attr-defined]
    return server, server.sockets[0].getsockname()[1], received


async def _probe(port: int, methods: int = 0x1B) -> live_mcs.McsResult:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await live_mcs.mcs_probe(
        reader, writer, selected_protocol=0, encryption_methods=methods, timeout=2
    )


async def test_mcs_probe_parses_windows_2003_reply_and_disconnects() -> None:
    server, port, received = await _serve(CRS[2][1])
    async with server:
        result = await _probe(port)
        await asyncio.wait_for(server.done.wait(), 3)
    assert result.error is None
    assert result.server_data.security.certificate.verified
    assert result.raw_hex == CRS[2][1].hex()
    ci = gcc_client.parse_conference_create_request(
        mcs.parse_connect_initial(x224.parse_data(received[0])).user_data
    )
    assert ci.encryption_methods == 0x1B
    assert x224.parse_data(received[1]) == b"\x21\x80"
    facts = McsFacts(request="RDP", **vars(result))  # what the stage stores, JSON-ready
    assert json.loads(json.dumps(facts.to_dict()))["raw_hex"] == result.raw_hex


async def test_mcs_probe_reports_ultimatum_close_and_garbage() -> None:
    for reply, expect in [
        (bytes.fromhex("0300000902f0802180"), "ultimatum"),
        (None, "closed before any MCS reply"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "malformed"),
        (x224.build_data(b"\x7f\x66\x05garbage"), "malformed"),
    ]:
        server, port, _ = await _serve(reply)
        async with server:
            result = await _probe(port)
        assert result.server_data is None and expect in result.error, (reply, result.error)


def test_the_method_chosen_from_all_stands_for_it_offered_alone() -> None:
    win = parse_cr(CRS[2][1])  # Windows 2003 answers 128BIT / CLIENT_COMPATIBLE
    first = live_mcs.McsResult(0, live_mcs.ALL_METHODS, server_data=win)
    outcome = live_mcs.answer_alone(first)
    assert outcome is not None and (outcome.offered, outcome.accepted) == ("128BIT", True)
    assert (outcome.encryption_method, outcome.encryption_level) == ("128BIT", "CLIENT_COMPATIBLE")
    assert live_mcs.answer_alone(live_mcs.McsResult(0, live_mcs.ALL_METHODS)) is None


async def test_encryption_matrix_and_level_inference() -> None:
    win = parse_cr(CRS[2][1])  # Windows 2003 answers 128BIT / CLIENT_COMPATIBLE

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ci = gcc_client.parse_conference_create_request(
            mcs.parse_connect_initial(
                x224.parse_data(await live_mcs.read_tpkt(reader, 2))
            ).user_data
        )
        if ci.encryption_methods & 0x0A:  # a "High"-like server: 128 or 56 only
            method = 2 if ci.encryption_methods & 2 else 8
            sec = gcc_server.ServerSecurity(
                method, 3, win.security.server_random, win.security.certificate_bytes
            )
            body = gcc_server.build_server_data(gcc_server.ServerData(win.core, win.network, sec))
            writer.write(x224.build_data(mcs.build_connect_response(body)))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def open_stream():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return reader, writer, 0

    async with server:
        matrix = await live_mcs.encryption_matrix(open_stream, timeout=2)
    assert list(matrix) == ["40BIT", "56BIT", "128BIT", "FIPS"]
    assert [o.accepted for o in matrix.values()] == [False, True, True, False]
    assert "closed" in matrix["FIPS"].error
    verdict = infer_encryption_level(None, matrix)
    assert verdict.setting == "High" and verdict.level == 3 and not verdict.consistent
    assert infer_encryption_level(2, {}).setting == "Client Compatible"
    assert "not applicable" in infer_encryption_level(0, matrix, selected_protocol=1).setting


# --- xrdp, the real thing -------------------------------------------------------------------

XRDP_LEVELS = {  # crypt_level -> (method chosen, encryptionLevel, admin setting)
    "low": ("40BIT", "LOW", "Low"),
    "medium": ("40BIT", "CLIENT_COMPATIBLE", "Client Compatible"),
    "high": ("128BIT", "HIGH", "High"),
    "fips": ("FIPS", "FIPS", "FIPS Compliant"),
    "none": ("NONE", "NONE", "None"),
}


@pytest.mark.servers
async def test_xrdp_rdp_security_layer_matrix() -> None:
    if shutil.which("xrdp") is None or not Path("/etc/xrdp/xrdp.ini").exists():
        pytest.skip("xrdp is not installed")
    if os.geteuid() != 0:
        pytest.skip("xrdp needs root to read its keys")
    base = Path("/etc/xrdp/xrdp.ini").read_text()
    procs: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="rdprobe-xrdp-"))
    try:
        for i, level in enumerate(XRDP_LEVELS, start=1):
            lines, seen_port = [], False
            for line in base.splitlines():
                key = line.split("=", 1)[0]
                if key == "port" and not seen_port:
                    line, seen_port = f"port=tcp://127.0.0.{60 + i}:3389", True
                elif key == "security_layer":
                    line = "security_layer=rdp"
                elif key == "crypt_level":
                    line = f"crypt_level={level}"
                elif key == "LogFile":
                    line = f"LogFile={tmp}/{level}.log"
                elif key == "EnableSyslog":
                    line = "EnableSyslog=false"
                lines.append(line)
            (tmp / f"{level}.ini").write_text("\n".join(lines) + "\n")
            procs.append(subprocess.Popen(
                ["xrdp", "--nodaemon", "--config", str(tmp / f"{level}.ini")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        for i, (level, (method, level_name, setting)) in enumerate(XRDP_LEVELS.items(), start=1):
            host = f"127.0.0.{60 + i}"
            open_stream = _legacy_opener(host)
            for _ in range(50):  # wait for the listener, bounded
                try:
                    reader, writer, selected = await open_stream()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail(f"xrdp {level} did not listen on {host}")
            result = await live_mcs.mcs_probe(reader, writer, selected_protocol=selected, timeout=3)
            sec = result.server_data.security
            assert (sec.method_name, sec.level_name) == (method, level_name), level
            if method != "NONE":
                assert sec.certificate.verified and sec.certificate.bit_length == 2048
            matrix = await live_mcs.encryption_matrix(open_stream, timeout=3)
            assert [n for n, o in matrix.items() if o.accepted] == (
                [] if method == "NONE" else [method]
            ), level
            verdict = infer_encryption_level(sec.encryption_level, matrix)
            assert verdict.setting == setting and verdict.consistent, level
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


def _legacy_opener(host: str):
    async def open_stream():
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, 3389), 3)
        writer.write(x224.build_request())  # no RDP_NEG_REQ: legacy, Standard RDP Security
        await writer.drain()
        x224.parse_confirm(await live_mcs.read_tpkt(reader, 3))
        return reader, writer, 0

    return open_stream
