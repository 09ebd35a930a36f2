"""Store: every repository over one Database, opened from a SQLite path or a postgresql:// URL.

Each repository is its own class in its own module (study, chats, daily, competition, privacy, links, ...) and
implements one port of the core; services are typed against those narrow ports. Store puts them
together over one connection layer for the composition root and for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from bot.storage.chats import ChatRepository
from bot.storage.competition import CompetitionRepository
from bot.storage.daily import DailyRepository
from bot.storage.db import Database, open_database
from bot.storage.decks import DeckRepository
from bot.storage.interviews import InterviewRepository
from bot.storage.links import LinkRepository
from bot.storage.plans import PlanRepository
from bot.storage.privacy import PrivacyRepository
from bot.storage.progress import ProgressRepository
from bot.storage.study import StudyRepository
from bot.storage.updates import UpdateRepository


class Store(
    StudyRepository,
    ChatRepository,
    DailyRepository,
    CompetitionRepository,
    PrivacyRepository,
    ProgressRepository,
    InterviewRepository,
    PlanRepository,
    LinkRepository,
    DeckRepository,
    UpdateRepository,
):
    """All persistence of StudyBot, on SQLite (the embedded default) or PostgreSQL."""

    def __init__(self, location: Path | str, *, pgbouncer: bool = False) -> None:
        self.location = str(location)
        self.db: Database = open_database(location, pgbouncer=pgbouncer)
        self._unreachable: set[str] | None = None
        self._paused: dict[str, str] | None = None

    @property
    def engine(self) -> str:
        return self.db.engine

    async def open(self) -> Self:
        """Connect (creating a SQLite file and its folder if needed) and migrate to the latest schema."""
        await self.db.open()
        return self

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def migrate(self) -> int:
        return await self.db.migrate()

    async def schema_version(self) -> int:
        return await self.db.schema_version()
