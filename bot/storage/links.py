"""LinkRepository: link codes, the merge of two learners into one, and unlinking (the LinkStore port).

A merge is one transaction (a crash anywhere in it leaves both learners as they were): the joining
learner's open questions and running interview are closed; for each card the state whose last review is
the latest is kept (the code issuer's on a tie), so the kept state is the one its newest review in the
merged log produced; every review, attempt, interview, quiz answer and subscription moves over; the
issuer's settings and plan stay (the joining side's plan only when the issuer has none); then the joining
identities point at the issuer's learner and the joining learner row is deleted.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.linking import LinkedIdentity, LinkOutcome, LinkStatus, LinkSummary
from bot.core.model import Identity
from bot.storage.db import Database, Tx
from bot.storage.privacy import _private_chat_keys
from bot.storage.rows import from_ms, to_ms

OPEN_ATTEMPTS = "('open', 'choice', 'revealed')"
# what the copy of an unlinked identity's learner starts with (its study history)
_CARD_STATE = "card_id, state, step, stability, difficulty, due, last_review, reps, lapses, first_day"
_REVIEW = "card_id, rating, reviewed_at, mode, local_day, was_new, state_before"
_INTERVIEW = (
    "chat_key, mode, topic, card_ids, status, position, phase, follow_up, asked_at, started_at, finished_at, score"
)
_ANSWER = "position, part, card_id, prompt, score, missed, elapsed_ms, late, skipped, rating, answered_at"
_PLAN = "target_day, timezone, topics, new_per_day, previous_new_per_day, start_day, planned, rushed, created_at"
_SETTINGS = "timezone, new_per_day, created_at, reviews_per_day, show_streak, rating_explained, quiet_hours"
_SETTINGS_OF_L = ", ".join(f"l.{column}" for column in _SETTINGS.split(", "))


class LinkRepository:
    db: Database

    async def create_link_code(
        self, learner_id: int, issuer: Identity, issuer_name: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        async with self.db.transaction() as tx:
            # one live code per learner; codes long expired are tidied away here
            await tx.execute(
                "DELETE FROM link_codes WHERE (learner_id = ? AND used_at IS NULL) OR expires_at < ?",
                learner_id,
                to_ms(now) - 86_400_000,
            )
            await tx.execute(
                "INSERT INTO link_codes (code_hash, learner_id, platform, external_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                code_hash,
                learner_id,
                issuer.platform,
                issuer.external_id,
                to_ms(now),
                to_ms(expires_at),
            )
            await tx.execute(
                "UPDATE identities SET display_name = ? WHERE platform = ? AND external_id = ?",
                issuer_name[:64],
                issuer.platform,
                issuer.external_id,
            )

    async def link_failures_since(self, identity: Identity, since: datetime) -> list[datetime]:
        found = await self.db.fetch(
            "SELECT failed_at FROM link_failures WHERE platform = ? AND external_id = ? AND failed_at > ? "
            "ORDER BY failed_at",
            identity.platform,
            identity.external_id,
            to_ms(since),
        )
        return [from_ms(row[0]) for row in found]

    async def record_link_failure(self, identity: Identity, now: datetime) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "DELETE FROM link_failures WHERE platform = ? AND external_id = ? AND failed_at < ?",
                identity.platform,
                identity.external_id,
                to_ms(now) - 86_400_000,
            )
            await tx.execute(
                "INSERT INTO link_failures (platform, external_id, failed_at) VALUES (?, ?, ?)",
                identity.platform,
                identity.external_id,
                to_ms(now),
            )

    async def link_identity(self, code_hash: str, identity: Identity, display_name: str, now: datetime) -> LinkOutcome:
        at = to_ms(now)
        async with self.db.transaction() as tx:
            code = await tx.fetchrow(
                "SELECT learner_id, platform, external_id FROM link_codes "
                "WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?",
                code_hash,
                at,
            )
            if code is None:
                return LinkOutcome(LinkStatus.INVALID)
            target, issuer = int(code[0]), Identity(code[1], code[2])
            row = await tx.fetchrow(
                "SELECT learner_id FROM identities WHERE platform = ? AND external_id = ?",
                identity.platform,
                identity.external_id,
            )
            source = None if row is None else int(row[0])
            if source == target:
                return LinkOutcome(LinkStatus.ALREADY, target, issuer)
            joining = [identity] if source is None else await _identities(tx, source)
            theirs = await _identities(tx, target)
            taken = next((t for t in theirs for j in joining if t.platform == j.platform), None)
            if taken is not None:
                return LinkOutcome(LinkStatus.TAKEN, target, issuer, taken=taken)
            claimed = await tx.fetch(
                "UPDATE link_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL RETURNING learner_id",
                at,
                code_hash,
            )
            if not claimed:  # used by another request meanwhile
                return LinkOutcome(LinkStatus.INVALID)
            closed_questions = closed_interviews = 0
            if source is None:
                await tx.execute(
                    "INSERT INTO identities (platform, external_id, learner_id, display_name, linked_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    identity.platform,
                    identity.external_id,
                    target,
                    display_name[:64],
                    at,
                )
            else:
                closed_questions, closed_interviews = await _merge(tx, source, target, at)
                await tx.execute(
                    "UPDATE identities SET display_name = ? WHERE platform = ? AND external_id = ?",
                    display_name[:64],
                    identity.platform,
                    identity.external_id,
                )
        return LinkOutcome(
            LinkStatus.LINKED,
            target,
            issuer,
            joined=tuple(joining),
            closed_questions=closed_questions,
            closed_interviews=closed_interviews,
        )

    async def linked_identities(self, learner_id: int) -> list[LinkedIdentity]:
        found = await self.db.fetch(
            "SELECT i.platform, i.external_id, COALESCE(i.display_name, l.display_name), i.linked_at "
            "FROM identities i JOIN learners l ON l.id = i.learner_id WHERE i.learner_id = ? "
            "ORDER BY COALESCE(i.linked_at, 0), i.platform, i.external_id",
            learner_id,
        )
        return [
            LinkedIdentity(Identity(row[0], row[1]), row[2], None if row[3] is None else from_ms(row[3]))
            for row in found
        ]

    async def link_summary(self, learner_id: int) -> LinkSummary:
        row = await self.db.fetchrow(
            "SELECT (SELECT COUNT(*) FROM reviews WHERE learner_id = ?), "
            "(SELECT COUNT(*) FROM card_states WHERE learner_id = ?), "
            "(SELECT COALESCE(SUM(points), 0) FROM round_answers WHERE learner_id = ?)",
            learner_id,
            learner_id,
            learner_id,
        )
        assert row is not None
        subscriptions = await self.db.fetch(
            "SELECT platform, local_time FROM subscriptions WHERE learner_id = ? AND is_group = 0 "
            "ORDER BY platform, local_time",
            learner_id,
        )
        return LinkSummary(int(row[0]), int(row[1]), int(row[2]), tuple((str(s[0]), str(s[1])) for s in subscriptions))

    async def unlink_identity(self, learner_id: int, identity: Identity, now: datetime) -> int | None:
        at = to_ms(now)
        async with self.db.transaction() as tx:
            mine = await _identities(tx, learner_id)
            if identity not in mine or len(mine) < 2:
                return None
            row = await tx.fetchrow(
                f"INSERT INTO learners (display_name, {_SETTINGS}) "
                f"SELECT COALESCE(i.display_name, l.display_name), {_SETTINGS_OF_L} "
                "FROM learners l JOIN identities i ON i.learner_id = l.id "
                "WHERE l.id = ? AND i.platform = ? AND i.external_id = ? RETURNING id",
                learner_id,
                identity.platform,
                identity.external_id,
            )
            assert row is not None
            copy = int(row[0])
            await tx.execute(
                f"INSERT INTO card_states (learner_id, {_CARD_STATE}) SELECT ?, {_CARD_STATE} FROM card_states "
                "WHERE learner_id = ?",
                copy,
                learner_id,
            )
            await tx.execute(
                f"INSERT INTO reviews (learner_id, {_REVIEW}) SELECT ?, {_REVIEW} FROM reviews WHERE learner_id = ? "
                "ORDER BY id",
                copy,
                learner_id,
            )
            await tx.execute(
                f"INSERT INTO plans (learner_id, {_PLAN}) SELECT ?, {_PLAN} FROM plans WHERE learner_id = ?",
                copy,
                learner_id,
            )
            keys = _private_chat_keys([identity])
            marks = ", ".join("?" for _ in keys)
            # what runs in the detached account's own chat ends there (it belongs to the profile it leaves)
            await tx.execute(
                f"UPDATE attempts SET status = 'expired', closed_at = ? WHERE learner_id = ? "
                f"AND status IN {OPEN_ATTEMPTS} AND chat_key IN ({marks})",
                at,
                learner_id,
                *keys,
            )
            await tx.execute(
                f"UPDATE interviews SET status = 'ended', finished_at = ? WHERE learner_id = ? AND status = 'running' "
                f"AND chat_key IN ({marks})",
                at,
                learner_id,
                *keys,
            )
            interviews = await tx.fetch(
                "SELECT id FROM interviews WHERE learner_id = ? AND status != 'running' ORDER BY id", learner_id
            )
            for interview in interviews:
                made = await tx.fetchrow(
                    f"INSERT INTO interviews (learner_id, {_INTERVIEW}) SELECT ?, {_INTERVIEW} FROM interviews "
                    "WHERE id = ? RETURNING id",
                    copy,
                    interview[0],
                )
                assert made is not None
                await tx.execute(
                    f"INSERT INTO interview_answers (interview_id, learner_id, {_ANSWER}) "
                    f"SELECT ?, ?, {_ANSWER} FROM interview_answers WHERE interview_id = ?",
                    made[0],
                    copy,
                    interview[0],
                )
            await tx.execute(
                "UPDATE subscriptions SET learner_id = ?, created_by = ? "
                f"WHERE learner_id = ? AND chat_key IN ({marks})",
                copy,
                copy,
                learner_id,
                *keys,
            )
            await tx.execute(
                "UPDATE identities SET learner_id = ?, linked_at = NULL WHERE platform = ? AND external_id = ?",
                copy,
                identity.platform,
                identity.external_id,
            )
        return copy

    async def add_link_notice(self, identity: Identity, text: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO link_notices (platform, external_id, text, created_at) VALUES (?, ?, ?, ?)",
            identity.platform,
            identity.external_id,
            text,
            to_ms(now),
        )

    async def take_link_notices(self, identity: Identity) -> list[str]:
        found = await self.db.fetch(
            "DELETE FROM link_notices WHERE platform = ? AND external_id = ? RETURNING id, text",
            identity.platform,
            identity.external_id,
        )
        return [str(row[1]) for row in sorted(found, key=lambda row: int(row[0]))]

    async def pending_link_notices(self, platforms: tuple[str, ...], limit: int) -> list[tuple[int, Identity, str]]:
        marks = ", ".join("?" for _ in platforms)
        found = await self.db.fetch(
            f"SELECT id, platform, external_id, text FROM link_notices WHERE platform IN ({marks}) ORDER BY id LIMIT ?",
            *platforms,
            limit,
        )
        return [(int(row[0]), Identity(row[1], row[2]), str(row[3])) for row in found]

    async def drop_link_notice(self, notice_id: int) -> None:
        await self.db.execute("DELETE FROM link_notices WHERE id = ?", notice_id)


async def _identities(tx: Tx, learner_id: int) -> list[Identity]:
    found = await tx.fetch(
        "SELECT platform, external_id FROM identities WHERE learner_id = ? ORDER BY platform, external_id", learner_id
    )
    return [Identity(row[0], row[1]) for row in found]


async def _merge(tx: Tx, source: int, target: int, at: int) -> tuple[int, int]:
    """Everything of learner `source` into learner `target`, inside the caller's transaction; returns how
    many open questions and running interviews of the joining side were closed."""
    closed = await tx.fetch(
        f"UPDATE attempts SET status = 'expired', closed_at = ? WHERE learner_id = ? AND status IN {OPEN_ATTEMPTS} "
        "RETURNING id",
        at,
        source,
    )
    ended = await tx.fetch(
        "UPDATE interviews SET status = 'ended', finished_at = ? WHERE learner_id = ? AND status = 'running' "
        "RETURNING id",
        at,
        source,
    )
    # card states: the one whose last review is the latest wins (the target's on a tie; never-reviewed last)
    await tx.execute(
        "DELETE FROM card_states WHERE learner_id = ? AND EXISTS (SELECT 1 FROM card_states s "
        "WHERE s.learner_id = ? AND s.card_id = card_states.card_id "
        "AND COALESCE(s.last_review, -1) > COALESCE(card_states.last_review, -1))",
        target,
        source,
    )
    await tx.execute(
        "DELETE FROM card_states WHERE learner_id = ? AND card_id IN "
        "(SELECT t.card_id FROM card_states t WHERE t.learner_id = ?)",
        source,
        target,
    )
    for table in ("card_states", "reviews", "attempts", "interviews", "interview_answers"):
        await tx.execute(f"UPDATE {table} SET learner_id = ? WHERE learner_id = ?", target, source)
    # quiz answers: both learners answering the same round cannot both count (the target's stays)
    await tx.execute(
        "UPDATE round_answers SET learner_id = ? WHERE learner_id = ? AND round_id NOT IN "
        "(SELECT t.round_id FROM round_answers t WHERE t.learner_id = ?)",
        target,
        source,
        target,
    )
    await tx.execute("UPDATE matches SET starter_id = ? WHERE starter_id = ?", target, source)
    await tx.execute("UPDATE matches SET winner_id = ? WHERE winner_id = ?", target, source)
    await tx.execute("UPDATE subscriptions SET learner_id = ? WHERE learner_id = ?", target, source)
    await tx.execute("UPDATE subscriptions SET created_by = ? WHERE created_by = ?", target, source)
    await tx.execute(
        "UPDATE plans SET learner_id = ? WHERE learner_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM plans t WHERE t.learner_id = ?)",
        target,
        source,
        target,
    )
    await tx.execute(
        "UPDATE learners SET rating_explained = (SELECT MAX(rating_explained) FROM learners WHERE id IN (?, ?)) "
        "WHERE id = ?",
        source,
        target,
        target,
    )
    await tx.execute("UPDATE identities SET learner_id = ?, linked_at = ? WHERE learner_id = ?", target, at, source)
    await tx.execute("DELETE FROM learners WHERE id = ?", source)  # the rest (its unmoved rows) by cascade
    return len(closed), len(ended)
