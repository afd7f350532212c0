"""`rdprobe merge`: one row per target:port, the latest wins, conflicts reported and counted."""

from __future__ import annotations

import io
import json

from rdprobe.render.jsonl import SCHEMA
from rdprobe.sweep.merge import merge_files
from rdprobe.sweep.summary import Summary


def row(target: str, started: str, outcome: str, **extra) -> dict:
    host, _, port = target.rpartition(":")
    return {
        "schema": SCHEMA,
        "target": target,
        "host": host,
        "port": int(port),
        "started": started,
        "outcome": outcome,
        "findings": [],
        **extra,
    }


def write(path, rows, tail: str = "") -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return str(path)


def test_latest_wins_conflicts_counted(tmp_path):
    a = write(
        tmp_path / "a.jsonl",
        [
            row("10.0.0.1:3389", "2024-05-01T10:00:00+00:00", "refused"),
            row("10.0.0.2:3389", "2024-05-01T10:00:00+00:00", "rdp", mark="a"),
            row("10.0.0.3:3389", "2024-05-01T12:00:00+02:00", "timeout"),
        ],
    )
    b = write(
        tmp_path / "b.jsonl",
        [
            row("10.0.0.1:3389", "2024-05-01T11:00:00+00:00", "rdp"),  # later: wins, conflict
            row("10.0.0.2:3389", "2024-05-01T09:00:00+00:00", "rdp", mark="b"),  # older, same
            row("10.0.0.3:3389", "2024-05-01T10:30:00+00:00", "refused"),  # 10:30Z > 10:00Z
            row("10.0.0.4:3389", "2024-05-01T10:00:00+00:00", "refused"),
        ],
        tail='{"schema": "rdprobe.report/2", "target": "10.0.0.5:33',  # cut short by a kill
    )
    out = io.StringIO()
    lines: list[str] = []
    result = merge_files([a, b], out, report=lines.append)
    merged = [json.loads(x) for x in out.getvalue().splitlines()]
    by_target = {r["target"]: r for r in merged}
    assert len(merged) == len(by_target) == 4 == result.rows_out
    assert by_target["10.0.0.1:3389"]["outcome"] == "rdp"
    assert by_target["10.0.0.2:3389"]["mark"] == "a"
    assert by_target["10.0.0.3:3389"]["outcome"] == "refused"
    assert result.rows_read == 7 and result.duplicates == 3 and result.bad_lines == 1
    assert result.conflicts == 2 and len(lines) == 2
    assert all(line.startswith("conflict: 10.0.0.") for line in lines)
    assert "refused (" in lines[0] and "keeping rdp" in lines[0]


def test_merge_of_shards_is_their_union(tmp_path):
    rows = [row(f"127.0.0.1:{p}", "2024-05-01T10:00:00+00:00", "refused") for p in range(50)]
    paths = [write(tmp_path / f"s{k}.jsonl", rows[k::3]) for k in range(3)]
    out = io.StringIO()
    result = merge_files(paths, out)
    assert result.conflicts == 0 and result.duplicates == 0
    assert sorted(json.loads(x)["port"] for x in out.getvalue().splitlines()) == list(range(50))


def test_summary_counts():
    s = Summary()
    s.add(row("a:1", "x", "refused"))
    s.add(
        row(
            "b:1",
            "x",
            "rdp",
            setting={"summary": "NLA required", "security_layer": "Negotiate"},
            findings=[{"id": "certificate.self_signed"}, {"id": "tls.old"}, {"id": "neg.x"}],
            stages={"nla": {"os": "Windows Server 2019", "challenge": {"version": "10.0.17763"}}},
        )
    )
    d = s.to_dict()
    assert d["by_outcome"] == {"refused": 1, "rdp": 1}
    assert d["by_setting"] == {"NLA required": 1}
    assert d["by_certificate_problem"] == {"certificate.self_signed": 1, "tls.old": 1}
    assert d["by_os_build"] == {"Windows Server 2019 (10.0.17763)": 1}


def test_merge_reads_rows_of_the_previous_schema(tmp_path):
    """A sweep file written before rdprobe.report/2 still merges (only stage facts changed)."""
    old = {**row("10.0.0.9:3389", "2026-11-03T00:00:00+00:00", "rdp"), "schema": "rdprobe.report/1"}
    other = {**row("10.0.0.9:3389", "2026-11-02T00:00:00+00:00", "refused")}
    alien = {**row("10.0.0.8:3389", "2026-11-02T00:00:00+00:00", "rdp"), "schema": "other/1"}
    a = write(tmp_path / "a.jsonl", [old, alien])
    b = write(tmp_path / "b.jsonl", [other])
    out = io.StringIO()
    merge_files([a, b], out)
    merged = [json.loads(x) for x in out.getvalue().splitlines()]
    # the /1 row is the latest, so it wins; a row of another schema is not read at all
    assert [(r["target"], r["outcome"]) for r in merged] == [("10.0.0.9:3389", "rdp")]
