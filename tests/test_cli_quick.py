"""`rdprobe check TARGET...` without options but --json and --depth takes the quick path (rdprobe.cli.main straight to
rdprobe.cli.check_run, no typer): the same stdout, stderr and exit code as the typer path
(RDPROBE_CLI_TYPER=1 forces it), and on a refused port neither typer, asyncio nor the stage facts
are loaded."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import subprocess
import sys

import pytest

from rdprobe.cli import TYPER_ENV, quick_check
from rdprobe.emulate.server import serve
from rig.ports import loopback_address

RDPROBE = [sys.executable, "-m", "rdprobe"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDPROBE, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def both(*args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same command line through the quick path and through typer."""
    quick_env = {k: v for k, v in os.environ.items() if k != TYPER_ENV}
    quick = subprocess.run(
        [*RDPROBE, *args], capture_output=True, text=True, timeout=60, env=quick_env
    )
    typer = _run(list(args), {TYPER_ENV: "1"})
    return quick, typer


def _timings_out(text: str) -> str:
    """The report without its measured milliseconds (the negotiation table's last columns, each
    followed by the gap to the next column or by the box's side)."""
    return re.sub(r" +\d+\.\d(?=  | │)", " #", text)


def _clock_out(value: object) -> object:
    """A JSON row without what a clock says (when it started, how many milliseconds, the
    server's time in its NTLM challenge)."""
    if isinstance(value, dict):
        return {
            k: _clock_out(v)
            for k, v in value.items()
            if k not in ("started", "observed_at", "ms", "timestamp") and not k.endswith("_ms")
        }
    if isinstance(value, list):
        return [_clock_out(v) for v in value]
    return value


def _rows(text: str) -> list[object]:
    return [_clock_out(json.loads(line)) for line in text.splitlines() if line.strip()]


def assert_same(
    quick: subprocess.CompletedProcess[str], typer: subprocess.CompletedProcess[str]
) -> None:
    assert quick.returncode == typer.returncode, (quick.stderr, typer.stderr)
    assert quick.stderr == typer.stderr
    if quick.stdout.startswith("{"):
        assert _rows(quick.stdout) == _rows(typer.stdout)
    else:
        assert _timings_out(quick.stdout) == _timings_out(typer.stdout)


def test_refused_port_reads_the_same_on_both_paths():
    quick, typer = both("check", f"{loopback_address()}:3389")
    assert_same(quick, typer)
    assert quick.returncode == 1
    assert "refused" in quick.stdout and "Nothing listens on port 3389" in quick.stdout
    assert quick.stderr == ""


def test_two_targets_read_the_same_on_both_paths():
    a, b = loopback_address(), loopback_address()
    quick, typer = both("check", f"{a}:3389", f"{b}:3390")
    assert_same(quick, typer)
    assert quick.returncode == 1
    assert quick.stdout.index(a) < quick.stdout.index(b)  # reports, then the table, in order


@pytest.mark.parametrize("target", ["host:0", "bad host", "[::1", "a..b:x"])
def test_bad_target_is_the_same_one_line_error_on_both_paths(target):
    quick, typer = both("check", target)
    assert_same(quick, typer)
    assert quick.returncode == 2
    assert quick.stdout == ""
    assert quick.stderr.startswith("rdprobe: error: ") and quick.stderr.count("\n") == 1
    assert "Traceback" not in quick.stderr


@pytest.mark.parametrize("profile", ["win2012-negotiate", "ssh"])
def test_listening_server_reads_the_same_on_both_paths(profile):
    async def main():
        async with await serve(profile, "127.0.0.1", 0) as server:
            return await asyncio.to_thread(both, "check", f"127.0.0.1:{server.port}")

    quick, typer = asyncio.run(main())
    assert_same(quick, typer)
    expected = "RDP answers" if profile == "win2012-negotiate" else "Port conflict: SSH"
    assert expected in quick.stdout


