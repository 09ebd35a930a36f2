"""The house rule: bot.core depends on no SDK, storage, scheduler or adapter module."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "bot" / "core"
FORBIDDEN = (
    "telegram",
    "discord",
    "apscheduler",
    "aiosqlite",
    "sqlite3",
    "aiohttp",
    "httpx",
    "bot.adapters",
    "bot.storage",
    "bot.scheduler",
    "bot.bootstrap",
    "bot.web",
    "bot.metrics",
    "prometheus_client",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_sdk_storage_or_adapter() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 5
    offenders = {
        f"{path.name}: {module}"
        for path in files
        for module in imported_modules(path)
        if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert offenders == set()
