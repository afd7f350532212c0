"""The one account an authenticated `check` logs on with, and where its password comes from.

The password is read from RDPROBE_PASSWORD or a no-echo prompt, never from an option. It is held
in one place (a list that `clear()` empties) and never appears in a repr, an exception or a
result: reports carry `display` (DOMAIN\\NAME) only. Python cannot wipe an immutable str from
memory; dropping every reference as soon as the logon is over is what it can do.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable

PASSWORD_ENV = "RDPROBE_PASSWORD"
MAX_FIELD = 256  #: characters; Windows' own limits are shorter (MS-RDPBCGR 2.2.1.11.1.1)


class CredentialError(ValueError):
    """A --user value or password source that cannot be used (the text never holds a secret)."""


class Credentials:
    """User, optional domain, and the password (hidden)."""

    __slots__ = ("_secret", "domain", "user")

    def __init__(self, user: str, domain: str, password: str) -> None:
        self.user = user
        self.domain = domain
        self._secret: list[str] = [password]

    @property
    def display(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain else self.user

    def password(self) -> str:
        """The password, for the one logon; CredentialError once cleared."""
        if not self._secret:
            raise CredentialError("the password was already cleared")
        return self._secret[0]

    def clear(self) -> None:
        self._secret.clear()

    def __repr__(self) -> str:
        return f"Credentials(user={self.display}, password=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:  # never pickled into a worker process or a file
        raise TypeError("Credentials cannot be pickled")


def parse_user(text: str) -> tuple[str, str]:
    """'DOMAIN\\NAME' or 'NAME' (a UPN name@domain stays whole) -> (domain, name)."""
    text = text.strip()
    domain, sep, name = text.rpartition("\\")
    if not sep:
        domain, name = "", text
    if not name or "\\" in domain or "/" in text:
        raise CredentialError("--user must be NAME or DOMAIN\\NAME")
    for part in (domain, name):
        if len(part) > MAX_FIELD or any(ord(c) < 32 for c in part):
            raise CredentialError("--user holds control characters or is too long")
    return domain, name


def read_password(
    *,
    environ: dict[str, str] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
    interactive: bool | None = None,
) -> str:
    """From RDPROBE_PASSWORD, else a no-echo prompt when stdin is a terminal."""
    env = os.environ if environ is None else environ
    value = env.get(PASSWORD_ENV)
    if value is None:
        tty = sys.stdin.isatty() if interactive is None else interactive
        if not tty:
            raise CredentialError(
                f"--user needs the password in {PASSWORD_ENV} (no terminal to prompt on)"
            )
        try:
            value = prompt("Password: ")
        except (EOFError, KeyboardInterrupt):
            raise CredentialError("no password entered") from None
    if value == "":
        raise CredentialError("empty password")
    if len(value) > MAX_FIELD or "\x00" in value:
        raise CredentialError("the password is too long or holds a NUL character")
    return value
