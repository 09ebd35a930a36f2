"""SqliteStore: the core's Store ports on SQLite through aiosqlite.

One connection in WAL mode; every public method is one transaction, serialised by a lock so two
coroutines never interleave statements inside each other's transaction. Schema changes are the
numbered files in migrations/, applied in order and tracked with PRAGMA user_version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.model import (
    Attempt,
    AttemptStatus,
    BoardRow,
    CardState,
    Claim,
    Identity,
    Learner,
    Match,
    MatchStatus,
    Preview,
    Rating,
    Review,
    Round,
    RoundAnswer,
    Standing,
    Subscription,
)
from bot.core.ports import Advance

# Every table that holds a learner's rows, and the column naming them (export and forget).
LEARNER_TABLES = (
    ("learners", "id"),
    ("identities", "learner_id"),
    ("card_states", "learner_id"),
    ("reviews", "learner_id"),
    ("attempts", "learner_id"),
    ("subscriptions", "learner_id"),
    ("round_answers", "learner_id"),
)

ACTIVE = (AttemptStatus.OPEN, AttemptStatus.CHOICE, AttemptStatus.REVEALED)


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _opt_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration shipped with the package, in order."""
    found = []
    folder = resources.files("bot.storage") / "migrations"
    for entry in folder.iterdir():
        match = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


_TIME_COLUMNS = frozenset(
    {
        "created_at",
        "due",
        "last_review",
        "reviewed_at",
        "closed_at",
        "next_push_at",
        "answered_at",
        "unreachable_since",
        "started_at",
        "ended_at",
    }
)


