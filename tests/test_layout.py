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


SOURCE_PACKAGES = ("profiles", "imports", "profiles_site")
MAX_SOURCE_LINES = 500


def _module_name(source: Path) -> str:
    parts = list(source.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(source: Path, modules: set[str]) -> set[str]:
    """The project modules a module imports when it is loaded (not inside functions). A package
    being loaded is not counted as imported again by its own modules."""
    found: set[str] = set()
    for node in ast.parse(source.read_text(), filename=str(source)).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                # `from package import module` loads that module; anything else, the package's.
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found & modules


def _project_sources() -> list[Path]:
    return [
        source
        for package in SOURCE_PACKAGES
        for source in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in source.parts
    ]


def test_no_import_cycle_through_top_level_imports():
    sources = {_module_name(source): source for source in _project_sources()}
    graph = {
        name: _top_level_imports(path, set(sources)) - {name} for name, path in sources.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_source_file_holds_more_than_one_idea_by_its_size():
    oversized = [
        f"{source.relative_to(ROOT)}: {count} lines"
        for source in _project_sources()
        if (count := len(source.read_text().splitlines())) > MAX_SOURCE_LINES
    ]
    assert oversized == []
