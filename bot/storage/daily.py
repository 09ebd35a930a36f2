"""DailyRepository: subscriptions, their deliveries and heartbeats (the core's DailyStore port).

A delivery row is unique per subscription and local day: that constraint, not a lock, is what makes
a push go out at most once a day, whichever process claims it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bot.core.model import Claim, Subscription
from bot.core.ports import Advance
from bot.storage import rows
from bot.storage.db import Database, Tx, chunks, shared_cache_stale
from bot.storage.rows import from_ms, opt_dt, opt_ms, to_ms

CLAIM_CHUNK = 200  # delivery rows per INSERT statement
# A claimed delivery's lease: its send slot plus this. Until then no other process takes it over (PostgreSQL).
LEASE_AFTER_SLOT_MS = 30_000


class DailyRepository:
    """Also keeps, in memory, which chats have a paused subscription and why (asked on every update,
    changed only through this repository); on PostgreSQL, shared by replicas, the copy is read again once
    it is SHARED_CACHE_SECONDS old, as for chat reachability."""

    db: Database
    _paused: dict[str, str] | None
    _paused_read: float = 0.0

    async def _paused_chats(self) -> dict[str, str]:
        if self._paused is None or shared_cache_stale(self.db, self._paused_read):
            found = await self.db.fetch(
                "SELECT chat_key, paused_reason FROM subscriptions WHERE paused_reason IS NOT NULL"
            )
            self._paused = {row[0]: row[1] for row in found}
            self._paused_read = time.monotonic()
        return self._paused

    async def paused_reason(self, chat_key: str) -> str | None:
        """Why the chat's subscription is paused; None when it is not paused or there is none."""
        return (await self._paused_chats()).get(chat_key)

    def _note_paused(self, chat_key: str, reason: str | None) -> None:
        if self._paused is not None:
            if reason is None:
                self._paused.pop(chat_key, None)
            else:
                self._paused[chat_key] = reason

    async def save_subscription(self, subscription: Subscription) -> Subscription:
        """Insert or replace the subscription of subscription.chat_key; returns it with its id."""
        s = subscription
        row = await self.db.fetchrow(
            "INSERT INTO subscriptions (chat_key, platform, chat_id, is_group, learner_id, local_time, timezone, "
            "next_push_at, paused_reason, created_by, created_at, always, count_from) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_key) DO UPDATE SET learner_id = excluded.learner_id, "
            "local_time = excluded.local_time, timezone = excluded.timezone, "
            "next_push_at = excluded.next_push_at, paused_reason = excluded.paused_reason, "
            "always = excluded.always, count_from = excluded.count_from RETURNING *",
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
            to_ms(s.created_at or s.next_push_at),
            int(s.always),
            0 if s.count_from is None else to_ms(s.count_from),
        )
        assert row is not None
        saved = rows.subscription(row)
        self._note_paused(saved.chat_key, saved.paused_reason)
        return saved

    async def subscription(self, chat_key: str) -> Subscription | None:
        row = await self.db.fetchrow("SELECT * FROM subscriptions WHERE chat_key = ?", chat_key)
        return None if row is None else rows.subscription(row)

    async def delete_subscription(self, chat_key: str) -> bool:
        deleted = await self.db.fetch("DELETE FROM subscriptions WHERE chat_key = ? RETURNING id", chat_key)
        self._note_paused(chat_key, None)
        return bool(deleted)

    async def pause_subscription(self, chat_key: str, reason: str) -> None:
        found = await self.db.fetch(
            "UPDATE subscriptions SET paused_reason = ? WHERE chat_key = ? RETURNING id", reason, chat_key
        )
        if found:
            self._note_paused(chat_key, reason)

    async def resume_subscription(
        self, chat_key: str, next_push_at: datetime, *, count_from: datetime | None = None
    ) -> None:
        """Unpause it, next push at next_push_at; with count_from, unanswered pushes are counted from there."""
        await self.db.execute(
            "UPDATE subscriptions SET paused_reason = NULL, next_push_at = ?, "
            "count_from = COALESCE(?, count_from) WHERE chat_key = ?",
            to_ms(next_push_at),
            opt_ms(count_from),
            chat_key,
        )
        self._note_paused(chat_key, None)

    def _shared(self) -> bool:
        """Several processes may claim at once (PostgreSQL): claims skip rows another process has locked, and
        a claimed delivery is taken over only when its lease ran out. SQLite has one process: a claim of
        another claimer id is from a process that is gone, taken over at once."""
        return self.db.engine == "postgresql"

    async def _reserve_slots(self, tx: Tx, platform: str, count: int, gap: timedelta, now: datetime) -> list[int]:
        """`count` send slots (ms) for `platform`, `gap` apart, after those every process reserved before:
        one row per platform holds the next free slot, so the fleet together keeps the pace."""
        if gap <= timedelta(0):
            return [to_ms(now)] * count
        gap_ms = gap.total_seconds() * 1000
        span = math.ceil(count * gap_ms)
        row = await tx.fetchrow(
            "INSERT INTO send_slots (platform, next_at) VALUES (?, ?) ON CONFLICT (platform) DO UPDATE SET "
            "next_at = (CASE WHEN send_slots.next_at > ? THEN send_slots.next_at ELSE ? END) + ? RETURNING next_at",
            platform,
            to_ms(now) + span,
            to_ms(now),
            to_ms(now),
            span,
        )
        assert row is not None
        first = int(row[0]) - span
        return [first + round(i * gap_ms) for i in range(count)]

    async def _slots_for(
        self, tx: Tx, subs: Sequence[Subscription], pace: Mapping[str, timedelta] | None, now: datetime
    ) -> list[int]:
        """A send slot (ms) for each subscription, in order: paced per platform by `pace` (the gap between two
        messages); a platform without one is sent at once."""
        slots = [to_ms(now)] * len(subs)
        for platform in sorted({sub.platform for sub in subs}):
            gap = (pace or {}).get(platform)
            if gap is None:
                continue
            positions = [i for i, sub in enumerate(subs) if sub.platform == platform]
            for i, slot in zip(
                positions, await self._reserve_slots(tx, platform, len(positions), gap, now), strict=True
            ):
                slots[i] = slot
        return slots

    async def claim_due(
        self,
        now: datetime,
        claimer: str,
        limit: int,
        advance: Advance,
        pace: Mapping[str, timedelta] | None = None,
    ) -> list[Claim]:
        """For each due subscription (up to `limit`): advance next_push_at and insert the delivery of its
        local day unless that day has one, with a send slot and a lease (the slot plus LEASE_AFTER_SLOT).
        One transaction, a fixed number of statements per batch; on PostgreSQL, subscriptions another
        process is claiming are skipped (FOR UPDATE SKIP LOCKED), so replicas claim different ones."""
        lock = " FOR UPDATE SKIP LOCKED" if self._shared() else ""
        async with self.db.transaction() as tx:
            due = [
                rows.subscription(row)
                for row in await tx.fetch(
                    "SELECT * FROM subscriptions WHERE paused_reason IS NULL AND next_push_at <= ? "
                    f"ORDER BY next_push_at, id LIMIT ?{lock}",
                    to_ms(now),
                    limit,
                )
            ]
            if not due:
                return []
            planned = [(sub, *advance(sub, now)) for sub in due]
            await tx.executemany(
                "UPDATE subscriptions SET next_push_at = ? WHERE id = ?",
                [(to_ms(next_at), sub.id) for sub, _day, next_at in planned],
            )
            slots = await self._slots_for(tx, due, pace, now)
            slot_of = {sub.id: slot for sub, slot in zip(due, slots, strict=True)}
            inserted: dict[int, int] = {}
            for part in chunks(planned, CLAIM_CHUNK):
                values = ", ".join("(?, ?, 'claimed', ?, ?, ?, ?)" for _ in part)
                params = [
                    p
                    for sub, day, _next in part
                    for p in (sub.id, day, claimer, to_ms(now), slot_of[sub.id], slot_of[sub.id] + LEASE_AFTER_SLOT_MS)
                ]
                for row in await tx.fetch(
                    "INSERT INTO deliveries (subscription_id, local_day, status, claimed_by, claimed_at, send_at, "
                    f"lease_until) VALUES {values} ON CONFLICT (subscription_id, local_day) DO NOTHING "
                    "RETURNING id, subscription_id",
                    *params,
                ):
                    inserted[int(row[1])] = int(row[0])
        return [
            Claim(inserted[sub.id], sub, day, 0, send_at=from_ms(slot_of[sub.id]))
            for sub, day, _next in planned
            if sub.id in inserted
        ]

    async def day_claimed(self, subscription_id: int, local_day: str) -> bool:
        """Whether the subscription already has a delivery for that local day (so none more that day)."""
        found = await self.db.fetch(
            "SELECT 1 FROM deliveries WHERE subscription_id = ? AND local_day = ?", subscription_id, local_day
        )
        return bool(found)

    async def open_claims(
        self, now: datetime, claimer: str, limit: int, pace: Mapping[str, timedelta] | None = None
    ) -> list[Claim]:
        """Deliveries to (re)try now: those waiting for a retry, and those claimed by another process and not
        finished (on PostgreSQL only once their lease ran out: that process died or stalled; on SQLite at
        once: the one process restarted). They are claimed for `claimer` with new send slots and leases."""
        shared = self._shared()
        lease = " AND COALESCE(d.lease_until, 0) <= ?" if shared else ""
        async with self.db.transaction() as tx:
            found = await tx.fetch(
                "SELECT d.id AS delivery_id, d.local_day, d.attempts, s.* FROM deliveries d "
                "JOIN subscriptions s ON s.id = d.subscription_id "
                "WHERE s.paused_reason IS NULL AND ((d.status = 'retry' AND d.retry_at <= ?) "
                f"OR (d.status = 'claimed' AND d.claimed_by <> ?{lease})) ORDER BY d.id LIMIT ?"
                + (" FOR UPDATE OF d SKIP LOCKED" if shared else ""),
                *((to_ms(now), claimer, to_ms(now), limit) if shared else (to_ms(now), claimer, limit)),
            )
            subs = [rows.subscription(r) for r in found]
            slots = await self._slots_for(tx, subs, pace, now)
            claims = [
                Claim(r["delivery_id"], sub, r["local_day"], r["attempts"], send_at=from_ms(slot))
                for r, sub, slot in zip(found, subs, slots, strict=True)
            ]
            await tx.executemany(
                "UPDATE deliveries SET status = 'claimed', claimed_by = ?, claimed_at = ?, send_at = ?, "
                "lease_until = ? WHERE id = ?",
                [
                    (claimer, to_ms(now), slot, slot + LEASE_AFTER_SLOT_MS, c.delivery_id)
                    for c, slot in zip(claims, slots, strict=True)
                ],
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
        await self.db.execute(
            "UPDATE deliveries SET status = ?, attempts = attempts + 1, finished_at = ?, detail = ?, "
            "message_id = COALESCE(?, message_id), retry_at = ? WHERE id = ?",
            status,
            to_ms(now),
            detail[:300],
            message_id,
            opt_ms(retry_at),
            delivery_id,
        )

    async def defer_delivery(self, delivery_id: int, until: datetime, detail: str) -> None:
        """Hold a claimed delivery until `until` (quiet hours): it is retried then, and the wait is not
        counted as a failed attempt."""
        await self.db.execute(
            "UPDATE deliveries SET status = 'retry', retry_at = ?, detail = ? WHERE id = ?",
            to_ms(until),
            detail[:300],
            delivery_id,
        )

    async def unanswered_pushes(self, subscription: Subscription) -> tuple[datetime | None, int]:
        """The learner's last answer (None: never) and how many pushes went to the subscription after it
        (and after subscription.count_from); one statement."""
        row = await self.db.fetchrow(
            "SELECT r.last_at, (SELECT COUNT(*) FROM deliveries d WHERE d.subscription_id = ? AND d.status = 'sent' "
            "AND d.finished_at > COALESCE(r.last_at, -1) AND d.finished_at >= ?) "
            "FROM (SELECT MAX(reviewed_at) AS last_at FROM reviews WHERE learner_id = ?) r",
            subscription.id,
            0 if subscription.count_from is None else to_ms(subscription.count_from),
            subscription.learner_id,
        )
        if row is None:  # pragma: no cover - an aggregate always returns a row
            return None, 0
        return opt_dt(row[0]), int(row[1])

    async def beat(self, name: str, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO heartbeats (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at",
            name,
            to_ms(now),
        )

    async def last_beat(self, name: str) -> datetime | None:
        row = await self.db.fetchrow("SELECT at FROM heartbeats WHERE name = ?", name)
        return None if row is None else from_ms(row[0])
