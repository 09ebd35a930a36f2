"""CompetitionRepository: matches, rounds and answers (the core's CompetitionStore port).

The one-answer rule is the primary key of round_answers plus the "round still open" condition of
the INSERT; one running match per chat is a partial unique index.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from bot.core.model import BoardRow, CardEvidence, Match, MatchStatus, Round, RoundAnswer, Standing
from bot.storage import rows
from bot.storage.db import Database
from bot.storage.rows import to_ms


class CompetitionRepository:
    db: Database

    async def create_match(self, match: Match) -> Match | None:
        """The stored match, or None when the chat already has a running one."""
        m = match
        row = await self.db.fetchrow(
            "INSERT INTO matches (chat_key, platform, chat_id, starter_id, topic, questions, seconds, solo, "
            "status, card_ids, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING *",
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
        )
        return None if row is None else rows.match(row)

    async def get_match(self, match_id: int) -> Match | None:
        row = await self.db.fetchrow("SELECT * FROM matches WHERE id = ?", match_id)
        return None if row is None else rows.match(row)

    async def running_match(self, chat_key: str) -> Match | None:
        row = await self.db.fetchrow("SELECT * FROM matches WHERE chat_key = ? AND status = 'running'", chat_key)
        return None if row is None else rows.match(row)

    async def running_matches(self) -> list[Match]:
        return [rows.match(r) for r in await self.db.fetch("SELECT * FROM matches WHERE status = 'running'")]

    async def lease_match(self, match_id: int, owner: str, until: datetime) -> bool:
        """Make `owner` the process that plays the running match, until `until`; False when it is not running."""
        found = await self.db.fetch(
            "UPDATE matches SET owner = ?, lease_until = ? WHERE id = ? AND status = 'running' RETURNING id",
            owner,
            to_ms(until),
            match_id,
        )
        return bool(found)

    async def renew_match_leases(self, owner: str, match_ids: Collection[int], until: datetime) -> set[int]:
        """Extend `owner`'s leases on those matches; the ids still running and still its own."""
        if not match_ids:
            return set()
        marks = ", ".join("?" for _ in match_ids)
        found = await self.db.fetch(
            f"UPDATE matches SET lease_until = ? WHERE owner = ? AND status = 'running' AND id IN ({marks}) "
            "RETURNING id",
            to_ms(until),
            owner,
            *match_ids,
        )
        return {int(row[0]) for row in found}

    async def take_over_matches(self, owner: str, now: datetime, until: datetime, unleased_grace: float) -> list[Match]:
        """The running matches of other processes whose lease ran out (their process died or stalled), now
        leased to `owner` until `until`. A match never leased counts from its start plus `unleased_grace`
        seconds (its starter leases it right after creating it). On PostgreSQL, matches another process is
        taking over at the same moment are skipped, so each goes to one process."""
        lock = " FOR UPDATE SKIP LOCKED" if self.db.engine == "postgresql" else ""
        found = await self.db.fetch(
            "UPDATE matches SET owner = ?, lease_until = ? WHERE id IN (SELECT id FROM matches "
            "WHERE status = 'running' AND (owner IS NULL OR owner <> ?) "
            f"AND COALESCE(lease_until, started_at + ?) <= ?{lock}) RETURNING *",
            owner,
            to_ms(until),
            owner,
            round(unleased_grace * 1000),
            to_ms(now),
        )
        return sorted((rows.match(r) for r in found), key=lambda m: m.id)

    async def save_match_progress(self, match_id: int, rounds_played: int, idle_rounds: int) -> None:
        await self.db.execute(
            "UPDATE matches SET rounds_played = ?, idle_rounds = ? WHERE id = ?", rounds_played, idle_rounds, match_id
        )

    async def end_match(
        self, match_id: int, status: MatchStatus, reason: str, winner_id: int | None, now: datetime
    ) -> bool:
        """Mark a running match ended; False when it was not running any more."""
        changed = await self.db.fetch(
            "UPDATE matches SET status = ?, end_reason = ?, winner_id = ?, ended_at = ? "
            "WHERE id = ? AND status = 'running' RETURNING id",
            status.value,
            reason[:200],
            winner_id,
            to_ms(now),
            match_id,
        )
        return len(changed) == 1

    async def open_round(self, round_: Round) -> Round:
        r = round_
        row = await self.db.fetchrow(
            "INSERT INTO rounds (match_id, chat_key, number, card_id, options, correct_index, speed_bonus, "
            "opened_at, closes_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            r.match_id,
            r.chat_key,
            r.number,
            r.card_id,
            json.dumps(list(r.options)),
            r.correct_index,
            r.speed_bonus,
            to_ms(r.opened_at),
            to_ms(r.closes_at),
        )
        assert row is not None
        return rows.round_(row)

    async def get_round(self, round_id: int) -> Round | None:
        row = await self.db.fetchrow("SELECT * FROM rounds WHERE id = ?", round_id)
        return None if row is None else rows.round_(row)

    async def round_by_poll(self, poll_id: str) -> Round | None:
        row = await self.db.fetchrow("SELECT * FROM rounds WHERE poll_id = ?", poll_id)
        return None if row is None else rows.round_(row)

    async def latest_round(self, match_id: int) -> Round | None:
        row = await self.db.fetchrow("SELECT * FROM rounds WHERE match_id = ? ORDER BY number DESC LIMIT 1", match_id)
        return None if row is None else rows.round_(row)

    async def attach_round_message(self, round_id: int, poll_id: str | None, message_id: str | None) -> None:
        await self.db.execute(
            "UPDATE rounds SET poll_id = COALESCE(?, poll_id), message_id = COALESCE(?, message_id) WHERE id = ?",
            poll_id,
            message_id,
            round_id,
        )

    async def close_round(self, round_id: int) -> bool:
        """Close an open round; False when it was already closed."""
        changed = await self.db.fetch("UPDATE rounds SET closed = 1 WHERE id = ? AND closed = 0 RETURNING id", round_id)
        return len(changed) == 1

    async def add_answer(self, answer: RoundAnswer, now: datetime) -> bool:
        """Store the answer only if the player has none for that round and the round is open at `now`."""
        a = answer
        stored = await self.db.fetch(
            "INSERT INTO round_answers (round_id, learner_id, option_index, correct, points, elapsed_ms, "
            "answered_at) SELECT id, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER), "
            "CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS BIGINT) FROM rounds "
            "WHERE id = ? AND closed = 0 AND closes_at >= ? "
            "ON CONFLICT (round_id, learner_id) DO NOTHING RETURNING round_id",
            a.learner_id,
            a.option_index,
            int(a.correct),
            a.points,
            a.elapsed_ms,
            to_ms(a.answered_at),
            a.round_id,
            to_ms(now),
        )
        return len(stored) == 1

    async def round_answers(self, round_id: int) -> list[RoundAnswer]:
        found = await self.db.fetch("SELECT * FROM round_answers WHERE round_id = ? ORDER BY answered_at", round_id)
        return [rows.round_answer(r) for r in found]

    async def standings(self, match_id: int) -> list[Standing]:
        found = await self.db.fetch(
            "SELECT a.learner_id, l.display_name, SUM(a.points) AS points, SUM(a.correct) AS correct, "
            "COUNT(*) AS answered, SUM(a.elapsed_ms) AS time_ms FROM round_answers a "
            "JOIN rounds r ON r.id = a.round_id JOIN learners l ON l.id = a.learner_id "
            "WHERE r.match_id = ? GROUP BY a.learner_id, l.display_name "
            "ORDER BY points DESC, time_ms ASC, a.learner_id",
            match_id,
        )
        return [Standing(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in found]

    async def leaderboard(self, chat_key: str, since: datetime | None) -> list[BoardRow]:
        start = to_ms(since) if since else 0
        found = await self.db.fetch(
            "SELECT a.learner_id, l.display_name, SUM(a.points) AS points, "
            "COUNT(DISTINCT r.match_id) AS matches, SUM(a.correct) AS correct, COUNT(*) AS answered, "
            "(SELECT COUNT(*) FROM matches m WHERE m.chat_key = ? AND m.winner_id = a.learner_id "
            " AND m.started_at >= ?) AS wins "
            "FROM round_answers a JOIN rounds r ON r.id = a.round_id JOIN learners l ON l.id = a.learner_id "
            "WHERE r.chat_key = ? AND a.answered_at >= ? GROUP BY a.learner_id, l.display_name "
            "ORDER BY points DESC, correct DESC, a.learner_id",
            chat_key,
            start,
            chat_key,
            start,
        )
        return [
            BoardRow(
                r["learner_id"],
                r["display_name"],
                int(r["points"]),
                int(r["matches"]),
                int(r["wins"]),
                int(r["correct"]),
                int(r["answered"]),
            )
            for r in found
        ]

    async def recent_round_cards(self, chat_key: str, limit: int) -> list[str]:
        found = await self.db.fetch(
            "SELECT card_id FROM rounds WHERE chat_key = ? ORDER BY opened_at DESC LIMIT ?", chat_key, limit
        )
        return [r[0] for r in found]

    async def chat_card_results(self, chat_key: str, since: datetime) -> list[CardEvidence]:
        """Per card: answers to this chat's rounds opened since `since`, and the correct ones (one query)."""
        found = await self.db.fetch(
            "SELECT r.card_id, COUNT(*), SUM(a.correct) FROM rounds r JOIN round_answers a ON a.round_id = r.id "
            "WHERE r.chat_key = ? AND r.opened_at >= ? GROUP BY r.card_id ORDER BY r.card_id",
            chat_key,
            to_ms(since),
        )
        return [CardEvidence(r[0], int(r[1]), int(r[2])) for r in found]
