"""The sweep's progress bar on stderr: done/total, rate, time left and the outcomes so far."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
)
from rich.text import Text


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


class _Counts(ProgressColumn):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__()
        self.counts = counts

    def render(self, task: Task) -> Text:
        return Text(" ".join(f"{k} {n}" for k, n in self.counts.most_common(6)))


def sweep_progress(console: Console, outcomes: Counter[str]) -> Progress:
    return Progress(
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        _Counts(outcomes),
        console=console,
        transient=False,
    )
