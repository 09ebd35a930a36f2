"""StudyService: one learner practising: next card, reveal, rate, multiple choice, free text, stats."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol

import fsrs

from bot.core.actions import Action, Verb
from bot.core.bank import QuestionBank
from bot.core.grading import Judgement, LexicalGrader
from bot.core.model import (
    Attempt,
    AttemptStatus,
    Caller,
    Card,
    CardState,
    Learner,
    PickContext,
    Preview,
    Rating,
    Review,
    ReviewMode,
    Stats,
    TopicProgress,
    TopicScore,
)
from bot.core.plan import cards_left, countdown_line, finish_plan, plan_is_over
from bot.core.ports import Clock, Grader, PlanStore, StudyStore
from bot.core.views import (
    Bullets,
    Button,
    Paragraph,
    Reply,
    Span,
    Title,
    how_to_answer,
    notice,
    plural,
    text_blocks,
)
from bot.core.weak import LEARNER_WINDOW, MIN_ANSWERS, rank_topics
from bot.core.zones import zone_info

_SKIPPABLE = (AttemptStatus.OPEN, AttemptStatus.CHOICE, AttemptStatus.REVEALED)
SKIP_MEMORY = timedelta(hours=1)  # a skipped card stays out of the way this long
RATING_MEANING = (
    "Again: you didn't remember it. Hard: you remembered, with effort (still a pass). Good: you remembered. "
    "Easy: it came at once. Honest ratings keep the schedule right for you."
)
REVIEWS_RANGE = (10, 500)  # /reviews: the daily cap on due reviews
# Attempt.topic of a question asked with /question weak, so "Next question" and Skip stay in weak mode
# (topic slugs are lowercase words and dashes, so it can't be one)
WEAK = "*weak"
WEAK_FALLBACK = (
    f"Not enough reviews yet to tell your weakest topic (a topic counts after {MIN_ANSWERS} reviews of cards "
    "you had seen before, in 30 days), so here is your next card in the usual order."
)
OPTION_LETTERS = "ABCDEFGHIJ"
DIFFICULTY_NAMES = {1: "warm-up", 2: "core", 3: "deep dive"}
RATING_EMOJI = {Rating.AGAIN: "🔁", Rating.HARD: "😓", Rating.GOOD: "🙂", Rating.EASY: "😎"}

SHOW_ANSWER_LABEL = "Show answer"
TYPE_HINT = "just type it"
TYPE_HINT_GROUP = "reply to this message"  # in groups the bot only reads replies to its own messages
STALE = "This question is already closed. Send /question for a new one."
NOT_YOURS = "This question belongs to someone else. Send /question to get your own."
INVALID = "That button is not valid any more. Send /question for a new one."


def local_day(now: datetime, timezone: str) -> str:
    return now.astimezone(zone_info(timezone)).date().isoformat()


@dataclass(frozen=True, slots=True)
class Streak:
    """A run of local days with at least one review. One missed day per calendar week (Monday to Sunday) is
    forgiven (a freeze): the run goes on, without counting that day. Today counts once answered, and its
    run is alive until the day ends unanswered."""

    current: int  # answered days in the run that is still alive (0: none)
    best: int  # answered days in the longest run ever
    freezes: tuple[str, ...]  # the forgiven days inside the current run


def streak(days: Iterable[str], today: str) -> Streak:
    """The streak from the review log's local days: recomputed from history every time, never a counter."""
    answered = {date.fromisoformat(day) for day in days}
    last_day = date.fromisoformat(today)
    answered = {day for day in answered if day <= last_day}
    if not answered:
        return Streak(0, 0, ())
    run = best = 0
    freezes: list[date] = []
    frozen_weeks: set[tuple[int, int]] = set()
    day = min(answered)
    while day <= last_day:
        if day in answered:
            run += 1
            best = max(best, run)
        elif day < last_day:  # a missed day (today is not missed yet)
            week = day.isocalendar()[:2]
            if run and week not in frozen_weeks:
                frozen_weeks.add(week)
                freezes.append(day)
            else:
                run, freezes = 0, []
        day += timedelta(days=1)
    return Streak(run, best, tuple(d.isoformat() for d in freezes) if run else ())


def streaks(days: list[str], today: str) -> tuple[int, int]:
    """(current, best): see `streak`."""
    found = streak(days, today)
    return found.current, found.best


def interval_label(delta: timedelta) -> str:
    """A short human interval: 1 min, 10 min, 5 h, 3 d, 2 mo, 1.5 y."""
    seconds = max(0.0, delta.total_seconds())
    minutes = seconds / 60
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{round(minutes)} min"
    hours = minutes / 60
    if hours < 24:
        return f"{round(hours)} h"
    days = hours / 24
    if days < 31:
        return f"{round(days)} d"
    if days < 365:
        return f"{round(days / 30.4)} mo"
    return f"{days / 365:.1f} y"


def _to_fsrs(state: CardState | None, now: datetime) -> fsrs.Card:
    if state is None:
        return fsrs.Card(card_id=1, due=now)
    return fsrs.Card(
        card_id=1,
        state=fsrs.State(state.state),
        step=state.step,
        stability=state.stability,
        difficulty=state.difficulty,
        due=state.due,
        last_review=state.last_review,
    )


class StudyPorts(StudyStore, PlanStore, Protocol):
    """The store StudyService works on: the learner's practice, and their plan and per-topic evidence."""


