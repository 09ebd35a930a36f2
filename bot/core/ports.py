"""What the core needs from the outside world, as Protocols: storage, time, grading and a language model."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.core.grading import GraderName, Judgement
from bot.core.model import (
    Attempt,
    AttemptStatus,
    AttemptView,
    BoardRow,
    Card,
    CardEvidence,
    CardState,
    Claim,
    Identity,
    Learner,
    Match,
    MatchStatus,
    PickContext,
    Plan,
    Preview,
    Review,
    Round,
    RoundAnswer,
    Standing,
    Subscription,
)
from bot.core.views import Reply


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Grader(Protocol):
    """Judges a free-text answer against a card's key points."""

    name: GraderName

    async def judge(self, card: Card, answer: str, learner_id: int | None = None) -> Judgement: ...


class ModelUnavailable(Exception):
    """The language model gave no usable reply (timeout, 429, 5xx, refusal, connection); `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChatModel(Protocol):
    """An OpenAI-compatible chat model: messages in, the reply's text out, or ModelUnavailable."""

    async def complete(self, messages: Sequence[Mapping[str, str]], schema: Mapping[str, object]) -> str: ...

    async def close(self) -> None: ...


class StudyStore(Protocol):
    """Persistence of learners, scheduling state, reviews and attempts.

    Every method is one transaction. Methods that change an attempt take the statuses it is
    expected to be in and return False, changing nothing, when it is not (compare-and-set), so two
    presses of the same button can never both count.
    """

    async def ensure_learner(
        self, identity: Identity, display_name: str, now: datetime, timezone: str, new_per_day: int
    ) -> Learner: ...

    async def get_learner(self, learner_id: int) -> Learner | None: ...

    async def find_learner(self, identity: Identity) -> Learner | None: ...

    async def set_new_per_day(self, learner_id: int, new_per_day: int) -> None: ...

    async def set_timezone(self, learner_id: int, timezone: str) -> None: ...

    async def set_reviews_per_day(self, learner_id: int, reviews_per_day: int) -> None: ...

    async def set_show_streak(self, learner_id: int, show: bool) -> None: ...

    async def mark_rating_explained(self, learner_id: int) -> None: ...

    async def set_quiet_hours(self, learner_id: int, quiet_hours: str | None) -> None: ...

    async def seen_card_ids(self, learner_id: int) -> set[str]: ...

    async def count_new_on_day(self, learner_id: int, local_day: str) -> int: ...

    async def pick_context(self, learner_id: int, skipped_since: datetime) -> PickContext:
        """The learner's schedule and the cards skipped since `skipped_since`, in one read."""
        ...

    async def attempt_for(self, attempt_id: int, identity: Identity) -> AttemptView | None:
        """The attempt, the learner behind `identity` and the attempt's card state, in one read."""
        ...

    async def open_attempt_for(self, identity: Identity, chat_key: str) -> AttemptView | None:
        """The identity's latest active attempt in this chat with its card state, in one read."""
        ...

    async def create_attempt(
        self, learner_id: int, card_id: str, chat_key: str, now: datetime, topic: str | None
    ) -> Attempt:
        """A new open attempt; the learner's other active attempts in that chat expire."""
        ...

    async def update_attempt(
        self,
        attempt_id: int,
        expected: Collection[AttemptStatus],
        status: AttemptStatus,
        now: datetime,
        *,
        options: tuple[int, ...] | None = None,
        previews: tuple[Preview, ...] | None = None,
    ) -> bool: ...

    async def record_answer(
        self, attempt_id: int, expected: Collection[AttemptStatus], state: CardState, review: Review, now: datetime
    ) -> bool:
        """Close the attempt, store the new card state and the review log row, atomically."""
        ...

    async def review_days(self, learner_id: int) -> list[str]:
        """Distinct local days (YYYY-MM-DD) on which the learner answered, ascending."""
        ...

    async def review_counts(self, learner_id: int, since: datetime) -> tuple[int, int, int]:
        """(reviews, reviews of already-seen cards, of those the ones not rated Again) since `since`."""
        ...

    async def count_due(self, learner_id: int, now: datetime) -> int: ...