@pytest.mark.parametrize(
    "options", [["--json"], ["--depth", "full", "--json"], ["--depth=tcp"], ["--depth", "nope"]]
)
def test_json_and_depth_read_the_same_on_both_paths(options):
    async def main():
        async with await serve("win2012-negotiate", "127.0.0.1", 0) as server:
            return await asyncio.to_thread(both, "check", f"127.0.0.1:{server.port}", *options)

    quick, typer = asyncio.run(main())
    assert_same(quick, typer)
    if "nope" in options:
        assert quick.returncode == 2 and "--depth" in quick.stderr
    else:
        assert quick.returncode in (0, 1) and quick.stdout


PROBE = (
    "import sys\n"
    "sys.argv = ['rdprobe', *sys.argv[1:]]\n"
    "from rdprobe.cli import main\n"
    "import rdprobe.cli.errors\n"
    "def finish(code):  # the quick path's exit without teardown: this script reports first\n"
    "    sys.stdout.flush()\n"
    "    raise SystemExit(code)\n"
    "rdprobe.cli.errors.finish = finish\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "names = ('typer', 'click', 'pydantic', 'asyncio', 'ssl', 'cryptography', 'rdprobe.api',\n"
    "         'rdprobe.live.check', 'rdprobe.live.negotiate', 'rdprobe.analysis.facts',\n"
    "         'rdprobe.analysis.judges', 'rdprobe.analysis.consistency',\n"
    "         'rdprobe.analysis.certificate_verdict', 'rdprobe.protocol.x224', 'rich', 'typing')\n"
    "import gc\n"
    "loaded = ','.join(n for n in names if n in sys.modules)\n"
    "sys.stderr.write(f'EXIT={code} GC={gc.isenabled()} LOADED={loaded}')\n"
)


def _loaded(args: list[str], env: dict[str, str]) -> tuple[int, bool, set[str]]:
    """(exit code, the garbage collector on at the end, which of PROBE's names were loaded)"""
    clean = {
        k: v for k, v in os.environ.items() if k not in (TYPER_ENV, "RDPROBE_CHECK_CONSISTENCY")
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )
    code, _, rest = done.stderr.rpartition("EXIT=")[2].partition(" GC=")
    gc_on, _, loaded = rest.partition(" LOADED=")
    return int(code), gc_on == "True", set(filter(None, loaded.split(",")))


def test_refused_port_loads_no_typer_asyncio_or_stage_facts():
    target = f"{loopback_address()}:3389"
    code, gc_on, loaded = _loaded(["check", target], {})
    assert code == 1
    assert loaded == set(), loaded  # the report is laid out without rich, and no typing loads
    assert not gc_on  # start-up and the verdict ran without the garbage collector
    # --json stays on the quick path, and JSON needs no rich
    code, gc_on, loaded = _loaded(["check", target, "--json", "--depth", "full"], {})
    assert code == 1 and not gc_on
    assert not loaded & {"typer", "pydantic", "asyncio", "rich"}, loaded
    # another option goes through typer, and the refused port is still judged without asyncio
    code, gc_on, loaded = _loaded(["check", target, "--json", "--timeout", "2"], {})
    assert code == 1 and gc_on
    assert "typer" in loaded and "asyncio" not in loaded and "rich" not in loaded
    # the consistency check still runs when asked for
    _code, _gc, loaded = _loaded(["check", target], {"RDPROBE_CHECK_CONSISTENCY": "1"})
    assert "rdprobe.analysis.consistency" in loaded


def test_listening_port_goes_on_to_the_prober():
    async def main():
        async with await serve("win10-nla", "127.0.0.1", 0) as server:
            return await asyncio.to_thread(
                _loaded, ["check", f"127.0.0.1:{server.port}", "--depth", "x224"], {}
            )

    code, gc_on, loaded = asyncio.run(main())
    assert code == 0  # NLA required, nothing wrong: the prober read the confirms
    assert {"asyncio", "rdprobe.live.negotiate", "rdprobe.protocol.x224"} <= loaded
    # the prober loads every judge before it opens a connection (file descriptors may run out)
    assert {"rdprobe.analysis.judges", "rdprobe.analysis.facts"} <= loaded
    assert gc_on  # the collector is on while asyncio runs


def test_a_sweep_turns_the_collector_back_on_before_probing(tmp_path):
    """sweep starts with the collector off, as check's quick path does; it must be on again
    for the probing (asyncio makes cyclic garbage), through typer's path too."""

    async def main():
        async with await serve("win10-nla", "127.0.0.1", 0) as server:
            argv = ["sweep", "127.0.0.1", "--ports", str(server.port), "--depth", "x224"]
            return await asyncio.to_thread(_loaded, [*argv, "-o", str(tmp_path / "r.jsonl")], {})

    code, gc_on, loaded = asyncio.run(main())
    assert code == 0 and gc_on
    assert "rdprobe.live.negotiate" in loaded
    assert not loaded & {"typer", "click", "pydantic", "rich"}, loaded  # sweep's quick path
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1

    async def through_typer():
        async with await serve("win10-nla", "127.0.0.1", 0) as server:
            argv = ["sweep", "127.0.0.1", "--ports", str(server.port), "--depth", "x224"]
            argv += ["-o", str(tmp_path / "t.jsonl")]
            return await asyncio.to_thread(_loaded, argv, {TYPER_ENV: "1"})

    code, gc_on, loaded = asyncio.run(through_typer())
    assert code == 0 and gc_on and "typer" in loaded


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["check", "10.0.0.1"], (["10.0.0.1"], "full", False)),
        (["check", "a:3389", "[::1]:3390"], (["a:3389", "[::1]:3390"], "full", False)),
        (["check"], None),  # typer says what is missing
        (["check", "a", "--json"], (["a"], "full", True)),
        (["check", "--depth", "full", "a", "b"], (["a", "b"], "full", False)),
        (["check", "a", "--depth=tcp", "--json"], (["a"], "tcp", True)),
        (["check", "a", "--depth", "nope"], (["a"], "nope", False)),  # run_check says no
        (["check", "a", "--depth"], None),  # typer says the value is missing
        (["check", "a", "--depth", "--json"], None),
        (["check", "--json"], None),
        (["check", "a", "--timeout", "2"], None),
        (["check", "-v", "a"], None),
        (["check", "--", "a"], None),
        (["check", "-"], None),
        (["sweep", "10.0.0.0/24"], None),  # sweep's own quick path (below)
        (["--version"], None),
        ([], None),
    ],
)
def test_only_check_with_bare_targets_takes_the_quick_path(argv, expected, monkeypatch):
    monkeypatch.delenv(TYPER_ENV, raising=False)
    assert quick_check(argv) == expected
    monkeypatch.setenv(TYPER_ENV, "1")
    assert quick_check(argv) is None


