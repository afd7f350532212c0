"""Across the ports probed on one host: where does RDP answer? (the 'port moved' diagnosis), and
which of those reports `rdprobe find` shows."""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

from rdprobe.analysis.classify import Report
from rdprobe.analysis.findings import finding
from rdprobe.protocol.endpoint import RDP_PORT


def port_summary(reports: list[Report], default_port: int = RDP_PORT) -> list[Report]:
    """Add one host-level finding per host to the report that should carry it."""
    out: list[Report] = []
    key = lambda r: (r.observation.host, r.observation.address)  # noqa: E731
    for _host, group_iter in groupby(reports, key=key):
        group = list(group_iter)
        rdp_ports = sorted(r.observation.port for r in group if r.rdp)
        extra: dict[int, object] = {}
        if not rdp_ports:
            extra[0] = finding(
                "rdp.not_found", count=len(group), ports=[r.observation.port for r in group]
            )
        elif default_port not in rdp_ports:
            where = next(
                (i for i, r in enumerate(group) if r.observation.port == default_port), None
            )
            f = finding(
                "rdp.found_elsewhere",
                ports=", ".join(map(str, rdp_ports)),
                default_port=default_port,
            )
            extra[where if where is not None else group.index(next(r for r in group if r.rdp))] = f
        for i, r in enumerate(group):
            out.append(replace(r, findings=(*r.findings, extra[i])) if i in extra else r)  # type: ignore[arg-type]
    return out


#: Outcomes of a port where something other than RDP answered: the port conflict `find` shows.
ANSWERED_NOT_RDP = frozenset({"wrong_service", "not_rdp", "x224_not_rdp"})


def find_view(reports: list[Report], default_port: int = RDP_PORT) -> list[Report]:
    """What `find` shows of a host's ports (after port_summary): the default port's report
    whatever it holds (a conflict naming the service, a refusal, and the host-level finding that
    lists where RDP answers), every port where RDP answers, and every port where another service
    answers. The first report when none of these is left, so one line always says why."""
    shown = [
        r
        for r in reports
        if r.rdp or r.observation.port == default_port or r.outcome in ANSWERED_NOT_RDP
    ]
    shown.sort(key=lambda r: r.observation.port != default_port)  # stable: default port first
    return shown or reports[:1]
