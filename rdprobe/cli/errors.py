"""How the command line fails: usage errors, interruptions and bugs, each one short line.

The exit codes themselves (and the rule that picks one from results) live in
``rdprobe.analysis.severity``; this module only maps exceptions onto them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from rdprobe.analysis.severity import ExitCode

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any, NoReturn

#: The most characters of user input an error message repeats (a 5 MB target line must not
#: become a 5 MB line on stderr).
EXCERPT_CHARS = 60
#: A word (file path, quoted input) longer than this in a message is cut to WORD_KEEP characters.
WORD_LIMIT, WORD_KEEP = 160, 100


class UsageError(Exception):
    """Bad input from the user: one line, exit code 2."""


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of user input, cut to ``limit`` characters with the length of what was cut."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(str(text))} characters)"


def short(message: str, limit: int = 300) -> str:
    """One line of at most about ``limit`` characters: messages quote the input they reject, so
    each over-long word is cut to an excerpt and an over-long line loses its middle (the reason
    at its end stays)."""
    words = []
    for word in str(message).split():
        if len(word) > WORD_LIMIT:
            word = f"{word[:WORD_KEEP]}...[{len(word)} characters]"
        words.append(word)
    line = " ".join(words)
    if len(line) <= limit:
        return line
    head, tail = limit * 2 // 3, limit // 3
    return f"{line[:head]} ... {line[-tail:]}"


def say(message: str) -> None:
    """One line on stderr (no rich here: errors must print even before rich is loaded)."""
    sys.stderr.write(short(message, 1000) + "\n")
    sys.stderr.flush()


def _is_click_error(exc: BaseException) -> bool:
    """Click's exceptions (typer may bundle its own Click, so they are recognised by shape)."""
    return hasattr(exc, "exit_code") and (
        hasattr(exc, "format_message") or type(exc).__name__ == "Abort"
    )


def _click_error(exc: Any) -> int:
    """Print a Click usage error as one line; return the exit code."""
    name = type(exc).__name__
    if name == "Abort":  # Click's own Ctrl-C (in a prompt)
        interrupted()
    ctx = getattr(exc, "ctx", None)
    if name == "NoArgsIsHelpError" and ctx is not None:
        sys.stdout.write(ctx.get_help() + "\n")
        return int(ExitCode.USAGE)
    hint = f" (see 'rdprobe {ctx.info_name} --help')" if ctx is not None and ctx.parent else ""
    say(f"rdprobe: error: {short(exc.format_message())}{hint}")
    return int(ExitCode.USAGE)


def run(app: Any) -> NoReturn:
    """Run the typer app: usage errors and bugs become one line, never a traceback."""
    guard(lambda: app(standalone_mode=False, prog_name="rdprobe"))


def _drop_stdout() -> None:
    """Point standard output at the null device, so that the interpreter's last flush of what
    is still buffered for a closed pipe does not raise again at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no descriptor behind it: nothing buffered
        pass


def finish(code: int) -> NoReturn:
    """Exit at once with ``code`` once everything is written and nothing else is running (the
    quick path of a check judged without the prober): the interpreter's teardown of every
    module is skipped, ~6 ms of the whole answer to a refused port on a slow machine."""
    import os

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


#: Whether this run has said it was interrupted (guard says so when nothing else did).
_TOLD = [False]


def say_interrupted(detail: str = "") -> None:
    """The one line Ctrl-C prints: ``rdprobe: interrupted``, with what finished and how to go
    on when the command knows (check: the targets finished; sweep: --resume FILE, written
    whole: a path to paste is never shortened)."""
    sys.stderr.write(f"rdprobe: interrupted; {detail}\n" if detail else "rdprobe: interrupted\n")
    sys.stderr.flush()
    _TOLD[0] = True


def interrupted() -> NoReturn:
    """Ctrl-C: one line, exit 130 (what finished is already printed or written)."""
    say_interrupted()
    sys.exit(int(ExitCode.INTERRUPTED))


def guard(command: Callable[[], object]) -> NoReturn:
    """Run a command (the typer app, or the quick path of `check`) and exit with the code it
    returns: usage errors, interruptions and bugs become one line, never a traceback."""
    try:
        code = command()
    except UsageError as exc:
        say(f"rdprobe: error: {short(str(exc))}")
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        interrupted()
    except BrokenPipeError:  # the reader of standard output is gone: no error to tell anyone
        _drop_stdout()
        sys.exit(int(ExitCode.OUTPUT_CLOSED))
    except SystemExit:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # click met the closed pipe first
            sys.exit(int(ExitCode.OUTPUT_CLOSED))  # (and exits 1): the same code on both paths
        raise
    except Exception as exc:  # one line, never a traceback
        if _is_click_error(exc):
            sys.exit(_click_error(exc))
        say(f"rdprobe: internal error: {type(exc).__name__}: {short(str(exc))}")
        sys.exit(int(ExitCode.INTERNAL))
    if code == ExitCode.INTERRUPTED and not _TOLD[0]:  # typer turns a Ctrl-C in its own
        interrupted()  # parsing (or before a command's handler) into a silent exit code 130
    sys.exit(code if isinstance(code, int) else 0)