class ChatStore(Protocol):
    """Which chats can be sent to: a chat that blocked the bot is left alone until it comes back."""

    async def mark_unreachable(self, chat_key: str, now: datetime, reason: str) -> None: ...

    async def mark_reachable(self, chat_key: str) -> bool:
        """Record that the chat talked to the bot; True when it had been unreachable."""
        ...

    async def is_reachable(self, chat_key: str) -> bool: ...


class Delivery(enum.StrEnum):
    """How a send ended, as far as the core needs to know."""

    SENT = "sent"
    UNREACHABLE = "unreachable"  # blocked, kicked, DMs closed: stop sending to this chat
    FAILED = "failed"  # transient (429 after its retry, 5xx, timeout): try again later
    REJECTED = "rejected"  # the platform refused the content itself (400): do not retry as is


@dataclass(frozen=True, slots=True)
class SendResult:
    delivery: Delivery
    message_id: str | None = None
    poll_id: str | None = None
    detail: str = ""


class Notifier(Protocol):
    """Sends a reply to a chat on one platform, unprompted (daily pushes, quiz rounds)."""

    platform: str

    async def send(self, chat_id: str, reply: Reply) -> SendResult: ...

    async def finish_round(self, chat_id: str, message_id: str, view: Reply) -> None:
        """A quiz round ended: stop its native poll, or show the correct option and counts on it."""
        ...


# (subscription, now) -> (local day the due push belongs to, the next push after it)
Advance = Callable[[Subscription, datetime], tuple[str, datetime]]


class DailyStore(Protocol):
    """Subscriptions and their deliveries. Claiming is one transaction: for each due subscription a
    delivery row for its local day is inserted (unique per day) and next_push_at is advanced, so a
    restart at any point neither skips nor repeats a day."""

    async def save_subscription(self, subscription: Subscription) -> Subscription:
        """Insert or replace the subscription of subscription.chat_key; returns it with its id."""
        ...

    async def subscription(self, chat_key: str) -> Subscription | None: ...

    async def delete_subscription(self, chat_key: str) -> bool: ...

    async def pause_subscription(self, chat_key: str, reason: str) -> None: ...

    async def paused_reason(self, chat_key: str) -> str | None:
        """Why the chat's subscription is paused (None: not paused, or none); asked on every update."""
        ...

    async def resume_subscription(
        self, chat_key: str, next_push_at: datetime, *, count_from: datetime | None = None
    ) -> None:
        """Unpause it, next push at next_push_at; with count_from, unanswered pushes are counted from there."""
        ...

    async def claim_due(
        self,
        now: datetime,
        claimer: str,
        limit: int,
        advance: Advance,
        pace: Mapping[str, timedelta] | None = None,
    ) -> list[Claim]:
        """Claim up to `limit` due subscriptions' pushes; with `pace` (platform -> gap between two messages)
        each claim gets a send slot shared with every process on the database."""
        ...

    async def day_claimed(self, subscription_id: int, local_day: str) -> bool:
        """Whether the subscription already has a delivery for that local day (so none more that day)."""
        ...

    async def open_claims(
        self, now: datetime, claimer: str, limit: int, pace: Mapping[str, timedelta] | None = None
    ) -> list[Claim]:
        """Deliveries to (re)try now: those waiting for a retry, and those claimed by a process
        that is gone (its claimer id differs; with several processes, once its lease ran out) without
        being finished."""
        ...

    async def finish_delivery(
        self,
        delivery_id: int,
        status: str,
        now: datetime,
        *,
        detail: str = "",
        message_id: str | None = None,
        retry_at: datetime | None = None,
    ) -> None: ...

    async def defer_delivery(self, delivery_id: int, until: datetime, detail: str) -> None:
        """Hold a claimed delivery until `until` (quiet hours), without counting it as a failed attempt."""
        ...

    async def unanswered_pushes(self, subscription: Subscription) -> tuple[datetime | None, int]:
        """The learner's last answer (None: never) and how many pushes went to the subscription after it
        (and after subscription.count_from): the pushes that are still unanswered, read in one go."""
        ...

    async def beat(self, name: str, now: datetime) -> None: ...

    async def last_beat(self, name: str) -> datetime | None: ...


