"""UpdateRepository: the Telegram update ids webhooks have taken (table telegram_updates, migration 012).

Telegram re-sends an update whose webhook response was slow or failed, possibly to another replica. The
first replica to insert the update id handles it; the others see the row and answer without handling it
again. A claim whose handling raised is released, so Telegram's next attempt is handled.
"""

from __future__ import annotations

from datetime import datetime

from bot.storage.db import Database
from bot.storage.rows import to_ms


class UpdateRepository:
    db: Database

    async def claim_update(self, update_id: int, now: datetime, replica: str) -> bool:
        """Take the update for `replica`; False when some replica (this one included) took it before."""
        taken = await self.db.fetch(
            "INSERT INTO telegram_updates (update_id, received_at, replica) VALUES (?, ?, ?) "
            "ON CONFLICT (update_id) DO NOTHING RETURNING update_id",
            update_id,
            to_ms(now),
            replica,
        )
        return bool(taken)

    async def release_update(self, update_id: int) -> None:
        """Forget a claim whose handling failed, so the update is handled when Telegram sends it again."""
        await self.db.execute("DELETE FROM telegram_updates WHERE update_id = ?", update_id)

    async def prune_updates(self, before: datetime) -> int:
        """Forget the update ids received before `before` (Telegram re-sends for minutes, not days);
        returns how many were removed."""
        removed = await self.db.fetch(
            "DELETE FROM telegram_updates WHERE received_at < ? RETURNING update_id", to_ms(before)
        )
        return len(removed)
