"""Emulator profiles: how one listener answers, replaying bytes recorded from real servers.

A profile is a name, a one-line description (which server or misbehaviour, and the vector its
bytes come from) and a behaviour from ``rdprobe.emulate.behaviours`` (sans-IO: what the client
sent -> a ``Reply``, following MS-RDPBCGR 3.3.5.3.1-3.3.5.3.2). This module holds the ``PROFILES``
table and ``get``; ``rdprobe.emulate.server`` does the I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rdprobe.emulate import vectors
from rdprobe.emulate.behaviours import (
    Banner,
    Behaviour,
    Fixed,
    Gate,
    IsoTransport,
    Mangle,
    Mangled,
    NegotiationPolicy,
    Negotiator,
    RdpUdp,
    Refuse,
    Reply,
    Then,
    TlsDirect,
)
from rdprobe.emulate.credssp_server import CredSspPolicy
from rdprobe.emulate.vectors import (
    HYBRID_EX,
    NEG_FAILURE,
    PROPRIETARY,
    RDPEUDP,
    W2000,
    W2003,
    W2008_TLS,
    W2008_X509,
    W2012_TLS,
    W2012R2_NTLM,
    WIN10_NLA,
    X509,
    XRDP,
)
from rdprobe.protocol.ntstatus import NtStatus
from rdprobe.protocol.x224 import Protocol as P

__all__ = [  # Reply and Then re-exported: rdprobe.emulate.server imports them from here
    "PROFILES",
    "Profile",
    "Reply",
    "Then",
    "garbage",
    "get",
]

# -- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    behaviour: Behaviour
    #: ids of the packaged vectors whose bytes this profile serves
    vectors: tuple[str, ...] = ()
    transport: str = "tcp"


def garbage(seed: int = 3389, size: int = 48) -> bytes:
    """Deterministic random bytes that cannot start a TPKT PDU."""
    data = random.Random(seed).randbytes(size)
    return data if data[0] != 0x03 else b"\xff" + data[1:]


def _v(vector_id: str, what: str) -> bytes:
    return vectors.pdu(vector_id, what)


def _mutated_confirm() -> bytes:
    """win2012-negotiate's recorded confirm with its first byte (TPKT version 3) changed."""
    cc = _v(W2012_TLS, "x224_cc")
    return bytes((cc[0] ^ 0x10,)) + cc[1:]


#: spec-built (RFC 1006, ISO 8073 13.4): CC with TPDU size 1024 (C0 01 0A), calling TSAP 0x0100
#: (C1 02 01 00) and called TSAP 0x0102 (C2 02 01 02), as an S7 PLC confirms.
_ISO_CC = bytes.fromhex("0300001611d00001123400c0010ac1020100c2020102")
#: spec-built: X.224 DT carrying an S7comm Ack-Data header (protocol id 0x32, ROSCTR 3) with an
#: error class 0x81 code 0x04, the answer of a PLC to a PDU it does not understand.
_ISO_DT = bytes.fromhex("0300001302f080320300000000000000008104")


_LEGACY = NegotiationPolicy(legacy=True)
_STANDARD_ONLY = NegotiationPolicy(external=0, standard_rdp=True)
_W2012 = NegotiationPolicy(
    external=P.SSL | P.HYBRID | P.HYBRID_EX, standard_rdp=True, flags=0x0F, rdp_flags=0x00
)


