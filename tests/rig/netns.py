"""Network namespaces with nftables rules, for "filtered" and "unreachable" probe results.

    with netns("rdp") as ns:
        ns.drop_tcp(3389)                          # SYN silently dropped: connect times out
        ns.reject_tcp(3390)                        # ICMP host-unreachable: EHOSTUNREACH at once
        ns.reject_tcp(3391, "admin-prohibited")    # ICMP communication administratively prohibited
        ns.reset_tcp(3392)                         # TCP RST: ECONNREFUSED
        run_in(ns, [sys.executable, "-m", "rdprobe", "127.0.0.1"])

Rules sit in an `inet` table on the input hook, so they match IPv4 and IPv6 loopback
traffic inside the namespace (`icmpx` reject types map to ICMP and ICMPv6). The namespace
(and any process still in it) is removed on exit, even when the body raises.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["ICMPX_TYPES", "NetNS", "netns", "run_in"]

TABLE = "rdprobe_rig"
ICMPX_TYPES = ("host-unreachable", "admin-prohibited", "port-unreachable", "no-route")
CMD_TIMEOUT = 10.0
_counter = itertools.count()


def _run(argv: Sequence[str], *, input_text: str | None = None) -> str:
    res = subprocess.run(
        list(argv), input=input_text, capture_output=True, text=True, timeout=CMD_TIMEOUT
    )
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


@dataclass(frozen=True)
class NetNS:
    """A network namespace by name; rule helpers add nftables rules inside it."""

    name: str

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` prefixed to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def nft(self, script: str) -> None:
        """Load an nft script inside the namespace (`nft -f -`)."""
        _run(self.exec_argv(["nft", "-f", "-"]), input_text=script)

    def add_rule(self, rule: str) -> None:
        """Append `rule` (nft syntax) to the namespace's input chain."""
        self.nft(f"add rule inet {TABLE} input {rule}\n")

    def drop_tcp(self, port: int) -> None:
        """Silently drop TCP to `port`: the client's connect times out (filtered)."""
        self.add_rule(f"tcp dport {int(port)} drop")

    def reject_tcp(self, port: int, icmp_type: str = "host-unreachable") -> None:
        """Answer TCP to `port` with an ICMP/ICMPv6 error of `icmp_type` (see ICMPX_TYPES)."""
        if icmp_type not in ICMPX_TYPES:
            raise ValueError(f"icmp_type must be one of {ICMPX_TYPES}")
        self.add_rule(f"tcp dport {int(port)} reject with icmpx type {icmp_type}")

    def reset_tcp(self, port: int) -> None:
        """Answer TCP to `port` with a RST from the firewall (ECONNREFUSED)."""
        self.add_rule(f"tcp dport {int(port)} reject with tcp reset")

    def rules(self) -> str:
        """The namespace's current ruleset (`nft list ruleset`)."""
        return _run(self.exec_argv(["nft", "list", "ruleset"]))

    def pids(self) -> list[int]:
        """Pids of processes running inside the namespace."""
        out = _run(["ip", "netns", "pids", self.name])
        return [int(p) for p in out.split()]


def run_in(
    ns: NetNS | str, argv: Sequence[str], *, timeout: float = 60.0, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside the namespace and wait (bounded by `timeout`); output captured as text."""
    name = ns.name if isinstance(ns, NetNS) else ns
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        ["ip", "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _kill_inside(ns: NetNS) -> None:
    """SIGKILL what is left in the namespace (only processes the test put there)."""
    for _ in range(20):
        try:
            pids = ns.pids()
        except RuntimeError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


@contextlib.contextmanager
def netns(name_prefix: str = "rdprobe") -> Iterator[NetNS]:
    """Create a uniquely named namespace with `lo` up and an empty accept-all input chain."""
    name = f"{name_prefix[:8]}-{os.getpid()}-{next(_counter)}"
    _run(["ip", "netns", "add", name])
    ns = NetNS(name)
    try:
        _run(ns.exec_argv(["ip", "link", "set", "lo", "up"]))
        ns.nft(
            f"add table inet {TABLE}\n"
            f"add chain inet {TABLE} input "
            "{ type filter hook input priority 0; policy accept; }\n"
        )
        yield ns
    finally:
        _kill_inside(ns)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=CMD_TIMEOUT)
