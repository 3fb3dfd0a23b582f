"""The packages of bot/ are layers: imports point inward, and the rules stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"
#: Inner to outer: a package may import only from packages before it (and config).
LAYERS = ("rules", "storage", "ops", "outbound", "smartrr", "conversation", "console")


def imports_of(package: str) -> set[str]:
    """Every module the package's files import (absolute names)."""
    found: set[str] = set()
    for path in (BOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_the_rules_import_neither_flask_nor_the_database_nor_the_rest_of_the_bot() -> None:
    outside = {
        name
        for name in imports_of("rules")
        if name.split(".")[0] in {"flask", "sqlalchemy", "requests", "twilio", "bot"}
        and not name.startswith("bot.rules")
    }
    assert outside == set()


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_inside_it(package: str) -> None:
    allowed = {"config", *LAYERS[: LAYERS.index(package) + 1]}
    reached = {name.split(".")[1] for name in imports_of(package) if name.startswith("bot.")}
    assert reached - allowed == set()
