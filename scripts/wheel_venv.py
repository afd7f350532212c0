"""rdprobe as users get it, for the benchmarks: a wheel of the tree installed into a throwaway
venv (not a test).

An editable install (``pip install -e``) adds its import hook to every start-up (about 12 ms),
and where PYTHONDONTWRITEBYTECODE is set (this workplace sets it) an editable tree has no .pyc
files, so every run compiles every module it imports again; a wheel installed by pip has both
right. The dependencies come from the running interpreter's site-packages through a .pth file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def installed_python(root: Path, work: Path) -> Path | None:
    """Build a wheel of the tree at ``root`` and install it into a new venv under ``work``: that
    venv's python, or None (with the reason printed) when that cannot be done here."""
    wheels, venv, src = work / "wheel", work / "venv", work / "src"
    # built from a copy: setuptools leaves build/ and rdprobe.egg-info in the tree it builds
    shutil.copytree(root / "rdprobe", src / "rdprobe", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(root / name, src / name)
    steps = [
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            print(f"cannot install a wheel ({step[2]}): {done.stderr.strip()[-300:]}")
            return None
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("rdprobe-*.whl")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"cannot install the wheel: {done.stderr.strip()[-300:]}")
        return None
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    import sysconfig

    # the dependencies (typer, rich, cryptography...): this interpreter's site-packages, whose
    # own .pth files (the editable install's hook among them) are not run from there
    Path(purelib, "rdprobe-bench-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python