def _exported(row: dict[str, Any]) -> dict[str, Any]:
    """A row for an export: times as ISO 8601, JSON columns decoded."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in _TIME_COLUMNS and isinstance(value, int):
            out[key] = from_ms(value).isoformat()
        elif key in ("options", "previews") and isinstance(value, str):
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


def _state_to_json(state: CardState) -> dict[str, Any]:
    return {
        "state": state.state,
        "step": state.step,
        "stability": state.stability,
        "difficulty": state.difficulty,
        "due": to_ms(state.due),
        "last_review": _opt_ms(state.last_review),
        "reps": state.reps,
        "lapses": state.lapses,
        "first_day": state.first_day,
    }


def _state_from_json(learner_id: int, card_id: str, data: dict[str, Any]) -> CardState:
    return CardState(
        learner_id=learner_id,
        card_id=card_id,
        state=int(data["state"]),
        step=data["step"],
        stability=data["stability"],
        difficulty=data["difficulty"],
        due=from_ms(int(data["due"])),
        last_review=_opt_dt(data["last_review"]),
        reps=int(data["reps"]),
        lapses=int(data["lapses"]),
        first_day=data["first_day"],
    )


class SqliteStore:
    """All persistence of StudyBot in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._unreachable: set[str] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> SqliteStore:
        """Open (creating the file and its folder if needed) and migrate to the latest schema."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=5000"):
                await db.execute(f"PRAGMA {pragma}")
            self._db = db
            await self.migrate()
        except BaseException:
            self._db = None
            await db.close()
            raise
        return self

    async def close(self) -> None:
        if self._db is not None:
            async with self._lock:
                await self._db.close()
                self._db = None

    async def __aenter__(self) -> SqliteStore:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteStore is not open")
        return self._db

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """Apply every migration newer than the database; return the resulting version."""
        async with self._lock:
            current = await self.schema_version()
            for number, _name, sql in migrations():
                if number <= current:
                    continue
                await self.db.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
                current = number
            return current

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), exclusive among this store's users.

        Safe under task cancellation: aiosqlite runs statements in order on its own thread, so a
        shielded ROLLBACK queued after a cancelled statement always ends the transaction before the
        next one begins.
        """
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
            except BaseException:
                await asyncio.shield(self._rollback(db))
                raise
            await asyncio.shield(db.execute("COMMIT"))

    @staticmethod
    async def _rollback(db: aiosqlite.Connection) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # no transaction was open
            await db.execute("ROLLBACK")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self.db

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        # one hop to the database thread (execute + fetch together)
        async with self.reading() as db:
            return list(await db.execute_fetchall(sql, tuple(params)))

    # --- learners ------------------------------------------------------------------------------

    @staticmethod
    def _learner(row: aiosqlite.Row) -> Learner:
        return Learner(
            id=row["id"],
            display_name=row["display_name"],
            timezone=row["timezone"],
            new_per_day=row["new_per_day"],
            created_at=from_ms(row["created_at"]),
        )

    async def ensure_learner(
        self, identity: Identity, display_name: str, now: datetime, timezone: str, new_per_day: int
    ) -> Learner:
        name = display_name.strip()[:64] or "learner"
        known = await self.find_learner(identity)  # the common case: a read, no write transaction
        if known is not None and known.display_name == name:
            return known
        async with self.transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT l.* FROM identities i JOIN learners l ON l.id = i.learner_id "
                "WHERE i.platform = ? AND i.external_id = ?",
                (identity.platform, identity.external_id),
            )
            row = next(iter(rows), None)
            if row is not None:
                if row["display_name"] != name:
                    await db.execute("UPDATE learners SET display_name = ? WHERE id = ?", (name, row["id"]))
                return Learner(row["id"], name, row["timezone"], row["new_per_day"], from_ms(row["created_at"]))
            cur = await db.execute(
                "INSERT INTO learners (display_name, timezone, new_per_day, created_at) VALUES (?, ?, ?, ?)",
                (name, timezone, new_per_day, to_ms(now)),
            )
            learner_id = cur.lastrowid
            assert learner_id is not None
            await db.execute(
                "INSERT INTO identities (platform, external_id, learner_id) VALUES (?, ?, ?)",
                (identity.platform, identity.external_id, learner_id),
            )
            return Learner(learner_id, name, timezone, new_per_day, from_ms(to_ms(now)))

    async def get_learner(self, learner_id: int) -> Learner | None:
        row = await self._one("SELECT * FROM learners WHERE id = ?", (learner_id,))
        return None if row is None else self._learner(row)

    async def find_learner(self, identity: Identity) -> Learner | None:
        row = await self._one(
            "SELECT l.* FROM identities i JOIN learners l ON l.id = i.learner_id "
            "WHERE i.platform = ? AND i.external_id = ?",
            (identity.platform, identity.external_id),
        )
        return None if row is None else self._learner(row)

    async def set_new_per_day(self, learner_id: int, new_per_day: int) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE learners SET new_per_day = ? WHERE id = ?", (new_per_day, learner_id))

    async def set_timezone(self, learner_id: int, timezone: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE learners SET timezone = ? WHERE id = ?", (timezone, learner_id))

    # --- card states ---------------------------------------------------------------------------

    @staticmethod
    def _state(row: aiosqlite.Row) -> CardState:
        return CardState(
            learner_id=row["learner_id"],
            card_id=row["card_id"],
            state=row["state"],
            step=row["step"],
            stability=row["stability"],
            difficulty=row["difficulty"],
            due=from_ms(row["due"]),
            last_review=_opt_dt(row["last_review"]),
            reps=row["reps"],
            lapses=row["lapses"],
            first_day=row["first_day"],
        )

    async def card_state(self, learner_id: int, card_id: str) -> CardState | None:
        row = await self._one("SELECT * FROM card_states WHERE learner_id = ? AND card_id = ?", (learner_id, card_id))
        return None if row is None else self._state(row)

    async def next_due(self, learner_id: int) -> datetime | None:
        row = await self._one("SELECT MIN(due) FROM card_states WHERE learner_id = ?", (learner_id,))
        return None if row is None or row[0] is None else from_ms(row[0])

    async def schedule(self, learner_id: int) -> list[tuple[str, datetime, str | None]]:
        rows = await self._all(
            "SELECT card_id, due, first_day FROM card_states WHERE learner_id = ? ORDER BY due, card_id",
            (learner_id,),
        )
        return [(row[0], from_ms(row[1]), row[2]) for row in rows]

    async def seen_card_ids(self, learner_id: int) -> set[str]:
        rows = await self._all("SELECT card_id FROM card_states WHERE learner_id = ?", (learner_id,))
        return {row[0] for row in rows}

    async def count_new_on_day(self, learner_id: int, local_day: str) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM card_states WHERE learner_id = ? AND first_day = ?", (learner_id, local_day)
        )
        return int(row[0]) if row else 0

    async def count_due(self, learner_id: int, now: datetime) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM card_states WHERE learner_id = ? AND due <= ?", (learner_id, to_ms(now))
        )
        return int(row[0]) if row else 0

    # --- attempts ------------------------------------------------------------------------------

    @staticmethod
    def _attempt(row: aiosqlite.Row) -> Attempt:
        previews = tuple(
            Preview(
                rating=Rating(item["rating"]),
                state=_state_from_json(row["learner_id"], row["card_id"], item["state"]),
                interval_label=item["label"],
            )
            for item in json.loads(row["previews"])
        )
        return Attempt(
            id=row["id"],
            learner_id=row["learner_id"],
            card_id=row["card_id"],
            chat_key=row["chat_key"],
            status=AttemptStatus(row["status"]),
            created_at=from_ms(row["created_at"]),
            options=tuple(json.loads(row["options"])),
            previews=previews,
            closed_at=_opt_dt(row["closed_at"]),
        )

    async def skipped_since(self, learner_id: int, since: datetime) -> set[str]:
        rows = await self._all(
            "SELECT card_id FROM attempts WHERE learner_id = ? AND status = ? AND closed_at >= ?",
            (learner_id, AttemptStatus.SKIPPED.value, to_ms(since)),
        )
        return {row[0] for row in rows}

    async def active_attempt(self, learner_id: int, chat_key: str) -> Attempt | None:
        row = await self._one(
            "SELECT * FROM attempts WHERE learner_id = ? AND chat_key = ? AND status IN (?, ?, ?) "
            "ORDER BY id DESC LIMIT 1",
            (learner_id, chat_key, *(s.value for s in ACTIVE)),
        )
        return None if row is None else self._attempt(row)

    async def create_attempt(
        self, learner_id: int, card_id: str, chat_key: str, now: datetime, topic: str | None
    ) -> Attempt:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE attempts SET status = ?, closed_at = ? "
                "WHERE learner_id = ? AND chat_key = ? AND status IN (?, ?, ?)",
                (AttemptStatus.EXPIRED.value, to_ms(now), learner_id, chat_key, *(s.value for s in ACTIVE)),
            )
            cur = await db.execute(
                "INSERT INTO attempts (learner_id, card_id, chat_key, topic, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (learner_id, card_id, chat_key, topic, AttemptStatus.OPEN.value, to_ms(now)),
            )
            attempt_id = cur.lastrowid
            assert attempt_id is not None
        return Attempt(attempt_id, learner_id, card_id, chat_key, AttemptStatus.OPEN, from_ms(to_ms(now)))

    async def get_attempt(self, attempt_id: int) -> Attempt | None:
        row = await self._one("SELECT * FROM attempts WHERE id = ?", (attempt_id,))
        return None if row is None else self._attempt(row)

    async def attempt_topic(self, attempt_id: int) -> str | None:
        row = await self._one("SELECT topic FROM attempts WHERE id = ?", (attempt_id,))
        return None if row is None else row[0]

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
            params.append(
                json.dumps(
                    [
                        {"rating": int(p.rating), "label": p.interval_label, "state": _state_to_json(p.state)}
                        for p in previews
                    ]
                )
            )
        marks = ", ".join("?" for _ in expected)
        async with self.transaction() as db:
            cur = await db.execute(
                f"UPDATE attempts SET {', '.join(sets)} WHERE id = ? AND status IN ({marks})",
                (*params, attempt_id, *(s.value for s in expected)),
            )
            return cur.rowcount == 1

    async def record_answer(
        self, attempt_id: int, expected: Collection[AttemptStatus], state: CardState, review: Review, now: datetime
    ) -> bool:
        marks = ", ".join("?" for _ in expected)
        async with self.transaction() as db:
            cur = await db.execute(
                f"UPDATE attempts SET status = ?, closed_at = ? WHERE id = ? AND status IN ({marks})",
                (AttemptStatus.DONE.value, to_ms(now), attempt_id, *(s.value for s in expected)),
            )
            if cur.rowcount != 1:
                return False
            await self._write_review(db, state, review)
            return True

    @staticmethod
    async def _write_review(db: aiosqlite.Connection, state: CardState, review: Review) -> None:
        await db.execute(
            "INSERT INTO card_states (learner_id, card_id, state, step, stability, difficulty, due, last_review, "
            "reps, lapses, first_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (learner_id, card_id) DO UPDATE SET state = excluded.state, step = excluded.step, "
            "stability = excluded.stability, difficulty = excluded.difficulty, due = excluded.due, "
            "last_review = excluded.last_review, reps = excluded.reps, lapses = excluded.lapses, "
            "first_day = COALESCE(card_states.first_day, excluded.first_day)",
            (
                state.learner_id,
                state.card_id,
                state.state,
                state.step,
                state.stability,
                state.difficulty,
                to_ms(state.due),
                _opt_ms(state.last_review),
                state.reps,
                state.lapses,
                state.first_day,
            ),
        )
        await db.execute(
            "INSERT INTO reviews (learner_id, card_id, rating, reviewed_at, mode, local_day, was_new, state_before) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                review.learner_id,
                review.card_id,
                int(review.rating),
                to_ms(review.reviewed_at),
                review.mode.value,
                review.local_day,
                int(review.was_new),
                review.state_before,
            ),
        )

    # --- review history ------------------------------------------------------------------------

    async def review_days(self, learner_id: int) -> list[str]:
        rows = await self._all(
            "SELECT DISTINCT local_day FROM reviews WHERE learner_id = ? ORDER BY local_day", (learner_id,)
        )
        return [row[0] for row in rows]

    async def review_counts(self, learner_id: int, since: datetime) -> tuple[int, int, int]:
        row = await self._one(
            "SELECT COUNT(*), COALESCE(SUM(was_new = 0), 0), COALESCE(SUM(was_new = 0 AND rating > 1), 0) "
            "FROM reviews WHERE learner_id = ? AND reviewed_at >= ?",
            (learner_id, to_ms(since)),
        )
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    # --- chat reachability -----------------------------------------------------------------------

    async def _unreachable_keys(self) -> set[str]:
        # Asked on every update and every send; one process owns the database, so a set kept in step
        # with the table answers without a trip to the database thread.
        if self._unreachable is None:
            rows = await self._all("SELECT chat_key FROM chats WHERE unreachable_since IS NOT NULL")
            self._unreachable = {row[0] for row in rows}
        return self._unreachable

    async def mark_unreachable(self, chat_key: str, now: datetime, reason: str) -> None:
        keys = await self._unreachable_keys()
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO chats (chat_key, unreachable_since, reason) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_key) DO UPDATE SET unreachable_since = excluded.unreachable_since, "
                "reason = excluded.reason",
                (chat_key, to_ms(now), reason[:200]),
            )
        keys.add(chat_key)

    async def mark_reachable(self, chat_key: str) -> bool:
        keys = await self._unreachable_keys()
        if chat_key not in keys:
            return False
        async with self.transaction() as db:
            await db.execute("UPDATE chats SET unreachable_since = NULL, reason = NULL WHERE chat_key = ?", (chat_key,))
        keys.discard(chat_key)
        return True

    async def is_reachable(self, chat_key: str) -> bool:
        return chat_key not in await self._unreachable_keys()

    # --- daily subscriptions ---------------------------------------------------------------------

    @staticmethod
    def _subscription(row: aiosqlite.Row) -> Subscription:
        return Subscription(
            id=row["id"],
            chat_key=row["chat_key"],
            platform=row["platform"],
            chat_id=row["chat_id"],
            is_group=bool(row["is_group"]),
            learner_id=row["learner_id"],
            local_time=row["local_time"],
            timezone=row["timezone"],
            next_push_at=from_ms(row["next_push_at"]),
            paused_reason=row["paused_reason"],
            created_at=from_ms(row["created_at"]),
        )

    async def save_subscription(self, subscription: Subscription) -> Subscription:
        s = subscription
        created = to_ms(s.created_at or s.next_push_at)
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO subscriptions (chat_key, platform, chat_id, is_group, learner_id, local_time, timezone, "
                "next_push_at, paused_reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_key) DO UPDATE SET learner_id = excluded.learner_id, "
                "local_time = excluded.local_time, timezone = excluded.timezone, "
                "next_push_at = excluded.next_push_at, paused_reason = excluded.paused_reason",
                (
                    s.chat_key,
                    s.platform,
                    s.chat_id,
                    int(s.is_group),
                    s.learner_id,
                    s.local_time,
                    s.timezone,
                    to_ms(s.next_push_at),
                    s.paused_reason,
                    s.learner_id,
                    created,
                ),
            )
            async with db.execute("SELECT * FROM subscriptions WHERE chat_key = ?", (s.chat_key,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return self._subscription(row)

    async def subscription(self, chat_key: str) -> Subscription | None:
        row = await self._one("SELECT * FROM subscriptions WHERE chat_key = ?", (chat_key,))
        return None if row is None else self._subscription(row)

    async def delete_subscription(self, chat_key: str) -> bool:
        async with self.transaction() as db:
            cur = await db.execute("DELETE FROM subscriptions WHERE chat_key = ?", (chat_key,))
            return cur.rowcount == 1

    async def pause_subscription(self, chat_key: str, reason: str) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE subscriptions SET paused_reason = ? WHERE chat_key = ?", (reason, chat_key))

    async def resume_subscription(self, chat_key: str, next_push_at: datetime) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE subscriptions SET paused_reason = NULL, next_push_at = ? WHERE chat_key = ?",
                (to_ms(next_push_at), chat_key),
            )

    async def claim_due(self, now: datetime, claimer: str, limit: int, advance: Advance) -> list[Claim]:
        claims: list[Claim] = []
        async with self.transaction() as db:
            async with db.execute(
                "SELECT * FROM subscriptions WHERE paused_reason IS NULL AND next_push_at <= ? "
                "ORDER BY next_push_at, id LIMIT ?",
                (to_ms(now), limit),
            ) as cur:
                rows = list(await cur.fetchall())
            for row in rows:
                sub = self._subscription(row)
                local_day, next_at = advance(sub, now)
                await db.execute("UPDATE subscriptions SET next_push_at = ? WHERE id = ?", (to_ms(next_at), sub.id))
                cur2 = await db.execute(
                    "INSERT INTO deliveries (subscription_id, local_day, status, claimed_by, claimed_at) "
                    "VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT (subscription_id, local_day) DO NOTHING",
                    (sub.id, local_day, claimer, to_ms(now)),
                )
                if cur2.rowcount == 1 and cur2.lastrowid is not None:
                    claims.append(Claim(cur2.lastrowid, sub, local_day, 0))
        return claims

    async def day_claimed(self, subscription_id: int, local_day: str) -> bool:
        rows = await self._all(
            "SELECT 1 FROM deliveries WHERE subscription_id = ? AND local_day = ?", (subscription_id, local_day)
        )
        return bool(rows)

    async def open_claims(self, now: datetime, claimer: str, limit: int) -> list[Claim]:
        rows = await self._all(
            "SELECT d.id AS delivery_id, d.local_day, d.attempts, s.* FROM deliveries d "
            "JOIN subscriptions s ON s.id = d.subscription_id "
            "WHERE s.paused_reason IS NULL AND ((d.status = 'retry' AND d.retry_at <= ?) "
            "OR (d.status = 'claimed' AND d.claimed_by != ?)) ORDER BY d.id LIMIT ?",
            (to_ms(now), claimer, limit),
        )
        claims = [Claim(r["delivery_id"], self._subscription(r), r["local_day"], r["attempts"]) for r in rows]
        if claims:
            async with self.transaction() as db:
                await db.executemany(
                    "UPDATE deliveries SET status = 'claimed', claimed_by = ?, claimed_at = ? WHERE id = ?",
                    [(claimer, to_ms(now), c.delivery_id) for c in claims],
                )
        return claims

    async def finish_delivery(
        self,
        delivery_id: int,
        status: str,
        now: datetime,
        *,
        detail: str = "",
        message_id: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, finished_at = ?, detail = ?, "
                "message_id = COALESCE(?, message_id), retry_at = ? WHERE id = ?",
                (status, to_ms(now), detail[:300], message_id, _opt_ms(retry_at), delivery_id),
            )

    async def beat(self, name: str, now: datetime) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO heartbeats (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at",
                (name, to_ms(now)),
            )

    async def last_beat(self, name: str) -> datetime | None:
        row = await self._one("SELECT at FROM heartbeats WHERE name = ?", (name,))
        return None if row is None else from_ms(row[0])

    # --- competitions ----------------------------------------------------------------------------

    @staticmethod
    def _match(row: aiosqlite.Row) -> Match:
        return Match(
            id=row["id"],
            chat_key=row["chat_key"],
            platform=row["platform"],
            chat_id=row["chat_id"],
            starter_id=row["starter_id"],
            topic=row["topic"],
            questions=row["questions"],
            seconds=row["seconds"],
            solo=bool(row["solo"]),
            status=MatchStatus(row["status"]),
            card_ids=tuple(json.loads(row["card_ids"])),
            rounds_played=row["rounds_played"],
            idle_rounds=row["idle_rounds"],
            started_at=from_ms(row["started_at"]),
            end_reason=row["end_reason"],
            winner_id=row["winner_id"],
        )

    @staticmethod
    def _round(row: aiosqlite.Row) -> Round:
        return Round(
            id=row["id"],
            match_id=row["match_id"],
            chat_key=row["chat_key"],
            number=row["number"],
            card_id=row["card_id"],
            options=tuple(json.loads(row["options"])),
            correct_index=row["correct_index"],
            speed_bonus=row["speed_bonus"],
            opened_at=from_ms(row["opened_at"]),
            closes_at=from_ms(row["closes_at"]),
            closed=bool(row["closed"]),
            poll_id=row["poll_id"],
            message_id=row["message_id"],
        )

    async def create_match(self, match: Match) -> Match | None:
        m = match
        try:
            async with self.transaction() as db:
                cur = await db.execute(
                    "INSERT INTO matches (chat_key, platform, chat_id, starter_id, topic, questions, seconds, solo, "
                    "status, card_ids, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        m.chat_key,
                        m.platform,
                        m.chat_id,
                        m.starter_id,
                        m.topic,
                        m.questions,
                        m.seconds,
                        int(m.solo),
                        m.status.value,
                        json.dumps(list(m.card_ids)),
                        to_ms(m.started_at),
                    ),
                )
                match_id = cur.lastrowid
        except sqlite3.IntegrityError:
            return None
        assert match_id is not None
        return await self.get_match(match_id)

    async def get_match(self, match_id: int) -> Match | None:
        row = await self._one("SELECT * FROM matches WHERE id = ?", (match_id,))
        return None if row is None else self._match(row)

    async def running_match(self, chat_key: str) -> Match | None:
        row = await self._one("SELECT * FROM matches WHERE chat_key = ? AND status = 'running'", (chat_key,))
        return None if row is None else self._match(row)

    async def running_matches(self) -> list[Match]:
        return [self._match(r) for r in await self._all("SELECT * FROM matches WHERE status = 'running'")]

    async def save_match_progress(self, match_id: int, rounds_played: int, idle_rounds: int) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE matches SET rounds_played = ?, idle_rounds = ? WHERE id = ?",
                (rounds_played, idle_rounds, match_id),
            )

    async def end_match(
        self, match_id: int, status: MatchStatus, reason: str, winner_id: int | None, now: datetime
    ) -> bool:
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE matches SET status = ?, end_reason = ?, winner_id = ?, ended_at = ? "
                "WHERE id = ? AND status = 'running'",
                (status.value, reason[:200], winner_id, to_ms(now), match_id),
            )
            return cur.rowcount == 1

    async def open_round(self, round_: Round) -> Round:
        r = round_
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO rounds (match_id, chat_key, number, card_id, options, correct_index, speed_bonus, "
                "opened_at, closes_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.match_id,
                    r.chat_key,
                    r.number,
                    r.card_id,
                    json.dumps(list(r.options)),
                    r.correct_index,
                    r.speed_bonus,
                    to_ms(r.opened_at),
                    to_ms(r.closes_at),
                ),
            )
            round_id = cur.lastrowid
        assert round_id is not None
        stored = await self.get_round(round_id)
        assert stored is not None
        return stored

    async def get_round(self, round_id: int) -> Round | None:
        row = await self._one("SELECT * FROM rounds WHERE id = ?", (round_id,))
        return None if row is None else self._round(row)

    async def round_by_poll(self, poll_id: str) -> Round | None:
        row = await self._one("SELECT * FROM rounds WHERE poll_id = ?", (poll_id,))
        return None if row is None else self._round(row)

    async def latest_round(self, match_id: int) -> Round | None:
        row = await self._one("SELECT * FROM rounds WHERE match_id = ? ORDER BY number DESC LIMIT 1", (match_id,))
        return None if row is None else self._round(row)

    async def attach_round_message(self, round_id: int, poll_id: str | None, message_id: str | None) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE rounds SET poll_id = COALESCE(?, poll_id), message_id = COALESCE(?, message_id) WHERE id = ?",
                (poll_id, message_id, round_id),
            )

    async def close_round(self, round_id: int) -> bool:
        async with self.transaction() as db:
            cur = await db.execute("UPDATE rounds SET closed = 1 WHERE id = ? AND closed = 0", (round_id,))
            return cur.rowcount == 1

    async def add_answer(self, answer: RoundAnswer, now: datetime) -> bool:
        a = answer
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO round_answers (round_id, learner_id, option_index, correct, points, elapsed_ms, "
                "answered_at) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM rounds WHERE id = ? AND closed = 0 AND closes_at >= ?) "
                "ON CONFLICT (round_id, learner_id) DO NOTHING",
                (
                    a.round_id,
                    a.learner_id,
                    a.option_index,
                    int(a.correct),
                    a.points,
                    a.elapsed_ms,
                    to_ms(a.answered_at),
                    a.round_id,
                    to_ms(now),
                ),
            )
            return cur.rowcount == 1

    async def round_answers(self, round_id: int) -> list[RoundAnswer]:
        rows = await self._all("SELECT * FROM round_answers WHERE round_id = ? ORDER BY answered_at", (round_id,))
        return [
            RoundAnswer(
                r["round_id"],
                r["learner_id"],
                r["option_index"],
                bool(r["correct"]),
                r["points"],
                r["elapsed_ms"],
                from_ms(r["answered_at"]),
            )
            for r in rows
        ]

    async def standings(self, match_id: int) -> list[Standing]:
        rows = await self._all(
            "SELECT a.learner_id, l.display_name, SUM(a.points) AS points, SUM(a.correct) AS correct, "
            "COUNT(*) AS answered, SUM(a.elapsed_ms) AS time_ms FROM round_answers a "
            "JOIN rounds r ON r.id = a.round_id JOIN learners l ON l.id = a.learner_id "
            "WHERE r.match_id = ? GROUP BY a.learner_id ORDER BY points DESC, time_ms ASC, a.learner_id",
            (match_id,),
        )
        return [Standing(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def leaderboard(self, chat_key: str, since: datetime | None) -> list[BoardRow]:
        start = to_ms(since) if since else 0
        rows = await self._all(
            "SELECT a.learner_id, l.display_name, SUM(a.points) AS points, "
            "COUNT(DISTINCT r.match_id) AS matches, SUM(a.correct) AS correct, COUNT(*) AS answered, "
            "(SELECT COUNT(*) FROM matches m WHERE m.chat_key = ? AND m.winner_id = a.learner_id "
            " AND m.started_at >= ?) AS wins "
            "FROM round_answers a JOIN rounds r ON r.id = a.round_id JOIN learners l ON l.id = a.learner_id "
            "WHERE r.chat_key = ? AND a.answered_at >= ? GROUP BY a.learner_id "
            "ORDER BY points DESC, correct DESC, a.learner_id",
            (chat_key, start, chat_key, start),
        )
        return [
            BoardRow(
                r["learner_id"], r["display_name"], r["points"], r["matches"], r["wins"], r["correct"], r["answered"]
            )
            for r in rows
        ]

    async def recent_round_cards(self, chat_key: str, limit: int) -> list[str]:
        rows = await self._all(
            "SELECT card_id FROM rounds WHERE chat_key = ? ORDER BY opened_at DESC LIMIT ?", (chat_key, limit)
        )
        return [r[0] for r in rows]

    # --- data rights -----------------------------------------------------------------------------

    async def export_learner(self, learner_id: int) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for table, column in LEARNER_TABLES:
            rows = await self._all(f"SELECT * FROM {table} WHERE {column} = ?", (learner_id,))
            data[table] = [_exported(dict(row)) for row in rows]
        identities = data["identities"]
        keys = [f"{i['platform']}:{i['external_id']}" for i in identities]
        if keys:
            marks = ", ".join("?" for _ in keys)
            chats = await self._all(f"SELECT * FROM chats WHERE chat_key IN ({marks})", keys)
            data["chats"] = [_exported(dict(row)) for row in chats]
        data["learner"] = data.pop("learners")[0] if data["learners"] else None
        return data

    async def forget_learner(self, learner_id: int) -> list[Identity]:
        async with self.transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT platform, external_id FROM identities WHERE learner_id = ?", (learner_id,)
            )
            identities = [Identity(row[0], row[1]) for row in rows]
            # private chats are keyed by the user's own id on every platform we support
            keys = [f"{i.platform}:{i.external_id}" for i in identities]
            keys += [f"{i.platform}:user:{i.external_id}" for i in identities]
            if keys:
                marks = ", ".join("?" for _ in keys)
                await db.execute(f"DELETE FROM chats WHERE chat_key IN ({marks})", keys)
                for table in ("subscriptions", "matches", "rounds"):  # their private chats' solo quizzes too
                    await db.execute(f"DELETE FROM {table} WHERE chat_key IN ({marks})", keys)
            # the rest goes by ON DELETE CASCADE / SET NULL from the learner row
            await db.execute("DELETE FROM learners WHERE id = ?", (learner_id,))
        if self._unreachable is not None:
            self._unreachable.difference_update(keys)
        return identities
