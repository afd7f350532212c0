"""Print pip requirements that pin every runtime dependency to its declared lower bound.

CI installs these into a separate venv and runs the unit tests, so a bound in pyproject.toml is
a version that was seen to work, not a guess (``cryptography>=42`` was declared while trust.py
needed 45). Exits 1 when a dependency has no ``>=`` bound.

    python3 scripts/lowest_versions.py > lowest.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        found = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*", dep)
        if found is None:
            raise SystemExit(f"lowest_versions: {dep!r} has no plain >= lower bound")
        name, version = found.groups()
        out.append(f"{name}=={version}")
    return out


if __name__ == "__main__":
    sys.stdout.write("\n".join(pins()) + "\n")
