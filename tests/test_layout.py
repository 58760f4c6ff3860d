"""The direction of dependencies (STYLE.md): imports uses profiles, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(source: Path):
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_profiles_app_never_imports_the_imports_app():
    offending = [
        f"{source.relative_to(ROOT)}: {module}"
        for source in sorted((ROOT / "profiles").rglob("*.py"))
        for module in imported_modules(source)
        if module == "imports" or module.startswith("imports.")
    ]
    assert offending == []
