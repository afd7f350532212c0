"""The layers, enforced: protocol/ is the bottom (sans-IO, imports nothing above it); analysis/ is
pure judgement (imports no adapter: live, capture, emulate, sweep, render, cli, trust_store).

Imports are read with ast from every module, including imports inside functions and under
TYPE_CHECKING, so a lazy import does not slip through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rdprobe"

#: layer -> the rdprobe modules (top-level names under rdprobe.) it may import
ALLOWED = {
    "protocol": {"protocol"},
    "analysis": {"protocol", "analysis"},
}
ADAPTERS = ("live", "capture", "emulate", "sweep", "render", "cli", "cli_pcap", "cli_sweep")


def rdprobe_imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an rdprobe module in one file."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "rdprobe":  # from rdprobe import live
                found += [(node.lineno, f"rdprobe.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m == "rdprobe" or m.startswith("rdprobe.")]


def layer_violations(layer: str, root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted((root / layer).rglob("*.py")):
        for line, module in rdprobe_imports(path, root):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            if parts[1] not in ALLOWED[layer]:
                out.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_nothing_above_it(layer: str) -> None:
    assert layer_violations(layer) == []


#: sibling adapters share only the layers below them (the pcap path once imported the
#: encryption-level inference and the reply limits from live/)
SIBLINGS = {"live": {"capture"}, "capture": {"live"}}


@pytest.mark.parametrize("adapter", sorted(SIBLINGS))
def test_live_and_capture_do_not_import_each_other(adapter: str) -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sorted((PACKAGE / adapter).rglob("*.py"))
        for line, module in rdprobe_imports(path, PACKAGE)
        if len(module.split(".")) > 1 and module.split(".")[1] in SIBLINGS[adapter]
    ]
    assert found == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The test can fail: a module of analysis/ that imports live (lazily, in a function) and a
    protocol/ module importing analysis are both caught, relative imports included."""
    fake = tmp_path / "rdprobe"
    (fake / "analysis").mkdir(parents=True)
    (fake / "protocol").mkdir()
    (fake / "analysis" / "bad.py").write_text(
        "def f():\n    from rdprobe.live import check\n    from ..render import human\n"
    )
    (fake / "protocol" / "bad.py").write_text("from rdprobe import analysis\n")
    assert layer_violations("analysis", fake) == [
        "rdprobe/analysis/bad.py:2 imports rdprobe.live",
        "rdprobe/analysis/bad.py:3 imports rdprobe.render",
    ]
    assert layer_violations("protocol", fake) == [
        "rdprobe/protocol/bad.py:1 imports rdprobe.analysis"
    ]


def test_adapters_named_here_exist() -> None:
    """The forbidden names are real modules, so the rule above guards something."""
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    assert {"live", "capture", "emulate", "sweep", "render"} <= names
    assert any(n.startswith("cli") for n in names)
    assert set(ADAPTERS) >= {"live", "capture", "emulate", "sweep", "render", "cli"}
