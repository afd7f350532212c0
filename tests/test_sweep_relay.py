"""The parent's relay of worker rows (rdprobe.sweep.workers.relay): read in chunks of many rows,
each row handed on once, whole, with the line its worker wrote, which the JSON Lines output
writes unchanged; a cut last line of a killed worker is dropped."""

from __future__ import annotations

import asyncio
import json
import sys

from rdprobe.render.jsonl import dumps
from rdprobe.sweep.workers import READ_CHUNK, RelayedRow, _rows, relay

ROWS = [{"target": f"127.0.0.{i}:3389", "outcome": "refused", "n": i, "pad": "x" * (i * 97)}
        for i in range(400)]  # fmt: skip


SMALL = [{"target": f"127.0.1.{i % 250}:3389", "outcome": "refused", "n": i} for i in range(5000)]


def _child(path) -> list[str]:
    """A child that writes the file at ``path`` in odd-sized pieces (rows cut across reads)."""
    code = (
        "import sys\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "for i in range(0, len(data), 7777):\n"
        "    sys.stdout.buffer.write(data[i:i + 7777]); sys.stdout.buffer.flush()\n"
    )
    return [sys.executable, "-c", code, str(path)]


async def _relay(*argvs: list[str]) -> tuple[list[dict], list[int]]:
    got: list[dict] = []
    procs = [
        await asyncio.create_subprocess_exec(*a, stdout=asyncio.subprocess.PIPE) for a in argvs
    ]
    codes = await relay(procs, got.append)
    return got, codes


def test_every_row_once_and_whole_with_its_line(tmp_path):
    text = "".join(dumps(r) + "\n" for r in ROWS)
    assert len(text) > 3 * READ_CHUNK  # many reads, rows cut between them
    (tmp_path / "all").write_text(text)
    (tmp_path / "half").write_text(text[: len(text) // 2])
    got, codes = asyncio.run(_relay(_child(tmp_path / "all"), _child(tmp_path / "half")))
    assert codes == [0, 0]
    whole = [r for r in got if isinstance(r, RelayedRow)]
    assert len(whole) == len(got)
    counts: dict[str, int] = {}
    for row in got:
        counts[row["target"]] = counts.get(row["target"], 0) + 1
        assert dumps(row) == row.line == json.dumps(dict(row))  # written as the worker wrote it
        assert dict(row) == ROWS[row["n"]]
    first_half = {json.loads(line)["target"] for line in text[: len(text) // 2].splitlines()[:-1]}
    assert all(counts[t] == 2 for t in first_half)  # the second child's whole rows, once each
    assert sum(counts.values()) == len(ROWS) + len(first_half)  # its cut last row is dropped


def test_rows_skips_what_is_no_row():
    lines = b'{"a": 1}\n\n{"cut": \nnot json\n[1, 2]\n\xff\xfe\n{"b": 2}'
    assert [dict(r) for r in _rows(lines)] == [{"a": 1}, {"b": 2}]


def test_a_plain_row_is_still_encoded():
    row = {"outcome": "rdp", "data": b"\x01\x02"}
    assert dumps(row) == '{"outcome": "rdp", "data": "0102"}'


class _Out:
    """What WorkerRows writes to: a text stream's binary buffer, counting its writes."""

    def __init__(self) -> None:
        import io

        self.buffer = io.BytesIO()
        self.writes = 0
        real = self.buffer.write

        def write(data: bytes) -> int:
            self.writes += 1
            return real(data)

        self.buffer.write = write  # type: ignore[method-assign]


def test_worker_rows_are_batched_then_flushed_by_time_and_at_the_end():
    from rdprobe.sweep.workers import BATCH_BYTES, FLUSH_S, WorkerRows

    out = _Out()

    async def main() -> None:
        with WorkerRows(out) as rows:  # type: ignore[arg-type]
            for row in ROWS[:5]:
                rows.write((dumps(row), row))
            assert out.writes == 1  # the first row at once, the next ones wait
            await asyncio.sleep(FLUSH_S * 3)
            assert out.writes == 2  # the timer handed them on
            for row in SMALL:
                rows.write((dumps(row), row))
            batches = len(text(SMALL)) // BATCH_BYTES  # full batches go at once, no more
            assert 2 + batches - 1 <= out.writes <= 2 + batches
            rows.write((dumps(ROWS[0]), ROWS[0]))  # the last few wait for the end of the block

    def text(rows: list[dict]) -> str:
        return "".join(dumps(r) + "\n" for r in rows)

    asyncio.run(main())
    written = out.buffer.getvalue().decode().splitlines(keepends=True)
    assert "".join(x for x in written if x[0] != "#") == text(ROWS[:5] + SMALL + ROWS[:1])
    counts = [json.loads(x[1:]) for x in written if x[0] == "#"]  # one count line per batch
    assert len(counts) == out.writes
    assert sum(c["summary"]["rows"] for c in counts) == 5 + len(SMALL) + 1
    assert out.writes <= 4 + len(text(SMALL)) // BATCH_BYTES
