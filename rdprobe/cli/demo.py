"""`rdprobe demo`: emulated listeners on loopback, each checked, the diagnoses printed."""

from __future__ import annotations

from rdprobe.cli.options import JsonOpt


def demo(as_json: JsonOpt = False) -> None:
    """Start emulated listeners on loopback, check each, and print what rdprobe diagnoses."""
    import sys

    from rich.console import Console

    from rdprobe.cli.app import run_async
    from rdprobe.emulate.demo import run_demo
    from rdprobe.render import human, jsonl

    results = run_async(run_demo())
    if as_json:
        for r in results:
            row = {"demo_profile": r.profile, **jsonl.report_dict(r.report)}
            sys.stdout.write(jsonl.dumps(row) + "\n")
    else:
        human.render_demo(
            [(r.profile, r.description, r.report) for r in results], Console(highlight=False)
        )