_HTTP_BODY = b"<h1>Bad Request (Invalid Verb)</h1>"
_HTTP_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=us-ascii\r\n"
    b"Server: Microsoft-IIS/10.0\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_HTTP_BODY)).encode() + b"\r\n\r\n" + _HTTP_BODY
)
#: (name, what answers, greeting sent first, answer to the client's bytes)
_BANNERS = (
    ("http", "an HTTP server (IIS): 400 Bad Request with its Server header", b"", _HTTP_400),
    ("ssh", "an SSH server: banner first", b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n",
     b"Invalid SSH identification string.\r\n"),
    ("smtp", "an SMTP server: 220 greeting first", b"220 mail.example.test ESMTP Postfix\r\n",
     b"500 5.5.2 Error: bad syntax\r\n"),
    ("ftp", "an FTP server (IIS): 220 greeting first", b"220 Microsoft FTP Service\r\n",
     b"500 Command not understood.\r\n"),
    ("pop3", "a POP3 server: +OK greeting first", b"+OK POP3 server ready\r\n",
     b"-ERR Unknown command.\r\n"),
    ("imap", "an IMAP server: * OK greeting first", b"* OK IMAP4rev1 Service Ready\r\n",
     b"* BAD Invalid tag\r\n"),
    ("vnc", "a VNC server: RFB 003.008 version first", b"RFB 003.008\n", b""),
)  # fmt: skip


