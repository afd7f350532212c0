"""The --user interface: check only, password from RDPROBE_PASSWORD or a prompt, never an option,
one target only; every refusal is one line with exit code 2 and no secret in it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SECRET = "Cli-Secret-7f3a"


def rdprobe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rdprobe", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["sweep", "127.0.0.1", "--user", "alice"], {}, "--user"),
        (["check", "127.0.0.1", "--password", SECRET], {}, "--password"),
        (["check", "127.0.0.1", "--logon-without-nla"], {}, "needs --user"),
        (["check", "127.0.0.1", "127.0.0.2", "--user", "a"], {"RDPROBE_PASSWORD": SECRET},
         "one target"),
        (["check", "127.0.0.1", "--ports", "1-2", "--user", "a"], {"RDPROBE_PASSWORD": SECRET},
         "one target"),
        (["check", "127.0.0.1", "--repeat", "3", "--user", "a"], {"RDPROBE_PASSWORD": SECRET},
         "one target"),
        (["check", "127.0.0.1", "--user", "a"], {"RDPROBE_PASSWORD": ""}, "empty password"),
        (["check", "127.0.0.1", "--user", "A\\B\\c"], {"RDPROBE_PASSWORD": SECRET}, "--user"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_usage_errors(args, env, message):
    res = rdprobe(*args, env=env)
    assert res.returncode == 2, res
    assert message in res.stderr and "Traceback" not in res.stderr
    assert SECRET not in res.stdout + res.stderr


def test_no_terminal_and_no_variable_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "RDPROBE_PASSWORD"}
    res = subprocess.run(
        [sys.executable, "-m", "rdprobe", "check", "127.0.0.1", "--user", "alice"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
        check=False,
    )  # fmt: skip
    assert res.returncode == 2 and "RDPROBE_PASSWORD" in res.stderr


def test_help_shows_user_on_check_and_not_on_sweep():
    assert "--user" in rdprobe("check", "--help").stdout
    assert "--logon-without-nla" in rdprobe("check", "--help").stdout
    assert "--user" not in rdprobe("sweep", "--help").stdout
