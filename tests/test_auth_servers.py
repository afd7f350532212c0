"""`rdprobe check --user` against FreeRDP's shadow server with NLA and a SAM file: the right
password reaches the session stage, a wrong one and an unknown user are rejected, and the
password appears in no output, JSON, CSV, log or exception, nor on the wire outside TLS (a
tcpdump capture of the exchange is grepped for it in UTF-8 and UTF-16LE)."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.credentials import PASSWORD_ENV, Credentials
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.render import csv as csv_render
from rdprobe.render import human, jsonl
from rdprobe.render.terminal import Terminal
from rig import require_binaries
from rig.ports import loopback_address
from rig.shadow import start_shadow

pytestmark = pytest.mark.servers
TIMEOUTS = Timeouts(connect=3.0, read=5.0, total=40.0)
USER = "rdprobe"
PASSWORD = "Rdp-" + secrets.token_hex(10)  #: unique per run, so a grep hit means a leak


def encodings(secret: str) -> list[bytes]:
    return [secret.encode("utf-8"), secret.encode("utf-16-le")]


@pytest.fixture(scope="module")
def shadow(tmp_path_factory):
    require_binaries("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash", "tcpdump")
    tmp = tmp_path_factory.mktemp("auth-shadow")
    with start_shadow(
        tmp, address=loopback_address(), sec="nla", user=USER, password=PASSWORD
    ) as srv:
        yield srv


@contextmanager
def capture(address: str, path: Path):
    """tcpdump on lo for one address, stopped with SIGINT (immediate mode keeps the tail)."""
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(path), "host", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        line = b""
        while b"listening on" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                pytest.fail("tcpdump did not start")
        yield
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_cli(args: list[str], password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, PASSWORD_ENV: password}
    return subprocess.run(
        [sys.executable, "-m", "rdprobe", "check", *args],
        capture_output=True, env=env, timeout=90, check=False,
    )  # fmt: skip


def assert_no_secret(secret: str, *blobs: bytes | str) -> None:
    for blob in blobs:
        data = blob.encode("utf-8") if isinstance(blob, str) else blob
        for form in encodings(secret):
            assert form not in data, "the password leaked"


def cli_case(shadow, tmp_path, user: str, password: str):
    """Run the CLI (JSON and human) under tcpdump; return (json row, human text, rc)."""
    pcap = tmp_path / "auth.pcap"
    with capture(shadow.host, pcap):
        as_json = run_cli([shadow.host, "--user", user, "--json", "--timeout", "5"], password)
    human_run = run_cli([shadow.host, "--user", user, "-v", "--timeout", "5"], password)
    raw = pcap.read_bytes()
    # the capture holds the exchange: the X.224 cookie in clear and the TLS records after it
    assert b"Cookie: mstshash=rdprobe" in raw and len(raw) > 5000
    assert_no_secret(
        password,
        raw,
        as_json.stdout,
        as_json.stderr,
        human_run.stdout,
        human_run.stderr,
        *(p.read_bytes() for p in Path(shadow.workdir).rglob("*.log")),
    )
    (row,) = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
    assert human_run.returncode == as_json.returncode
    return row, human_run.stdout.decode(), as_json.returncode


def finding_ids(row) -> set[str]:
    return {f["id"] for f in row["findings"]}


def test_right_password_reaches_the_session_stage(shadow, tmp_path):
    row, text, rc = cli_case(shadow, tmp_path, USER, PASSWORD)
    auth = row["stages"]["auth"]
    assert auth["outcome"] == "accepted" and auth["user"] == USER
    assert auth["method"] == "nla" and auth["selected"] == "HYBRID"
    assert auth["tsrequest_version"] == 6 and auth["channel_bindings"] == "tls-server-end-point"
    assert auth["server_computer"] == shadow.hostname.upper()[:15]
    after = auth["after_logon"]
    session = after["session"]
    assert session["reached_logon"] is True and session["path"] == "tls"
    assert session["licensing"]["error_name"] == "STATUS_VALID_CLIENT"
    assert session["demand_active"]["desktop"] == [800, 600, 24]  # the rig's Xvfb screen
    # the shadow server finished the connection sequence and sent its screen: a session, but
    # FreeRDP sends no logon notification (measured), so none is claimed
    logon = after["logon"]
    assert logon["finalized"] is True and logon["logon_notification"] is None
    assert logon["pdus_after_finalization"][:4] == [
        "PDUTYPE2_SYNCHRONIZE", "PDUTYPE2_CONTROL", "PDUTYPE2_CONTROL", "PDUTYPE2_FONTMAP",
    ]  # fmt: skip
    assert "fast-path updates" in logon["pdus_after_finalization"] and logon["screen_updates"]
    assert after["reached"].startswith("the end of the connection sequence")
    assert after["ended_with"] == "MCS Disconnect Provider Ultimatum"
    assert {"auth.accepted", "auth.session_reached"} <= finding_ids(row)
    assert "auth.logged_on" not in finding_ids(row)
    assert "password accepted" in text
    # rc follows the worst finding: the auth findings themselves are all info
    assert all(f["severity"] == "info" for f in row["findings"] if f["id"].startswith("auth."))
    assert rc == (0 if all(f["severity"] == "info" for f in row["findings"]) else 1)


@pytest.mark.parametrize(
    ("user", "password"), [(USER, "Wrong-" + secrets.token_hex(8)), ("nobody", PASSWORD)]
)
def test_wrong_password_and_unknown_user_are_rejected(shadow, tmp_path, user, password):
    row, text, rc = cli_case(shadow, tmp_path, user, password)
    auth = row["stages"]["auth"]
    assert auth["outcome"] == "rejected_no_reason" and auth["stage"] == "authenticate"
    assert auth["error_code"] is None and auth["after_logon"] is None
    assert "auth.rejected_no_reason" in finding_ids(row)
    assert "auth.accepted" not in finding_ids(row)
    assert "rejected, no reason given" in text and rc == 1
    assert_no_secret(PASSWORD, json.dumps(row), text)


async def test_in_process_outputs_and_logs_hold_no_password(shadow, caplog):
    """JSON, CSV, the human report, DEBUG logs (pyspnego's included) and reprs, in-process."""
    caplog.set_level(logging.DEBUG)
    creds = Credentials(USER, "", PASSWORD)
    opts = CheckOptions(timeouts=TIMEOUTS, credentials=creds, stages=frozenset({"auth"}))
    (report,) = await check_target(Target(shadow.host, shadow.port, True), opts)
    assert report.observation.stages["auth"]["outcome"] == "accepted"
    out = io.StringIO()
    jsonl.write_jsonl([report], out)
    csv_out = io.StringIO()
    csv_render.CsvWriter(csv_out).write(jsonl.report_dict(report))
    human_out = io.StringIO()
    human.render([report], human_out, verbose=True, terminal=Terminal(width=120))
    assert_no_secret(
        PASSWORD,
        out.getvalue(),
        csv_out.getvalue(),
        human_out.getvalue(),
        caplog.text,
        repr(opts),
        repr(report),
    )
    creds.clear()


@pytest.fixture(scope="module")
def xrdp(tmp_path_factory):
    require_binaries("xrdp", "tcpdump")
    from rig.xrdp import start_xrdp

    with start_xrdp(tmp_path_factory.mktemp("auth-xrdp"), address=loopback_address()) as srv:
        yield srv


def test_xrdp_without_nla_is_not_logged_on_without_the_flag(xrdp, tmp_path):
    """xrdp offers no NLA: without --logon-without-nla no password leaves rdprobe at all."""
    pcap = tmp_path / "xrdp.pcap"
    with capture(xrdp.host, pcap):
        res = run_cli([xrdp.host, "--user", USER, "--json", "--timeout", "5"], PASSWORD)
    raw = pcap.read_bytes()
    assert b"Cookie: mstshash=rdprobe" in raw
    assert_no_secret(PASSWORD, raw, res.stdout, res.stderr)
    (row,) = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    auth = row["stages"]["auth"]
    assert auth["outcome"] == "not_attempted" and auth["method"] == "client_info"
    assert "--logon-without-nla" in auth["error"]
    assert "auth.not_attempted" in finding_ids(row)


def test_xrdp_logon_without_nla_over_tls(xrdp, tmp_path):
    """With the flag the Client Info carries the credentials, inside TLS only; xrdp takes them
    and hands them to its session manager, which the rig does not run: no verdict on the wire."""
    pcap = tmp_path / "xrdp-logon.pcap"
    with capture(xrdp.host, pcap):
        res = run_cli(
            [xrdp.host, "--user", USER, "--logon-without-nla", "--json", "--timeout", "3"],
            PASSWORD,
        )
    raw = pcap.read_bytes()
    assert b"Cookie: mstshash=rdprobe" in raw and len(raw) > 5000
    log = b"".join(p.read_bytes() for p in Path(xrdp.workdir).rglob("*.log"))
    assert_no_secret(PASSWORD, raw, res.stdout, res.stderr, log)
    (row,) = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    auth = row["stages"]["auth"]
    assert auth["method"] == "client_info" and auth["selected"] == "SSL"
    assert auth["outcome"] == "no_verdict"
    after = auth["after_logon"]
    assert after["logon"]["finalized"] is True and after["logon"]["logon_notification"] is None
    assert after["session"]["licensing"]["error_name"] == "STATUS_VALID_CLIENT"
    # xrdp's own log shows what it did with the Client Info credentials
    assert f"Client supplied username: {USER}".encode() in log
    assert b"connecting to sesman" in log
    assert {"auth.logon_exposed", "auth.no_verdict"} <= finding_ids(row)
    assert res.returncode == 1
