"""The domain's nouns: content cards, learners, identities, scheduling state and attempts."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Kind(enum.StrEnum):
    TECHNICAL = "technical"
    BEHAVIORAL = "behavioral"


@dataclass(frozen=True, slots=True)
class QuizItem:
    """The multiple-choice form of a card (fits Telegram's quiz-poll limits)."""

    prompt: str
    correct: str
    distractors: tuple[str, ...]
    explanation: str

    @property
    def options(self) -> tuple[str, ...]:
        """The correct option first, then the distractors (callers shuffle)."""
        return (self.correct, *self.distractors)


@dataclass(frozen=True, slots=True)
class KeyPoint:
    """One idea a strong answer covers: the phrase shown to the learner, and other accepted ways to say it."""

    text: str
    accept: tuple[str, ...] = ()

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.text, *self.accept)


@dataclass(frozen=True, slots=True)
class Card:
    """One question of the bank, as written in a deck file."""

    id: str
    deck: str
    topic: str
    kind: Kind
    difficulty: int
    question: str
    answer: str
    key_points: tuple[KeyPoint, ...]
    follow_ups: tuple[str, ...] = ()
    quiz: QuizItem | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class Identity:
    """One account on one platform; several identities may point to the same learner."""

    platform: str
    external_id: str


@dataclass(frozen=True, slots=True)
class Learner:
    id: int
    display_name: str
    timezone: str
    new_per_day: int
    created_at: datetime
    reviews_per_day: int = 100  # due reviews asked per local day at most (the rest wait, none lost)
    show_streak: bool = True  # /streak off hides streaks (they are still computed from the review log)
    rating_explained: bool = False  # the one-line meaning of Hard and Again has been shown
    quiet_hours: str | None = None  # "22:00-07:00" in the learner's zone: no pushes or private quiz notices


@dataclass(frozen=True, slots=True)
class Chat:
    """Where a conversation happens: a private chat, a group, a server channel or the terminal."""

    platform: str
    chat_id: str
    is_group: bool = False
    # The platform can answer one member privately inside this chat (Discord's ephemeral messages), so
    # personal flows such as a mock interview can run here.
    private_replies: bool = False
    # Buttons are pressed by typing their key (the terminal), so a quiz's keys and a study question's would
    # collide: while a quiz runs here, /question waits for it.
    typed_keys: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.chat_id}"

    @classmethod
    def from_key(cls, key: str, *, is_group: bool = False) -> Chat:
        """The chat a stored `key` names (the inverse of `key`)."""
        platform, _, chat_id = key.partition(":")
        return cls(platform, chat_id, is_group=is_group)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is acting, and where: what every core entry point receives from an adapter."""

    identity: Identity
    display_name: str
    chat: Chat
    is_chat_admin: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the user sent with a command (a Telegram document, a Discord attachment, a terminal path).

    `size` is what the platform says before downloading (None when it does not say); `read` downloads it,
    so a service can refuse an oversized file without fetching it."""

    filename: str
    size: int | None
    read: Callable[[], Awaitable[bytes]]


class UploadFailed(Exception):
    """An Upload's `read` could not fetch the file; `message` is what to tell the user (the adapters raise it)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(detail or message)
        self.message = message


class Rating(enum.IntEnum):
    """Self-ratings, numbered like FSRS's ratings."""

    AGAIN = 1
    HARD = 2
    GOOD = 3
    EASY = 4

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True, slots=True)
class CardState:
    """A learner's FSRS scheduling state for one card."""

    learner_id: int
    card_id: str
    state: int
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reps: int = 0
    lapses: int = 0
    first_day: str | None = None  # the learner's local day the card was first answered


class ReviewMode(enum.StrEnum):
    REVEAL = "reveal"
    CHOICE = "choice"
    TEXT = "text"
    INTERVIEW = "interview"  # rated from a mock interview's score


@dataclass(frozen=True, slots=True)
class Review:
    """One answer given by a learner: the review log row."""

    learner_id: int
    card_id: str
    rating: Rating
    reviewed_at: datetime
    mode: ReviewMode
    local_day: str
    was_new: bool
    state_before: int | None = None


class AttemptStatus(enum.StrEnum):
    OPEN = "open"  # question shown, nothing answered yet
    CHOICE = "choice"  # the multiple-choice form is shown
    REVEALED = "revealed"  # model answer shown, waiting for a self-rating
    DONE = "done"  # rated or answered
    SKIPPED = "skipped"
    EXPIRED = "expired"  # replaced by a newer question in the same chat before it was answered


@dataclass(frozen=True, slots=True)
class Preview:
    """The outcome of one rating, computed once when the answer is shown and committed as shown."""

    rating: Rating
    state: CardState
    interval_label: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """A question put to a learner in a chat, and where it stands."""

    id: int
    learner_id: int
    card_id: str
    chat_key: str
    status: AttemptStatus
    created_at: datetime
    options: tuple[int, ...] = ()  # order of quiz.options shown for multiple choice
    previews: tuple[Preview, ...] = field(default=())
    closed_at: datetime | None = None
    topic: str | None = None  # the topic it was asked from (/question TOPIC), kept for "Next question"


