"""DeckRepository: imported decks, their cards and each chat's choice of decks (the DeckStore port)."""

from __future__ import annotations

import json
from datetime import datetime

from bot.core.decks import DeckRecord, NewCard, SaveCounts, card_from_body
from bot.core.model import Card, Topic
from bot.storage.db import Database, Row, Tx
from bot.storage.rows import from_ms, to_ms

_DECK = "id, owner, name, title, source, imported_by, created_at, updated_at"
_OF_DECK = "SELECT card_id FROM deck_cards WHERE deck_id = ?"


def _record(row: Row, cards: list[Row]) -> DeckRecord:
    active: list[Card] = []
    retired: list[Card] = []
    topics: dict[str, Topic] = {}
    for card_row in cards:
        card, topic = card_from_body(card_row["card_id"], row["name"], card_row["body"])
        if card_row["retired"]:
            retired.append(card)
        else:
            active.append(card)
            topics.setdefault(topic.slug, topic)
    return DeckRecord(
        id=int(row["id"]),
        owner=row["owner"],
        name=row["name"],
        title=row["title"],
        source=row["source"],
        imported_by=row["imported_by"],
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
        cards=tuple(active),
        retired=tuple(retired),
        topics=tuple(topics.values()),
    )


class DeckRepository:
    db: Database

    async def load_decks(self) -> list[DeckRecord]:
        decks = await self.db.fetch(f"SELECT {_DECK} FROM decks ORDER BY id")
        cards = await self.db.fetch("SELECT deck_id, card_id, retired, body FROM deck_cards ORDER BY deck_id, position")
        by_deck: dict[int, list[Row]] = {}
        for card in cards:
            by_deck.setdefault(int(card["deck_id"]), []).append(card)
        return [_record(row, by_deck.get(int(row["id"]), [])) for row in decks]

    async def _read_deck(self, tx: Tx, deck_id: int) -> DeckRecord:
        row = await tx.fetchrow(f"SELECT {_DECK} FROM decks WHERE id = ?", deck_id)
        assert row is not None
        cards = await tx.fetch(
            "SELECT card_id, retired, body FROM deck_cards WHERE deck_id = ? ORDER BY position", deck_id
        )
        return _record(row, cards)

    async def save_deck(
        self, owner: str, name: str, title: str, source: str, imported_by: str, now: datetime, cards: list[NewCard]
    ) -> tuple[DeckRecord, SaveCounts]:
        at = to_ms(now)
        async with self.db.transaction() as tx:
            found = await tx.fetchrow("SELECT id FROM decks WHERE owner = ? AND name = ?", owner, name)
            created = found is None
            if found is None:
                inserted = await tx.fetchrow(
                    "INSERT INTO decks (owner, name, title, source, imported_by, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    owner,
                    name,
                    title,
                    source,
                    imported_by,
                    at,
                    at,
                )
                assert inserted is not None
                deck_id = int(inserted["id"])
            else:
                deck_id = int(found["id"])
                await tx.execute(
                    "UPDATE decks SET title = ?, source = ?, imported_by = ?, updated_at = ? WHERE id = ?",
                    title,
                    source,
                    imported_by,
                    at,
                    deck_id,
                )
            stored = {
                row["match_key"]: row
                for row in await tx.fetch(
                    "SELECT card_id, seq, match_key, retired, body FROM deck_cards WHERE deck_id = ?", deck_id
                )
            }
            seq = max((int(row["seq"]) for row in stored.values()), default=0)
            added = updated = unchanged = restored = 0
            inserts: list[tuple[object, ...]] = []
            updates: list[tuple[object, ...]] = []
            for position, card in enumerate(cards):
                old = stored.pop(card.match_key, None)
                if old is None:
                    seq += 1
                    inserts.append((f"{deck_id}:{seq}", deck_id, seq, card.match_key, position, card.body))
                    added += 1
                    continue
                if old["retired"]:
                    restored += 1
                elif json.loads(old["body"]) == json.loads(card.body):
                    unchanged += 1
                else:
                    updated += 1
                updates.append((position, card.body, old["card_id"]))
            if inserts:
                await tx.executemany(
                    "INSERT INTO deck_cards (card_id, deck_id, seq, match_key, position, retired, body) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?)",
                    inserts,
                )
            if updates:
                await tx.executemany(
                    "UPDATE deck_cards SET position = ?, body = ?, retired = 0 WHERE card_id = ?", updates
                )
            gone = [(row["card_id"],) for row in stored.values() if not row["retired"]]
            if gone:
                await tx.executemany("UPDATE deck_cards SET retired = 1 WHERE card_id = ?", gone)
            deck = await self._read_deck(tx, deck_id)
        counts = SaveCounts(
            added=added,
            updated=updated,
            unchanged=unchanged,
            restored=restored,
            retired=len(gone),
            created=created,
        )
        return deck, counts

    async def delete_deck(self, deck_id: int) -> int:
        async with self.db.transaction() as tx:
            counted = await tx.fetchrow(f"SELECT COUNT(*) AS n FROM reviews WHERE card_id IN ({_OF_DECK})", deck_id)
            reviews = int(counted["n"]) if counted is not None else 0
            for table in ("reviews", "card_states", "attempts"):
                await tx.execute(f"DELETE FROM {table} WHERE card_id IN ({_OF_DECK})", deck_id)
            deck = await tx.fetchrow("SELECT owner, name FROM decks WHERE id = ?", deck_id)
            await tx.execute("DELETE FROM deck_cards WHERE deck_id = ?", deck_id)
            await tx.execute("DELETE FROM decks WHERE id = ?", deck_id)
            if deck is not None:
                # the chats that chose it (its own chat; any chat for an operator's deck) stop drawing from it
                chosen = await tx.fetch("SELECT chat_key, decks FROM chat_decks")
                for row in chosen:
                    if deck["owner"] not in ("", row["chat_key"]):
                        continue
                    names = [n for n in json.loads(row["decks"]) if n != deck["name"]]
                    if len(names) == len(json.loads(row["decks"])):
                        continue
                    if names:
                        await tx.execute(
                            "UPDATE chat_decks SET decks = ? WHERE chat_key = ?", json.dumps(names), row["chat_key"]
                        )
                    else:
                        await tx.execute("DELETE FROM chat_decks WHERE chat_key = ?", row["chat_key"])
        return reviews

    async def deck_version(self) -> tuple[int, int]:
        row = await self.db.fetchrow("SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS at FROM decks")
        return (0, 0) if row is None else (int(row["n"]), int(row["at"]))

    async def chat_decks(self, chat_key: str) -> list[str] | None:
        row = await self.db.fetchrow("SELECT decks FROM chat_decks WHERE chat_key = ?", chat_key)
        return None if row is None else [str(name) for name in json.loads(row["decks"])]

    async def set_chat_decks(self, chat_key: str, names: list[str] | None, now: datetime) -> None:
        if names is None:
            await self.db.execute("DELETE FROM chat_decks WHERE chat_key = ?", chat_key)
            return
        await self.db.execute(
            "INSERT INTO chat_decks (chat_key, decks, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (chat_key) DO UPDATE SET decks = excluded.decks, updated_at = excluded.updated_at",
            chat_key,
            json.dumps(names),
            to_ms(now),
        )
