"""The findings catalogue: every finding rdprobe can report, with its text, in one place.

A FindingSpec is immutable knowledge (id, severity, title, probable cause on the server, fix). A
Finding is one spec applied to one target, with the evidence that triggered it. Titles may name
evidence keys in braces; they are filled from the evidence when the finding is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rdprobe.analysis.severity import Severity

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

INFO, WARN, ERR, CRIT = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL

_RDP_TCP_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp"
_TS_PARAMS = r"HKLM\SYSTEM\CurrentControlSet\Services\TermService\Parameters"


def _bind(thumbprint: str) -> str:
    """PowerShell that binds the certificate with this SHA-1 thumbprint to the RDP-Tcp listener
    (a catalogue text: braces doubled for fill())."""
    return (
        "`$ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName "
        "Win32_TSGeneralSetting -Filter \"TerminalName='RDP-Tcp'\"; Set-CimInstance $ts "
        f"-Property @{{{{SSLCertificateSHA1Hash='{thumbprint}'}}}}`"
    )


@dataclass(frozen=True)
class FindingSpec:
    """One finding of the catalogue: its id, severity and texts."""

    id: str
    severity: Severity
    title: str
    cause: str
    fix: str
    #: the command that shows the same fact on the server (PowerShell unless said), from CONFIRM
    confirm: str = ""


class _Keep(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, evidence: dict[str, Any]) -> str:
    """A text with evidence keys in braces filled in (``{{`` is a brace); a key the evidence
    lacks stays as ``{key}``, so the catalogue itself prints with ``fill(text, {})``."""
    try:
        return text.format_map(_Keep(evidence))
    except (IndexError, ValueError, AttributeError, TypeError):
        return text


_fill = fill


@dataclass(frozen=True)
class Finding:
    """A catalogue entry applied to one target, with the evidence that raised it."""

    spec: FindingSpec
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def severity(self) -> Severity:
        return self.spec.severity

    @property
    def title(self) -> str:
        return _fill(self.spec.title, self.evidence)

    @property
    def cause(self) -> str:
        return _fill(self.spec.cause, self.evidence)

    @property
    def fix(self) -> str:
        return _fill(self.spec.fix, self.evidence)

    @property
    def confirm(self) -> str:
        return _fill(self.spec.confirm, self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": str(self.severity),
            "title": self.title,
            "evidence": self.evidence,
            "cause": self.cause,
            "fix": self.fix,
            "confirm": self.confirm,
        }


_SPECS = [
    # -- name resolution and TCP ------------------------------------------------------------------
    FindingSpec(
        "dns.failure",
        ERR,
        "The name {host} does not resolve",
        "The DNS name is wrong, not registered, or this workstation uses a DNS server that does "
        "not know it.",
        "Check the spelling; run `nslookup <name>` against the domain's DNS servers; on the server "
        "run `ipconfig /registerdns`, or connect by IP address to confirm the server itself is up.",
    ),
    FindingSpec(
        "tcp.open",
        INFO,
        "Port {port} accepts TCP connections (RDP itself not checked at depth tcp)",
        "Something listens on the port; whether it is a working RDP listener needs depth x224.",
        "Run `rdprobe check` without --depth tcp to see what answers.",
    ),
    FindingSpec(
        "tcp.refused",
        ERR,
        "Nothing listens on port {port}: the connection was refused",
        "The host is up but no process accepts connections on this port: Remote Desktop is "
        "disabled, the Remote Desktop Services service (TermService) is stopped, the RDP-Tcp "
        "listener is down, or RDP listens on another port. A host firewall that rejects also "
        "looks like this.",
        "On the server enable Remote Desktop (System Properties > Remote), start the Remote "
        "Desktop Services service, and check that the listener is in Listen state with `qwinsta` "
        f"(rdp-tcp). Check PortNumber under {_RDP_TCP_KEY}, or run `rdprobe find {{host}}` to "
        "find the port RDP moved to. Check the Windows Firewall rule 'Remote Desktop - User Mode "
        "(TCP-In)'.",
    ),
    FindingSpec(
        "tcp.timeout",
        ERR,
        "No answer to the connection attempt within {timeout_s} s",
        "Packets to the port are silently dropped, or the host is down, asleep or absent. From "
        "outside these cannot be told apart: a filtering firewall and a powered-off machine both "
        "say nothing.",
        "Check that the host is powered on and awake (Wake-on-LAN, power plan), then the firewalls "
        "on the path and on the server: allow TCP 3389 (or the configured port) inbound for this "
        "client's address. `Test-NetConnection <host> -Port 3389` from another network segment "
        "helps locate the filter.",
    ),
    FindingSpec(
        "tcp.host_unreachable",
        ERR,
        "Host unreachable (an ICMP error came back)",
        "A router or the host's own network stack reported the host unreachable: no route, the "
        "host is down on its local segment (no ARP answer), or a firewall rejects with "
        "host-unreachable.",
        "Check the host is up and on the expected subnet, the routes between this workstation and "
        "the server, and firewall rules that reject rather than drop.",
    ),
    FindingSpec(
        "tcp.net_unreachable",
        ERR,
        "Network unreachable",
        "This workstation or a router on the path has no route to the server's network.",
        "Check the address, the VPN or tunnel that should carry this traffic, and the routing "
        "table (`route print`).",
    ),
    FindingSpec(
        "tcp.admin_prohibited",
        ERR,
        "Connection administratively prohibited by a filter",
        "A firewall on the path or on the server rejects the connection explicitly (ICMP "
        "administratively prohibited).",
        "Ask for a firewall rule allowing TCP to the RDP port from this client, or connect from "
        "an allowed network (VPN, RD Gateway).",
    ),
    FindingSpec(
        "tcp.error",
        ERR,
        "The connection failed: {error}",
        "The operating system reported an unusual socket error.",
        "Repeat the probe; check local firewall or security software on this workstation.",
    ),
    FindingSpec(
        "tcp.reset_before_reply",
        ERR,
        "The server accepted the connection, then reset it before answering",
        "Something accepted TCP on the port but refused to talk RDP: the connection limit of the "
        "RDP listener is reached (MaxInstanceCount, all sessions busy, or too many half-open "
        "connections), the listener is busy or hung, an IP restriction or connection broker "
        "drops this client, or the process on the port is not RDP.",
        "On the server check `qwinsta` for the number of sessions and the listener state, the "
        "'Limit number of connections' policy, and the event logs TerminalServices-* and "
        "RemoteDesktopServices-RdpCoreTS. Restarting the Remote Desktop Services service clears a "
        "hung listener; log off disconnected sessions to free slots.",
    ),
    FindingSpec(
        "tcp.closed_before_reply",
        ERR,
        "The server accepted the connection, then closed it without answering",
        "The process on the port closed the connection on receiving an RDP Connection Request: a "
        "listener at its connection limit, a service that is not RDP, or a proxy that refuses "
        "this client.",
        "Check the listener with `qwinsta` and the TerminalServices event logs; find the process "
        "on the port with `netstat -a -o -n` and `tasklist /svc`.",
    ),
    FindingSpec(
        "tcp.silent",
        ERR,
        "The server accepted the connection but said nothing within {timeout_s} s",
        "The listener accepted TCP but never answered the Connection Request: a hung Remote "
        "Desktop Services, a server overloaded or swapping, or a service that waits for the "
        "client to speak another protocol.",
        "Restart the Remote Desktop Services service (or the server), check CPU and memory load, "
        "and identify the process on the port with `netstat -a -o -n` and `tasklist /svc`.",
    ),
    FindingSpec(
        "tcp.intermittent",
        WARN,
        "Intermittent: {failures} of {tries} attempts failed",
        "The listener answers some connections and refuses others: a connection limit reached "
        "at times, an overloaded server, a load balancer with one bad member, or a flapping "
        "network path.",
        "Compare the failure times with the server's session count and load; check each member "
        "behind a load balancer or broker on its own address; check the event logs "
        "RemoteDesktopServices-RdpCoreTS for listener errors.",
    ),
    # -- X.224 replies ---------------------------------------------------------------------------
    FindingSpec(
        "x224.truncated",
        ERR,
        "The reply stopped in the middle of a PDU ({received} bytes)",
        "The server started an answer and then closed the connection or stopped sending: a "
        "crashing listener, a middlebox cutting the connection, or a broken implementation.",
        "Look for crashes of TermService (svchost) in the System and Application event logs and "
        "for a proxy or IPS on the path.",
    ),
    FindingSpec(
        "x224.slow",
        ERR,
        "The reply was still incomplete after {timeout_s} s ({received} bytes so far)",
        "The server answers a byte at a time: an overloaded or swapping server, a saturated "
        "link, or a tarpit in front of the port.",
        "Check the server's CPU, memory and network load and any IPS or tarpit on the path; "
        "repeat with a longer --timeout to see whether the answer completes.",
    ),
    FindingSpec(
        "tcp.dropped_after_confirm",
        ERR,
        "The server {how} the connection right after its Connection Confirm",
        "The listener negotiated, then dropped the connection before the client could go on: "
        "the connection limit is reached, a licensing or policy check refuses the client, or "
        "the RDP stack on the server is failing.",
        "Check `qwinsta` for free sessions, the 'Limit number of connections' policy, and the "
        "TerminalServices-* and RemoteDesktopServices-RdpCoreTS event logs at the time of the "
        "probe.",
    ),
    FindingSpec(
        "x224.oversized",
        ERR,
        "The reply announces an impossible length ({length} bytes)",
        "The bytes start like TPKT but announce a length no Connection Confirm has: not an RDP "
        "listener, or a corrupted stream.",
        "Identify the process on the port with `netstat -a -o -n` and `tasklist /svc`.",
    ),
    FindingSpec(
        "x224.malformed",
        ERR,
        "The reply is TPKT but not a valid X.224 Connection Confirm: {error}",
        "The process on the port speaks TPKT (perhaps another ISO transport service) but not "
        "RDP's negotiation.",
        "Identify the process on the port with `netstat -a -o -n` and `tasklist /svc`.",
    ),
    FindingSpec(
        "x224.disconnect",
        WARN,
        "The server answered {requested} with a disconnect instead of a Connection Confirm",
        "Some servers (xrdp among them) answer a request for a protocol they do not know with an "
        "MCS Disconnect Provider Ultimatum or an X.224 Disconnect Request instead of a "
        "negotiation failure.",
        "Nothing to fix for clients that offer standard protocols; update the server software if "
        "newer clients (Azure AD / RDS AAD authentication) must connect.",
    ),
    FindingSpec(
        "x224.unrequested_protocol",
        WARN,
        "The server selected {selected}, which was not offered",
        "The server's negotiation does not follow MS-RDPBCGR: it picked a protocol the client did "
        "not request. Real clients abort such a connection.",
        "Update the RDP server software.",
    ),
    # -- wrong service -----------------------------------------------------------------------------
    FindingSpec(
        "service.conflict",
        ERR,
        "Port conflict: {service} answers on port {port}, not RDP",
        "Another application owns the port RDP should use (port assignment conflict), or RDP was "
        "moved and something else took its place, or a forward points at the wrong machine.",
        "On the server find the owner with `netstat -a -o -n` (the PID on :{port}) and `tasklist "
        '/svc /fi "PID eq <pid>"`; move that application to another port, or move RDP by '
        f"changing PortNumber under {_RDP_TCP_KEY} (and the firewall rule), then restart the "
        "Remote Desktop Services service.",
    ),
    FindingSpec(
        "service.unknown",
        ERR,
        "Not RDP, unknown bytes on port {port}: {preview}",
        "The process on the port answered with bytes that are neither an RDP Connection Confirm "
        "(which starts with the TPKT version byte 0x03) nor the banner of a known service: a "
        "reply damaged on the way (a middlebox or a broken listener), or a protocol rdprobe does "
        "not know.",
        "Find the owner with `netstat -a -o -n` and `tasklist /svc`; compare the preview of its "
        "bytes in the evidence with what a working RDP listener sends, and look for a proxy, IPS "
        "or port forward on the path that rewrites the connection.",
    ),
    FindingSpec(
        "x224.not_rdp",
        ERR,
        "An ISO transport (X.224) service answers on port {port}, not RDP: {payload}",
        "The listener accepts X.224 connections as ISO-on-TCP (RFC 1006) does, but its Connection "
        "Confirm carries no RDP negotiation and it answered the MCS Connect Initial with another "
        "protocol's data (shown in the title): an industrial or OSI service (a Siemens S7 PLC, an IEC 61850 MMS server, a gateway) "
        "owns the port, or a forward points at such a device.",
        "Check that the address and port are the Remote Desktop server's; find the owner of the "
        "port (`netstat -a -o -n`, the device's own configuration) and move RDP or that service "
        "to another port.",
    ),
    # -- what a capture shows of a connection that is not a whole RDP handshake ------------------
    FindingSpec(
        "capture.no_request",
        INFO,
        "Port {port} is open, but the client sent no request ({handshake})",
        "The server completed the TCP handshake; the client then closed or reset the connection "
        "without a byte of RDP. Port scanners (a half-open scan) and load-balancer health checks "
        "do this. It says the listener accepts connections, nothing about RDP itself.",
        "Nothing to change on the server. To test RDP itself, run `rdprobe check` against it.",
    ),
    FindingSpec(
        "capture.start_missed",
        INFO,
        "The capture starts inside this connection: its beginning ({missed}) was not captured",
        "Only what follows is visible (here the TLS handshake or the RDP-UDP datagrams); the "
        "negotiation of the security protocol, which tells the server's setting, is not.",
        "Start the capture before the client connects to see the whole handshake.",
    ),
    # -- negotiation outcomes and the server's setting ---------------------------------------------
    FindingSpec(
        "rdp.answered",
        INFO,
        "RDP answers on port {port}",
        "A Remote Desktop listener accepted the Connection Request.",
        "Nothing to fix.",
    ),
    FindingSpec(
        "rdp.found_elsewhere",
        WARN,
        "RDP answers on port(s) {ports}, not on {default_port}",
        "The listener's port was changed (PortNumber of RDP-Tcp), or a NAT / forward maps another "
        "port to it.",
        "Connect with host:port (mstsc /v:host:port), or set the PortNumber back and adjust the "
        "firewall rule.",
    ),
    FindingSpec(
        "rdp.not_found",
        ERR,
        "No RDP listener on any of the {count} ports probed",
        "Remote Desktop is off or listens on a port outside the list, or a firewall filters "
        "every probed port.",
        "Check the PortNumber of RDP-Tcp on the server, and run `rdprobe find <host>` (or widen "
        "--ports) to try the usual moved ports.",
    ),
    FindingSpec(
        "neg.nla_required",
        INFO,
        "Network Level Authentication is required",
        "The server's 'Require user authentication for remote connections by using Network Level "
        "Authentication' setting is on: clients must authenticate with CredSSP before a session "
        "starts. Clients without NLA (old mstsc, many thin clients, some Linux clients) are told "
        "HYBRID_REQUIRED_BY_SERVER and cannot connect.",
        "Use a client that supports NLA (CredSSP) with a domain or local account that may log on; "
        "turn the setting off only if such a client cannot be had.",
    ),
    FindingSpec(
        "neg.nla_not_required",
        WARN,
        "Network Level Authentication is not required",
        "The server lets a client start a session (and a logon screen) before authenticating. "
        "That exposes the logon screen and the server's resources to anyone who reaches the port, "
        "and is what pre-authentication RDP exploits rely on.",
        "Enable 'Require user authentication for remote connections by using Network Level "
        "Authentication' (System Properties > Remote, or the Group Policy under Remote Desktop "
        "Session Host > Security).",
    ),
    FindingSpec(
        "neg.nla_used",
        INFO,
        "NLA was used on this connection; whether the server requires it cannot be told from it",
        "Every connection seen selected CredSSP (HYBRID or HYBRID_EX), so Network Level "
        "Authentication was in use. A client that offers NLA gets it whether or not the server "
        "requires it: only a request without HYBRID shows whether the server insists.",
        "To know whether NLA is required, run `rdprobe check` against the server (it also offers "
        "TLS alone and Standard RDP Security), or capture a connection from a client that does "
        "not offer NLA.",
    ),
    FindingSpec(
        "neg.tls_required",
        INFO,
        "TLS is required (security layer SSL); Standard RDP Security refused",
        "The listener's Security Layer is SSL (TLS): clients that offer only Standard RDP "
        "Security get SSL_REQUIRED_BY_SERVER.",
        "Nothing to fix for current clients; an old client must enable TLS.",
    ),
    FindingSpec(
        "neg.rdp_security_only",
        WARN,
        "Only Standard RDP Security: the server refuses TLS",
        "The listener's Security Layer is set to 'RDP Security Layer'. The server is not "
        "authenticated (no certificate check is possible) and clients that require TLS or NLA "
        "cannot connect.",
        "Set the Security Layer to Negotiate or SSL (Group Policy 'Require use of specific "
        "security layer for remote connections', or SecurityLayer under RDP-Tcp) and bind a "
        "certificate.",
    ),
    FindingSpec(
        "neg.legacy_server",
        WARN,
        "Legacy server: no RDP negotiation at all (Windows 2000/2003 era)",
        "The Connection Confirm carries no negotiation data even though the client offered TLS: "
        "the server predates Windows Server 2003 SP1 or is configured like one. It only speaks "
        "Standard RDP Security, which current clients warn about or refuse.",
        "Upgrade the server; until then clients must allow Standard RDP Security.",
    ),
    FindingSpec(
        "neg.ssl_cert_not_on_server",
        ERR,
        "TLS is configured but the listener has no usable certificate (SSL_CERT_NOT_ON_SERVER)",
        "The RDP listener is set to use TLS but its certificate is missing, expired and removed, "
        "or its private key cannot be read by the service (permissions, deleted key).",
        "Select a valid certificate for the connection (RD Session Host configuration, or "
        "SSLCertificateSHA1Hash under RDP-Tcp / Win32_TSGeneralSetting), check NETWORK SERVICE "
        "can read its private key, or delete the self-signed 'Remote Desktop' certificate from "
        "the Remote Desktop store and restart the service to have it recreated.",
    ),
    FindingSpec(
        "neg.ssl_user_auth_required",
        WARN,
        "The server requires a client certificate with TLS (SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER)",
        "The listener demands TLS with client-certificate authentication; clients without one "
        "cannot connect.",
        "Issue the client a certificate trusted by the server, or relax the requirement.",
    ),
    FindingSpec(
        "neg.inconsistent_flags",
        WARN,
        "The server answered INCONSISTENT_FLAGS",
        "The server judged the requested protocols contradictory (MS-RDPBCGR reserves this for "
        "the Direct Approach when an external protocol is already in use).",
        "Make the client request a consistent set of protocols.",
    ),
    FindingSpec(
        "neg.unknown_failure",
        WARN,
        "The server refused with an unknown failure code {code}",
        "A newer or non-standard server uses a failure code outside MS-RDPBCGR.",
        "Compare with the server vendor's documentation.",
    ),
    FindingSpec(
        "neg.accepts_nothing",
        ERR,
        "The listener accepts no client: every request was refused ({codes})",
        "Every Connection Request got a negotiation failure, including those offering TLS and NLA "
        "that the failure code asks for (SSL_REQUIRED_BY_SERVER to a TLS offer): no client of any "
        "kind can connect. The security-layer settings contradict each other or name a protocol "
        "the listener cannot provide: an extended-security mode without its provider (FreeRDP "
        "shadow /sec:ext), a Security Layer or UserAuthentication value the RDP stack does not "
        "accept, or a security provider that failed to load.",
        "Set one consistent security layer: on Windows SecurityLayer 1 (Negotiate) or 2 (SSL) with "
        f"a usable certificate and UserAuthentication 0 or 1 under {_RDP_TCP_KEY} (or the Group "
        "Policy 'Require use of specific security layer'), then restart the Remote Desktop "
        "Services service; on FreeRDP's shadow server use /sec:tls or /sec:nla instead of "
        "/sec:ext. Check the System event log for TermService / schannel errors.",
    ),
    FindingSpec(
        "neg.legacy_clients_refused",
        INFO,
        "Clients without RDP negotiation cannot connect",
        "Clients older than Windows XP SP3-era mstsc send no RDP_NEG_REQ (the negotiation "
        "request in which a client names the security protocols it can do, MS-RDPBCGR "
        "2.2.1.1.1); this server does not accept them.",
        "Nothing to fix unless such clients must connect.",
    ),
    # -- TLS certificate and versions (MS-RDPBCGR 5.4.5.1) ----------------------------------------
    FindingSpec(
        "cert.expired",
        ERR,
        "The server's TLS certificate expired on {not_after}",
        "The certificate bound to the RDP listener is past its validity. Clients that check "
        "certificates warn or refuse; automatic renewal (auto-enrolment, or the self-signed "
        "'Remote Desktop' certificate's regeneration) did not happen.",
        "Renew or re-enrol the certificate and select it for the listener (SSLCertificateSHA1Hash "
        "under RDP-Tcp, or the RDS deployment's certificate settings); for the self-signed one, "
        "delete it from the 'Remote Desktop' certificate store and restart Remote Desktop "
        "Services so a new one is made.",
    ),
    FindingSpec(
        "cert.expiring_soon",
        WARN,
        "The server's TLS certificate expires in {days_left} days, on {expires}",
        "The certificate bound to the RDP listener is near the end of its validity; when it "
        "lapses, clients that check certificates warn or refuse.",
        "Renew it now (auto-enrolment should already have: check the 'Remote Desktop' template "
        "and the CertificateServicesClient-AutoEnrollment log), then bind the new one to the "
        "listener: " + _bind("<NEW THUMBPRINT>") + " (the one served now is {thumbprint}).",
    ),
    FindingSpec(
        "cert.expiring",
        INFO,
        "The server's TLS certificate expires in {days_left} days, on {expires}",
        "Less than 90 days of validity are left on the certificate bound to the RDP listener.",
        "Plan its renewal, or check that auto-enrolment renews it.",
    ),
    FindingSpec(
        "cert.not_yet_valid",
        ERR,
        "The server's TLS certificate is not valid before {not_before}",
        "Either the certificate was issued for the future or one of the clocks (server, CA, "
        "client) is wrong.",
        "Check the time and time zone on the server and on this workstation (w32tm /query "
        "/status); re-issue the certificate if its dates are wrong.",
    ),
    FindingSpec(
        "cert.name_mismatch",
        WARN,
        "Name mismatch: the certificate's names ({names_text}) do not include {target}",
        "Clients compare the names in the certificate (subjectAltName, else the subject CN) with "
        "the computer the user asked for; this one is not among them, so the client reports a "
        "certificate name mismatch (requested computer versus the name in the certificate) and "
        "warns or refuses.",
        "Issue a certificate whose subjectAltName holds every name users type (FQDN, short name, "
        "the RDS farm name), or have users connect with a name the certificate holds.",
    ),
    FindingSpec(
        "cert.ip_target",
        INFO,
        "Name mismatch: the certificate's names ({names_text}) do not include {target}, the IP "
        "address connected to{lookup_text}",
        "Clients check the certificate against what the user typed. An IP address almost never "
        "appears in an RDP certificate, so a client connecting by IP reports a certificate name "
        "mismatch (requested computer versus the name in the certificate) every time.",
        "Connect by a DNS name the certificate holds ({names_text}).",
    ),
    FindingSpec(
        "cert.names_elsewhere",
        WARN,
        "The certificate's names point at other addresses, not at {address}: {where}",
        "The certificate names hosts whose DNS records lead to other machines: either the "
        "certificate was copied from another server (an imported PFX, or a cloned VM that kept "
        "its 'Remote Desktop' certificate), or a DNS record points at the wrong host, so users "
        "who type the name reach another machine.",
        "Find out which machine each name belongs to (`Resolve-DnsName <name>` and the DNS "
        "zone). If it is this server, correct its A/AAAA record (or run `ipconfig /registerdns` "
        "on it); if not, bind this server's own certificate to the listener, or delete the "
        "copied one from the 'Remote Desktop' certificate store and restart Remote Desktop "
        "Services so Windows makes a new one.",
    ),
    FindingSpec(
        "cert.self_signed",
        INFO,
        "The TLS certificate is self-signed ({subject})",
        "The listener uses the self-signed certificate Windows creates for Remote Desktop. That "
        "is normal on a workgroup server; on a domain server a CA-issued one is expected, and "
        "clients warn on first connection.",
        "Deploy a certificate from the enterprise CA (the 'Remote Desktop' auto-enrolment "
        "template by Group Policy) or a public CA, and select it for the listener.",
    ),
    FindingSpec(
        "cert.untrusted",
        WARN,
        "A client that checks certificates would not trust this one: {verdict}",
        "The server is a domain member, where clients are expected to trust its certificate, "
        "but the chain does not lead to a root this workstation trusts (or the one given with "
        "--ca-file): self-signed, an internal CA not deployed here, or an incomplete chain. "
        "Users learn to click through the warning, which is what a man in the middle needs. "
        "Checked against {store}; the verifier said: {reason}.",
        "Deploy the issuing CA to the clients (Group Policy), send the whole chain from the "
        "server, or use a certificate from a CA the clients trust. Bind a trusted certificate "
        "to the listener by its SHA-1 thumbprint: " + _bind("<THUMBPRINT>") + " (the one served "
        "now has thumbprint {thumbprint}).",
    ),
    FindingSpec(
        "tls.unreadable_certificate",
        WARN,
        "A certificate the server sent cannot be read ({size} bytes, SHA-256 {digest}): {error}",
        "The certificate is not valid X.509 as a strict reader sees it (e.g. an impossible version "
        "field or a damaged encoding). Some TLS libraries accept it, others refuse the connection.",
        "Replace the listener's certificate with a freshly issued one and check it with "
        "'certutil -dump' or 'openssl x509 -text'.",
    ),
    FindingSpec(
        "cert.untrusted_here",
        INFO,
        "Clients without its issuer will warn: this certificate is not trusted here ({verdict})",
        "The chain does not lead to a root this workstation trusts (or the one given with "
        "--ca-file): an internal CA not deployed here, or an incomplete chain. The server is not "
        "known to be a domain member, so, as with a self-signed certificate, clients that do "
        "not trust its issuer warn on first connection; clients that do trust it connect. "
        "Checked against {store}; the verifier said: {reason}.",
        "Run rdprobe with --ca-file and the issuing CA to check the chain as the clients do; "
        "deploy that CA to the clients, or send the whole chain from the server.",
    ),
    FindingSpec(
        "cert.weak_key",
        WARN,
        "The certificate's key is weak: {key_type} {key_bits} bits",
        "RSA keys under 2048 bits are refused by current TLS libraries and security policies.",
        "Issue a new certificate with an RSA 2048-bit (or larger) or ECDSA P-256 key.",
    ),
    FindingSpec(
        "cert.weak_signature",
        WARN,
        "The certificate is signed with {signature_hash}",
        "SHA-1 and MD5 signatures are collision-prone; current clients and policies reject them.",
        "Re-issue the certificate signed with SHA-256 or better (check the CA's hash setting).",
    ),
    FindingSpec(
        "cert.no_server_auth",
        WARN,
        "The certificate lacks the Server Authentication purpose (EKU)",
        "Its Extended Key Usage does not include Server Authentication (1.3.6.1.5.5.7.3.1) "
        "(nor the Remote Desktop Authentication purpose 1.3.6.1.4.1.311.54.1.2), so clients "
        "that check it refuse it.",
        "Issue the certificate from a template with Server Authentication or Remote Desktop "
        "Authentication in its application policies.",
    ),
    FindingSpec(
        "tls.old_versions_only",
        ERR,
        "The server speaks only {versions}: current clients cannot connect",
        "TLS 1.0 and 1.1 are disabled in current Windows, macOS and Linux clients. A server that "
        "offers nothing newer is unpatched (Windows 7 / 2008 R2 without KB3080079) or has TLS 1.2 "
        "disabled in SCHANNEL.",
        "Install the TLS 1.2 update for RDP on old servers and enable TLS 1.2 under "
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols; "
        "better, upgrade the server.",
    ),
    FindingSpec(
        "tls.no_tls12",
        WARN,
        "The server does not accept TLS 1.2",
        "TLS 1.2 is the version every current client offers; without it only TLS 1.3 clients "
        "can connect.",
        "Enable TLS 1.2 in SCHANNEL (or in the server software's TLS settings).",
    ),
    FindingSpec(
        "tls.legacy_versions_enabled",
        WARN,
        "The server still accepts {versions}",
        "Old TLS versions are enabled next to current ones; they weaken the connection only for "
        "clients that offer nothing better, but fail security audits.",
        "Disable TLS 1.0 and 1.1 in SCHANNEL once no old clients need them.",
    ),
    FindingSpec(
        "tls.handshake_failed",
        ERR,
        "The TLS handshake after the Connection Confirm failed: {error}",
        "The server selected TLS but could not complete it: a certificate without a usable "
        "private key, no cipher suite in common, or a broken TLS stack.",
        "Check the certificate's private key permissions (NETWORK SERVICE must read it), the "
        "SCHANNEL cipher suite order, and the System log for SChannel errors (event 36870 etc.).",
    ),
    FindingSpec(
        "tls.obsolete_ciphers",
        ERR,
        "The server's TLS offers only an obsolete cipher ({cipher}): current clients cannot "
        "connect",
        "Asked with a TLS 1.0 hello that also offers AES, the server still picked RC4 or 3DES "
        "(or nothing current). Current Windows, macOS and Linux clients and OpenSSL 3 no longer "
        "offer these ciphers at all, so the handshake fails before any certificate prompt. This "
        "is an unpatched Windows Server 2003/2008-era server, or an SCHANNEL cipher policy that "
        "leaves only RC4/3DES enabled.",
        "Install the updates that bring AES cipher suites and TLS 1.2 to the server (for "
        "2008 R2 the KB3080079-era TLS 1.2 updates for RDP), or put AES suites back into the "
        "SCHANNEL cipher suite order (policy 'SSL Cipher Suite Order', or "
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Ciphers); better, "
        "upgrade the server.",
    ),
    # -- TLS alerts that end the handshake (RFC 8446 §6, RFC 5246 §7.2) ---------------------------
    FindingSpec(
        "tls.alert_protocol_version",
        ERR,
        "The server ended the TLS handshake with a {alert}: no TLS version in common",
        "The server does not accept any TLS version the client offered. On Windows the versions "
        "are switched on and off in SCHANNEL; an old server may offer only TLS 1.0, a hardened "
        "one only TLS 1.2/1.3, and clients with the other set cannot connect.",
        "Enable TLS 1.2 on the server: under "
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2"
        r"\Server set Enabled=1 and DisabledByDefault=0 (on 2008 R2 / 2012 install the "
        "TLS 1.2 updates for RDP first), then restart; see the TLS versions stage for what the "
        "server accepts.",
    ),
    FindingSpec(
        "tls.alert_cipher",
        ERR,
        "The server ended the TLS handshake with a {alert}: no cipher suite in common",
        "The server found no cipher suite (or key-exchange group) it accepts among those the "
        "client offered: a cipher-suite policy that leaves too few suites, or, on Windows, a "
        "certificate whose key cannot do the key exchange the remaining suites need (e.g. an "
        "ECDSA certificate with only RSA suites enabled).",
        "Compare the server's enabled suites (`Get-TlsCipherSuite`, or the Group Policy 'SSL "
        "Cipher Suite Order' under Network > SSL Configuration Settings, and "
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Ciphers) with "
        "what current "
        "clients offer; re-enable the TLS 1.2 ECDHE-RSA AES-GCM suites.",
    ),
    FindingSpec(
        "tls.alert_certificate",
        ERR,
        "The server ended the TLS handshake with a {alert}: it wants a client "
        "certificate or rejects the client's",
        "A certificate alert from the server is about the client's certificate: the server (or a "
        "TLS-inspecting proxy, RD Gateway or load balancer in front of it) asks for a client "
        "certificate and rejects a missing, expired, unknown-CA or unusable one. Windows' RDP "
        "listener itself never asks for one.",
        "Find what terminates TLS on this address (a proxy, gateway or load balancer) and check "
        "whether it requires client certificates; exempt the RDP port from that policy, or give "
        "clients a certificate from the CA it trusts.",
    ),
    FindingSpec(
        "tls.alert_internal_error",
        ERR,
        "The server ended the TLS handshake with a {alert}: its TLS stack failed",
        "The server's side of TLS broke during the handshake. On Windows this is nearly always "
        "the listener's certificate: its private key is missing or unreadable by NETWORK "
        "SERVICE, or the certificate named by SSLCertificateSHA1Hash was deleted or renewed "
        "away; the System log shows SChannel errors (event 36870, 36874, 36888).",
        "Check the certificate bound to RDP-Tcp (Win32_TSGeneralSetting SSLCertificateSHA1Hash) "
        "still exists with its private key, grant NETWORK SERVICE read access to the key "
        "(certlm.msc > Manage Private Keys), or delete it from the 'Remote Desktop' store and "
        "restart Remote Desktop Services so a new one is made.",
    ),
    FindingSpec(
        "tls.alert_decode_error",
        ERR,
        "The server ended the TLS handshake with a {alert}: it could not read the client's "
        "handshake",
        "The server found the client's TLS messages malformed or unacceptable: an old or buggy "
        "TLS stack that does not understand a current ClientHello (extensions, groups, record "
        "sizes), or a device in the path that rewrites TLS.",
        "Update the server's TLS stack (Windows updates; the server software's OpenSSL), and "
        "check for TLS inspection or a WAN optimiser between client and server.",
    ),
    FindingSpec(
        "tls.alert_unrecognized_name",
        ERR,
        "The server ended the TLS handshake with a {alert}: it has no certificate for "
        "the name {target}",
        "The client sent the name it connects to (SNI) and the server, or a proxy routing by "
        "name, has nothing configured for it.",
        "Connect by a name the server is configured for, or add this name to the proxy's or "
        "server's TLS configuration.",
    ),
    FindingSpec(
        "tls.alert_other",
        ERR,
        "The server ended the TLS handshake with a {alert}",
        "The server refused the handshake with an alert rdprobe has no specific advice for.",
        "Check the System log for SChannel errors (or the server software's TLS log) at the time "
        "of the probe.",
    ),
    # -- NLA / CredSSP (MS-CSSP, MS-NLMP) ----------------------------------------------------------
    FindingSpec(
        "nla.identity",
        INFO,
        "NLA reveals the server's identity: {computer}",
        "The NTLM challenge a server sends before any credential names the computer, its domain "
        "and its Windows build. That is how NLA works; it is shown here to identify the machine.",
        "Nothing to fix.",
    ),
    FindingSpec(
        "nla.clock_skew",
        WARN,
        "The server's clock is {skew_s} s off this workstation's",
        "Kerberos refuses tickets when clocks differ by more than 5 minutes, so NLA logons with "
        "domain accounts fail (or fall back to NTLM) while the skew lasts.",
        "Fix time synchronisation: on a domain member `w32tm /resync`, and check the domain "
        "hierarchy up to the PDC emulator; check this workstation's clock too.",
    ),
    FindingSpec(
        "nla.failed",
        WARN,
        "The server selected NLA but the CredSSP exchange failed: {error}",
        "The server did not answer the CredSSP negotiation with an NTLM challenge: a broken "
        "CredSSP provider, a policy that allows only Kerberos, or a non-Windows server.",
        "Check the System log for CredSSP / LSA errors and the 'Restrict NTLM' policies.",
    ),
    # -- check --user: the authenticated logon (MS-CSSP, MS-RDPBCGR 2.2.10.2, 2.2.5.1.1) ----------
    FindingSpec(
        "auth.accepted",
        INFO,
        "The password of {user} is accepted (NLA, TSRequest v{tsrequest_version})",
        "The server verified the account's NTLM response and proved its TLS key (pubKeyAuth); "
        "the credentials were then delegated through CredSSP.",
        "Nothing to fix for the password.",
    ),
    FindingSpec(
        "auth.session_reached",
        INFO,
        "{user} gets as far as {reached}; rdprobe stopped there and disconnected",
        "After the logon the server went on with the connection sequence without refusing the "
        "account. rdprobe ends the connection with an MCS Disconnect Provider Ultimatum before a "
        "desktop is built, so no session should remain; a Windows server that had already "
        "created one keeps it as a disconnected session until its time limit.",
        "Nothing to fix; if a disconnected session is left, `logoff <id>` on the server ends it "
        "(see `qwinsta`), or set 'End a disconnected session' in the session time limits.",
    ),
    FindingSpec(
        "auth.logged_on",
        INFO,
        "{user} is logged on: the server sent its logon notification",
        "The server finished the logon and said so (Save Session Info), so the account may "
        "use Remote Desktop here. rdprobe then disconnected the way a client does; Windows "
        "keeps the new session as a disconnected session (with the user's programs) until the "
        "session time limits end it.",
        "Nothing to fix. To end the session rdprobe left, run `qwinsta` on the server and "
        "`logoff <ID>`, or set 'Set time limit for disconnected sessions' in Group Policy.",
    ),
    FindingSpec(
        "auth.no_verdict",
        WARN,
        "{user}'s logon went to the server, which gave no verdict: {reached}",
        "The server took the credentials of the Client Info PDU and finished the connection "
        "sequence, but sent neither a logon notification nor an error. Some servers check the "
        "password only afterwards and show the result on the screen (xrdp hands it to its "
        "session manager, xrdp-sesman); rdprobe does not read the screen.",
        "Look at the server's own log for the logon (xrdp: xrdp.log and xrdp-sesman.log; "
        "check that xrdp-sesman runs and listens on its port).",
    ),
    FindingSpec(
        "auth.logon_failure",
        ERR,
        "Logon refused for {user}: wrong user name or password ({status})",
        "The server (or its domain controller) did not accept the user name and password. The "
        "user name, its domain or the password is wrong: a local account needs the server's "
        "name or '.' as domain, a domain account the NetBIOS domain name; a recently changed "
        "password may not have reached every domain controller.",
        "Check the spelling and the keyboard layout of the password, try COMPUTER\\user for a "
        "local account or DOMAIN\\user for a domain account, and look for event 4625 in the "
        "server's Security log (its Sub Status names the exact reason).",
    ),
    FindingSpec(
        "auth.rejected_no_reason",
        ERR,
        "Logon refused for {user}: the server closed the connection without a reason",
        "After the NTLM AUTHENTICATE the server ended the connection without a TSRequest "
        "errorCode. Servers that do not send errorCode (FreeRDP, CredSSP versions before 3) do "
        "this for a wrong password or an unknown user; a policy failure cannot be told apart.",
        "Check the user name, domain and password; on the server read its authentication log "
        "(Security log event 4625 on Windows).",
    ),
    FindingSpec(
        "auth.account_locked_out",
        ERR,
        "The account {user} is locked out (STATUS_ACCOUNT_LOCKED_OUT)",
        "Too many wrong passwords were tried (the Account lockout threshold policy), often by a "
        "stale password saved in a client, a mapped drive or a service.",
        "Unlock the account (Active Directory Users and Computers > Account > Unlock, or "
        "`Unlock-ADAccount`; for a local account lusrmgr.msc), then find the source of the bad "
        "passwords (event 4740 on the PDC emulator names the caller computer).",
    ),
    FindingSpec(
        "auth.account_disabled",
        ERR,
        "The account {user} is disabled (STATUS_ACCOUNT_DISABLED)",
        "The account exists but is disabled.",
        "Enable the account in Active Directory Users and Computers (or lusrmgr.msc for a local "
        "account), if it is meant to log on.",
    ),
    FindingSpec(
        "auth.account_expired",
        ERR,
        "The account {user} has expired (STATUS_ACCOUNT_EXPIRED)",
        "The account's expiry date (Account expires) is in the past.",
        "Set a later expiry date or 'Never' on the account's Account tab.",
    ),
    FindingSpec(
        "auth.password_expired",
        ERR,
        "The password of {user} has expired ({status})",
        "The password is older than the maximum password age, or an administrator set 'User "
        "must change password at next logon'. With NLA the password cannot be changed during "
        "the Remote Desktop logon itself.",
        "Change the password first (Ctrl+Alt+Del > Change a password on another machine, the "
        "domain's password portal, or an administrator resets it); or, as a stopgap, allow the "
        "change at the logon screen by turning NLA off on that server.",
    ),
    FindingSpec(
        "auth.account_restriction",
        ERR,
        "Logon of {user} refused by an account restriction (STATUS_ACCOUNT_RESTRICTION)",
        "A restriction on the account forbids this logon: a blank password, which Windows "
        "accepts only at the console ('Accounts: Limit local account use of blank passwords to "
        "console logon only'), or membership in Protected Users, which forbids NTLM.",
        "Give the account a password; for a Protected Users member, connect with Kerberos (a "
        "domain-joined client using the server's DNS name), which rdprobe does not do.",
    ),
    FindingSpec(
        "auth.logon_hours",
        ERR,
        "{user} may not log on at this time (STATUS_INVALID_LOGON_HOURS)",
        "The account's Logon Hours do not include the current time.",
        "Widen the account's Logon Hours (Account tab) or try within them.",
    ),
    FindingSpec(
        "auth.workstation",
        ERR,
        "{user} may not log on to this computer (STATUS_INVALID_WORKSTATION)",
        "The account's 'Log On To' list (userWorkstations) does not include this server.",
        "Add the server's name to the account's Log On To list, or clear the list.",
    ),
    FindingSpec(
        "auth.logon_type_not_granted",
        ERR,
        "{user} lacks the right to log on from the network (STATUS_LOGON_TYPE_NOT_GRANTED)",
        "NLA authenticates with a network logon: the account is not granted 'Access this "
        "computer from the network' or is listed in 'Deny access to this computer from the "
        "network'. (The Remote Desktop right itself is checked later, after the password.)",
        "In the server's User Rights Assignment (secpol.msc or Group Policy), grant the user or "
        "a group of theirs 'Access this computer from the network' and remove them from the "
        "Deny entry; then `gpupdate /force`.",
    ),
    FindingSpec(
        "auth.error_code",
        ERR,
        "Logon of {user} refused: {status}",
        "The server refused the logon with this status code. MS-CSSP does not say which code "
        "a given account problem gives, so rdprobe names the code and leaves its meaning to "
        "the server's documentation.",
        "Look the code up in the server's Security log (event 4625, its Status and Sub Status) "
        "and in Microsoft's NTSTATUS reference.",
    ),
    FindingSpec(
        "auth.pubkey_mismatch",
        CRIT,
        "The server's CredSSP proof does not match its TLS key: possible man in the middle",
        "The pubKeyAuth the server sent does not bind the NTLM logon to the TLS certificate this "
        "connection received, so the TLS connection probably ends at another machine than the "
        "one that checked the password (an interception proxy or an attacker). rdprobe did not "
        "send the credentials.",
        "Do not log on from this network until the path is explained; compare the certificate "
        "fingerprint seen here with the one on the server (certlm.msc > Remote Desktop), and "
        "change the password if it was typed into a client on this path.",
    ),
    FindingSpec(
        "auth.not_authorized",
        ERR,
        "{user} is not allowed to log on through Remote Desktop ({reason})",
        "The password is right, but the account lacks the right to log on through Remote "
        "Desktop Services: it is not in the server's Remote Desktop Users group (nor "
        "Administrators), or 'Deny log on through Remote Desktop Services' names it.",
        "Add the user (or a group of theirs) to Remote Desktop Users on the server (System "
        "Properties > Remote > Select Users), or grant 'Allow log on through Remote Desktop "
        "Services' in User Rights Assignment and remove them from the Deny entry.",
    ),
    FindingSpec(
        "auth.license",
        ERR,
        "Licensing stops {user}'s session: {reason}",
        "The server's Remote Desktop licensing refused the connection: no license server is "
        "reachable, the grace period ended, or no Client Access License is left.",
        "On the session host check the licensing mode and license server (RD Licensing "
        "Diagnoser, lsdiag.msc); reach or reactivate the license server and install CALs.",
    ),
    FindingSpec(
        "auth.connection_limit",
        ERR,
        "{user}'s session is refused by the server: {reason}",
        "The server accepted the account but refused the session. The usual causes are a "
        "connection limit (the 'Limit number of connections' policy, the RDP-Tcp Maximum "
        "connections setting, the two administrative sessions of a server without RD Session "
        "Host) or a policy refusing the connection; the protocol does not say which.",
        "On the server list sessions with `qwinsta` and log off stale ones, and check 'Limit "
        "number of connections' (Group Policy, Remote Desktop Session Host > Connections) and "
        "MaxInstanceCount under RDP-Tcp.",
    ),
    FindingSpec(
        "auth.session_error",
        WARN,
        "The server ended {user}'s connection: {reason}",
        "After the logon the server sent this disconnect reason (Set Error Info PDU).",
        "See the reason's name in MS-RDPBCGR 2.2.5.1.1 and the server's TerminalServices event "
        "logs at the time of the probe.",
    ),
    FindingSpec(
        "auth.not_attempted",
        INFO,
        "No logon attempted for {user}: {reason}",
        "The logon would have exposed the password or could not be made safely, so rdprobe "
        "did not try it.",
        "Enable NLA on the server, or pass --logon-without-nla to log on through the Client "
        "Info PDU over TLS (the password then reaches the server before it is authenticated).",
    ),
    FindingSpec(
        "auth.logon_exposed",
        WARN,
        "The logon of {user} went without NLA: the server exposed it to anyone on the path",
        "Without NLA the password travels in the Client Info PDU to a server that has not "
        "proved who it is; a man in the middle that presents any certificate receives it.",
        "Require NLA on the server and deploy a certificate clients verify.",
    ),
    FindingSpec(
        "auth.ntlm_only",
        INFO,
        "A domain account ({user}) was tried over NTLM, not Kerberos",
        "rdprobe authenticates with NTLM only. A domain-joined client would normally use "
        "Kerberos, so policies that restrict NTLM or Protected Users membership can refuse "
        "rdprobe while a Windows client succeeds.",
        "If the result differs from a Windows client's, check the 'Restrict NTLM' policies and "
        "the account's Protected Users membership.",
    ),
    FindingSpec(
        "auth.failed",
        WARN,
        "The authenticated check of {user} did not finish: {error}",
        "The logon exchange stopped for a reason that is not the server's verdict on the "
        "account: a timeout, a malformed answer, or a TLS failure.",
        "Repeat the check; look at the server's CredSSP/TerminalServices event logs.",
    ),
    # -- Standard RDP Security (MS-RDPBCGR 5.3) ----------------------------------------------------
    FindingSpec(
        "rdpsec.low_level",
        WARN,
        "Encryption level is {level}",
        "Low encrypts only client-to-server data; Client Compatible accepts the client's "
        "strongest key even if that is 40 or 56 bits. Both are weaker than High.",
        "Set 'Set client connection encryption level' to High (or use TLS, which makes this "
        "setting moot).",
    ),
    FindingSpec(
        "rdpsec.weak_methods",
        WARN,
        "The server accepts weak encryption: {methods}",
        "40-bit and 56-bit RC4 keys can be broken quickly; they exist for clients from the "
        "last century.",
        "Raise the encryption level to High, or require TLS.",
    ),
    FindingSpec(
        "rdpsec.no_encryption",
        ERR,
        "Standard RDP Security without encryption",
        "The server negotiated encryption level None: everything, keystrokes included, crosses "
        "the network in clear.",
        "Set the encryption level to High, or require TLS.",
    ),
    FindingSpec(
        "rdpsec.in_use",
        WARN,
        "Standard RDP Security is accepted: the server cannot be authenticated",
        "With RDP's own encryption the client cannot verify who it talks to (the Terminal "
        "Services signing key is public), so a man in the middle goes unnoticed.",
        "Set the Security Layer to SSL or Negotiate with NLA and bind a trusted certificate.",
    ),
    FindingSpec(
        "rdpsec.corrupt_certificate",
        CRIT,
        "The server's RDP certificate is corrupt: {reason}",
        "The proprietary certificate sent with Standard RDP Security fails its signature check "
        "or does not parse. Clients report 'Because of a security error, the client could not "
        "connect to the remote computer'.",
        "On the server back up, then delete the values Certificate, X509 Certificate and X509 "
        f"Certificate ID under {_TS_PARAMS}, restart the server (Remote Desktop Services makes "
        "a new certificate), and reactivate the licensing server if it runs there.",
    ),
    FindingSpec(
        "rdpsec.mcs_failed",
        WARN,
        "The server did not complete the MCS Connect exchange: {error}",
        "After the Connection Confirm the server refused or dropped the MCS Connect Initial: a "
        "listener at its limit, a licensing or policy problem, or a non-Windows server.",
        "Check the TerminalServices event logs at the time of the probe.",
    ),
    # -- the walk to the logon screen (issue 10, MS-RDPBCGR 1.3.1.1) --------------------------
    FindingSpec(
        "session.logon_screen",
        INFO,
        "Brings a client to its logon screen in {logon_ms} ms ({path})",
        "The whole connection sequence up to the Demand Active (the point where the server "
        "shows its logon screen) completed without credentials: licensing, security and the "
        "session host all answered.",
        "Nothing to fix on the server side; a client that still fails here has a problem after "
        "this point (credentials, policy, the logon itself).",
    ),
    FindingSpec(
        "session.logon_slow",
        WARN,
        "Slow to reach the logon screen: {logon_ms} ms, against a network round trip of "
        "{rtt_ms} ms",
        "The network answers quickly but the server takes long between the connection and its "
        "logon screen: the Remote Desktop Services are busy (too many sessions starting, a "
        "starved session host, a slow licensing or profile service, a broker waiting on a "
        "host). Users see a long 'Configuring remote session' or 'RDP services busy'.",
        "Look at the session host's CPU, memory and disk at the time of the probe, the number "
        "of sessions in `qwinsta`, and the TerminalServices-LocalSessionManager and "
        "RemoteConnectionManager event logs; spread users over more hosts if it is load.",
    ),
    FindingSpec(
        "session.licensing_error",
        ERR,
        "Licensing error before the logon screen: {error_name} ({state_transition})",
        "The server's licensing component refused this client: no Remote Desktop licence "
        "server reachable (ERR_NO_LICENSE_SERVER), no licence available (ERR_NO_LICENSE), or "
        "a licensing certificate, scope or product the client cannot use.",
        "On the session host open RD Licensing Diagnoser: set the licensing mode and the "
        "licence server (Group Policy 'Use the specified Remote Desktop license servers'), "
        "make sure the licence server is activated and has CALs; if the licensing certificate "
        f"is corrupt, delete the Certificate values under {_TS_PARAMS} and reactivate the "
        "licence server.",
    ),
    FindingSpec(
        "session.licensing_exchange",
        INFO,
        "The server runs the full licence exchange ({message}); rdprobe stops there",
        "The session host asked this client for a licence (Remote Desktop Session Host role "
        "with licensing configured). A probe does not request a licence, so the logon screen "
        "itself was not reached on this path.",
        "Nothing to fix if clients connect; if they fail with a licensing message, check the "
        "licence server with RD Licensing Diagnoser.",
    ),
    FindingSpec(
        "session.error_info",
        ERR,
        "The server reported {name} ({code_hex}) during {step}",
        "Before the logon screen the server sent a Set Error Info PDU, its own explanation of "
        "why it ends the connection: a licensing problem (ERRINFO_LICENSE_*), a refusal "
        "(ERRINFO_SERVER_DENIED_CONNECTION, ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES), a "
        "connection broker that cannot place the session (ERRINFO_CB_*), a protocol or "
        "security error, or a server going down.",
        "Match the code in the Remote Desktop client error list (MS-RDPBCGR 2.2.5.1.1) and the "
        "TerminalServices event logs at the time of the probe; licensing codes point at the "
        "licence server, broker codes at the RD Connection Broker and its collection.",
    ),
    FindingSpec(
        "session.security_rejected",
        ERR,
        "The server dropped the connection after the security exchange ({stop_reason})",
        "With Standard RDP Security the server decrypts the client's first encrypted PDU with "
        "keys from its own RSA key. When it drops the connection right there, or its own PDUs "
        "fail the integrity check, the server's RDP key pair or certificate is corrupt or out "
        "of step. Clients report 'Because of a security error, the client could not connect'.",
        "On the server back up, then delete the values Certificate, X509 Certificate and X509 "
        f"Certificate ID under {_TS_PARAMS}, restart Remote Desktop Services (it makes a new "
        "key), and reactivate the licence server if it runs there.",
    ),
    FindingSpec(
        "session.security_unanswered",
        ERR,
        "The server never answered after the security exchange ({stop_reason})",
        "The server took the encrypted client random and the Client Info but sent nothing "
        "back: its licensing or security component is stuck, or it could not decrypt and "
        "waits for more.",
        "Check the TerminalServices event logs; restart Remote Desktop Services; if it "
        "persists, renew the server's RDP key as for a corrupt certificate.",
    ),
    FindingSpec(
        "session.dropped",
        ERR,
        "The connection stopped at {step}: {stop_reason}",
        "The server (or something in the path) ended the connection sequence before the logon "
        "screen: a session host at its connection limit, a policy that refuses new sessions "
        "(logons disabled, 'Restrict each user to a single session'), a broker or gateway "
        "problem, or a crashing service.",
        "Check the TerminalServices-RemoteConnectionManager and LocalSessionManager event "
        "logs at the time of the probe, `change logon /query` on the session host, and the "
        "connection limits in Group Policy.",
    ),
    FindingSpec(
        "session.not_walked",
        INFO,
        "The walk to the logon screen was not possible here: {stop_reason}",
        "rdprobe cannot go further on this path without credentials or features it does not "
        "use (CredSSP/NLA before the logon screen, an unusable server key).",
        "Nothing to fix on this account; the other findings judge the server.",
    ),
    # -- RDP over UDP (MS-RDPEUDP) -----------------------------------------------------------------
    FindingSpec(
        "udp.enabled",
        INFO,
        "RDP over UDP answers on udp/{port} (its answer is {ratio} times the probe's size)",
        "The UDP transport is enabled. It answers anyone with a SYN+ACK; an answer much larger "
        "than the probe (a ratio well above 1) makes it usable for reflection amplification.",
        "Nothing to fix for clients; if the port faces the internet, keep the server patched "
        "and filter udp/3389 at the edge unless remote users need it.",
    ),
    FindingSpec(
        "udp.amplification",
        WARN,
        "RDP over UDP answers with {ratio} times the probe's bytes",
        "A reply much larger than the request lets attackers reflect spoofed traffic off this "
        "server (CERT-EU 2021-005).",
        "Filter udp/3389 from the internet, or disable the UDP transport ('Select RDP transport "
        "protocols' = TCP only) on exposed servers.",
    ),
]

# -- "confirm on the server": the command that shows the same fact there -------------------------
_PS_RDP_TCP = (
    r"Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'"
    " -Name SecurityLayer,UserAuthentication,PortNumber,MinEncryptionLevel"
)
_LISTENING = (
    "Get-NetTCPConnection -LocalPort {port} -State Listen; Get-Service TermService; qwinsta"
)
_OWNER = 'netstat -a -o -n | findstr :{port}, then tasklist /svc /fi "PID eq <pid>"'
_FIREWALL = (
    "Get-NetFirewallRule -DisplayGroup 'Remote Desktop' | Select DisplayName,Enabled,Action; "
    "Test-NetConnection {host} -Port {port} from another network segment"
)
_EVENTS = (
    "Get-WinEvent -LogName Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational "
    "-MaxEvents 30; qwinsta"
)
_CERTS = (
    "Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting | "
    "Select TerminalName,SSLCertificateSHA1Hash; Get-ChildItem Cert:\\LocalMachine\\My,"
    "'Cert:\\LocalMachine\\Remote Desktop' | Select Thumbprint,Subject,NotAfter"
)
_SCHANNEL = (
    r"Get-ChildItem 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols'"
    " -Recurse | Get-ItemProperty | Select PSPath,Enabled,DisabledByDefault"
)
_UDP = (
    "Get-NetUDPEndpoint -LocalPort {port}; Get-ItemProperty 'HKLM:\\SOFTWARE\\Policies\\"
    "Microsoft\\Windows NT\\Terminal Services' -Name SelectTransport"
)
_LICENSING = (
    "Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TerminalServiceSetting"
    " | Select LicensingType,LicensingName; then RD Licensing Diagnoser (lsdiag.msc)"
)
_TERMDD = "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName -match 'TermDD|TermServ'"
_AUTH_EVENTS = (
    "Get-WinEvent -LogName Security -FilterXPath '*[System[EventID=4625 or EventID=4624]]' "
    "-MaxEvents 10 | Format-List TimeCreated,Message (Status and Sub Status name the reason)"
)
_ACCOUNT = (
    "Get-ADUser <name> -Properties Enabled,LockedOut,AccountExpirationDate,PasswordExpired,"
    "PasswordLastSet,LogonHours,LogonWorkstations (a local account: net user <name>)"
)
_RIGHTS = (
    r"secedit /export /cfg $env:TEMP\rights.inf; Select-String "
    "'SeNetworkLogonRight|SeDenyNetworkLogonRight|SeRemoteInteractiveLogonRight|"
    r"SeDenyRemoteInteractiveLogonRight' $env:TEMP\rights.inf"
)
CONFIRM: dict[str, str] = {
    "session.logon_screen": "qwinsta; " + _EVENTS,
    "session.logon_slow": "Get-Counter '\\Processor(_Total)\\% Processor Time','\\Memory\\Available "
    "MBytes'; qwinsta; " + _EVENTS,
    "session.licensing_error": _LICENSING,
    "session.licensing_exchange": _LICENSING,
    "session.error_info": _EVENTS + "; Get-WinEvent -LogName "
    "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational -MaxEvents 30",
    "session.security_rejected": _TERMDD,
    "session.security_unanswered": _TERMDD + "; " + _EVENTS,
    "session.dropped": _EVENTS + "; change logon /query (cmd)",
    "session.not_walked": _PS_RDP_TCP,
    "dns.failure": "Resolve-DnsName {host} (here and on a domain controller); ipconfig /all on the server",
    "tcp.open": _LISTENING,
    "tcp.refused": _LISTENING + "; " + _PS_RDP_TCP,
    "tcp.timeout": _FIREWALL,
    "tcp.host_unreachable": "ipconfig /all and route print on the server; Test-NetConnection {host}",
    "tcp.net_unreachable": "route print (here); Test-NetConnection {host} -TraceRoute",
    "tcp.admin_prohibited": _FIREWALL,
    "tcp.error": "Test-NetConnection {host} -Port {port} from this workstation",
    "tcp.reset_before_reply": _EVENTS,
    "tcp.closed_before_reply": _EVENTS + "; " + _OWNER,
    "tcp.silent": "Get-Service TermService; "
    + _OWNER
    + "; Get-Counter '\\Processor(_Total)\\% Processor Time'",
    "tcp.intermittent": _EVENTS,
    "x224.truncated": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName -match 'TermServ|Service Control'",
    "x224.slow": "Get-Counter '\\Processor(_Total)\\% Processor Time','\\Memory\\Available MBytes'",
    "tcp.dropped_after_confirm": _EVENTS,
    "x224.oversized": _OWNER,
    "x224.malformed": _OWNER,
    "x224.disconnect": "the server software's version (xrdp --version on xrdp)",
    "x224.unrequested_protocol": "the server software's version",
    "service.conflict": _OWNER,
    "service.unknown": _OWNER,
    "rdp.answered": _LISTENING,
    "rdp.found_elsewhere": _PS_RDP_TCP,
    "rdp.not_found": _PS_RDP_TCP + "; " + _LISTENING,
    "neg.nla_required": _PS_RDP_TCP + " (UserAuthentication 1: NLA required)",
    "neg.nla_not_required": _PS_RDP_TCP + " (UserAuthentication 0: NLA not required)",
    "neg.tls_required": _PS_RDP_TCP + " (SecurityLayer 2: SSL)",
    "neg.rdp_security_only": _PS_RDP_TCP + " (SecurityLayer 0: RDP Security Layer)",
    "neg.legacy_server": "winver, or (Get-CimInstance Win32_OperatingSystem).Caption",
    "neg.ssl_cert_not_on_server": _CERTS,
    "neg.ssl_user_auth_required": _PS_RDP_TCP,
    "neg.inconsistent_flags": _PS_RDP_TCP,
    "neg.unknown_failure": "the server software's version",
    "neg.legacy_clients_refused": _PS_RDP_TCP,
    "neg.nla_used": _PS_RDP_TCP + " (UserAuthentication 1: NLA required)",
    "neg.accepts_nothing": _PS_RDP_TCP + "; " + _EVENTS,
    "x224.not_rdp": _OWNER,
    "cert.expired": _CERTS,
    "cert.expiring_soon": _CERTS,
    "cert.expiring": _CERTS,
    "cert.not_yet_valid": "w32tm /query /status; Get-Date; " + _CERTS,
    "cert.name_mismatch": _CERTS + ",DnsNameList",
    "cert.ip_target": "Resolve-DnsName {host}; " + _CERTS,
    "cert.self_signed": _CERTS,
    "cert.untrusted": _CERTS + "; certutil -verify -urlfetch <exported .cer>",
    "cert.untrusted_here": _CERTS + "; certutil -verify -urlfetch <exported .cer>",
    "cert.names_elsewhere": "Resolve-DnsName <each name in the certificate>; "
    + "Get-NetIPAddress -AddressFamily IPv4,IPv6 | Select IPAddress; "
    + _CERTS
    + ",DnsNameList",
    "cert.weak_key": _CERTS + ",@{{n='Key';e={{$_.PublicKey.Key.KeySize}}}}",
    "cert.weak_signature": _CERTS + ",@{{n='Signature';e={{$_.SignatureAlgorithm.FriendlyName}}}}",
    "cert.no_server_auth": _CERTS + ",EnhancedKeyUsageList",
    "tls.old_versions_only": _SCHANNEL,
    "tls.no_tls12": _SCHANNEL,
    "tls.legacy_versions_enabled": _SCHANNEL,
    "tls.handshake_failed": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName -eq Schannel; "
    + _CERTS,
    "tls.alert_protocol_version": _SCHANNEL,
    "tls.alert_cipher": "Get-TlsCipherSuite | Select Name; " + _SCHANNEL,
    "tls.alert_certificate": "Get-NetTCPConnection -LocalPort {port} -State Listen | Select "
    "OwningProcess (which process terminates TLS); netsh http show sslcert (clientcertnegotiation)",
    "tls.alert_internal_error": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName "
    "-eq Schannel; " + _CERTS + ",HasPrivateKey",
    "tls.alert_decode_error": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName "
    "-eq Schannel; Get-HotFix | Sort InstalledOn | Select -Last 5",
    "tls.alert_unrecognized_name": _CERTS + ",DnsNameList",
    "tls.alert_other": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName -eq "
    "Schannel",
    "tls.obsolete_ciphers": "Get-TlsCipherSuite | Select Name (Windows 2012 R2+); " + _SCHANNEL,
    "nla.identity": "hostname; (Get-CimInstance Win32_OperatingSystem).Caption,BuildNumber",
    "nla.clock_skew": "w32tm /query /status; w32tm /stripchart /computer:<this workstation> /samples:3",
    "nla.failed": "Get-WinEvent -LogName System -MaxEvents 50 | Where ProviderName -match 'LSA|CredSSP'",
    "rdpsec.low_level": _PS_RDP_TCP
    + " (MinEncryptionLevel 1 Low, 2 Client Compatible, 3 High, 4 FIPS)",
    "rdpsec.weak_methods": _PS_RDP_TCP + " (MinEncryptionLevel)",
    "rdpsec.no_encryption": _PS_RDP_TCP + " (MinEncryptionLevel)",
    "rdpsec.in_use": _PS_RDP_TCP + " (SecurityLayer 0 or 1 allows Standard RDP Security)",
    "rdpsec.corrupt_certificate": (
        r"Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Services\TermService\Parameters' | "
        "Select Certificate,'X509 Certificate','X509 Certificate ID'"
    ),
    "rdpsec.mcs_failed": _EVENTS,
    "udp.enabled": _UDP,
    "udp.amplification": _UDP,
    "auth.accepted": _AUTH_EVENTS,
    "auth.session_reached": "qwinsta (a session rdprobe may have left shows as Disc)",
    "auth.logged_on": "qwinsta (the session rdprobe left shows as Disc); logoff <ID>",
    "auth.logon_failure": _AUTH_EVENTS,
    "auth.rejected_no_reason": _AUTH_EVENTS,
    "auth.error_code": _AUTH_EVENTS,
    "auth.account_locked_out": "Search-ADAccount -LockedOut; " + _ACCOUNT,
    "auth.account_disabled": _ACCOUNT,
    "auth.account_expired": _ACCOUNT,
    "auth.password_expired": _ACCOUNT,
    "auth.account_restriction": _ACCOUNT + "; Get-ADGroupMember 'Protected Users'",
    "auth.logon_hours": _ACCOUNT,
    "auth.workstation": _ACCOUNT,
    "auth.logon_type_not_granted": _RIGHTS,
    "auth.not_authorized": _RIGHTS + "; Get-LocalGroupMember 'Remote Desktop Users'",
    "auth.pubkey_mismatch": _CERTS,
    "auth.license": (
        "Get-CimInstance -Namespace root/cimv2/TerminalServices Win32_TerminalServiceSetting | "
        "Select LicensingType,LicensingName; lsdiag.msc (RD Licensing Diagnoser)"
    ),
    "auth.connection_limit": (
        r"Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations"
        r"\RDP-Tcp' -Name MaxInstanceCount; qwinsta"
    ),
    "auth.session_error": _EVENTS,
    "auth.not_attempted": _PS_RDP_TCP + " (UserAuthentication 0: NLA not required)",
    "auth.logon_exposed": _PS_RDP_TCP + " (UserAuthentication 0: NLA not required)",
    "auth.ntlm_only": (
        r"Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Control\Lsa\MSV1_0' | Select "
        "RestrictReceivingNTLMTraffic; Get-ADGroupMember 'Protected Users'"
    ),
    "auth.failed": _AUTH_EVENTS,
}
#: For ids given no command above (new entries): where any listener problem shows first.
CONFIRM_DEFAULT = _LISTENING + "; " + _EVENTS

CATALOGUE: dict[str, FindingSpec] = {
    spec.id: replace(spec, confirm=spec.confirm or CONFIRM.get(spec.id, CONFIRM_DEFAULT))
    for spec in _SPECS
}


def finding(finding_id: str, **evidence: Any) -> Finding:
    """Make a finding from the catalogue; an unknown id is a programming error."""
    return Finding(CATALOGUE[finding_id], evidence)