def _profiles() -> list[Profile]:
    from rdprobe.emulate import session_host as sh

    prop = _v(PROPRIETARY, "mcs_cr")
    w2012 = Negotiator(_W2012, mcs_cr=prop)
    # after the recorded MCS answer inside TLS, session-valid-client's spec-built sequence: a
    # Windows Server 2012 R2 walks a client on to its logon screen there
    walk = sh.SessionHost((sh.valid_client(), sh.demand_active()), Then.HOLD)
    w2012_tls = Negotiator(_W2012, prop, _v(W2012_TLS, "mcs_cr"), tls=True, after_tls_mcs=walk)
    w2012_nla = Negotiator(
        _W2012, prop, _v(W2012_TLS, "mcs_cr"), tls=True, tls_versions=("TLSv1", "TLSv1.2"),
        nla_challenge=_v(W2012R2_NTLM, "credssp_tsrequest_ntlm_challenge"), after_tls_mcs=walk,
    )  # fmt: skip
    walked = (
        "; after it the session sequence (Attach User, Channel Joins, STATUS_VALID_CLIENT, a"
        " Demand Active) is spec-built, as in session-valid-client"
    )
    w12 = (W2012_TLS, PROPRIETARY)
    nla = NegotiationPolicy(P.SSL | P.HYBRID | P.HYBRID_EX, False, True, flags=0x1F)
    xrdp = NegotiationPolicy(external=P.SSL, flags=0x01, rdp_flags=0x01)
    table: list[tuple[str, str, Behaviour, tuple[str, ...]]] = [
        ("win2003-legacy", "Windows Server 2003 before SP1: 11-byte confirm to every request,"
         f" then its MCS Connect Response (proprietary 512-bit certificate) [{W2003}]",
         Negotiator(_LEGACY, mcs_cr=_v(W2003, "mcs_cr")), (W2003,)),
        ("win2000-legacy", "Windows 2000 Server: 11-byte confirm to every request, then its MCS"
         f" Connect Response (proprietary 512-bit certificate, 40-bit) [{W2000}]",
         Negotiator(_LEGACY, mcs_cr=_v(W2000, "mcs_cr")), (W2000,)),
        ("win2008-x509", "Windows Server 2008 (10.10.47.35), security layer Negotiate: TLS with"
         " flags 0x09; legacy and RDP requests get Standard RDP Security with an X.509 licensing"
         f" chain [{W2008_TLS}, {W2008_X509}; HYBRID per MS-RDPBCGR, not recorded]",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, flags=0x09), _v(W2008_X509, "mcs_cr")),
         (W2008_TLS, W2008_X509)),
        ("win2008r2-tls", "Windows Server 2008 R2, security layer SSL (TLS required): SSL or"
         f" HYBRID with flags 0x09 [{W2008_TLS}]; RDP-only and legacy requests get"
         " SSL_REQUIRED_BY_SERVER (MS-RDPBCGR 2.2.1.2.2, not recorded)",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, False, flags=0x09)), (W2008_TLS,)),
        ("win2012-negotiate", "Windows Server 2012, security layer Negotiate: SSL with flags 0x0f"
         f" [{W2012_TLS}]; HYBRID/HYBRID_EX when offered (MS-RDPBCGR), RDP with flags 0x00 or a"
         f" legacy 11-byte confirm, then a Standard RDP MCS answer borrowed from [{PROPRIETARY}]",
         w2012, w12),
        ("win10-nla", f"Windows 10 / Server 2019, NLA required: HYBRID_EX [{HYBRID_EX}] or"
         f" HYBRID [{WIN10_NLA}] with flags 0x1f; RDP, SSL and legacy requests get"
         " HYBRID_REQUIRED_BY_SERVER (MS-RDPBCGR 2.2.1.2.2, no verified capture)",
         Negotiator(nla), (HYBRID_EX, WIN10_NLA)),
        ("rdp-only", "Windows, security layer RDP (10.226.24.52): SSL_NOT_ALLOWED_BY_SERVER"
         f" [{NEG_FAILURE}], RDP selected with flags 0x00, then its MCS Connect Response"
         f" [{PROPRIETARY}]", Negotiator(_STANDARD_ONLY, mcs_cr=prop), (NEG_FAILURE, PROPRIETARY)),
        ("rdp-proprietary", "Windows, Standard RDP Security with a proprietary certificate"
         " (512-bit, 128-bit, level High): the same server and answers as rdp-only"
         f" [{PROPRIETARY}, {NEG_FAILURE}]", Negotiator(_STANDARD_ONLY, mcs_cr=prop),
         (PROPRIETARY, NEG_FAILURE)),
        ("rdp-x509", "Windows, Standard RDP Security with a temporary X.509 chain: RDP selected"
         f" with flags 0x00, then its MCS Connect Response [{X509}]; SSL refused as in"
         f" [{NEG_FAILURE}]", Negotiator(_STANDARD_ONLY, mcs_cr=_v(X509, "mcs_cr")),
         (X509, NEG_FAILURE)),
        ("corrupt-certificate", "rdp-proprietary with the first byte of the proprietary"
         " certificate's signature inverted: the 'because of a security error' case"
         f" [{PROPRIETARY}, modified]",
         Negotiator(_STANDARD_ONLY, mcs_cr=vectors.corrupt_signature(prop)), (PROPRIETARY,)),
        ("ssl-cert-missing", "Windows, security layer Negotiate without a usable certificate:"
         " SSL_CERT_NOT_ON_SERVER to TLS/NLA requests (MS-RDPBCGR 2.2.1.2.2, not recorded), RDP"
         f" selected with flags 0x00, MCS answer borrowed from [{PROPRIETARY}]",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, cert_missing=True), mcs_cr=prop),
         (PROPRIETARY,)),
        ("win-tls-selfsigned", "win2012-negotiate really serving TLS with a self-signed"
         f" certificate made at start, then its MCS Connect Response inside TLS [{W2012_TLS}]"
         + walked, w2012_tls, w12),
        ("win2012-tls-nla", "win-tls-selfsigned as a Windows Server 2012 R2 listener answers"
         " every stage of a probe without credentials: TLS 1.0 to 1.2 only (SCHANNEL's defaults"
         " there; served by OpenSSL, no TLS 1.3), and on a connection that selected HYBRID or"
         " HYBRID_EX the recorded TSRequest with its NTLM CHALLENGE (NTLM 6.3.9600, its timestamp"
         " set to the time of the answer) answers the client's first TSRequest"
         f" [{W2012_TLS}, {PROPRIETARY}, {W2012R2_NTLM}]" + walked,
         w2012_nla, (W2012_TLS, PROPRIETARY, W2012R2_NTLM)),
        ("xrdp-rdsaad", "xrdp 0.9.21 (not Windows), security layer negotiate: SSL when offered"
         " else RDP, flags 0x01; requestedProtocols above 0xB get an MCS Disconnect Provider"
         f" Ultimatum, then close [{XRDP}, measured]",
         Negotiator(xrdp, ultimatum_above=0xB), (XRDP,)),
        ("accept-reset", "accepts, reads the request, then resets (RST) before answering:"
         " connection limit, IP restriction", Refuse(Then.RESET), ()),
        ("accept-close", "accepts, reads the request, then closes (FIN) before answering",
         Refuse(Then.CLOSE), ()),
        ("silent", "accepts and reads, never answers; closes when the client does or after"
         " 30 s idle", Fixed(b"", Then.HOLD), ()),
        ("drip", "win2012-negotiate's confirm sent one byte every 0.4 s",
         Mangled(w2012, Mangle.DRIP), w12),
        ("oversized", "a TPKT header announcing 65535 bytes followed by 15 bytes, then silence",
         Fixed(bytes.fromhex("0300ffff0ed000001234000200080001000000"), Then.HOLD), ()),
        ("truncated", "the first half of win2012-negotiate's confirm, then close",
         Mangled(w2012, Mangle.TRUNCATE), w12),
        ("garbage", "48 random bytes that are not TPKT, then close", Fixed(garbage()), ()),
        ("reset-after-confirm", "win2012-negotiate's confirm, then a reset (RST)",
         Mangled(w2012, Mangle.RESET_AFTER), w12),
        ("busy", "win2012-negotiate for 2 connections at once; further concurrent ones are reset",
         Gate(w2012, max_active=2), w12),
        ("flapping", "win2012-negotiate, except every 3rd connection is reset",
         Gate(w2012, reset_every=3), w12),
        ("flapping-legacy", "win-tls-selfsigned on a flapping listener whose resets fall on the"
         " requests without RDP negotiation (spec-built: where the resets fall is chosen, so a"
         " check sees the reset on that row every time)",
         Mangled(w2012_tls, Mangle.RESET_LEGACY), w12),
        ("mutated-confirm", "win2012-negotiate's confirm with its first byte changed from 0x03"
         f" (TPKT version) to 0x13, then close [{W2012_TLS}, modified]",
         Fixed(_mutated_confirm()), (W2012_TLS,)),
        ("iso-transport", "an ISO-on-TCP service (S7comm PLC), not RDP: confirms any Connection"
         " Request with ISO 8073 parameters and no RDP negotiation data, then answers the MCS"
         " Connect Initial with an S7comm error (spec-built: RFC 1006, ISO 8073)",
         IsoTransport(_ISO_CC, _ISO_DT), ()),
    ]  # fmt: skip
    out = [Profile(name, text, beh, vids) for name, text, beh, vids in table]
    out += _session_profiles()
    out += [Profile(n, f"{w} on the port", Banner(g, a)) for n, w, g, a in _BANNERS]
    out.append(Profile("tls-direct", "a TLS server on the port (self-signed certificate):"
                       " OpenSSL's answer to X.224 bytes", TlsDirect()))  # fmt: skip
    out.append(Profile("rdpudp", "RDP over UDP (MS-RDPEUDP): the recorded SYN+ACK addressed"
                       f" to the client's SYN [{RDPEUDP}]", RdpUdp(_v(RDPEUDP, "rdpudp_synack")),
                       (RDPEUDP,), transport="udp"))  # fmt: skip
    out += _auth_profiles()
    return out


