"""PlanRepository: a learner's plan to an interview date, and per-card review evidence (the PlanStore port).

Round trips: reading the evidence that ranks a learner's topics is one query; reading a plan is one;
saving one is BEGIN, the plan upsert, the cap UPDATE, COMMIT; ending one is BEGIN, the DELETE ...
RETURNING, the compare-and-set cap UPDATE, COMMIT. Choosing a card reads the plan inside the schedule
query (bot/storage/study.py), at no extra round trip.
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.core.model import CardEvidence, Plan
from bot.storage.db import Database, Row
from bot.storage.rows import from_ms, to_ms

_UPSERT_PLAN = (
    "INSERT INTO plans (learner_id, target_day, timezone, topics, new_per_day, previous_new_per_day, start_day, "
    "planned, rushed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (learner_id) DO UPDATE SET target_day = excluded.target_day, timezone = excluded.timezone, "
    "topics = excluded.topics, new_per_day = excluded.new_per_day, "
    "previous_new_per_day = excluded.previous_new_per_day, start_day = excluded.start_day, "
    "planned = excluded.planned, rushed = excluded.rushed, created_at = excluded.created_at"
)


def plan_row(row: Row) -> Plan:
    return Plan(
        learner_id=row["learner_id"],
        target_day=row["target_day"],
        timezone=row["timezone"],
        topics=tuple(json.loads(row["topics"])),
        new_per_day=row["new_per_day"],
        previous_new_per_day=row["previous_new_per_day"],
        start_day=row["start_day"],
        planned=row["planned"],
        rushed=bool(row["rushed"]),
        created_at=from_ms(row["created_at"]),
    )


class PlanRepository:
    db: Database

    async def card_evidence(self, learner_id: int, since: datetime) -> list[CardEvidence]:
        """Per card: reviews since `since` of cards seen before, and those not rated Again (one query)."""
        found = await self.db.fetch(
            "SELECT card_id, COUNT(*), SUM(CASE WHEN rating > 1 THEN 1 ELSE 0 END) FROM reviews "
            "WHERE learner_id = ? AND reviewed_at >= ? AND was_new = 0 GROUP BY card_id ORDER BY card_id",
            learner_id,
            to_ms(since),
        )
        return [CardEvidence(row[0], int(row[1]), int(row[2])) for row in found]

    async def plan_for(self, learner_id: int) -> Plan | None:
        row = await self.db.fetchrow("SELECT * FROM plans WHERE learner_id = ?", learner_id)
        return None if row is None else plan_row(row)

    async def save_plan(self, plan: Plan) -> None:
        """Insert or replace the learner's plan and set their daily new-card cap to the plan's, atomically."""
        p = plan
        async with self.db.transaction() as tx:
            await tx.execute(
                _UPSERT_PLAN,
                p.learner_id,
                p.target_day,
                p.timezone,
                json.dumps(list(p.topics)),
                p.new_per_day,
                p.previous_new_per_day,
                p.start_day,
                p.planned,
                int(p.rushed),
                to_ms(p.created_at),
            )
            await tx.execute("UPDATE learners SET new_per_day = ? WHERE id = ?", p.new_per_day, p.learner_id)

    async def end_plan(self, learner_id: int) -> tuple[Plan, bool] | None:
        """Delete the learner's plan and put their cap back, unless they changed it since the plan set it."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("DELETE FROM plans WHERE learner_id = ? RETURNING *", learner_id)
            if row is None:
                return None
            plan = plan_row(row)
            restored = await tx.fetch(
                "UPDATE learners SET new_per_day = ? WHERE id = ? AND new_per_day = ? RETURNING id",
                plan.previous_new_per_day,
                learner_id,
                plan.new_per_day,
            )
        return plan, bool(restored)
