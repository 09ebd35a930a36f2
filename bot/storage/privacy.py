"""PrivacyRepository: a learner's data, all of it, to export or to erase (the PrivacyStore port)."""

from __future__ import annotations

from typing import Any

from bot.core.model import Identity
from bot.storage import rows
from bot.storage.db import Database

# Every table that holds a learner's rows, and the column naming them (export and forget).
LEARNER_TABLES = (
    ("learners", "id"),
    ("identities", "learner_id"),
    ("card_states", "learner_id"),
    ("reviews", "learner_id"),
    ("attempts", "learner_id"),
    ("subscriptions", "learner_id"),
    ("round_answers", "learner_id"),
    ("plans", "learner_id"),
    ("interviews", "learner_id"),
    ("interview_answers", "learner_id"),
)


def _private_chat_keys(identities: list[Identity]) -> list[str]:
    # private chats are keyed by the user's own id on every platform we support
    keys = [f"{i.platform}:{i.external_id}" for i in identities]
    return keys + [f"{i.platform}:user:{i.external_id}" for i in identities]


class PrivacyRepository:
    db: Database
    _unreachable: set[str] | None
    _paused: dict[str, str] | None

    async def export_learner(self, learner_id: int) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for table, column in LEARNER_TABLES:
            found = await self.db.fetch(f"SELECT * FROM {table} WHERE {column} = ?", learner_id)
            data[table] = [rows.exported(row) for row in found]
        keys = _private_chat_keys([Identity(i["platform"], i["external_id"]) for i in data["identities"]])
        if keys:
            marks = ", ".join("?" for _ in keys)
            chats = await self.db.fetch(f"SELECT * FROM chats WHERE chat_key IN ({marks})", *keys)
            data["chats"] = [rows.exported(row) for row in chats]
            # the decks they imported in their private chats, with every card
            decks = await self.db.fetch(f"SELECT * FROM decks WHERE owner IN ({marks}) ORDER BY id", *keys)
            data["decks"] = [rows.exported(row) for row in decks]
            cards = await self.db.fetch(
                f"SELECT * FROM deck_cards WHERE deck_id IN (SELECT id FROM decks WHERE owner IN ({marks})) "
                "ORDER BY deck_id, position",
                *keys,
            )
            data["deck_cards"] = [rows.exported(row) for row in cards]
        data["learner"] = data.pop("learners")[0] if data["learners"] else None
        return data

    async def forget_learner(self, learner_id: int) -> list[Identity]:
        """Erase the learner and everything about them, in one transaction; returns their identities."""
        async with self.db.transaction() as tx:
            found = await tx.fetch("SELECT platform, external_id FROM identities WHERE learner_id = ?", learner_id)
            identities = [Identity(row[0], row[1]) for row in found]
            keys = _private_chat_keys(identities)
            if keys:
                marks = ", ".join("?" for _ in keys)
                await tx.execute(f"DELETE FROM chats WHERE chat_key IN ({marks})", *keys)
                for table in ("subscriptions", "matches", "rounds", "chat_decks"):  # their private chats' too
                    await tx.execute(f"DELETE FROM {table} WHERE chat_key IN ({marks})", *keys)
                # the decks they imported in their private chats
                await tx.execute(
                    f"DELETE FROM deck_cards WHERE deck_id IN (SELECT id FROM decks WHERE owner IN ({marks}))", *keys
                )
                await tx.execute(f"DELETE FROM decks WHERE owner IN ({marks})", *keys)
            for identity in identities:  # what is kept per account: wrong link codes, messages waiting
                for table in ("link_failures", "link_notices"):
                    await tx.execute(
                        f"DELETE FROM {table} WHERE platform = ? AND external_id = ?",
                        identity.platform,
                        identity.external_id,
                    )
            # the rest goes by ON DELETE CASCADE / SET NULL from the learner row
            await tx.execute("DELETE FROM learners WHERE id = ?", learner_id)
        if self._unreachable is not None:
            self._unreachable.difference_update(keys)
        self._paused = None  # their subscriptions are gone: read the paused ones again when next asked
        return identities
