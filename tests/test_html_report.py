"""`rdprobe report --html`: saved rows of check and pcap become one self-contained HTML file,
rendered by a real browser (Debian's chromium, headless): the DOM it builds holds every target
and finding, and a screenshot is taken (kept in $RDPROBE_ARTIFACTS when that is set)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rdprobe.emulate.server import serve

RDPROBE = [sys.executable, "-m", "rdprobe"]
ZEEK = Path(__file__).resolve().parent.parent / "captures/zeek"
PROFILES = ("win-tls-selfsigned", "win2003-legacy", "http", "corrupt-certificate")


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/install-debian-deps.sh installs it)")
        pytest.skip("chromium is not installed")
    return found


def browser(html: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Headless chromium with everything that could reach the network switched off: no
    background services, every host name unresolvable, and a proxy on a closed loopback port."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={profile}",
            "--window-size=1100,2600",
            *mode,
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def saved_rows(tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """check rows of emulated listeners plus a refused port, and pcap rows of a real capture."""
    where = tmp_path_factory.mktemp("rows")

    async def checks() -> str:
        servers = [await serve(p, "127.0.0.1", 0) for p in PROFILES]
        try:
            targets = [f"127.0.0.1:{s.port}" for s in servers] + ["127.0.0.1:1"]
            done = await asyncio.to_thread(
                subprocess.run,
                [*RDPROBE, "check", *targets, "--json", "--timeout", "3"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            return done.stdout
        finally:
            for s in servers:
                await s.close()

    check_file = where / "check.jsonl"
    check_file.write_text(asyncio.run(checks()))
    pcap = subprocess.run(
        [*RDPROBE, "pcap", str(ZEEK / "rdp-to-ssl.pcap"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    pcap_file = where / "pcap.jsonl"
    pcap_file.write_text(pcap.stdout + "this line is not a row\n")
    rows = [json.loads(line) for line in check_file.read_text().splitlines()]
    rows += [json.loads(line) for line in pcap.stdout.splitlines()]
    assert len(rows) > len(PROFILES) + 1
    return check_file, pcap_file, rows


def test_html_report_is_self_contained(saved_rows, tmp_path):
    check_file, pcap_file, rows = saved_rows
    out = tmp_path / "report.html"
    done = subprocess.run(
        [*RDPROBE, "report", str(check_file), str(pcap_file), "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # there are errors among the rows
    assert "1 line(s) were no rdprobe result row" in done.stderr
    html = out.read_text()
    # nothing to fetch: no script, no external style sheet, image or font
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert not re.search(r'(src|href)="(?!#)', html)
    assert len(re.findall(r"<svg ", html)) == 4  # settings, severity, OS builds, expiry
    for row in rows:  # every target has its linkable section
        assert row["target"] in html
    ids = re.findall(r'<section class="target[^"]*" id="([^"]+)"', html)
    assert len(ids) == len(rows) == len(set(ids))
    assert all(f'href="#{i}"' in html for i in ids)


def test_chromium_renders_the_targets_and_findings(saved_rows, tmp_path):
    check_file, pcap_file, rows = saved_rows
    out = tmp_path / "report.html"
    subprocess.run(
        [*RDPROBE, "report", str(check_file), str(pcap_file), "--html", str(out)],
        capture_output=True,
        timeout=120,
    )
    dom = browser(out, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert "<svg" in text and "Findings by severity" in text
    for row in rows:
        assert row["target"] in text
        for finding in row["findings"]:
            title = finding["title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert title.replace("'", "&#39;") in text or title in text, finding["id"]
    assert 'id="summary"' in text and "certificates &lt; 30 days or expired" in text

    shot = tmp_path / "report.png"
    taken = browser(out, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    if os.environ.get("RDPROBE_ARTIFACTS"):
        keep = Path(os.environ["RDPROBE_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "html-report.png")
        shutil.copy(out, keep / "html-report.html")


def test_report_renders_table_and_csv_from_saved_rows(saved_rows, tmp_path):
    check_file, pcap_file, rows = saved_rows
    csv_out = tmp_path / "rows.csv"
    done = subprocess.run(
        [*RDPROBE, "report", str(check_file), str(pcap_file), "--csv", str(csv_out), "--table"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("target,host,port") and len(lines) == len(rows) + 1
    assert "worst finding" in done.stdout
    assert f"{len(rows)} target(s):" in done.stdout
    full = subprocess.run(
        [*RDPROBE, "report", str(check_file)], capture_output=True, text=True, timeout=120
    )
    assert "Why:" in full.stdout and "Fix:" in full.stdout


def test_report_refuses_files_without_rows(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text('hello\n{"not": "a row"}\n')
    done = subprocess.run(
        [*RDPROBE, "report", str(junk)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "no rdprobe result rows" in done.stderr


def test_rows_of_schema_2_and_missing_keys_still_render(tmp_path):
    """A row of a later schema with keys renamed or missing renders with '-' for the unknown."""
    row = {"schema": "rdprobe.report/2", "target": "ts9.example:3389", "outcome": "rdp",
           "findings": [{"id": "x.y", "severity": "warning", "title": "Something odd"}],
           "stages": {"tls": "not a dict"}, "setting": None}  # fmt: skip
    path = tmp_path / "v2.jsonl"
    path.write_text(json.dumps(row) + "\n")
    out = tmp_path / "v2.html"
    done = subprocess.run(
        [*RDPROBE, "report", str(path), "--html", str(out)], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "ts9.example:3389" in out.read_text() and "Something odd" in out.read_text()