#: (name, what the server answers a CredSSP logon with, policy, HYBRID_EX offered)
_AUTH_STATES = tuple(
    (f"win-nla-{slug}", f"answers the AUTHENTICATE with errorCode {code.name}",
     CredSspPolicy(error_code=code), True)
    for slug, code in (
        ("locked-out", NtStatus.STATUS_ACCOUNT_LOCKED_OUT),
        ("disabled", NtStatus.STATUS_ACCOUNT_DISABLED),
        ("account-expired", NtStatus.STATUS_ACCOUNT_EXPIRED),
        ("password-expired", NtStatus.STATUS_PASSWORD_EXPIRED),
        ("must-change", NtStatus.STATUS_PASSWORD_MUST_CHANGE),
        ("restriction", NtStatus.STATUS_ACCOUNT_RESTRICTION),
        ("logon-hours", NtStatus.STATUS_INVALID_LOGON_HOURS),
        ("workstation", NtStatus.STATUS_INVALID_WORKSTATION),
        ("logon-type", NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED),
    )
)  # fmt: skip
_AUTH = (
    ("win-nla-logon", "accepts the account's logon (TSRequest v6, client nonce hashing),"
     " AUTHZ_SUCCESS", CredSspPolicy(), True),
    ("win-nla-logon-v5", "accepts the logon with TSRequest version 5 (nonce hashing)",
     CredSspPolicy(version=5), False),
    ("win-nla-logon-v4", "accepts the logon with TSRequest version 4 (pubKeyAuth is the key,"
     " the answer adds one to its first byte)", CredSspPolicy(version=4), False),
    ("win-nla-logon-v3", "accepts the logon with TSRequest version 3", CredSspPolicy(version=3),
     False),
    ("win-nla-logon-v2", "accepts the logon with TSRequest version 2", CredSspPolicy(version=2),
     False),
    ("win-nla-wrong-password", "answers a wrong password or unknown user with errorCode"
     " STATUS_LOGON_FAILURE", CredSspPolicy(), True),
    ("win-nla-close-on-failure", "closes after a failed AUTHENTICATE without an errorCode"
     " (FreeRDP's measured behaviour)", CredSspPolicy(wrong_password="close"), False),
    ("win-nla-mitm", "answers pubKeyAuth for another key: what a man in the middle with its own"
     " TLS certificate sends", CredSspPolicy(tamper_pub_key=True), False),
    ("win-nla-not-authorized", "accepts the password, then sends the Early User Authorization"
     " Result AUTHZ_ACCESS_DENIED (MS-RDPBCGR 2.2.10.2)", CredSspPolicy(authorization=5), True),
    *_AUTH_STATES,
)  # fmt: skip


