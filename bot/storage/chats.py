"""ChatRepository: which chats can be sent to (the core's ChatStore port).

Asked on every update and every send, so the set of unreachable chats is kept in memory, in step
with the table. On SQLite one process owns the database, so the copy stays exact; on PostgreSQL
replicas share it, so the copy is read again once it is SHARED_CACHE_SECONDS old (another replica's
change shows here within that time; a send to a chat it marked unreachable fails and marks it here).
"""

from __future__ import annotations

import time
from datetime import datetime

from bot.storage.db import Database, shared_cache_stale
from bot.storage.rows import to_ms


class ChatRepository:
    db: Database
    _unreachable: set[str] | None
    _unreachable_read: float = 0.0

    async def _unreachable_keys(self) -> set[str]:
        if self._unreachable is None or shared_cache_stale(self.db, self._unreachable_read):
            found = await self.db.fetch("SELECT chat_key FROM chats WHERE unreachable_since IS NOT NULL")
            self._unreachable = {row[0] for row in found}
            self._unreachable_read = time.monotonic()
        return self._unreachable

    async def mark_unreachable(self, chat_key: str, now: datetime, reason: str) -> None:
        keys = await self._unreachable_keys()
        await self.db.execute(
            "INSERT INTO chats (chat_key, unreachable_since, reason) VALUES (?, ?, ?) "
            "ON CONFLICT (chat_key) DO UPDATE SET unreachable_since = excluded.unreachable_since, "
            "reason = excluded.reason",
            chat_key,
            to_ms(now),
            reason[:200],
        )
        keys.add(chat_key)

    async def mark_reachable(self, chat_key: str) -> bool:
        """Record that the chat talked to the bot; True when it had been unreachable."""
        keys = await self._unreachable_keys()
        if chat_key not in keys:
            return False
        await self.db.execute("UPDATE chats SET unreachable_since = NULL, reason = NULL WHERE chat_key = ?", chat_key)
        keys.discard(chat_key)
        return True

    async def is_reachable(self, chat_key: str) -> bool:
        return chat_key not in await self._unreachable_keys()