@pytest.mark.parametrize("target", ["~", "%HOME%", "$HOME", "h*", "h?", "[::1]:3389"])
def test_what_click_expands_on_windows_goes_to_typer_there(target, monkeypatch):
    monkeypatch.delenv(TYPER_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    assert quick_check(["check", target]) is None
    assert quick_check(["check", "10.0.0.1:3389"]) == (["10.0.0.1:3389"], "full", False)


def test_the_quick_path_uses_the_typer_commands_defaults():
    """One home for the options: run_check's parameters are the typer command's, in order,
    with the same defaults (both read rdprobe.defaults)."""
    from rdprobe.cli.check import check
    from rdprobe.cli.check_run import run_check

    typer_params = inspect.signature(check).parameters
    run_params = inspect.signature(run_check).parameters
    assert list(typer_params) == list(run_params)
    for name, param in typer_params.items():
        if name == "targets":
            assert run_params[name].default is inspect.Parameter.empty
            continue
        assert run_params[name].default == param.default, name


@pytest.mark.parametrize(
    "args",
    [
        ["check"],  # the quick path: the human report, then its exit without teardown
        ["check", "--json"],
        ["check", "--timeout", "2"],  # through typer
        ["sweep"],
    ],
)
def test_a_closed_output_ends_quietly_with_141(args):
    """`rdprobe ... | head`: once the reader is gone, no error line and no traceback."""
    command, *options = args
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before the first row
    try:
        done = subprocess.run(
            [*RDPROBE, command, f"{loopback_address()}:3389", *options],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""


# --- sweep's quick path (rdprobe.cli.sweep_args -> rdprobe.cli.sweep_run) ---


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sweep", "10.0.0.0/24"], {"targets": ["10.0.0.0/24"]}),
        (["sweep", "-"], {"targets": ["-"]}),
        (
            ["sweep", "-iL", "a.txt", "--depth", "full", "--concurrency", "512", "-o", "r.jsonl"],
            {"input_list": ["a.txt"], "depth": "full", "concurrency": 512, "output": "r.jsonl"},
        ),
        (
            ["sweep", "--input-list=a", "-iL", "b", "--timeout=2.5", "--json", "--table", "h"],
            {
                "input_list": ["a", "b"],
                "timeout": 2.5,
                "as_json": True,
                "table": True,
                "targets": ["h"],
            },
        ),
        (["sweep", "h", "--depth", "nope"], {"targets": ["h"], "depth": "nope"}),  # run_sweep: no
        (["sweep"], None),  # typer
        (["sweep", "--help"], None),
        (["sweep", "h", "--nope"], None),
        (["sweep", "h", "--concurrency", "0"], None),  # out of range: typer says so
        (["sweep", "h", "--concurrency", "100001"], None),
        (["sweep", "h", "--concurrency", "1e3"], None),
        (["sweep", "h", "--concurrency", " 5"], None),
        (["sweep", "h", "--concurrency", "+5"], None),
        (["sweep", "h", "--retries", "-1"], None),
        (["sweep", "h", "--timeout", "nan"], None),
        (["sweep", "h", "--timeout", "0.01"], None),
        (["sweep", "h", "--rate", "0.05"], None),
        (["sweep", "h", "--timeout"], None),  # the value is missing
        (["sweep", "h", "-o", "--json"], None),  # an option where the value should be
        (["sweep", "h", "--json=1"], None),
        (["sweep", "h", "-o=r.jsonl"], None),
        (["sweep", "h", "-or.jsonl"], None),
        (["sweep", "--", "h"], None),
        (["check", "h"], None),
    ],
)
def test_sweep_quick_path_reads_only_what_typer_reads_the_same(argv, expected, monkeypatch):
    from rdprobe.cli.sweep_args import quick_sweep

    monkeypatch.delenv(TYPER_ENV, raising=False)
    assert quick_sweep(argv) == expected
    monkeypatch.setenv(TYPER_ENV, "1")
    assert quick_sweep(argv) is None


