"""`rdprobe report FILE.jsonl...`: saved results again, as the report, the table, CSV or HTML.

Reads rows of ``check --json``, ``sweep -o`` and ``pcap --json`` (schema rdprobe.report/1 or
/2); lines that are no result row are counted and skipped. Exit code: the rule of ``check``
applied to the rows read.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.cli.options import VerboseOpt


def report(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE", help="JSON Lines of rdprobe check, sweep or pcap (- = stdin)"
        ),
    ],
    html: Annotated[
        str | None,
        typer.Option("--html", metavar="OUT.html", help="Write the self-contained HTML report."),
    ] = None,
    csv_file: Annotated[
        str | None, typer.Option("--csv", metavar="FILE", help="Write one CSV line per row.")
    ] = None,
    table: Annotated[bool, typer.Option("--table", help="Only the compact table.")] = False,
    sort: Annotated[
        str,
        typer.Option(metavar="ORDER", help="Order: severity (worst first), target, or input."),
    ] = "severity",
    verbose: VerboseOpt = False,
) -> None:
    """Show saved results again: the report, the table, CSV, or a self-contained HTML file."""
    from rdprobe.analysis.severity import exit_code
    from rdprobe.cli.errors import say
    from rdprobe.render import rows, saved
    from rdprobe.render import table as table_mod

    if sort not in rows.SORTS:
        raise UsageError(f"--sort must be severity, target or input, not {excerpt(sort)}")
    handles = []
    for name in files:
        if name == "-":
            handles.append(("<stdin>", sys.stdin))
            continue
        try:
            handles.append((name, open(name, encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        views, bad = rows.load(handles)
    finally:
        for name, fh in handles:
            if name != "<stdin>":
                fh.close()
    if bad:
        say(f"rdprobe: warning: {bad} line(s) were no rdprobe result row and were skipped")
    if not views:
        raise UsageError("no rdprobe result rows in " + ", ".join(excerpt(f) for f in files))
    ordered = table_mod.ordered(views, sort)
    if html is not None:
        from rdprobe.render import html as html_mod

        _write(html, html_mod.render(ordered, sources=[n for n, _ in handles]))
        say(f"rdprobe: wrote {html} ({len(views)} targets)")
    if csv_file is not None:
        import io

        from rdprobe.render.csv import CsvWriter

        buf = io.StringIO()
        writer = CsvWriter(buf, header=True)
        for v in ordered:
            writer.write(v.row)
        _write(csv_file, buf.getvalue())
    if (html is None and csv_file is None) or table:
        if not table:
            saved.render(ordered, sys.stdout, verbose=verbose)
            sys.stdout.write("\n")
        table_mod.render(ordered, table_mod.wide_console(), sort=sort)
    raise typer.Exit(int(exit_code((v.outcome, v.worst) for v in views)))


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