def _auth_profiles() -> list[Profile]:
    """NLA listeners for `check --user` (spec-built, MS-CSSP 3.1.5, MS-RDPBCGR 1.3.1.1): a real
    NTLM acceptor for the CredSSP logon (account rdprobe / Emulator-Pass-1), then the session
    host inside TLS: STATUS_VALID_CLIENT, a Demand Active, and after the client's finalization
    a logon notification, or the Set Error Info / logon error a profile names."""
    from rdprobe.emulate import logon_host as lh
    from rdprobe.emulate import session_host as sh
    from rdprobe.protocol.errinfo import ErrorInfo
    from rdprobe.protocol.finalize import InfoType, LogonErrorData, LogonErrorType
    from rdprobe.protocol.finalize import LogonNotification as Note

    logged_on = (lh.save_session_info(Note(InfoType.INFOTYPE_LOGON_LONG, 2)),)
    ready = (sh.valid_client(), sh.demand_active())
    after: list[tuple[str, str, CredSspPolicy, bool, tuple[bytes, ...], tuple[bytes, ...]]] = [
        (name, what, policy, hybrid_ex, ready, logged_on) for name, what, policy, hybrid_ex in _AUTH
    ]
    refusals = (
        ("win-nla-insufficient-privileges", "accepts the password; after the logon Set Error"
         " Info ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES and an ultimatum", ready,
         (sh.set_error_info(ErrorInfo.ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES), sh.ultimatum())),
        ("win-nla-denied-connection", "accepts the password; after the logon Set Error Info"
         " ERRINFO_SERVER_DENIED_CONNECTION and an ultimatum", ready,
         (sh.set_error_info(ErrorInfo.ERRINFO_SERVER_DENIED_CONNECTION), sh.ultimatum())),
        ("win-nla-no-license-server", "accepts the password; Set Error Info"
         " ERRINFO_LICENSE_NO_LICENSE_SERVER after the Client Info, then an ultimatum",
         (sh.set_error_info(ErrorInfo.ERRINFO_LICENSE_NO_LICENSE_SERVER), sh.ultimatum()), ()),
        ("win-nla-no-permission", "accepts the password; the logon notification carries the"
         " logon error LOGON_FAILED_OTHER / LOGON_MSG_NO_PERMISSION", ready,
         (lh.save_session_info(Note(InfoType.INFOTYPE_LOGON_EXTENDED_INFO, None,
                                    LogonErrorType.LOGON_FAILED_OTHER,
                                    LogonErrorData.LOGON_MSG_NO_PERMISSION)),)),
        ("win-nla-no-notification", "accepts the password and finishes the connection sequence"
         " but sends no logon notification (as FreeRDP's shadow server)", ready, ()),
    )  # fmt: skip
    after += [(n, w, CredSspPolicy(), False, info, logon) for n, w, info, logon in refusals]
    out = []
    for name, what, policy, hybrid_ex, info, logon in after:
        external = P.SSL | P.HYBRID | (P.HYBRID_EX if hybrid_ex else 0)
        neg = NegotiationPolicy(external, False, True, flags=0x1F if hybrid_ex else 0x0F)
        text = f"Windows with NLA, spec-built CredSSP and session host: {what}"
        ends = sh.ultimatum()
        then = Then.CLOSE if logon and logon[-1] == ends else Then.HOLD
        behaviour = lh.NlaLogonHost(
            after_info=info, then=Then.CLOSE if info[-1] == ends else Then.READ,
            policy=neg, credssp=policy, after_logon=logon, then_after=then,
        )  # fmt: skip
        out.append(Profile(name, text, behaviour))
    return out


