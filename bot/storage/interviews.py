"""InterviewRepository: mock interviews and their answers (the core's InterviewStore port).

A step of an interview is one transaction: a compare-and-set on the interview's open step, the
answers (inserted, or the question's row updated with its rating), the FSRS card state and review,
and the interview's next prompt or its end.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from bot.core.interview import Advance, Answer, Interview, Mode, Phase, Status
from bot.core.model import Identity, Learner, Rating
from bot.storage import rows
from bot.storage.db import Database, Row
from bot.storage.rows import LEARNER_COLUMNS, columns, from_ms, opt_dt, to_ms
from bot.storage.study import StudyRepository

INTERVIEW_COLUMNS = (
    "id",
    "learner_id",
    "chat_key",
    "mode",
    "topic",
    "card_ids",
    "status",
    "position",
    "phase",
    "follow_up",
    "asked_at",
    "started_at",
    "finished_at",
    "score",
)
_RUNNING_FOR = (
    f"SELECT {columns('l', LEARNER_COLUMNS)}, {columns('v', INTERVIEW_COLUMNS, 'v_')} "
    "FROM identities i JOIN learners l ON l.id = i.learner_id "
    "LEFT JOIN interviews v ON v.learner_id = l.id AND v.status = 'running' "
    "WHERE i.platform = ? AND i.external_id = ?"
)
_STEP = "(2 * position + CASE WHEN phase = 'follow_up' THEN 1 ELSE 0 END)"
_SAVE_ANSWER = (
    "INSERT INTO interview_answers (interview_id, learner_id, position, part, card_id, prompt, score, missed, "
    "elapsed_ms, late, skipped, rating, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (interview_id, position, part) DO UPDATE SET rating = excluded.rating"
)


def _interview(row: Row, prefix: str = "") -> Interview | None:
    if row[prefix + "id"] is None:
        return None
    return Interview(
        id=row[prefix + "id"],
        learner_id=row[prefix + "learner_id"],
        chat_key=row[prefix + "chat_key"],
        mode=Mode(row[prefix + "mode"]),
        topic=row[prefix + "topic"],
        card_ids=tuple(json.loads(row[prefix + "card_ids"])),
        status=Status(row[prefix + "status"]),
        position=row[prefix + "position"],
        phase=Phase(row[prefix + "phase"]),
        follow_up=row[prefix + "follow_up"],
        asked_at=from_ms(row[prefix + "asked_at"]),
        started_at=from_ms(row[prefix + "started_at"]),
        finished_at=opt_dt(row[prefix + "finished_at"]),
        score=row[prefix + "score"],
    )


def _answer(row: Row) -> Answer:
    return Answer(
        position=row["position"],
        part=Phase(row["part"]),
        card_id=row["card_id"],
        score=float(row["score"]),
        missed=tuple(json.loads(row["missed"])),
        elapsed_ms=row["elapsed_ms"],
        answered_at=from_ms(row["answered_at"]),
        late=bool(row["late"]),
        skipped=bool(row["skipped"]),
        prompt=row["prompt"],
        rating=None if row["rating"] is None else Rating(row["rating"]),
    )


class InterviewRepository:
    db: Database

    async def running_interview(self, learner_id: int) -> Interview | None:
        row = await self.db.fetchrow("SELECT * FROM interviews WHERE learner_id = ? AND status = 'running'", learner_id)
        return None if row is None else _interview(row)

    async def running_interview_for(self, identity: Identity) -> tuple[Learner, Interview | None] | None:
        row = await self.db.fetchrow(_RUNNING_FOR, identity.platform, identity.external_id)
        if row is None:
            return None
        learner = rows.learner(row)
        assert learner is not None
        return learner, _interview(row, "v_")

    async def start_interview(self, interview: Interview) -> Interview | None:
        row = await self.db.fetchrow(
            "INSERT INTO interviews (learner_id, chat_key, mode, topic, card_ids, status, position, phase, "
            "follow_up, asked_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING id",
            interview.learner_id,
            interview.chat_key,
            interview.mode.value,
            interview.topic,
            json.dumps(list(interview.card_ids)),
            interview.status.value,
            interview.position,
            interview.phase.value,
            interview.follow_up,
            to_ms(interview.asked_at),
            to_ms(interview.started_at),
        )
        if row is None:  # the learner already has a running interview
            return None
        return replace(interview, id=int(row[0]))

    async def advance_interview(self, interview_id: int, change: Advance, now: datetime) -> bool:
        async with self.db.transaction() as tx:
            moved = await tx.fetch(
                "UPDATE interviews SET chat_key = ?, position = ?, phase = ?, follow_up = ?, asked_at = ?, "
                "status = ?, finished_at = ?, score = ? "
                f"WHERE id = ? AND status = 'running' AND {_STEP} = ? RETURNING learner_id",
                change.chat_key,
                change.position,
                change.phase.value,
                change.follow_up,
                to_ms(change.asked_at),
                (change.finish or Status.RUNNING).value,
                to_ms(now) if change.finish else None,
                change.score if change.finish else None,
                interview_id,
                change.expected_step,
            )
            if len(moved) != 1:
                return False
            learner_id = int(moved[0][0])
            if change.answers:
                await tx.executemany(
                    _SAVE_ANSWER,
                    [
                        (
                            interview_id,
                            learner_id,
                            a.position,
                            a.part.value,
                            a.card_id,
                            a.prompt,
                            a.score,
                            json.dumps(list(a.missed)),
                            a.elapsed_ms,
                            int(a.late),
                            int(a.skipped),
                            None if a.rating is None else int(a.rating),
                            to_ms(a.answered_at),
                        )
                        for a in change.answers
                    ],
                )
            if change.review is not None:
                state, review = change.review
                await StudyRepository._write_review(tx, state, review)
            return True

    async def interview_answers(self, interview_id: int) -> list[Answer]:
        found = await self.db.fetch(
            "SELECT * FROM interview_answers WHERE interview_id = ? "
            "ORDER BY position, CASE WHEN part = 'main' THEN 0 ELSE 1 END",
            interview_id,
        )
        return [_answer(row) for row in found]

    async def recent_interviews(self, learner_id: int, limit: int) -> list[Interview]:
        found = await self.db.fetch(
            "SELECT * FROM interviews WHERE learner_id = ? ORDER BY started_at DESC, id DESC LIMIT ?",
            learner_id,
            limit,
        )
        return [i for row in found if (i := _interview(row)) is not None]
