"""`rdprobe findings`: the findings catalogue, as text or JSON Lines."""

from __future__ import annotations

from rdprobe.cli.options import JsonOpt


def findings(as_json: JsonOpt = False) -> None:
    """List every finding rdprobe can report: id, severity, title, cause and fix."""
    import json
    import sys

    from rich.console import Console

    from rdprobe.analysis.findings import CATALOGUE

    if as_json:
        for spec in CATALOGUE.values():
            row = {"id": spec.id, "severity": str(spec.severity), "title": spec.title}
            sys.stdout.write(json.dumps({**row, "cause": spec.cause, "fix": spec.fix}) + "\n")
        return
    console = Console(highlight=False)
    for spec in CATALOGUE.values():
        console.print(f"[bold]{spec.id}[/bold] ({spec.severity}): {spec.title}", markup=True)
        console.print(f"  Why: {spec.cause}\n  Fix: {spec.fix}", markup=False)
