"""Ctrl-C at any moment: one line, exit 130, finished rows whole, never a traceback.

Ctrl-C in a terminal is a SIGINT to the whole foreground process group, so the tests send it
with killpg to a command started in a session of its own. The moments that failed: while the
command's modules load (a traceback of typer's imports), while `sweep --workers` starts its
workers (each died with a traceback or "Fatal Python error"), and in typer's parsing (exit 130
without a word).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rdprobe.cli import TYPER_ENV
from rdprobe.sweep import workers

pytestmark = pytest.mark.skipif(os.name == "nt", reason="killpg: the rig's Ctrl-C is POSIX")

#: What an interrupted command must never print.
CRASHES = ("Traceback", "Exception ignored", "Fatal Python error", "KeyboardInterrupt")


def _sweep_argv(out: Path) -> list[str]:
    return [sys.executable, "-m", "rdprobe", "sweep", "127.14.0.0/17", "--depth", "x224",
            "--workers", "2", "--timeout", "2", "-o", str(out)]  # fmt: skip


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc: the rig's tooling, not the library's)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _ctrl_c(argv: list[str], when: tuple[str, float]) -> tuple[int, str]:
    """Start ``argv``; send Ctrl-C ``when`` = (``"start"``, seconds) after it started, or
    (``"workers"``, seconds) after its worker processes exist; its exit code and stderr."""
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    if when[0] == "workers":
        while time.monotonic() < deadline and len(_children(proc.pid)) < 2:
            time.sleep(0.002)
        assert len(_children(proc.pid)) == 2, "the workers never started"
    time.sleep(when[1])
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    return proc.returncode, err


@pytest.mark.parametrize(
    "when",
    [("start", 0.05), ("start", 0.15), ("workers", 0.0), ("workers", 0.03), ("workers", 0.08),
     ("workers", 0.3)],
)  # fmt: skip
def test_ctrl_c_at_any_moment_of_a_worker_sweep(tmp_path, when):
    out = tmp_path / "rows.jsonl"
    code, err = _ctrl_c(_sweep_argv(out), when)
    assert code == 130, err
    assert not any(c in err for c in CRASHES), err
    assert err.splitlines()[-1].startswith("rdprobe: interrupted"), err
    lines = out.read_text().splitlines() if out.exists() else []
    targets = [json.loads(line)["target"] for line in lines]  # every row whole
    assert len(targets) == len(set(targets)) < 32768


def _run_with(tmp_path: Path, customize: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m rdprobe ARGV`` with ``customize`` run first (a sitecustomize module)."""
    (tmp_path / "sitecustomize.py").write_text(customize)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "rdprobe", *argv],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _interrupt_at_import(module: str) -> str:
    """A sitecustomize that raises KeyboardInterrupt when ``module`` is imported, inside a
    string exec as dataclasses run them: CPython remembers that one even when it is caught and,
    under -m, died by SIGINT."""
    return (
        "import builtins\n"
        "_real = builtins.__import__\n"
        "def _import(name, *args, **kwargs):\n"
        f"    if name == {module!r}:\n"
        "        exec('raise KeyboardInterrupt')\n"
        "    return _real(name, *args, **kwargs)\n"
        "builtins.__import__ = _import\n"
    )


#: In a command before its own handling (through typer, typer makes it exit code 130 and
#: prints nothing; on the quick path it reaches rdprobe.cli.errors.guard).
IN_THE_COMMAND = (
    "import rdprobe.cli.sweep_run as sweep_run\n"
    "def _boom(*args, **kwargs):\n"
    "    raise KeyboardInterrupt\n"
    "sweep_run.check_depth = _boom\n"
)
#: Where a Ctrl-C lands, as a sitecustomize module makes it land there every time, and whether
#: the command line goes through typer (RDPROBE_CLI_TYPER=1) or sweep's quick path.
LANDINGS = {
    "loading, quick path": (_interrupt_at_import("rdprobe.cli.sweep_run"), "0"),
    "loading, typer": (_interrupt_at_import("rdprobe.cli.app"), "1"),
    "in the command, quick path": (IN_THE_COMMAND, "0"),
    "in the command, typer": (IN_THE_COMMAND, "1"),
}