def test_sweep_quick_path_parses_each_value_as_typer_does(monkeypatch):
    from rdprobe.cli.sweep_args import quick_sweep

    monkeypatch.delenv(TYPER_ENV, raising=False)
    argv = ["sweep", "h", "--rate", ".5", "--retries", "10", "--workers", "0", "--shards", "3"]
    got = quick_sweep(argv)
    assert got == {"targets": ["h"], "rate": 0.5, "retries": 10, "workers": 0, "shards": 3}
    assert type(got["retries"]) is int and type(got["rate"]) is float
    got = quick_sweep(["sweep", "h", "--shard", "auto", "--csv", "-", "-o", "-"])
    assert got == {"targets": ["h"], "shard": "auto", "csv_file": "-", "output": "-"}
    argv = ["sweep", "h", "--exclude", "10.0.0.1", "--exclude-file=x", "--exclude", "b"]
    got = quick_sweep(argv)
    assert got == {"targets": ["h"], "exclude": ["10.0.0.1", "b"], "exclude_file": ["x"]}


@pytest.mark.parametrize("target", ["~", "%HOME%", "$HOME", "h*", "h?", "[::1]:3389"])
def test_sweep_arguments_click_expands_on_windows_go_to_typer_there(target, monkeypatch):
    from rdprobe.cli.sweep_args import quick_sweep

    monkeypatch.delenv(TYPER_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    assert quick_sweep(["sweep", target]) is None
    assert quick_sweep(["sweep", "10.0.0.1"]) == {"targets": ["10.0.0.1"]}


def test_sweep_quick_path_has_the_typer_commands_options_bounds_and_defaults():
    """One definition of sweep's options: run_sweep's parameters are the typer command's, in
    order, with the same defaults; every option name typer reads maps to its parameter with
    its kind; typer's bounds are rdprobe.cli.values.RANGES, which the quick parser checks."""
    import typing

    from rdprobe.cli.sweep import sweep
    from rdprobe.cli.sweep_args import OPTIONS
    from rdprobe.cli.sweep_run import run_sweep
    from rdprobe.cli.values import RANGES

    typer_params = inspect.signature(sweep).parameters
    run_params = inspect.signature(run_sweep).parameters
    assert list(typer_params) == list(run_params)
    hints = typing.get_type_hints(sweep, include_extras=True)
    seen = set()
    for name, param in typer_params.items():
        assert run_params[name].default == param.default, name
        info = hints[name].__metadata__[0]
        if name == "targets":
            assert type(info).__name__ == "ArgumentInfo"
            continue
        # typer reads a first positional "--name" as the option's name, not as its default
        named = isinstance(info.default, str) and info.default.startswith("-")
        decls = [info.default] * named + list(info.param_decls)
        decls = decls or ["--" + name.replace("_", "-")]
        base = typing.get_args(hints[name])[0]  # the type inside Annotated
        plain = [a for a in typing.get_args(base) if a is not type(None)]
        base = plain[0] if typing.get_origin(base) is not list and plain else base  # X | None
        kinds = {bool: "flag", int: "int", float: "float", str: "str"}
        kind = "list" if typing.get_origin(base) is list else kinds[base]
        for decl in decls:
            assert OPTIONS[decl] == (name, kind), decl
            seen.add(decl)
        bounds = (info.min, info.max)
        assert bounds == RANGES.get(name, (None, None)), name
    assert seen == set(OPTIONS)  # the quick parser reads no name typer does not


def _sweep_stderr_out(text: str) -> str:
    """The summary without its measured time and rate."""
    return re.sub(r"in \d+\.\d s \([\d,]+/s\)", "in # s (#/s)", text)


@pytest.mark.parametrize(
    "options",
    [
        ["--depth", "full", "--json"],
        ["--depth", "x224", "-o", "-", "--concurrency", "4", "--timeout", "2"],
        ["--depth", "full", "--table"],
        ["--depth", "nope"],
        ["--shard", "2/2", "--json"],
    ],
)
def test_sweep_reads_the_same_on_both_paths(options):
    """The same rows, summary and exit code through the quick path and through typer: a
    listener (Windows Server 2012 R2, its TLS, NLA and MCS answers) and a refused port."""

    async def main():
        async with await serve("win2012-tls-nla", "127.0.0.1", 0) as server:
            refused = f"{loopback_address()}:1"
            argv = ["sweep", f"127.0.0.1:{server.port}", refused, *options]
            return await asyncio.to_thread(both, *argv)

    quick, typer = asyncio.run(main())
    assert quick.returncode == typer.returncode, (quick.stderr, typer.stderr)
    assert _sweep_stderr_out(quick.stderr) == _sweep_stderr_out(typer.stderr)
    if "--table" in options:
        assert _timings_out(quick.stdout) == _timings_out(typer.stdout) and quick.stdout
    else:
        assert _rows(quick.stdout) == _rows(typer.stdout)
    if "nope" in options:
        assert quick.returncode == 2 and "--depth" in quick.stderr
        return
    assert quick.returncode == 1  # the refused port is an error-level finding
    if "--shard" not in options:
        assert "by outcome" in quick.stderr and " refused  1" in quick.stderr