@dataclass(frozen=True, slots=True)
class AttemptView:
    """An attempt read for a button press: with the learner pressing it (None when unknown) and the
    attempt's card state before any answer (None for a card new to its learner)."""

    attempt: Attempt
    caller: Learner | None
    state: CardState | None


@dataclass(frozen=True, slots=True)
class PickContext:
    """What choosing a learner's next card needs, read in one go."""

    schedule: tuple[tuple[str, datetime, str | None], ...]  # (card id, due, first local day), most due first
    skipped: frozenset[str]  # cards skipped recently
    plan: PlanFocus | None = None  # the learner's plan to an interview date, if any
    # card id -> (FSRS stability, last review): how likely each card is to be recalled now
    memory: Mapping[str, tuple[float | None, datetime | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicProgress:
    topic: Topic
    seen: int
    total: int


@dataclass(frozen=True, slots=True)
class Stats:
    cards_seen: int
    cards_total: int
    due_now: int
    reviews_30d: int
    retention_30d: float | None
    current_streak: int
    best_streak: int
    new_today: int
    new_per_day: int
    per_topic: tuple[TopicProgress, ...]
    reviews_today: int = 0  # cards met before today and reviewed today
    reviews_per_day: int = 100
    waiting: int = 0  # due reviews held back for later days by the cap
    streak_freezes: tuple[str, ...] = ()  # forgiven missed days (YYYY-MM-DD) inside the current streak


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat that gets one question a day at a local time."""

    id: int
    chat_key: str
    platform: str
    chat_id: str
    is_group: bool
    learner_id: int | None
    local_time: str  # HH:MM
    timezone: str
    next_push_at: datetime
    paused_reason: str | None = None
    created_at: datetime | None = None
    always: bool = False  # a learner's push goes out even on a local day they already practised
    count_from: datetime | None = None  # unanswered pushes are counted from here (set by /daily and "keep")


@dataclass(frozen=True, slots=True)
class Claim:
    """A daily push claimed for one subscription and local day, to be sent."""

    delivery_id: int
    subscription: Subscription
    local_day: str
    attempts: int = 0
    send_at: datetime | None = None  # its send slot: the fleet's pace for the platform (None: at once)


class MatchStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Match:
    id: int
    chat_key: str
    platform: str
    chat_id: str
    starter_id: int | None
    topic: str | None
    questions: int
    seconds: int
    solo: bool
    status: MatchStatus
    card_ids: tuple[str, ...]
    rounds_played: int
    idle_rounds: int
    started_at: datetime
    end_reason: str | None = None
    winner_id: int | None = None


@dataclass(frozen=True, slots=True)
class Round:
    id: int
    match_id: int | None  # None: a group's daily quiz poll
    chat_key: str
    number: int
    card_id: str
    options: tuple[int, ...]  # indexes into the card's quiz options, in the order shown
    correct_index: int  # position of the correct option in `options`
    speed_bonus: int
    opened_at: datetime
    closes_at: datetime
    closed: bool = False
    poll_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class RoundAnswer:
    round_id: int
    learner_id: int
    option_index: int
    correct: bool
    points: int
    elapsed_ms: int
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class Standing:
    learner_id: int
    name: str
    points: int
    correct: int
    answered: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class BoardRow:
    learner_id: int
    name: str
    points: int
    matches: int
    wins: int
    correct: int
    answered: int


@dataclass(frozen=True, slots=True)
class CardEvidence:
    """How one card went: answers that count as evidence, and how many of them were good (a review not
    rated Again, or a correct quiz answer)."""

    card_id: str
    answers: int
    passed: int


@dataclass(frozen=True, slots=True)
class TopicScore:
    """A topic's share of good answers over a window, from its cards' evidence."""

    topic: Topic
    answers: int
    passed: int

    @property
    def rate(self) -> float:
        return self.passed / self.answers if self.answers else 0.0


@dataclass(frozen=True, slots=True)
class PlanFocus:
    """What choosing a new card needs of a learner's plan (read with the schedule, in the same query)."""

    target_day: str  # YYYY-MM-DD, the interview's date in `timezone`
    timezone: str
    topics: tuple[str, ...]  # topic slugs; () means every topic
    rushed: bool  # too close to meet every card in time: the article's questions and weakest topics first


@dataclass(frozen=True, slots=True)
class Plan:
    """A learner's plan to an interview date: the daily new-card cap that meets every card of the chosen
    topics five days before it, and what it started from (to tell whether the learner is on track)."""

    learner_id: int
    target_day: str  # YYYY-MM-DD in `timezone` (the learner's zone when the plan was set)
    timezone: str
    topics: tuple[str, ...]  # topic slugs; () means every topic
    new_per_day: int  # the daily new-card cap the plan set
    previous_new_per_day: int  # the learner's cap before, put back when the plan ends (unless changed since)
    start_day: str  # the local day the plan was set
    planned: int  # cards of the plan the learner had not seen when it was set
    rushed: bool
    created_at: datetime

    @property
    def focus(self) -> PlanFocus:
        return PlanFocus(self.target_day, self.timezone, self.topics, self.rushed)