class CompetitionStore(Protocol):
    """Matches, rounds and answers. add_answer is the one-answer rule: it stores an answer only if
    the player has none for that round and the round is still open at `now`."""

    async def create_match(self, match: Match) -> Match | None:
        """The stored match, or None when the chat already has a running one."""
        ...

    async def lease_match(self, match_id: int, owner: str, until: datetime) -> bool:
        """Make `owner` (a process) the one that plays the running match until `until`."""
        ...

    async def renew_match_leases(self, owner: str, match_ids: Collection[int], until: datetime) -> set[int]:
        """Extend `owner`'s leases; the ids still running and still its own."""
        ...

    async def take_over_matches(self, owner: str, now: datetime, until: datetime, unleased_grace: float) -> list[Match]:
        """Running matches of other processes whose lease ran out, now leased to `owner`."""
        ...

    async def get_match(self, match_id: int) -> Match | None: ...

    async def running_match(self, chat_key: str) -> Match | None: ...

    async def running_matches(self) -> list[Match]: ...

    async def save_match_progress(self, match_id: int, rounds_played: int, idle_rounds: int) -> None: ...

    async def end_match(
        self, match_id: int, status: MatchStatus, reason: str, winner_id: int | None, now: datetime
    ) -> bool:
        """Mark a running match ended; False when it was not running any more."""
        ...

    async def open_round(self, round_: Round) -> Round: ...

    async def get_round(self, round_id: int) -> Round | None: ...

    async def round_by_poll(self, poll_id: str) -> Round | None: ...

    async def latest_round(self, match_id: int) -> Round | None: ...

    async def attach_round_message(self, round_id: int, poll_id: str | None, message_id: str | None) -> None: ...

    async def close_round(self, round_id: int) -> bool:
        """Close an open round; False when it was already closed."""
        ...

    async def add_answer(self, answer: RoundAnswer, now: datetime) -> bool: ...

    async def round_answers(self, round_id: int) -> list[RoundAnswer]: ...

    async def standings(self, match_id: int) -> list[Standing]: ...

    async def leaderboard(self, chat_key: str, since: datetime | None) -> list[BoardRow]: ...

    async def recent_round_cards(self, chat_key: str, limit: int) -> list[str]: ...


class PlanStore(Protocol):
    """A learner's plan to an interview date (at most one each), and the review evidence that ranks their
    topics. Saving a plan sets the learner's daily new-card cap in the same transaction; ending one puts
    the cap back to what it was before, unless the learner changed it meanwhile."""

    async def card_evidence(self, learner_id: int, since: datetime) -> list[CardEvidence]:
        """Per card, in one query: the learner's reviews since `since` of cards seen before (answers),
        and those not rated Again (passed)."""
        ...

    async def plan_for(self, learner_id: int) -> Plan | None: ...

    async def save_plan(self, plan: Plan) -> None:
        """Insert or replace the learner's plan and set their new-card cap to plan.new_per_day, atomically."""
        ...

    async def end_plan(self, learner_id: int) -> tuple[Plan, bool] | None:
        """Delete the learner's plan: (the plan, whether the cap was put back to plan.previous_new_per_day),
        or None when there was none (so of two contacts at once, one ends it)."""
        ...


class QuizHistoryStore(Protocol):
    """What a chat's quiz answers say about its topics."""

    async def chat_card_results(self, chat_key: str, since: datetime) -> list[CardEvidence]:
        """Per card, in one query: answers to this chat's quiz rounds opened since `since` (matches and
        daily polls), and the correct ones."""
        ...