def _session_profiles() -> list[Profile]:
    """Windows-only answers after the Client Info (issue 10), all spec-built: no capture of a
    Windows licensing error or Set Error Info was available."""
    from rdprobe.emulate import session_host as sh
    from rdprobe.protocol.errinfo import ErrorInfo
    from rdprobe.protocol.licensing import LicenseError, StateTransition

    spec = "spec-built from MS-RDPBCGR 2.2.1.12/2.2.1.13.1/2.2.5.1 and MS-RDPELE 2.2.2"
    no_server = sh.license_error(LicenseError.ERR_NO_LICENSE_SERVER, StateTransition.ST_TOTAL_ABORT)
    table = [
        ("session-valid-client", "Windows without licensing: STATUS_VALID_CLIENT, then a Demand"
         " Active (Windows NT, 1024x768x32)", (sh.valid_client(), sh.demand_active()), Then.HOLD),
        ("session-license-error", "licensing fails: an Error Alert ERR_NO_LICENSE_SERVER with"
         " ST_TOTAL_ABORT, then close", (no_server,), Then.CLOSE),
        ("session-no-license-server", "Set Error Info ERRINFO_LICENSE_NO_LICENSE_SERVER, then a"
         " Disconnect Provider Ultimatum and close",
         (sh.set_error_info(ErrorInfo.ERRINFO_LICENSE_NO_LICENSE_SERVER), sh.ultimatum()),
         Then.CLOSE),
        ("session-denied", "Set Error Info ERRINFO_SERVER_DENIED_CONNECTION, then a Disconnect"
         " Provider Ultimatum and close",
         (sh.set_error_info(ErrorInfo.ERRINFO_SERVER_DENIED_CONNECTION), sh.ultimatum()),
         Then.CLOSE),
        ("session-deactivate", "STATUS_VALID_CLIENT, Deactivate All, then the Demand Active of a"
         " reactivation", (sh.valid_client(), sh.deactivate_all(), sh.demand_active()), Then.HOLD),
    ]  # fmt: skip
    out = [
        Profile(name, f"{text} ({spec})", sh.SessionHost(pdus, then))
        for name, text, pdus, then in table
    ]
    out.append(Profile("session-busy", "session-valid-client, but it answers the Client Info"
                       f" only after 3.5 s: the 'RDP services busy' case ({spec})",
                       sh.SessionHost((sh.valid_client(), sh.demand_active()), Then.HOLD,
                                      delay=3.5)))  # fmt: skip
    return out


PROFILES: dict[str, Profile] = {p.name: p for p in _profiles()}


def get(name: str) -> Profile:
    """The profile called ``name``; KeyError listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None
