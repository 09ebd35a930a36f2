"""In-memory fakes of the core's ports: a clock that only moves when told, and a dict-backed store."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.model import (
    Attempt,
    AttemptStatus,
    AttemptView,
    CardEvidence,
    CardState,
    Identity,
    Learner,
    PickContext,
    Plan,
    Preview,
    Rating,
    Review,
)
from bot.core.ports import Delivery, SendResult
from bot.core.progress import ProgressHistory
from bot.core.views import Reply

ACTIVE = (AttemptStatus.OPEN, AttemptStatus.CHOICE, AttemptStatus.REVEALED)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)

    def set(self, moment: datetime) -> None:
        self._now = moment


class MemoryStore:
    """The StudyStore port in dicts; same contract as SqliteStore."""

    def __init__(self) -> None:
        self.learners: dict[int, Learner] = {}
        self.identities: dict[Identity, int] = {}
        self.states: dict[tuple[int, str], CardState] = {}
        self.reviews: list[Review] = []
        self.attempts: dict[int, Attempt] = {}
        self.unreachable: dict[str, str] = {}
        self.plans: dict[int, Plan] = {}

    async def ensure_learner(
        self, identity: Identity, display_name: str, now: datetime, timezone: str, new_per_day: int
    ) -> Learner:
        if identity in self.identities:
            learner = self.learners[self.identities[identity]]
            if learner.display_name != display_name:
                learner = replace(learner, display_name=display_name)
                self.learners[learner.id] = learner
            return learner
        learner = Learner(len(self.learners) + 1, display_name, timezone, new_per_day, now)
        self.learners[learner.id] = learner
        self.identities[identity] = learner.id
        return learner

    async def get_learner(self, learner_id: int) -> Learner | None:
        return self.learners.get(learner_id)

    async def find_learner(self, identity: Identity) -> Learner | None:
        learner_id = self.identities.get(identity)
        return None if learner_id is None else self.learners[learner_id]

    async def set_new_per_day(self, learner_id: int, new_per_day: int) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], new_per_day=new_per_day)

    async def set_timezone(self, learner_id: int, timezone: str) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], timezone=timezone)

    async def set_reviews_per_day(self, learner_id: int, reviews_per_day: int) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], reviews_per_day=reviews_per_day)

    async def set_show_streak(self, learner_id: int, show: bool) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], show_streak=show)

    async def mark_rating_explained(self, learner_id: int) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], rating_explained=True)

    async def set_quiet_hours(self, learner_id: int, quiet_hours: str | None) -> None:
        self.learners[learner_id] = replace(self.learners[learner_id], quiet_hours=quiet_hours)

    async def card_state(self, learner_id: int, card_id: str) -> CardState | None:
        return self.states.get((learner_id, card_id))

    def _mine(self, learner_id: int) -> list[CardState]:
        return [s for (lid, _), s in self.states.items() if lid == learner_id]

    async def pick_context(self, learner_id: int, skipped_since: datetime) -> PickContext:
        mine = sorted(self._mine(learner_id), key=lambda s: (s.due, s.card_id))
        skipped = {
            a.card_id
            for a in self.attempts.values()
            if a.learner_id == learner_id
            and a.status is AttemptStatus.SKIPPED
            and a.closed_at is not None
            and a.closed_at >= skipped_since
        }
        plan = self.plans.get(learner_id)
        return PickContext(
            tuple((s.card_id, s.due, s.first_day) for s in mine),
            frozenset(skipped),
            plan.focus if plan is not None else None,
            {s.card_id: (s.stability, s.last_review) for s in mine},
        )

    async def attempt_for(self, attempt_id: int, identity: Identity) -> AttemptView | None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None:
            return None
        return AttemptView(
            attempt, await self.find_learner(identity), self.states.get((attempt.learner_id, attempt.card_id))
        )

    async def open_attempt_for(self, identity: Identity, chat_key: str) -> AttemptView | None:
        learner = await self.find_learner(identity)
        if learner is None:
            return None
        mine = [
            a
            for a in self.attempts.values()
            if a.learner_id == learner.id and a.chat_key == chat_key and a.status in ACTIVE
        ]
        attempt = max(mine, key=lambda a: a.id, default=None)
        if attempt is None:
            return None
        return AttemptView(attempt, learner, self.states.get((learner.id, attempt.card_id)))

    async def seen_card_ids(self, learner_id: int) -> set[str]:
        return {s.card_id for s in self._mine(learner_id)}

    async def count_new_on_day(self, learner_id: int, local_day: str) -> int:
        return sum(1 for s in self._mine(learner_id) if s.first_day == local_day)

    async def count_due(self, learner_id: int, now: datetime) -> int:
        return sum(1 for s in self._mine(learner_id) if s.due <= now)

    async def create_attempt(
        self, learner_id: int, card_id: str, chat_key: str, now: datetime, topic: str | None
    ) -> Attempt:
        for attempt in list(self.attempts.values()):
            if attempt.learner_id == learner_id and attempt.chat_key == chat_key and attempt.status in ACTIVE:
                self.attempts[attempt.id] = replace(attempt, status=AttemptStatus.EXPIRED, closed_at=now)
        attempt = Attempt(len(self.attempts) + 1, learner_id, card_id, chat_key, AttemptStatus.OPEN, now, topic=topic)
        self.attempts[attempt.id] = attempt
        return attempt

    async def get_attempt(self, attempt_id: int) -> Attempt | None:
        return self.attempts.get(attempt_id)

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
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.status not in expected:
            return False
        attempt = replace(attempt, status=status)
        if status not in ACTIVE:
            attempt = replace(attempt, closed_at=now)
        if options is not None:
            attempt = replace(attempt, options=options)
        if previews is not None:
            attempt = replace(attempt, previews=previews)
        self.attempts[attempt_id] = attempt
        return True

    async def record_answer(
        self, attempt_id: int, expected: Collection[AttemptStatus], state: CardState, review: Review, now: datetime
    ) -> bool:
        if not await self.update_attempt(attempt_id, expected, AttemptStatus.DONE, now):
            return False
        previous = self.states.get((state.learner_id, state.card_id))
        if previous is not None and previous.first_day:
            state = replace(state, first_day=previous.first_day)
        self.states[(state.learner_id, state.card_id)] = state
        self.reviews.append(review)
        return True

    async def review_days(self, learner_id: int) -> list[str]:
        return sorted({r.local_day for r in self.reviews if r.learner_id == learner_id})

    async def review_counts(self, learner_id: int, since: datetime) -> tuple[int, int, int]:
        mine = [r for r in self.reviews if r.learner_id == learner_id and r.reviewed_at >= since]
        old = [r for r in mine if not r.was_new]
        return len(mine), len(old), sum(1 for r in old if r.rating is not Rating.AGAIN)

    async def progress_history(self, learner_id: int, since_day: str) -> ProgressHistory:
        per_day: dict[str, int] = {}
        for r in self.reviews:
            if r.learner_id == learner_id and r.local_day >= since_day:
                per_day[r.local_day] = per_day.get(r.local_day, 0) + 1
        return ProgressHistory(tuple(self._mine(learner_id)), per_day)

    async def mark_unreachable(self, chat_key: str, now: datetime, reason: str) -> None:
        self.unreachable[chat_key] = reason

    async def mark_reachable(self, chat_key: str) -> bool:
        return self.unreachable.pop(chat_key, None) is not None

    async def is_reachable(self, chat_key: str) -> bool:
        return chat_key not in self.unreachable

    async def card_evidence(self, learner_id: int, since: datetime) -> list[CardEvidence]:
        per_card: dict[str, tuple[int, int]] = {}
        for r in self.reviews:
            if r.learner_id == learner_id and r.reviewed_at >= since and not r.was_new:
                answers, passed = per_card.get(r.card_id, (0, 0))
                per_card[r.card_id] = (answers + 1, passed + int(r.rating is not Rating.AGAIN))
        return [CardEvidence(card_id, *counts) for card_id, counts in sorted(per_card.items())]

    async def plan_for(self, learner_id: int) -> Plan | None:
        return self.plans.get(learner_id)

    async def save_plan(self, plan: Plan) -> None:
        self.plans[plan.learner_id] = plan
        await self.set_new_per_day(plan.learner_id, plan.new_per_day)

    async def end_plan(self, learner_id: int) -> tuple[Plan, bool] | None:
        plan = self.plans.pop(learner_id, None)
        if plan is None:
            return None
        restore = self.learners[learner_id].new_per_day == plan.new_per_day
        if restore:
            await self.set_new_per_day(learner_id, plan.previous_new_per_day)
        return plan, restore


class FakeNotifier:
    """Records what the core sends; each send's outcome can be scripted (default: sent)."""

    def __init__(self, platform: str = "telegram") -> None:
        self.platform = platform
        self.sent: list[tuple[str, Reply]] = []
        self.finished: list[tuple[str, str]] = []
        self.script: list[SendResult] = []
        self._ids = 0

    async def send(self, chat_id: str, reply: Reply) -> SendResult:
        if self.script:
            result = self.script.pop(0)
            if result.delivery is not Delivery.SENT:
                return result
        self._ids += 1
        self.sent.append((chat_id, reply))
        return SendResult(Delivery.SENT, message_id=str(self._ids), poll_id=f"poll-{self._ids}" if reply.poll else None)

    async def finish_round(self, chat_id: str, message_id: str, view: Reply) -> None:
        self.finished.append((chat_id, message_id))

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [reply.plain_text() for cid, reply in self.sent if chat_id is None or cid == chat_id]
