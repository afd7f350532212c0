"""Default numbers of the probes, in one place.

A module with no imports at run time: the command line reads these for its option defaults and its help
without loading asyncio, ssl or cryptography (``rdprobe --help`` stays fast).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:  # annotations only (not evaluated): the module stays import-free at run time
    from typing import Final

#: Seconds for each network step (connect, one reply); a target gets 4x this in all.
DEFAULT_TIMEOUT_S = 5.0
#: The mstshash cookie (user name) sent in the X.224 Connection Request.
DEFAULT_COOKIE = "rdprobe"
#: `check`: connections being opened at once to one host (connected or connecting, the server's
#: reply not yet in: rdprobe.live.negotiate.Opening), and targets at once. xrdp listens with a
#: backlog of 2: a fourth unanswered connect lost its SYN to a 1 s retransmit (measured).
DEFAULT_PER_HOST = 3
DEFAULT_CONCURRENCY = 64
#: `sweep`: targets in flight (open connections), and targets in flight per host.
DEFAULT_SWEEP_CONCURRENCY = 256
DEFAULT_SWEEP_PER_HOST = 8
#: `sweep`: the ports of every target, the share (--shard K/N: all of it) and the worker
#: processes (0: one per core for sweeps of 4096+ target:ports).
DEFAULT_SWEEP_PORTS = "3389"
DEFAULT_SHARD = "1/1"
DEFAULT_WORKERS = 0
#: The ports `rdprobe find` tries: the RDP defaults, HTTPS/HTTP (gateways, proxies) and
#: the usual "moved" RDP ports.
FIND_PORTS = "3389,3388-3399,443,80,8080,33890-33899"
#: `find`: seconds for each network step (a refused port answers at once).
FIND_TIMEOUT_S = 2.0
#: The certificate-name lookup (`check`): at most this many of a mismatched certificate's DNS
#: names are resolved, each within the target's deadline.
MAX_CERT_NAME_LOOKUPS = 4
#: How names are looked up: "dns" (the --resolve overrides, then the system resolver), "local"
#: (only the overrides and the RFC 6761 localhost names: no query leaves the machine; the test
#: suite sets RDPROBE_NAME_LOOKUP=local) or "off".
NAME_LOOKUP_MODES = ("dns", "local", "off")
#: `check` (the command line and rdprobe.check): probes of the primary request, retries of a
#: timed-out connect, how far to go, and the order of the table of 2+ targets.
DEFAULT_REPEAT = 1
DEFAULT_RETRIES = 0
DEFAULT_DEPTH: Final = "full"  # Final: its type is the literal, as rdprobe.api.Depth wants
DEFAULT_SORT = "input"
#: The orders of the compact table (rdprobe.render.rows sorts by them).
TABLE_SORTS = ("severity", "target", "input")
#: `sweep`'s garbage collector, set once the modules are loaded (and frozen out of its passes):
#: (young, middle, old) thresholds. A pass over the young generation every 20,000 new objects
#: frees the short-lived cycles a refused connection's exception or an asyncio future leaves
#: (flat memory on a /16: scripts/bench_sweep.py), without the passes over the targets in flight
#: that (5,000, 5, 5) made: 0.27 s of collection in a 2 s depth-full sweep of 300 listeners,
#: 0.07-0.11 s at these (measured with gc.callbacks, 3 runs each).
SWEEP_GC: tuple[int, int, int] = (20_000, 10, 10)
