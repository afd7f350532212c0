"""What `check --user` saw: the typed facts of the opt-in `auth` stage (one logon of one account).

Built by rdprobe.live.auth_stage (the emulator and the tests build the same object), judged by
rdprobe.analysis.auth_judge. Facts, no verdict: the outcome names what the server did (accepted
the credentials, answered with an errorCode, closed, proved another key...). They hold the user
name as typed and never a password. ``after_logon`` is the JSON-ready record of what the session
sequence met once the credentials were accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rdprobe.protocol.ntstatus import status_name

#: outcome values
ACCEPTED = "accepted"  #: NLA: pubKeyAuth verified, TSCredentials sent; Client Info: logged on
REJECTED = "rejected"  #: an errorCode (NLA) or a logon error notification (Client Info)
REJECTED_NO_REASON = "rejected_no_reason"  #: closed after the AUTHENTICATE, no errorCode
MITM = "pubkey_mismatch"  #: the server's pubKeyAuth does not match the TLS key
NO_VERDICT = "no_verdict"  #: a Client Info logon the server said nothing about
NOT_ATTEMPTED = "not_attempted"  #: no safe way to send the credentials
ERROR = "error"  #: timeout, malformed answer, local failure


@dataclass(frozen=True)
class AuthFacts:
    method: str  #: "nla" (CredSSP) or "client_info" (--logon-without-nla)
    user: str  #: DOMAIN\\NAME as given
    outcome: str
    selected: str | None = None
    tls_version: str | None = None
    tsrequest_version: int | None = None
    error_code: int | None = None  #: TSRequest errorCode, unsigned
    error: str | None = None
    stage: str | None = None  #: where the CredSSP exchange ended
    server_computer: str | None = None  #: NetBIOS names of the CHALLENGE
    server_domain: str | None = None
    channel_bindings: str | None = None
    notes: tuple[str, ...] = ()
    after_logon: Mapping[str, Any] | None = field(default=None)

    @property
    def status(self) -> str | None:
        return None if self.error_code is None else status_name(self.error_code)

    @property
    def ntlm_for_domain_account(self) -> bool:
        """A domain account (the domain is not the server's own name) tried over NTLM."""
        return any("over NTLM" in n for n in self.notes)

    @property
    def summary(self) -> str:
        user, after = self.user, self.after_logon or {}
        if self.outcome == ACCEPTED:
            text = (
                f"{user}: password accepted (TSRequest v{self.tsrequest_version})"
                if self.method == "nla"
                else f"{user}: logged on through the Client Info PDU"
            )
            for key, label in (("early_authorization", ""), ("set_error_info", "then "),
                               ("license_error", "licensing ")):  # fmt: skip
                if after.get(key):
                    text += f"; {label}{after[key]}"
            if after.get("reached"):
                text += f"; reached {after['reached']}, then disconnected"
            elif after.get("error"):
                text += f"; then {after['error']}"
            return text
        if self.outcome == REJECTED:
            return f"{user}: refused with {self.status or self.error}"
        if self.outcome == REJECTED_NO_REASON:
            return f"{user}: rejected, no reason given (closed after AUTHENTICATE)"
        if self.outcome == MITM:
            return f"{user}: pubKeyAuth does not match the TLS key; credentials not sent"
        if self.outcome == NO_VERDICT:
            return f"{user}: Client Info sent over TLS; no verdict from the server ({self.error})"
        return f"{user}: {self.outcome}: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "user": self.user,
            "outcome": self.outcome,
            "selected": self.selected,
            "tls_version": self.tls_version,
            "tsrequest_version": self.tsrequest_version,
            "error_code": None if self.error_code is None else f"0x{self.error_code:08x}",
            "status": self.status,
            "error": self.error,
            "stage": self.stage,
            "server_computer": self.server_computer,
            "server_domain": self.server_domain,
            "channel_bindings": self.channel_bindings,
            "notes": list(self.notes),
            "after_logon": None if self.after_logon is None else dict(self.after_logon),
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuthFacts:
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        code = d.get("error_code")
        kw["error_code"] = int(code, 16) if isinstance(code, str) else code
        kw["notes"] = tuple(d.get("notes") or ())
        return cls(**kw)
