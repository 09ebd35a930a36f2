"""SqliteStore: the Store on a SQLite file (the embedded default), by path."""

from __future__ import annotations

from pathlib import Path

from bot.storage.db import is_postgres_url
from bot.storage.store import Store


class SqliteStore(Store):
    """All persistence of StudyBot in one SQLite file (or ':memory:')."""

    def __init__(self, path: Path | str) -> None:
        if is_postgres_url(str(path)):
            raise ValueError("SqliteStore takes a file path; use Store for a postgresql:// URL")
        super().__init__(path)
        self.path = str(path)
