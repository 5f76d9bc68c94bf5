"""The folders say where things are, and the imports keep to them.

Each folder of bot/ is a layer with a rule about what it may import, checked on the module-level
imports of every module (imports inside functions load lazily and are allowed to reach further).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"

# A folder, and what its modules must never import at module level.
FORBIDDEN = {
    "core": ("telegram", "sqlalchemy", "bot.db", "bot.domain", "bot.render", "bot.telegram"),
    "domain": (
        "telegram",
        "bot.telegram",
        "bot.handlers",
        "bot.delivery",
        "bot.render",
        "bot.app",
    ),
    "render": ("telegram", "bot.telegram", "bot.handlers", "bot.delivery", "bot.app"),
    "db": (
        "telegram",
        "bot.telegram",
        "bot.handlers",
        "bot.delivery",
        "bot.domain",
        "bot.render",
    ),
    "crisis": ("telegram", "sqlalchemy", "bot.db", "bot.domain", "bot.telegram", "bot.handlers"),
    "handlers": ("bot.app", "bot.delivery"),
}
# Loaded on first use (a chart, a PDF): a start that never draws one should not pay for them.
HEAVY = ("matplotlib", "fpdf", "PIL", "numpy")


def module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def bot_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for path in sorted(BOT.rglob("*.py"))
        if "migrations" not in path.parts
    }


def _runs_at_import(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, into if/try blocks but not `if TYPE_CHECKING:`."""
    for statement in statements:
        if isinstance(statement, ast.If):
            if isinstance(statement.test, ast.Name) and statement.test.id == "TYPE_CHECKING":
                continue
            yield from _runs_at_import(statement.body + statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from _runs_at_import(statement.body + statement.finalbody)
        else:
            yield statement


def imports_at_load(path: Path, known: set[str]) -> set[str]:
    """The modules a module imports when it is loaded ("from bot.x import y" counts bot.x.y when
    that is a module of ours, else bot.x)."""
    found: set[str] = set()
    for statement in _runs_at_import(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
            for alias in statement.names:
                submodule = f"{statement.module}.{alias.name}"
                found.add(submodule if submodule in known else statement.module)
    return found


def test_the_layout_check_sees_every_module_and_its_imports() -> None:
    modules = bot_modules()
    # A check that found nothing to check would pass for any layout.
    assert {"bot.app", "bot.delivery.dispatch", "bot.domain.journal", "bot.core.schedule"} <= set(
        modules
    )
    journal = imports_at_load(modules["bot.handlers.journal"], set(modules))
    assert "bot.domain.journal" in journal
    assert "telegram" in {name.split(".")[0] for name in journal}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_each_folder_imports_only_what_its_layer_may(folder: str) -> None:
    modules = bot_modules()
    inside = {name: path for name, path in modules.items() if name.split(".")[1:2] == [folder]}
    assert inside, f"bot/{folder}/ holds no modules"
    breaches = sorted(
        f"{name} imports {imported}"
        for name, path in inside.items()
        for imported in imports_at_load(path, set(modules))
        for banned in FORBIDDEN[folder]
        if imported == banned or imported.startswith(banned + ".")
    )
    assert breaches == []


def test_no_import_cycles_among_our_modules() -> None:
    modules = bot_modules()
    graph = {
        name: {
            imported
            for imported in imports_at_load(path, set(modules))
            if imported in modules and imported != name
        }
        for name, path in modules.items()
    }
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {i for i in graph[name] if not name.startswith(i + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path being walked, 2 done

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for imported in sorted(graph[name]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                walk(imported, [*path, imported])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == []


def test_starting_the_bot_loads_no_heavy_library() -> None:
    probe = (
        "import sys, bot.__main__, bot.app, bot.handlers\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