class StudyService:
    """Spaced-repetition practice for one learner at a time, on FSRS."""

    def __init__(
        self,
        store: StudyPorts,
        bank: QuestionBank,
        clock: Clock,
        *,
        scheduler: fsrs.Scheduler | None = None,
        default_timezone: str = "UTC",
        default_new_per_day: int = 10,
        rng: random.Random | None = None,
        grader: Grader | None = None,
    ) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.scheduler = scheduler or fsrs.Scheduler()
        self.default_timezone = default_timezone
        self.default_new_per_day = default_new_per_day
        self.rng = rng or random.Random()
        self.lexical = LexicalGrader(bank.cards, bank.glossary)
        self.grader: Grader = grader or self.lexical
        self._answer_cache: dict[str, tuple[Card, tuple[Paragraph | Title | Bullets, ...]]] = {}

    # --- learners ------------------------------------------------------------------------------

    async def learner(self, caller: Caller) -> Learner:
        """The learner behind the caller's identity, created on first contact."""
        return await self.store.ensure_learner(
            caller.identity,
            caller.display_name,
            self.clock.now(),
            self.default_timezone,
            self.default_new_per_day,
        )

    # --- asking --------------------------------------------------------------------------------

    async def next_question(
        self, caller: Caller, topic_text: str | None = None, *, learner: Learner | None = None
    ) -> Reply:
        """The learner's most useful card: a due review (most overdue first), else a new card. `learner`:
        the caller's learner when already read (one round trip saved)."""
        topic: str | None = None
        if topic_text and topic_text.strip().casefold() == "weak":
            topic = WEAK
        elif topic_text and topic_text.strip():
            pool = await self.bank.pool_for(caller.chat.key)
            found = pool.find_topic(topic_text)
            if found is None:
                return self.unknown_topic(topic_text, pool)
            topic = found.slug
        if learner is None or learner.display_name != caller.display_name.strip()[:64]:
            learner = await self.learner(caller)
        return await self.ask(
            learner, caller.chat.key, topic, asker=caller.display_name if caller.chat.is_group else None
        )

    def unknown_topic(self, topic_text: str, pool: QuestionBank | None = None) -> Reply:
        names = ", ".join(t.slug for t in (pool or self.bank).topics)
        return Reply(
            blocks=(
                Paragraph.of(f"I don't know the topic “{topic_text.strip()[:60]}”."),
                Paragraph.of("Topics: ", Span(names, "code")),
                Paragraph.of("Example: /question optimization"),
            )
        )

    def _pick(
        self,
        learner: Learner,
        topic: str | None,
        context: PickContext,
        weakest: tuple[str, ...] = (),
        pool: QuestionBank | None = None,
    ) -> tuple[Card, bool] | None:
        """(card, is new): due reviews first (most overdue first), then new cards within the daily cap.

        Under a plan, new cards of its topics come first; a rushed plan puts the article's questions
        first, then the `weakest` topics (weakest first). `pool`: the chat's decks (default: the bank)."""
        bank = pool or self.bank
        now = self.clock.now()
        schedule, skipped = context.schedule, context.skipped
        today = local_day(now, learner.timezone)
        due: list[tuple[Card, str | None]] = []  # most overdue first
        for card_id, due_at, first_day in schedule:
            if due_at > now:
                break
            card = bank.card(card_id)
            if card is not None and card_id not in skipped and (topic is None or card.topic == topic):
                due.append((card, first_day))
        if due:
            started = self.reviewed_today(learner, context)
            ongoing = [card for card, first_day in due if card.id in started or first_day == today]
            if ongoing:  # today's own work (a card in its learning steps) never waits for the cap
                return ongoing[0], False
            if len(started) < learner.reviews_per_day:  # the cards most likely to be forgotten first
                return min(due, key=lambda item: self.recall(context, item[0].id, now))[0], False
        if sum(1 for _, _, first_day in schedule if first_day == today) >= learner.new_per_day:
            return None
        seen = {card_id for card_id, _, _ in schedule}
        cards = bank.cards_in(topic) if topic else bank.cards
        fresh = [card for card in cards if card.id not in seen and card.id not in skipped]
        if not fresh:
            return None
        plan = context.plan

        def order(card: Card) -> tuple[int, ...]:
            if plan is None:
                return ()
            outside = int(bool(plan.topics) and card.topic not in plan.topics)
            if not plan.rushed:
                return (outside,)
            rank = weakest.index(card.topic) if card.topic in weakest else len(weakest)
            return (outside, int(card.seed is None), rank)

        # Warm-ups first; within a difficulty, a stable per-learner shuffle mixes the topics.
        return min(fresh, key=lambda c: (*order(c), c.difficulty, _mix(learner.id, c.id))), True

    def recall(self, context: PickContext, card_id: str, now: datetime) -> float:
        """The probability of recalling the card now (FSRS retrievability; 0 when never reviewed)."""
        stability, last_review = context.memory.get(card_id, (None, None))
        if stability is None or last_review is None:
            return 0.0
        card = fsrs.Card(card_id=1, state=fsrs.State.Review, stability=stability, last_review=last_review)
        return float(self.scheduler.get_card_retrievability(card, current_datetime=now))

    def reviewed_today(self, learner: Learner, context: PickContext) -> set[str]:
        """Cards met before today and reviewed today (the learner's local day): what counts against the cap."""
        today = local_day(self.clock.now(), learner.timezone)
        started: set[str] = set()
        for card_id, _due, first_day in context.schedule:
            last_review = context.memory.get(card_id, (None, None))[1]
            if first_day != today and last_review is not None and local_day(last_review, learner.timezone) == today:
                started.add(card_id)
        return started

    def waiting(
        self, learner: Learner, context: PickContext, topic: str | None = None, pool: QuestionBank | None = None
    ) -> int:
        """Due reviews held back for later days by the daily cap (0 while today's cap is not reached)."""
        bank = pool or self.bank
        started = self.reviewed_today(learner, context)
        if len(started) < learner.reviews_per_day:
            return 0
        now = self.clock.now()
        today = local_day(now, learner.timezone)
        return sum(
            1
            for card_id, due, first_day in context.schedule
            if due <= now
            and card_id not in started
            and first_day != today
            and (card := bank.card(card_id)) is not None
            and (topic is None or card.topic == topic)
        )

    def backlog_note(self, learner: Learner, context: PickContext) -> Paragraph | None:
        """Said with the first review of a day on which more are due than the cap: how the backlog is spread."""
        if self.reviewed_today(learner, context):
            return None
        now = self.clock.now()
        today = local_day(now, learner.timezone)
        due = sum(1 for card_id, at, first_day in context.schedule if at <= now and first_day != today)
        cap = learner.reviews_per_day
        if due <= cap:
            return None
        days = -(-due // cap)
        return Paragraph.of(
            Span(
                f"{due} reviews are due. At {cap} a day they are spread over about {plural(days, 'day')}, "
                "the ones you are most likely to forget first; none is lost. /reviews N changes the daily number.",
                "italic",
            )
        )

    def _ahead_of_schedule(
        self, topic: str, context: PickContext, pool: QuestionBank | None = None
    ) -> tuple[Card, bool] | None:
        """The topic's seen card due soonest (nothing of it is due now): practice ahead of schedule."""
        for card_id, _due, _first_day in context.schedule:  # most due first
            card = (pool or self.bank).card(card_id)
            if card is not None and card.topic == topic and card_id not in context.skipped:
                return card, False
        return None

    async def topic_scores(self, learner: Learner) -> list[TopicScore]:
        """The learner's topics with enough recent reviews to judge, weakest first (30-day retention:
        reviews of cards seen before not rated Again, per topic; ties: fewer reviews, then by name)."""
        evidence = await self.store.card_evidence(learner.id, self.clock.now() - LEARNER_WINDOW)
        return rank_topics(evidence, self.bank)

    async def _weak_topic(self, learner: Learner) -> tuple[str | None, Paragraph]:
        scores = await self.topic_scores(learner)
        if not scores:
            return None, Paragraph.of(Span(WEAK_FALLBACK, "italic"))
        weakest = scores[0]
        return weakest.topic.slug, Paragraph.of(
            Span(
                f"Your weakest topic: {weakest.topic.name} ({weakest.rate:.0%} retention over "
                f"{plural(weakest.answers, 'review')} in 30 days).",
                "italic",
            )
        )

    def _topic_name(self, slug: str) -> str:
        topic = self.bank.find_topic(slug)
        return topic.name if topic else slug

    async def ask(
        self,
        learner: Learner,
        chat_key: str,
        topic: str | None,
        *,
        asker: str | None = None,
        edit: bool = False,
        header: str | None = None,
        plan_line: bool = False,
    ) -> Reply:
        """Put the learner's next card to them. `topic`: a topic slug, WEAK (their weakest topic) or None.
        `header` goes above the question; `plan_line` adds the plan's countdown (the daily push). A plan
        whose date has passed ends here, its summary first."""
        now = self.clock.now()
        context = await self.store.pick_context(learner.id, now - SKIP_MEMORY)
        notes: list[Paragraph] = [Paragraph.of(header)] if header else []
        if context.plan is not None:
            focus, seen = context.plan, {card_id for card_id, _, _ in context.schedule}
            if plan_is_over(focus.target_day, focus.timezone, now):
                ending = await finish_plan(self.store, self.bank, learner, seen)
                if ending is not None:
                    notes += ending.blocks
                    learner = replace(learner, new_per_day=ending.new_per_day)
                context = replace(context, plan=None)
            elif plan_line:
                today = date.fromisoformat(local_day(now, focus.timezone))
                left = cards_left(self.bank, focus.topics, seen)
                notes.append(Paragraph.of(countdown_line(focus.target_day, today, left)))
        chosen = topic
        if topic == WEAK:
            chosen, note = await self._weak_topic(learner)
            notes.append(note)
        weakest: tuple[str, ...] = ()
        if context.plan is not None and context.plan.rushed and chosen is None:
            weakest = tuple(score.topic.slug for score in (await self.topic_scores(learner))[:3])
        pool = await self.bank.pool_for(chat_key)
        picked = self._pick(learner, chosen, context, weakest, pool)
        if picked is None and topic == WEAK and chosen is not None:
            picked = self._ahead_of_schedule(chosen, context, pool)
            if picked is not None:
                name = self._topic_name(chosen)
                notes.append(Paragraph.of(Span(f"Nothing in {name} is due, so this card comes early.", "italic")))
        if picked is None:
            return self._caught_up(learner, chosen, context, edit=edit, notes=tuple(notes), pool=pool)
        card, is_new = picked
        if not is_new and (backlog := self.backlog_note(learner, context)) is not None:
            notes.append(backlog)
        attempt = await self.store.create_attempt(learner.id, card.id, chat_key, now, topic)
        return self._question_view(card, attempt, is_new=is_new, asker=asker, edit=edit, notes=tuple(notes))

    def _caught_up(
        self,
        learner: Learner,
        topic: str | None,
        context: PickContext,
        *,
        edit: bool,
        notes: tuple[Paragraph, ...] = (),
        pool: QuestionBank | None = None,
    ) -> Reply:
        bank = pool or self.bank
        now = self.clock.now()
        lines: list[Paragraph] = list(notes)
        where = f" in {topic}" if topic else ""
        today = local_day(now, learner.timezone)
        new_today = sum(1 for _, _, first_day in context.schedule if first_day == today)
        seen = {card_id for card_id, _, _ in context.schedule}
        cards = bank.cards_in(topic) if topic else bank.cards
        unseen = sum(1 for card in cards if card.id not in seen)
        waiting = self.waiting(learner, context, topic, bank)
        lines.append(
            Paragraph.of(
                Span(f"All caught up{where} for today! 🎉" if waiting else f"All caught up{where}! 🎉", "bold")
            )
        )
        if waiting:
            cap = learner.reviews_per_day
            days = -(-waiting // cap)
            lines.append(
                Paragraph.of(
                    f"You've done today's {plural(cap, 'review')}. {plural(waiting, 'more review')} "
                    f"{'waits' if waiting == 1 else 'wait'} for the next {plural(days, 'day')} at this pace, the ones "
                    "you are most likely to forget first. /reviews N changes the daily number."
                )
            )
        if unseen and new_today >= learner.new_per_day:
            lines.append(
                Paragraph.of(
                    f"You've met today's {plural(learner.new_per_day, 'new card')}. {unseen} more wait for tomorrow "
                    "(change the daily number with /newcards)."
                )
            )
        elif not unseen:
            lines.append(Paragraph.of(f"You have seen every card{where}."))
        # the next review in this topic, not another topic's card
        in_pool = {card.id for card in cards}
        next_due = min(
            (due for card_id, due, _ in context.schedule if topic is None or card_id in in_pool), default=None
        )
        if next_due is not None and next_due > now:
            lines.append(Paragraph.of(f"Next review due in {interval_label(next_due - now)}."))
        return Reply(blocks=tuple(lines), edit=edit)

    def _question_view(
        self,
        card: Card,
        attempt: Attempt,
        *,
        is_new: bool,
        asker: str | None,
        edit: bool,
        notes: tuple[Paragraph, ...] = (),
    ) -> Reply:
        topic = self.bank.find_topic(card.topic)
        label = f"{topic.name if topic else card.topic} · {DIFFICULTY_NAMES.get(card.difficulty, '')}"
        if card.kind.value == "behavioral":
            label += " · behavioural"
        if is_new:
            label += " · new"
        hint = TYPE_HINT_GROUP if asker else TYPE_HINT
        blocks: list[Paragraph | Title] = list(notes)
        if asker:
            blocks.append(Paragraph.of("Question for ", Span(asker, "bold"), ":"))
        blocks += [
            Title(label),
            Paragraph.of(Span(card.question, "bold")),
            how_to_answer("Answer in your own words ({how}), or pick a button.", hint),
        ]
        return Reply(
            blocks=tuple(blocks),
            buttons=self._question_buttons(card, attempt),
            edit=edit,
            answer_box=True,
            answer_box_at=1,  # after Show answer: the two ways to see how you did
        )

    def _question_buttons(self, card: Card, attempt: Attempt) -> tuple[tuple[Button, ...], ...]:
        first_row = [Button(SHOW_ANSWER_LABEL, Action(Verb.SHOW_ANSWER, attempt.id).encode())]
        if card.quiz is not None:
            first_row.append(Button("Multiple choice", Action(Verb.CHOICE, attempt.id).encode()))
        return (tuple(first_row), (Button("Skip", Action(Verb.SKIP, attempt.id).encode()),))

    # --- buttons -------------------------------------------------------------------------------

    async def act(self, caller: Caller, action: Action) -> Reply:
        """Carry out a button press, after checking it is the caller's and still open."""
        view = await self.store.attempt_for(action.target, caller.identity)  # one read: all a press needs
        if view is None:
            return notice(INVALID)
        attempt, learner, before = view.attempt, view.caller, view.state
        if learner is None or learner.id != attempt.learner_id:
            return notice(NOT_YOURS)
        card = self.bank.card(attempt.card_id)
        if card is None:  # the card was removed from the bank since
            return notice(INVALID)
        if action.verb is Verb.SHOW_ANSWER:
            return await self._reveal(learner, attempt, card, before)
        if action.verb is Verb.CHOICE:
            return await self._choice(attempt, card)
        if action.verb is Verb.OPTION:
            return await self._pick_option(learner, attempt, card, before, action.arg)
        if action.verb is Verb.RATE:
            return await self._rate(learner, attempt, card, before, action.arg)
        if action.verb is Verb.SKIP:
            return await self._skip(learner, attempt)
        if action.verb is Verb.NEXT:
            return await self.ask(
                learner, attempt.chat_key, attempt.topic, asker=caller.display_name if caller.chat.is_group else None
            )
        if action.verb is Verb.FULL_ANSWER:
            if attempt.status is not AttemptStatus.DONE:
                return notice(STALE)
            return Reply(blocks=self._answer_blocks(card), buttons=self._next_buttons(attempt), edit=True)
        return notice(INVALID)

    def _previews(self, learner: Learner, card: Card, state: CardState | None) -> tuple[Preview, ...]:
        now = self.clock.now()
        previews = []
        for rating in Rating:
            updated, _ = self.scheduler.review_card(_to_fsrs(state, now), fsrs.Rating(int(rating)), now)
            new_state = CardState(
                learner_id=learner.id,
                card_id=card.id,
                state=int(updated.state),
                step=updated.step,
                stability=updated.stability,
                difficulty=updated.difficulty,
                due=updated.due,
                last_review=updated.last_review,
                reps=(state.reps if state else 0) + 1,
                lapses=(state.lapses if state else 0)
                + int(rating is Rating.AGAIN and state is not None and state.state == int(fsrs.State.Review)),
                first_day=state.first_day if state and state.first_day else local_day(now, learner.timezone),
            )
            previews.append(Preview(rating=rating, state=new_state, interval_label=interval_label(updated.due - now)))
        return tuple(previews)

    def _answer_blocks(self, card: Card) -> tuple[Paragraph | Title | Bullets, ...]:
        # each card's answer is laid out once (a re-imported deck's changed card is a new Card object)
        cached = self._answer_cache.get(card.id)
        if cached is None or cached[0] is not card:
            cached = self._answer_cache[card.id] = (card, self._lay_out_answer(card))
        return cached[1]

    @staticmethod
    def _lay_out_answer(card: Card) -> tuple[Paragraph | Title | Bullets, ...]:
        blocks: list[Paragraph | Title | Bullets] = [Paragraph.of(Span(card.question, "bold")), Title("Model answer")]
        blocks += [b for b in text_blocks(card.answer) if isinstance(b, Paragraph | Bullets)]
        if card.key_points:
            blocks += [Title("Key points"), Bullets.of(*(point.text for point in card.key_points))]
        if card.follow_ups:
            blocks += [Title("An interviewer may ask next"), Bullets.of(*card.follow_ups)]
        return tuple(blocks)

    def _rating_buttons(self, attempt: Attempt, previews: tuple[Preview, ...]) -> tuple[tuple[Button, ...], ...]:
        row = tuple(
            Button(f"{p.rating.label} · {p.interval_label}", Action(Verb.RATE, attempt.id, int(p.rating)).encode())
            for p in previews
        )
        return (row[:2], row[2:])

    def _next_buttons(self, attempt: Attempt, *, with_full: bool = False) -> tuple[tuple[Button, ...], ...]:
        row = [Button("Next question ▶", Action(Verb.NEXT, attempt.id).encode())]
        if with_full:
            row.insert(0, Button("Full answer", Action(Verb.FULL_ANSWER, attempt.id).encode()))
        return (tuple(row),)

    async def _reveal(
        self,
        learner: Learner,
        attempt: Attempt,
        card: Card,
        before: CardState | None,
        coverage_blocks: tuple[Paragraph | Title | Bullets, ...] = (),
        edit: bool = True,
    ) -> Reply:
        expected = (AttemptStatus.OPEN, AttemptStatus.CHOICE)
        if attempt.status not in expected:
            return notice(STALE)
        previews = self._previews(learner, card, before)
        if not await self.store.update_attempt(
            attempt.id, expected, AttemptStatus.REVEALED, self.clock.now(), previews=previews
        ):
            return notice(STALE)
        if not learner.rating_explained:  # what the ratings mean goes with the first rating buttons, once
            await self.store.mark_rating_explained(learner.id)
        blocks = (
            *coverage_blocks,
            *self._answer_blocks(card),
            Paragraph.of(Span("How well did you know it?", "italic")),
            *(() if learner.rating_explained else (Paragraph.of(Span(RATING_MEANING, "italic")),)),
        )
        return Reply(blocks=blocks, buttons=self._rating_buttons(attempt, previews), edit=edit)

    async def _choice(self, attempt: Attempt, card: Card) -> Reply:
        if card.quiz is None:
            return notice(f"This card has no multiple-choice form. Try “{SHOW_ANSWER_LABEL}”.")
        if attempt.status is not AttemptStatus.OPEN:
            return notice(STALE)
        order = list(range(len(card.quiz.options)))
        self.rng.shuffle(order)  # a fresh order for every attempt, so positions can't be memorised
        if not await self.store.update_attempt(
            attempt.id, (AttemptStatus.OPEN,), AttemptStatus.CHOICE, self.clock.now(), options=tuple(order)
        ):
            return notice(STALE)
        options = [card.quiz.options[i] for i in order]
        blocks = (
            Paragraph.of(Span(card.quiz.prompt, "bold")),
            Bullets(tuple((Span(f"{OPTION_LETTERS[n]}) ", "bold"), text) for n, text in enumerate(options))),
        )
        return Reply(blocks=blocks, buttons=self._choice_buttons(attempt, len(options)), edit=True)

    def _choice_buttons(self, attempt: Attempt, count: int) -> tuple[tuple[Button, ...], ...]:
        return (
            tuple(Button(OPTION_LETTERS[n], Action(Verb.OPTION, attempt.id, n).encode()) for n in range(count)),
            (Button(f"{SHOW_ANSWER_LABEL} instead", Action(Verb.SHOW_ANSWER, attempt.id).encode()),),
        )

    async def _pick_option(
        self, learner: Learner, attempt: Attempt, card: Card, before: CardState | None, arg: int | None
    ) -> Reply:
        if card.quiz is None or attempt.status is not AttemptStatus.CHOICE:
            return notice(STALE)
        if arg is None or not 0 <= arg < len(attempt.options):
            return notice(INVALID)
        chosen = attempt.options[arg]
        correct = chosen == 0
        rating = Rating.GOOD if correct else Rating.AGAIN
        preview = next(p for p in self._previews(learner, card, before) if p.rating is rating)
        if not await self._commit(learner, attempt, before, preview, ReviewMode.CHOICE, (AttemptStatus.CHOICE,)):
            return notice(STALE)
        correct_pos = attempt.options.index(0)
        letter = OPTION_LETTERS[correct_pos]
        verdict = (
            Paragraph.of(Span("✅ Correct!", "bold"), f" {letter}) {card.quiz.correct}")
            if correct
            else Paragraph.of(
                Span("❌ Not quite.", "bold"),
                f" You chose {OPTION_LETTERS[arg]}; the answer is {letter}) {card.quiz.correct}",
            )
        )
        blocks = (
            Paragraph.of(Span(card.quiz.prompt, "bold")),
            verdict,
            Paragraph.of(card.quiz.explanation),
            Paragraph.of(Span(f"Next review in {preview.interval_label}.", "italic")),
        )
        return Reply(
            blocks=blocks,
            buttons=self._next_buttons(attempt, with_full=True),
            edit=True,
            notice="Correct!" if correct else "Not quite",
        )

    async def _rate(
        self, learner: Learner, attempt: Attempt, card: Card, before: CardState | None, arg: int | None
    ) -> Reply:
        if attempt.status is not AttemptStatus.REVEALED:
            return notice(STALE)
        if arg is None or arg not in {int(r) for r in Rating}:
            return notice(INVALID)
        preview = next((p for p in attempt.previews if int(p.rating) == arg), None)
        if preview is None:
            return notice(INVALID)
        if not await self._commit(learner, attempt, before, preview, ReviewMode.REVEAL, (AttemptStatus.REVEALED,)):
            return notice(STALE)
        blocks = (
            *self._answer_blocks(card),
            Paragraph.of(
                Span(f"{RATING_EMOJI[preview.rating]} Rated {preview.rating.label}", "bold"),
                f" · next review in {preview.interval_label}.",
            ),
        )
        return Reply(
            blocks=blocks, buttons=self._next_buttons(attempt), edit=True, notice=f"Saved: {preview.rating.label}"
        )

    async def _commit(
        self,
        learner: Learner,
        attempt: Attempt,
        before: CardState | None,
        preview: Preview,
        mode: ReviewMode,
        expected: tuple[AttemptStatus, ...],
    ) -> bool:
        state, review = self._outcome(learner, attempt.card_id, before, preview, mode)
        return await self.store.record_answer(attempt.id, expected, state, review, self.clock.now())

    def _outcome(
        self, learner: Learner, card_id: str, before: CardState | None, preview: Preview, mode: ReviewMode
    ) -> tuple[CardState, Review]:
        now = self.clock.now()
        review = Review(
            learner_id=learner.id,
            card_id=card_id,
            rating=preview.rating,
            reviewed_at=now,
            mode=mode,
            local_day=local_day(now, learner.timezone),
            was_new=before is None,
            state_before=before.state if before else None,
        )
        state = preview.state
        if before is None:
            state = replace(state, first_day=review.local_day)
        return state, review

    def review_outcome(
        self, learner: Learner, card: Card, before: CardState | None, rating: Rating, mode: ReviewMode
    ) -> tuple[CardState, Review]:
        """The card state and review log row for rating `card` now (for other services that review, such
        as a mock interview); the caller stores both in one transaction."""
        preview = next(p for p in self._previews(learner, card, before) if p.rating is rating)
        return self._outcome(learner, card.id, before, preview, mode)

    async def _skip(self, learner: Learner, attempt: Attempt) -> Reply:
        expected = _SKIPPABLE
        if attempt.status not in expected:
            return notice(STALE)
        if not await self.store.update_attempt(attempt.id, expected, AttemptStatus.SKIPPED, self.clock.now()):
            return notice(STALE)
        reply = await self.ask(learner, attempt.chat_key, attempt.topic, edit=True)
        return replace(reply, notice="Skipped")

    async def skip_open(self, caller: Caller) -> Reply:
        """/skip: pass the question open in this chat and ask the next one."""
        view = await self.store.open_attempt_for(caller.identity, caller.chat.key)
        if view is None or view.caller is None or view.attempt.status not in _SKIPPABLE:
            return Reply(blocks=(Paragraph.of("Nothing to skip: no question is open. Send /question for one."),))
        reply = await self._skip(view.caller, view.attempt)
        return replace(reply, edit=False)

    # --- free text -------------------------------------------------------------------------------

    async def answer_text(self, caller: Caller, text: str) -> Reply | None:
        """Grade typed words against the open question's key points; None when no question is open.

        A non-answer (a greeting, a stray key, a word or two) is not graded: the question stays
        open, nothing is stored, and its buttons are shown again.
        """
        view = await self.store.open_attempt_for(caller.identity, caller.chat.key)  # one read
        if view is None or view.caller is None:
            return None
        attempt, learner = view.attempt, view.caller
        if attempt.status not in (AttemptStatus.OPEN, AttemptStatus.CHOICE):
            return None
        card = self.bank.card(attempt.card_id)
        if card is None:
            return None
        choosing = attempt.status is AttemptStatus.CHOICE
        reason = self.lexical.non_answer(card, text, len(attempt.options) if choosing else 0)
        if reason is not None:
            return self._not_an_answer(card, attempt, text, reason)
        if not card.key_points:  # an imported card without key points: the learner compares and rates
            compare = Paragraph.of(
                Span("This card has no key points to check your words against", "bold"),
                ": compare your answer with the model answer below, then rate how well you knew it.",
            )
            return await self._reveal(learner, attempt, card, view.state, (compare,), edit=False)
        judgement = await self.grader.judge(card, text, learner.id)
        return await self._reveal(learner, attempt, card, view.state, self.judgement_blocks(judgement), edit=False)

    def _not_an_answer(self, card: Card, attempt: Attempt, text: str, reason: str) -> Reply:
        shown = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
        shown = " ".join(shown.split())[:40]
        quoted = f"“{shown}”" if shown else "that"
        if attempt.status is AttemptStatus.CHOICE:
            letters = ", ".join(OPTION_LETTERS[: len(attempt.options)])
            advice = f"Pick an option ({letters}) with the buttons, or type your answer in a sentence or two."
            buttons = self._choice_buttons(attempt, len(attempt.options))
        else:
            advice = (
                f"Type your answer in a sentence or two, or use a button: {SHOW_ANSWER_LABEL} if you don't know, "
                "or Skip."
            )
            buttons = self._question_buttons(card, attempt)
        return Reply(
            blocks=(
                Paragraph.of(f"I didn't take {quoted} as an answer: {reason}. The question is still open."),
                Paragraph.of(Span(card.question, "bold")),
                Paragraph.of(Span(advice, "italic")),
            ),
            buttons=buttons,
            notice="Not taken as an answer",
            answer_box=attempt.status is not AttemptStatus.CHOICE,
            answer_box_at=1,
        )

    def judgement_blocks(self, judgement: Judgement) -> tuple[Paragraph | Title | Bullets, ...]:
        """What the learner sees about their answer: points covered and missed, feedback, what to try next."""
        total = len(judgement.key_points)
        blocks: list[Paragraph | Title | Bullets] = []
        if judgement.off_topic:
            blocks.append(
                Paragraph.of(
                    Span("Your answer doesn't seem to be about this question", "bold"),
                    ", so it earns no key points. Compare it with the model answer below.",
                )
            )
        else:
            blocks.append(Paragraph.of(Span(f"You covered {len(judgement.covered)} of {total} key points.", "bold")))
        items = [(Span("✓ ", "bold"), judgement.key_points[i].text) for i in judgement.covered]
        items += [(Span("✗ ", "bold"), judgement.key_points[i].text) for i in judgement.missed]
        blocks.append(Bullets(tuple(items)))
        if judgement.misconceptions:
            blocks += [Title("Watch out"), Bullets.of(*judgement.misconceptions)]
        if judgement.feedback:
            blocks.append(Paragraph.of(Span("Feedback: ", "bold"), judgement.feedback))
        if judgement.follow_up:
            blocks.append(Paragraph.of(Span("Try next: ", "bold"), judgement.follow_up))
        suggestion = judgement.suggested_rating
        blocks.append(
            Paragraph.of(
                Span(f"Suggested rating: {RATING_EMOJI[suggestion]} {suggestion.label}", "italic"),
                " (your call: rate below)",
            )
        )
        if judgement.grader == "lexical":
            blocks.append(
                Paragraph.of(
                    Span(
                        "Checked offline for coverage of the key points, not for correctness: "
                        "compare your wording with the model answer.",
                        "italic",
                    )
                )
            )
        return tuple(blocks)

    # --- info ----------------------------------------------------------------------------------

    def topics_view(self, pool: QuestionBank | None = None) -> Reply:
        """The topics of `pool` (a chat's decks; default: the bank), with how many cards each has."""
        bank = pool or self.bank
        items = tuple(
            (Span(topic.slug, "code"), f" {topic.name} ({len(bank.cards_in(topic.slug))})") for topic in bank.topics
        )
        example = bank.topics[0].slug if bank.topics and bank.chosen else "transformers"
        blocks: tuple[Title | Bullets | Paragraph, ...] = (
            Title(f"{plural(len(bank.topics), 'topic')}, {plural(len(bank), 'card')}"),
            Bullets(items),
            Paragraph.of("Practise one with /question ", Span("topic", "code"), f", e.g. /question {example}"),
        )
        if bank.chosen:
            blocks += (Paragraph.of("These are the decks this chat practises from; /deck shows and changes them."),)
        return Reply(blocks=blocks)

    async def stats_for(self, learner: Learner) -> Stats:
        now = self.clock.now()
        seen = await self.store.seen_card_ids(learner.id)
        total, of_seen, passed = await self.store.review_counts(learner.id, now - timedelta(days=30))
        today = local_day(now, learner.timezone)
        found = streak(await self.store.review_days(learner.id), today)
        per_topic = tuple(
            TopicProgress(
                topic=topic,
                seen=sum(1 for card in self.bank.cards_in(topic.slug) if card.id in seen),
                total=len(self.bank.cards_in(topic.slug)),
            )
            for topic in self.bank.topics
        )
        context = await self.store.pick_context(learner.id, now)
        return Stats(
            cards_seen=sum(1 for card_id in seen if self.bank.card(card_id) is not None),
            cards_total=len(self.bank),
            due_now=sum(1 for _card_id, due, _first_day in context.schedule if due <= now),
            reviews_30d=total,
            retention_30d=(passed / of_seen) if of_seen else None,
            current_streak=found.current,
            best_streak=found.best,
            streak_freezes=found.freezes,
            new_today=await self.store.count_new_on_day(learner.id, today),
            new_per_day=learner.new_per_day,
            per_topic=per_topic,
            reviews_today=len(self.reviewed_today(learner, context)),
            reviews_per_day=learner.reviews_per_day,
            waiting=self.waiting(learner, context),
        )

    async def stats(self, caller: Caller) -> Reply:
        learner = await self.learner(caller)
        now = self.clock.now()
        plan = await self.store.plan_for(learner.id)
        plan_blocks: tuple[Paragraph, ...] = ()
        if plan is not None and plan_is_over(plan.target_day, plan.timezone, now):
            ending = await finish_plan(self.store, self.bank, learner, await self.store.seen_card_ids(learner.id))
            if ending is not None:
                plan_blocks = ending.blocks
                learner = replace(learner, new_per_day=ending.new_per_day)
            plan = None
        s = await self.stats_for(learner)
        if plan is not None:
            left = sum(p.total - p.seen for p in s.per_topic if not plan.topics or p.topic.slug in plan.topics)
            today = date.fromisoformat(local_day(now, plan.timezone))
            plan_blocks = (Paragraph.of(countdown_line(plan.target_day, today, left)),)
        retention = f"{s.retention_30d:.0%}" if s.retention_30d is not None else "—"
        run = f"{s.current_streak}-day streak (best {s.best_streak})" if s.best_streak else "no streak yet"
        if s.streak_freezes:
            days = ", ".join(f"{date.fromisoformat(day):%a %d %b}" for day in s.streak_freezes)
            run += f"; kept by {plural(len(s.streak_freezes), 'freeze')} ({days}): one missed day a week is forgiven"
        streak_lines = ((f"🔥 {run}",),) if learner.show_streak else ()
        progress = tuple((Span(p.topic.slug, "code"), f" {p.seen}/{p.total}") for p in s.per_topic if p.total)
        return Reply(
            blocks=(
                Title(f"Progress of {learner.display_name}"),
                *plan_blocks,
                Bullets(
                    (
                        (f"Cards seen: {s.cards_seen} of {s.cards_total}",),
                        (f"Due now: {s.due_now}",),
                        (f"Reviews today: {s.reviews_today} of {s.reviews_per_day} (/reviews)",),
                        *(
                            ((f"Waiting for the next days (daily review cap reached): {s.waiting}",),)
                            if s.waiting
                            else ()
                        ),
                        (f"New today: {s.new_today} of {s.new_per_day}",),
                        (f"Reviews in the last 30 days: {s.reviews_30d}",),
                        (f"Retention (30 days, reviews of cards seen before): {retention}",),
                        *streak_lines,
                    )
                ),
                *self._weakest_blocks(await self.topic_scores(learner)),
                Title("By topic"),
                Bullets(progress),
            ),
            private=True,
        )

    @staticmethod
    def _weakest_blocks(scores: list[TopicScore]) -> tuple[Title | Paragraph | Bullets, ...]:
        if not scores:
            return (
                Title("Weakest topics"),
                Paragraph.of(
                    f"Not enough reviews yet: a topic counts after {MIN_ANSWERS} reviews of cards you had seen "
                    "before, in 30 days."
                ),
            )
        items = tuple(
            (Span(s.topic.slug, "code"), f" {s.rate:.0%} retention ({plural(s.answers, 'review')})") for s in scores[:3]
        )
        return (
            Title("Weakest topics (30 days)"),
            Bullets(items),
            Paragraph.of("Practise them with ", Span("/question weak", "code"), "."),
        )

    async def set_show_streak(self, caller: Caller, args: str) -> Reply:
        """/streak [on|off]: show or hide streaks; hidden ones are still computed from history."""
        learner = await self.learner(caller)
        word = args.strip().lower()
        if word not in ("", "on", "off"):
            return Reply(blocks=(Paragraph.of("Usage: /streak on or /streak off (/streak alone shows the setting)."),))
        if not word:
            state = "shown" if learner.show_streak else "hidden"
            return Reply(blocks=(Paragraph.of(f"Streaks are {state}. /streak on or /streak off changes that."),))
        show = word == "on"
        await self.store.set_show_streak(learner.id, show)
        if not show:
            return Reply(
                blocks=(
                    Paragraph.of(
                        "Streaks are hidden: /stats and daily questions won't mention them. Your practice counts "
                        "all the same; /streak on brings them back, worked out from your history."
                    ),
                )
            )
        found = streak(await self.store.review_days(learner.id), local_day(self.clock.now(), learner.timezone))
        now_line = f"You're on a {found.current}-day streak." if found.current else "No streak running right now."
        return Reply(blocks=(Paragraph.of(f"Streaks are back. {now_line}"),))

    async def set_reviews_per_day(self, caller: Caller, args: str) -> Reply:
        """/reviews [N]: show or set the daily cap on due reviews."""
        learner = await self.learner(caller)
        text = args.strip()
        low, high = REVIEWS_RANGE
        if not text:
            context = await self.store.pick_context(learner.id, self.clock.now())
            done = len(self.reviewed_today(learner, context))
            waiting = self.waiting(learner, context)
            blocks = [
                Paragraph.of(
                    f"You get up to {plural(learner.reviews_per_day, 'due review')} a day; {done} done today. "
                    f"Change it with /reviews N ({low}-{high})."
                )
            ]
            if waiting:
                blocks.append(Paragraph.of(f"{plural(waiting, 'more review')} wait for the next days."))
            return Reply(blocks=tuple(blocks))
        if not text.isdigit() or not low <= int(text) <= high:
            return Reply(blocks=(Paragraph.of(f"Usage: /reviews N, where N is a whole number from {low} to {high}."),))
        await self.store.set_reviews_per_day(learner.id, int(text))
        return Reply(
            blocks=(
                Paragraph.of(
                    f"Done: up to {plural(int(text), 'due review')} a day. When more are due, the ones you are most "
                    "likely to forget come first and the rest wait, none lost."
                ),
            )
        )

    async def set_new_per_day(self, caller: Caller, args: str) -> Reply:
        learner = await self.learner(caller)
        text = args.strip()
        if not text:
            return Reply(
                blocks=(
                    Paragraph.of(
                        f"You get up to {plural(learner.new_per_day, 'new card')} a day. "
                        "Change it with /newcards N (0-50)."
                    ),
                )
            )
        if not text.isdigit() or not 0 <= int(text) <= 50:
            return Reply(blocks=(Paragraph.of("Usage: /newcards N, where N is a whole number from 0 to 50."),))
        await self.store.set_new_per_day(learner.id, int(text))
        done = Paragraph.of(f"Done: up to {plural(int(text), 'new card')} a day.")
        plan = await self.store.plan_for(learner.id)
        if plan is None or plan_is_over(plan.target_day, plan.timezone, self.clock.now()):
            return Reply(blocks=(done,))
        when = f"{date.fromisoformat(plan.target_day):%d %b}"
        if int(text) >= plan.new_per_day:
            advice = f"That's at least the {plan.new_per_day} a day your plan to {when} needs."
        else:
            advice = (
                f"Your plan to {when} set {plan.new_per_day} a day; with fewer, some of its cards may still be new "
                "in the last days before the interview. /plan shows where you stand."
            )
        return Reply(blocks=(done, Paragraph.of(f"{advice} When the plan ends, your number stays as you set it.")))


def _mix(learner_id: int, card_id: str) -> bytes:
    return hashlib.blake2b(f"{learner_id}:{card_id}".encode(), digest_size=8).digest()
