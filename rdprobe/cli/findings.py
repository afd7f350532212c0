"""`rdprobe findings`: the findings catalogue, as text or JSON Lines."""

from __future__ import annotations

from rdprobe.cli.options import JsonOpt


def findings(as_json: JsonOpt = False) -> None:
    """List every finding rdprobe can report: id, severity, title, cause, fix and how to confirm it."""
    import json
    import sys

    from rich.console import Console

    from rdprobe.analysis.findings import CATALOGUE, fill

    if as_json:
        for spec in CATALOGUE.values():
            row = {"id": spec.id, "severity": str(spec.severity), "title": fill(spec.title, {})}
            texts = {k: fill(getattr(spec, k), {}) for k in ("cause", "fix", "confirm")}
            sys.stdout.write(json.dumps({**row, **texts}) + "\n")
        return
    console = Console(highlight=False)
    for spec in CATALOGUE.values():
        console.print(f"[bold]{spec.id}[/bold] ({spec.severity}): ", markup=True, end="")
        console.print(fill(spec.title, {}), markup=False)
        console.print(
            f"  Why: {fill(spec.cause, {})}\n  Fix: {fill(spec.fix, {})}\n"
            f"  Confirm on the server: {fill(spec.confirm, {})}",
            markup=False,
        )
