"""The licensing steps of the session walk (MS-RDPBCGR 2.2.1.12, MS-RDPELE 2.2.2).

A server's License Request gets what a client without a licence sends, a New License Request
with a random premaster secret under the licensing key; an Error Alert ends the phase
(STATUS_VALID_CLIENT: no licence needed); a Platform Challenge starts the full licence
protocol, which a probe does not carry out.
"""

from __future__ import annotations

import os
from dataclasses import replace

from rdprobe.analysis.session_facts import LicensingFacts, Step, StopKind
from rdprobe.live.session_io import Stop, Walk
from rdprobe.protocol import licensing, rdpcrypt, rdpsec, sechdr
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.sechdr import HeaderKind, SecurityFlag


def _licensing_facts(
    pdu: licensing.LicensePdu, encrypted: bool, before: LicensingFacts | None
) -> LicensingFacts:
    """The licensing facts after one more server message (the request's product info kept)."""
    base = before or LicensingFacts("other", "")
    name = pdu.type_name if isinstance(pdu, licensing.OtherLicensePdu) else {
        licensing.ErrorAlert: "ERROR_ALERT", licensing.LicenseRequest: "LICENSE_REQUEST",
        licensing.PlatformChallenge: "PLATFORM_CHALLENGE",
        licensing.NewLicenseRequest: "NEW_LICENSE_REQUEST",
    }[type(pdu)]  # fmt: skip
    common = dict(message=name, messages=(*base.messages, f"server {name}"),
                  encrypted=base.encrypted or encrypted)  # fmt: skip
    if isinstance(pdu, licensing.ErrorAlert):
        outcome = "valid_client" if pdu.valid_client else "error"
        return replace(base, outcome=outcome, error_code=pdu.error_code,
                       error_name=pdu.error_name, state_transition=pdu.transition_name,
                       **common)  # type: ignore[arg-type]  # fmt: skip
    if isinstance(pdu, licensing.LicenseRequest):
        return replace(base, outcome="license_request", company=pdu.product.company_name,
                       product_id=pdu.product.product_id, product_version=pdu.product.version,
                       scopes=pdu.scopes, **common)  # type: ignore[arg-type]  # fmt: skip
    if isinstance(pdu, licensing.PlatformChallenge):
        return replace(base, outcome="platform_challenge", **common)  # type: ignore[arg-type]
    issued = name in ("NEW_LICENSE", "UPGRADE_LICENSE")
    return replace(base, outcome="license_issued" if issued else "other", **common)  # type: ignore[arg-type]


def _new_license_request(
    walk: Walk, request: licensing.LicenseRequest, gcc_cert: rdpsec.ServerCertificate | None
) -> bytes:
    """The answer of a client without a licence: a random premaster secret encrypted with the
    licensing certificate of the request (or, when it is empty, the GCC one)."""
    cert = gcc_cert
    if request.certificate:
        try:
            cert = rdpsec.parse_server_certificate(request.certificate)
        except ProtocolError as exc:
            raise Stop(StopKind.UNSUPPORTED, f"unreadable licensing certificate: {exc}") from None
    if cert is None:
        raise Stop(StopKind.UNSUPPORTED, "License Request without a usable certificate")
    try:
        modulus, exponent = rdpcrypt.server_public_key(cert)
        value = int.from_bytes(os.urandom(48), "little") % modulus
        size = (modulus.bit_length() + 7) // 8
        premaster = pow(value, exponent, modulus).to_bytes(size, "little") + b"\x00" * 8
    except ProtocolError as exc:
        raise Stop(StopKind.UNSUPPORTED, f"licensing key unusable: {exc.reason}") from None
    return licensing.build_new_license_request(os.urandom(32), premaster)


async def handle_licensing(
    walk: Walk,
    header: sechdr.SecurityHeader,
    body: bytes,
    gcc_cert: rdpsec.ServerCertificate | None,
) -> None:
    lic = licensing.parse_license_pdu(body)
    facts = _licensing_facts(lic, header.encrypted, walk.facts.licensing)
    walk.pdus.append(f"licensing {facts.message}")
    if isinstance(lic, licensing.LicenseRequest) and walk.sent_license_request:
        raise Stop(StopKind.LICENSING, "the server repeated its License Request")
    if isinstance(lic, licensing.LicenseRequest):
        answer = _new_license_request(walk, lic, gcc_cert)
        facts = replace(facts, messages=(*facts.messages, "client NEW_LICENSE_REQUEST"))
        walk.facts = replace(walk.facts, licensing=facts)
        await walk.send_data(answer, SecurityFlag.SEC_LICENSE_PKT, header=HeaderKind.BASIC)
        walk.sent_license_request = True
        return
    walk.facts = replace(walk.facts, licensing=facts)
    if facts.outcome == "platform_challenge":
        raise Stop(StopKind.LICENSING, "the server sent a Platform Challenge: a full licence "
                    "exchange, which rdprobe does not carry out")  # fmt: skip
    if facts.outcome == "error" and facts.state_transition == "ST_TOTAL_ABORT":
        raise Stop(StopKind.LICENSING, f"licensing error {facts.error_name} (total abort)")
    walk.mark(Step.LICENSING)
    walk.step = Step.DEMAND_ACTIVE