@pytest.mark.parametrize("landing", sorted(LANDINGS))
def test_ctrl_c_before_the_sweep_is_one_line_and_130(tmp_path, landing, monkeypatch):
    customize, through_typer = LANDINGS[landing]
    monkeypatch.setenv(TYPER_ENV, through_typer)
    done = _run_with(tmp_path, customize, ["sweep", "127.0.0.1", "--depth", "x224"])
    assert done.returncode == 130, done.stderr
    assert done.stderr == "rdprobe: interrupted\n"


def test_a_sigint_to_a_worker_alone_asks_it_to_stop(tmp_path):
    """A worker never raises KeyboardInterrupt: SIGINT, as often as it comes, asks it to stop
    as its parent's stop line does; it writes the rows it finished, whole, and exits 130."""
    from rdprobe.sweep.targets import parse_spec

    spec = workers.WorkerSpec(
        (parse_spec("127.15.0.0/16"),), (3389,), (), (1, 1), 0, 1, "x224", 2.0, "rdprobe", 64, 8
    )
    proc = subprocess.Popen(
        workers.worker_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(spec.encode())
    proc.stdin.flush()
    first = proc.stdout.readline()  # the first row goes at once: the sweep runs
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    rest = proc.stdout.read()  # stdin stays open: the SIGINT alone stops it (a whole sweep of
    err = proc.stderr.read()  # these refused ports takes ~10 s here and exits 0)
    assert proc.wait(timeout=60) == 130, err
    assert not any(c.encode() in err for c in CRASHES), err
    rows = [
        json.loads(x) for x in (first + rest).splitlines() if not x.startswith(workers.TALLY_MARK)
    ]
    targets = [r["target"] for r in rows]
    assert 0 < len(targets) == len(set(targets)) < 65536
    proc.stdin.close()


def test_write_all_delivers_every_byte_through_a_full_pipe_under_signals():
    """The pipe fills while the reader waits; SIGINTs run a handler that does nothing, as a
    worker's does: every byte arrives, in order (BufferedWriter alone lost most of them)."""
    child = (
        "import signal, sys\n"
        "from rdprobe.sweep.write_all import write_all\n"
        "signal.signal(signal.SIGINT, lambda s, f: None)\n"
        "data = b''.join(b'%06d' % i + b'x' * 993 + b'\\n' for i in range(300))\n"
        "write_all(sys.stdout.buffer, b'go\\n')\n"
        "write_all(sys.stdout.buffer, data)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"go\n"
    time.sleep(0.1)  # the child fills the pipe and blocks in write(2)
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    data = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    assert data == b"".join(b"%06d" % i + b"x" * 993 + b"\n" for i in range(300))


def test_write_all_to_a_stream_without_a_descriptor():
    import io

    from rdprobe.sweep.write_all import write_all

    out = io.BytesIO()
    out.write(b"buffered ")
    write_all(out, b"then whole")  # type: ignore[arg-type]
    assert out.getvalue() == b"buffered then whole"


def test_ctrl_c_while_json_rows_wait_in_a_full_pipe_loses_no_byte():
    """`sweep --workers 2 --json | slow-reader`: the pipe is full when Ctrl-C comes; the rows
    that reach the reader are whole lines, one per target (the parent writes batches)."""
    argv = [sys.executable, "-m", "rdprobe", "sweep", "127.16.0.0/17", "--depth", "x224",
            "--workers", "2", "--timeout", "2", "--json"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # rows flow; then nobody reads and the pipe fills
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not any(c.encode() in err for c in CRASHES), err
    targets = [json.loads(line)["target"] for line in (first + out).splitlines()]
    assert len(targets) == len(set(targets)) < 32768
