"""StudyRepository: learners, card states, attempts and the review log (the core's StudyStore port).

Round trips per user action (see tests/integration/test_round_trips.py):
- ask: the learner (1), pick context (1), the new attempt (1; a trigger expires the others) = 3;
- reveal, multiple choice, a typed answer: the attempt with its learner and card state (1), a
  compare-and-set UPDATE (1) = 2;
- a rating or a chosen option: that read (1) and BEGIN, compare-and-set, card state upsert, review
  insert, COMMIT (5) = 6.
A single statement needs no BEGIN/COMMIT: it is its own transaction on both engines.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from bot.core.model import (
    Attempt,
    AttemptStatus,
    AttemptView,
    CardState,
    Identity,
    Learner,
    PickContext,
    PlanFocus,
    Preview,
    Review,
)
from bot.storage import rows
from bot.storage.db import Database, Tx
from bot.storage.rows import ATTEMPT_COLUMNS, LEARNER_COLUMNS, STATE_COLUMNS, columns, from_ms, to_ms

ACTIVE = (AttemptStatus.OPEN, AttemptStatus.CHOICE, AttemptStatus.REVEALED)
NAME_LIMIT = 64

_FIND_LEARNER = (
    "SELECT l.* FROM identities i JOIN learners l ON l.id = i.learner_id WHERE i.platform = ? AND i.external_id = ?"
)
_ATTEMPT_FOR = (
    f"SELECT {columns('a', ATTEMPT_COLUMNS)}, {columns('l', LEARNER_COLUMNS, 'l_')}, "
    f"{columns('s', STATE_COLUMNS, 's_')} FROM attempts a "
    "LEFT JOIN identities i ON i.platform = ? AND i.external_id = ? "
    "LEFT JOIN learners l ON l.id = i.learner_id "
    "LEFT JOIN card_states s ON s.learner_id = a.learner_id AND s.card_id = a.card_id "
    "WHERE a.id = ?"
)
_OPEN_ATTEMPT_FOR = (
    f"SELECT {columns('l', LEARNER_COLUMNS)}, {columns('a', ATTEMPT_COLUMNS, 'a_')}, "
    f"{columns('s', STATE_COLUMNS, 's_')} FROM identities i JOIN learners l ON l.id = i.learner_id "
    "LEFT JOIN attempts a ON a.id = (SELECT MAX(x.id) FROM attempts x WHERE x.learner_id = l.id "
    "AND x.chat_key = ? AND x.status IN ('open', 'choice', 'revealed')) "
    "LEFT JOIN card_states s ON s.learner_id = l.id AND s.card_id = a.card_id "
    "WHERE i.platform = ? AND i.external_id = ?"
)
# kind 0: a card state; 1: a card skipped recently; 2: the learner's plan, if any (its date, whether it is
# rushed, its time zone and topics), so choosing a card under a plan costs no extra round trip.
_PICK_CONTEXT = (
    "SELECT card_id, due, first_day, 0 AS kind, NULL AS topics, stability, last_review FROM card_states "
    "WHERE learner_id = ? "
    "UNION ALL SELECT card_id, NULL, NULL, 1, NULL, NULL, NULL FROM attempts "
    "WHERE learner_id = ? AND status = 'skipped' AND closed_at >= ? "
    "UNION ALL SELECT target_day, rushed, timezone, 2, topics, NULL, NULL FROM plans WHERE learner_id = ? "
    "ORDER BY kind, due, card_id"
)
_UPSERT_STATE = (
    f"INSERT INTO card_states (learner_id, card_id, {', '.join(STATE_COLUMNS)}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (learner_id, card_id) DO UPDATE SET state = excluded.state, step = excluded.step, "
    "stability = excluded.stability, difficulty = excluded.difficulty, due = excluded.due, "
    "last_review = excluded.last_review, reps = excluded.reps, lapses = excluded.lapses, "
    "first_day = COALESCE(card_states.first_day, excluded.first_day)"
)
_INSERT_REVIEW = (
    "INSERT INTO reviews (learner_id, card_id, rating, reviewed_at, mode, local_day, was_new, state_before) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class _LostRace(Exception):
    """Raised inside a transaction to roll it back: a concurrent first contact created the learner."""


def _statuses(expected: Collection[AttemptStatus]) -> tuple[str, tuple[str, ...]]:
    values = tuple(s.value for s in expected)
    return ", ".join("?" for _ in values), values


class StudyRepository:
    db: Database

    # --- learners ------------------------------------------------------------------------------

    async def ensure_learner(
        self, identity: Identity, display_name: str, now: datetime, timezone: str, new_per_day: int
    ) -> Learner:
        """The identity's learner, created on first contact; renamed when the platform name changed."""
        name = display_name.strip()[:NAME_LIMIT] or "learner"
        known = await self.find_learner(identity)  # the common case: one read
        if known is not None:
            if known.display_name == name:
                return known
            await self.db.execute("UPDATE learners SET display_name = ? WHERE id = ?", name, known.id)
            return dataclasses.replace(known, display_name=name)
        try:
            async with self.db.transaction() as tx:
                row = await tx.fetchrow(_FIND_LEARNER, identity.platform, identity.external_id)  # raced?
                if row is not None:
                    found = rows.learner(row)
                    assert found is not None
                    return found
                row = await tx.fetchrow(
                    "INSERT INTO learners (display_name, timezone, new_per_day, created_at) VALUES (?, ?, ?, ?) "
                    "RETURNING id",
                    name,
                    timezone,
                    new_per_day,
                    to_ms(now),
                )
                assert row is not None
                learner_id = int(row[0])
                claimed = await tx.fetch(
                    "INSERT INTO identities (platform, external_id, learner_id) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING learner_id",
                    identity.platform,
                    identity.external_id,
                    learner_id,
                )
                if not claimed:  # another first contact of the same user committed meanwhile (PostgreSQL)
                    raise _LostRace
        except _LostRace:  # our learner row was rolled back: theirs is the one
            winner = await self.find_learner(identity)
            assert winner is not None
            return winner
        return Learner(learner_id, name, timezone, new_per_day, from_ms(to_ms(now)))

    async def get_learner(self, learner_id: int) -> Learner | None:
        row = await self.db.fetchrow("SELECT * FROM learners WHERE id = ?", learner_id)
        return None if row is None else rows.learner(row)

    async def find_learner(self, identity: Identity) -> Learner | None:
        row = await self.db.fetchrow(_FIND_LEARNER, identity.platform, identity.external_id)
        return None if row is None else rows.learner(row)

    async def set_new_per_day(self, learner_id: int, new_per_day: int) -> None:
        await self.db.execute("UPDATE learners SET new_per_day = ? WHERE id = ?", new_per_day, learner_id)

    async def set_timezone(self, learner_id: int, timezone: str) -> None:
        await self.db.execute("UPDATE learners SET timezone = ? WHERE id = ?", timezone, learner_id)

    async def set_reviews_per_day(self, learner_id: int, reviews_per_day: int) -> None:
        await self.db.execute("UPDATE learners SET reviews_per_day = ? WHERE id = ?", reviews_per_day, learner_id)

    async def set_show_streak(self, learner_id: int, show: bool) -> None:
        await self.db.execute("UPDATE learners SET show_streak = ? WHERE id = ?", int(show), learner_id)

    async def mark_rating_explained(self, learner_id: int) -> None:
        await self.db.execute("UPDATE learners SET rating_explained = 1 WHERE id = ?", learner_id)

    async def set_quiet_hours(self, learner_id: int, quiet_hours: str | None) -> None:
        await self.db.execute("UPDATE learners SET quiet_hours = ? WHERE id = ?", quiet_hours, learner_id)

    # --- card states ---------------------------------------------------------------------------

    async def card_state(self, learner_id: int, card_id: str) -> CardState | None:
        row = await self.db.fetchrow(
            "SELECT * FROM card_states WHERE learner_id = ? AND card_id = ?", learner_id, card_id
        )
        return None if row is None else rows.card_state(row, learner_id, card_id)

    async def next_due(self, learner_id: int) -> datetime | None:
        row = await self.db.fetchrow("SELECT MIN(due) FROM card_states WHERE learner_id = ?", learner_id)
        return None if row is None or row[0] is None else from_ms(row[0])

    async def schedule(self, learner_id: int) -> list[tuple[str, datetime, str | None]]:
        found = await self.db.fetch(
            "SELECT card_id, due, first_day FROM card_states WHERE learner_id = ? ORDER BY due, card_id", learner_id
        )
        return [(row[0], from_ms(row[1]), row[2]) for row in found]

    async def pick_context(self, learner_id: int, skipped_since: datetime) -> PickContext:
        found = await self.db.fetch(_PICK_CONTEXT, learner_id, learner_id, to_ms(skipped_since), learner_id)
        schedule = tuple((row[0], from_ms(row[1]), row[2]) for row in found if row[3] == 0)
        plan = next(
            (PlanFocus(row[0], row[2], tuple(json.loads(row[4])), bool(row[1])) for row in found if row[3] == 2), None
        )
        memory = {row[0]: (row[5], None if row[6] is None else from_ms(row[6])) for row in found if row[3] == 0}
        skipped = frozenset(row[0] for row in found if row[3] == 1)
        return PickContext(schedule=schedule, skipped=skipped, plan=plan, memory=memory)

    async def seen_card_ids(self, learner_id: int) -> set[str]:
        found = await self.db.fetch("SELECT card_id FROM card_states WHERE learner_id = ?", learner_id)
        return {row[0] for row in found}

    async def count_new_on_day(self, learner_id: int, local_day: str) -> int:
        row = await self.db.fetchrow(
            "SELECT COUNT(*) FROM card_states WHERE learner_id = ? AND first_day = ?", learner_id, local_day
        )
        return int(row[0]) if row else 0

    async def count_due(self, learner_id: int, now: datetime) -> int:
        row = await self.db.fetchrow(
            "SELECT COUNT(*) FROM card_states WHERE learner_id = ? AND due <= ?", learner_id, to_ms(now)
        )
        return int(row[0]) if row else 0

    # --- attempts ------------------------------------------------------------------------------

    async def skipped_since(self, learner_id: int, since: datetime) -> set[str]:
        found = await self.db.fetch(
            "SELECT card_id FROM attempts WHERE learner_id = ? AND status = ? AND closed_at >= ?",
            learner_id,
            AttemptStatus.SKIPPED.value,
            to_ms(since),
        )
        return {row[0] for row in found}

    async def active_attempt(self, learner_id: int, chat_key: str) -> Attempt | None:
        marks, values = _statuses(ACTIVE)
        row = await self.db.fetchrow(
            f"SELECT * FROM attempts WHERE learner_id = ? AND chat_key = ? AND status IN ({marks}) "
            "ORDER BY id DESC LIMIT 1",
            learner_id,
            chat_key,
            *values,
        )
        return None if row is None else rows.attempt(row)

    async def create_attempt(
        self, learner_id: int, card_id: str, chat_key: str, now: datetime, topic: str | None
    ) -> Attempt:
        """A new open attempt; the learner's other active attempts in that chat expire (a trigger)."""
        row = await self.db.fetchrow(
            "INSERT INTO attempts (learner_id, card_id, chat_key, topic, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            learner_id,
            card_id,
            chat_key,
            topic,
            AttemptStatus.OPEN.value,
            to_ms(now),
        )
        assert row is not None
        return Attempt(int(row[0]), learner_id, card_id, chat_key, AttemptStatus.OPEN, from_ms(to_ms(now)), topic=topic)

    async def get_attempt(self, attempt_id: int) -> Attempt | None:
        row = await self.db.fetchrow("SELECT * FROM attempts WHERE id = ?", attempt_id)
        return None if row is None else rows.attempt(row)

    async def attempt_for(self, attempt_id: int, identity: Identity) -> AttemptView | None:
        """The attempt, the caller's learner and the attempt's card state, in one read."""
        row = await self.db.fetchrow(_ATTEMPT_FOR, identity.platform, identity.external_id, attempt_id)
        if row is None:
            return None
        found = rows.attempt(row)
        assert found is not None
        return AttemptView(
            attempt=found,
            caller=rows.learner(row, "l_"),
            state=rows.card_state(row, found.learner_id, found.card_id, "s_"),
        )

    async def open_attempt_for(self, identity: Identity, chat_key: str) -> AttemptView | None:
        """The caller's latest active attempt in this chat with its card state, in one read;
        None when the caller is unknown or has no active attempt there."""
        row = await self.db.fetchrow(_OPEN_ATTEMPT_FOR, chat_key, identity.platform, identity.external_id)
        if row is None:
            return None
        found = rows.attempt(row, "a_")
        if found is None:
            return None
        return AttemptView(
            attempt=found,
            caller=rows.learner(row),
            state=rows.card_state(row, found.learner_id, found.card_id, "s_"),
        )

    async def update_attempt(
        self,
        attempt_id: int,
        expected: Collection[AttemptStatus],
        status: AttemptStatus,
        now: datetime,
        *,
        options: tuple[int, ...] | None = None,
        previews: tuple[Preview, ...] | None = None,
    ) -> bool:
        sets = ["status = ?"]
        params: list[Any] = [status.value]
        if status not in ACTIVE:
            sets.append("closed_at = ?")
            params.append(to_ms(now))
        if options is not None:
            sets.append("options = ?")
            params.append(json.dumps(list(options)))
        if previews is not None:
            sets.append("previews = ?")
            params.append(rows.previews_json(previews))
        marks, values = _statuses(expected)
        changed = await self.db.fetch(
            f"UPDATE attempts SET {', '.join(sets)} WHERE id = ? AND status IN ({marks}) RETURNING id",
            *params,
            attempt_id,
            *values,
        )
        return len(changed) == 1

    async def record_answer(
        self, attempt_id: int, expected: Collection[AttemptStatus], state: CardState, review: Review, now: datetime
    ) -> bool:
        """Close the attempt, store the new card state and the review log row, atomically."""
        marks, values = _statuses(expected)
        async with self.db.transaction() as tx:
            changed = await tx.fetch(
                f"UPDATE attempts SET status = ?, closed_at = ? WHERE id = ? AND status IN ({marks}) RETURNING id",
                AttemptStatus.DONE.value,
                to_ms(now),
                attempt_id,
                *values,
            )
            if len(changed) != 1:
                return False
            await self._write_review(tx, state, review)
            return True

    @staticmethod
    async def _write_review(tx: Tx, state: CardState, review: Review) -> None:
        await tx.execute(_UPSERT_STATE, *rows.card_state_values(state))
        await tx.execute(
            _INSERT_REVIEW,
            review.learner_id,
            review.card_id,
            int(review.rating),
            to_ms(review.reviewed_at),
            review.mode.value,
            review.local_day,
            int(review.was_new),
            review.state_before,
        )

    async def attempt_topic(self, attempt_id: int) -> str | None:
        row = await self.db.fetchrow("SELECT topic FROM attempts WHERE id = ?", attempt_id)
        return None if row is None else row[0]

    # --- review history ------------------------------------------------------------------------

    async def review_days(self, learner_id: int) -> list[str]:
        found = await self.db.fetch(
            "SELECT DISTINCT local_day FROM reviews WHERE learner_id = ? ORDER BY local_day", learner_id
        )
        return [row[0] for row in found]

    async def review_counts(self, learner_id: int, since: datetime) -> tuple[int, int, int]:
        row = await self.db.fetchrow(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN was_new = 0 THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN was_new = 0 AND rating > 1 THEN 1 ELSE 0 END), 0) "
            "FROM reviews WHERE learner_id = ? AND reviewed_at >= ?",
            learner_id,
            to_ms(since),
        )
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
