"""The "session" stage of `check`: one walk to the logon screen on the path a client would take.

Which path: TLS when the matrix saw the server select SSL for an SSL request (what a client
without NLA uses), else Standard RDP Security (RDP selected, or a legacy server answering a
request without negotiation). A server that selects only CredSSP is not walked: its logon
screen comes after credentials (neg.nla_required already says so).
"""

from __future__ import annotations

import asyncio

from rdprobe.analysis.observations import Attempt
from rdprobe.analysis.session_facts import SessionFacts
from rdprobe.live.negotiate import MATRIX, Request
from rdprobe.live.session_open import probe_session
from rdprobe.live.timing import Deadline, Timeouts
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol


def _confirmed(a: Attempt | None) -> ConnectionConfirm | None:
    return a.tpdu if a is not None and isinstance(a.tpdu, ConnectionConfirm) else None


#: The matrix rows the choice looks at, in order of preference.
SESSION_ROWS = ("SSL", "RDP", "no negotiation")


def choose_request(attempts: list[Attempt]) -> Request | None:
    """The matrix request to walk with, from what the matrix saw (None: nothing to walk)."""
    by_label = {a.label: a for a in attempts}
    for label in SESSION_ROWS:
        confirm = _confirmed(by_label.get(label))
        if confirm is None:
            continue
        neg = confirm.negotiation
        if label == "SSL" and not (isinstance(neg, NegotiationResponse) and neg.selected
                                   & Protocol.SSL):  # fmt: skip
            continue
        if label == "RDP" and not (neg is None or (isinstance(neg, NegotiationResponse)
                                                   and neg.selected == Protocol.RDP)):  # fmt: skip
            continue
        if label == "no negotiation" and neg is not None:
            continue
        return next(r for r in MATRIX if r.label == label)
    return None


async def walk_target(
    address: str,
    port: int,
    attempts: list[Attempt],
    *,
    cookie: str | None,
    timeouts: Timeouts,
    deadline: Deadline,
    server_hostname: str | None,
    opening: asyncio.Semaphore | None = None,
) -> SessionFacts | None:
    """Walk the chosen path; None when the matrix left nothing to walk. ``opening``: the
    host's limit of connections being opened (rdprobe.live.negotiate.attempt)."""
    request = choose_request(attempts)
    if request is None:
        return None
    return await probe_session(
        address, port, request, cookie=cookie, timeouts=timeouts, deadline=deadline,
        server_hostname=server_hostname, opening=opening,
    )  # fmt: skip
