"""CompetitionService: group quiz matches — rounds, the one-answer rule, speed scoring, leaderboards.

The service is step-driven and clock-driven: `start` creates a match, `open_round` puts the next
question, `answer` records a player's first answer while the round is open, `close_round` scores
and reports. A runner outside the core (bot/scheduler.py) calls these on a timer; every step is
stored, so a restarted runner picks up where the last one stopped.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import QuestionBank
from bot.core.model import (
    Caller,
    Card,
    Chat,
    Match,
    MatchStatus,
    Round,
    RoundAnswer,
    Standing,
    Subscription,
    TopicScore,
)
from bot.core.ports import ChatStore, Clock, CompetitionStore, QuizHistoryStore, StudyStore
from bot.core.study import OPTION_LETTERS, StudyService
from bot.core.views import Bullets, Button, Inline, Paragraph, QuizPoll, Reply, Span, Title, notice
from bot.core.weak import CHAT_WINDOW, MIN_ANSWERS, rank_topics

DEFAULT_QUESTIONS = 10
DEFAULT_SECONDS = 20
QUESTIONS_RANGE = (1, 30)
SECONDS_RANGE = (10, 120)
BASE_POINTS = 100
MAX_SPEED_BONUS = 50
IDLE_ROUNDS_TO_END = 3
DAILY_POLL_HOURS = 24
MEDALS = ("🥇", "🥈", "🥉")
USAGE = (
    "Usage: /quiz [questions] [topic|weak] [seconds] — for example /quiz, /quiz 5, /quiz 10 transformers 30, "
    "/quiz 5 weak. "
    f"Questions {QUESTIONS_RANGE[0]}-{QUESTIONS_RANGE[1]} (default {DEFAULT_QUESTIONS}), "
    f"seconds per question {SECONDS_RANGE[0]}-{SECONDS_RANGE[1]} (default {DEFAULT_SECONDS})."
)
WEAK_WORD = "weak"
NO_ANSWER = -1  # option_index of a solo round that timed out: stored so it counts as a wrong answer


class CompetitionPorts(CompetitionStore, StudyStore, ChatStore, QuizHistoryStore, Protocol):
    """The store CompetitionService works on."""


@dataclass(frozen=True, slots=True)
class OpenedRound:
    match: Match | None
    round: Round
    reply: Reply  # the question: a native poll where the platform has one, else text + buttons


@dataclass(frozen=True, slots=True)
class ClosedRound:
    match: Match | None
    round: Round
    reply: Reply  # correct option, explanation and standings
    round_view: Reply  # the round's own message after closing (correct option and counts)
    match_over: bool
    final: Reply | None  # podium and full table when the match ended with this round


MatchListener = Callable[[Match], Awaitable[None]]


def speed_points(elapsed: timedelta, duration: timedelta) -> int:
    """100 for a correct answer plus up to 50 that falls linearly to 0 over the round."""
    share = max(0.0, 1.0 - elapsed / duration) if duration.total_seconds() > 0 else 0.0
    return BASE_POINTS + round(MAX_SPEED_BONUS * share)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week containing `now`."""
    day = now.astimezone(UTC).date()
    monday = day - timedelta(days=day.isoweekday() - 1)
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


class CompetitionService:
    """Quiz matches in a chat, scored by correctness and speed, with a per-chat leaderboard."""

    def __init__(
        self,
        store: CompetitionPorts,
        bank: QuestionBank,
        clock: Clock,
        study: StudyService,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.study = study
        self.rng = rng or random.Random()
        self._started_listeners: list[MatchListener] = []
        self._round_done_listeners: list[Callable[[int], None]] = []
        self._stopped_listeners: list[MatchListener] = []

    # --- listeners (the runner subscribes) -----------------------------------------------------

    def on_match_started(self, listener: MatchListener) -> None:
        self._started_listeners.append(listener)

    def on_match_stopped(self, listener: MatchListener) -> None:
        self._stopped_listeners.append(listener)

    def on_round_complete(self, listener: Callable[[int], None]) -> None:
        """Called with a round id when every player of a solo match has answered (close early)."""
        self._round_done_listeners.append(listener)

    # --- starting ------------------------------------------------------------------------------

    def parse_args(self, args: str, pool: QuestionBank | None = None) -> tuple[int, str | None, int] | str:
        """(questions, topic, seconds) or an error message; the topic is one of `pool`'s (default: the bank)."""
        bank = pool or self.bank
        numbers: list[int] = []
        words: list[str] = []
        for token in args.split():
            if token.isdigit():
                numbers.append(int(token))
            else:
                words.append(token)
        if len(numbers) > 2:
            return USAGE
        questions = numbers[0] if numbers else DEFAULT_QUESTIONS
        seconds = numbers[1] if len(numbers) > 1 else DEFAULT_SECONDS
        if not QUESTIONS_RANGE[0] <= questions <= QUESTIONS_RANGE[1]:
            return f"A match has {QUESTIONS_RANGE[0]}-{QUESTIONS_RANGE[1]} questions. {USAGE}"
        if not SECONDS_RANGE[0] <= seconds <= SECONDS_RANGE[1]:
            return f"Rounds last {SECONDS_RANGE[0]}-{SECONDS_RANGE[1]} seconds. {USAGE}"
        topic: str | None = None
        if words:
            found = bank.find_topic(" ".join(words))
            if found is None:
                topics = ", ".join(t.slug for t in bank.topics)
                return f"I don't know the topic “{' '.join(words)[:40]}”. Topics: {topics}. {USAGE}"
            topic = found.slug
        return questions, topic, seconds

    def _quiz_cards(self, topic: str | None, pool: QuestionBank | None = None) -> list[Card]:
        bank = pool or self.bank
        cards = bank.cards_in(topic) if topic else bank.cards
        return [card for card in cards if card.quiz is not None]

    async def _weak_cards(
        self, chat_key: str, questions: int, pool: QuestionBank | None = None
    ) -> tuple[list[Card], Paragraph]:
        """Questions from the topics this chat answered worst (weakest first, enough to fill the match,
        topped up from the rest), and a line saying which; every topic when the chat has no history."""
        evidence = await self.store.chat_card_results(chat_key, self.clock.now() - CHAT_WINDOW)
        scores = rank_topics(evidence, pool or self.bank)
        everything = self._quiz_cards(None, pool)
        if not scores:
            return self.rng.sample(everything, min(questions, len(everything))), Paragraph.of(
                f"This chat doesn't have enough quiz answers yet to tell its weakest topics (a topic counts after "
                f"{MIN_ANSWERS} answers in {CHAT_WINDOW.days} days), so the questions come from every topic."
            )
        weakest: list[TopicScore] = []
        chosen: list[Card] = []
        for score in scores:  # the weakest topic's questions first, then the next topic's, ...
            if len(chosen) >= questions:
                break
            weakest.append(score)
            cards = self._quiz_cards(score.topic.slug, pool)
            chosen += self.rng.sample(cards, min(questions - len(chosen), len(cards)))
        rest = [card for card in everything if card not in chosen]
        chosen += self.rng.sample(rest, min(questions - len(chosen), len(rest)))
        named = ", ".join(f"{s.topic.name} {s.rate:.0%}" for s in weakest)
        return chosen, Paragraph.of(
            f"Questions from the topics this chat answered worst (right answers, last {CHAT_WINDOW.days} days): "
            f"{named}."
        )

    async def start(self, caller: Caller, args: str) -> Reply:
        """/quiz: start a match in this chat, or show the one already running. `weak` in the arguments:
        questions from the topics this chat answered worst."""
        running = await self.store.running_match(caller.chat.key)
        if running is not None:
            return await self.state(running)
        words = args.split()
        weak = any(word.casefold() == WEAK_WORD for word in words)
        pool = await self.bank.pool_for(caller.chat.key)
        if not self._quiz_cards(None, pool):
            return Reply(
                blocks=(
                    Paragraph.of(
                        "None of the cards this chat practises from has a quiz question, so there is nothing for "
                        "/quiz to ask. /deck shows this chat's decks; /deck use bank brings back the shipped bank."
                    ),
                )
            )
        parsed = self.parse_args(" ".join(word for word in words if word.casefold() != WEAK_WORD), pool)
        if isinstance(parsed, str):
            return Reply(blocks=(Paragraph.of(parsed),))
        questions, topic, seconds = parsed
        if weak and topic is not None:
            return Reply(blocks=(Paragraph.of(f"Choose a topic or weak, not both. {USAGE}"),))
        note: Paragraph | None = None
        if weak:
            chosen, note = await self._weak_cards(caller.chat.key, questions, pool)
        else:
            cards = self._quiz_cards(topic, pool)
            if not cards:
                return Reply(blocks=(Paragraph.of("There are no multiple-choice questions for that topic yet."),))
            chosen = self.rng.sample(cards, min(questions, len(cards)))
        learner = await self.study.learner(caller)
        match = await self.store.create_match(
            Match(
                id=0,
                chat_key=caller.chat.key,
                platform=caller.chat.platform,
                chat_id=caller.chat.chat_id,
                starter_id=learner.id,
                topic=topic,
                questions=len(chosen),
                seconds=seconds,
                solo=not caller.chat.is_group,
                status=MatchStatus.RUNNING,
                card_ids=tuple(card.id for card in chosen),
                rounds_played=0,
                idle_rounds=0,
                started_at=self.clock.now(),
            )
        )
        if match is None:  # someone else started one in the same instant
            again = await self.store.running_match(caller.chat.key)
            return await self.state(again) if again else Reply(blocks=(Paragraph.of(USAGE),))
        for listener in self._started_listeners:
            await listener(match)
        topic_name = "weakest topics" if weak else self._topic_name(topic)
        kind = "Solo quiz" if match.solo else "Quiz"
        count = _plural(match.questions, "question", "questions")
        return Reply(
            blocks=(
                Title(f"🏁 {kind}: {count} · {seconds} s each · {topic_name}"),
                *((note,) if note is not None else ()),
                Paragraph.of(
                    f"Started by {caller.display_name}. A correct answer scores {BASE_POINTS} points plus up to "
                    f"{MAX_SPEED_BONUS} for speed; only your first answer counts. First question in a moment!"
                ),
            )
        )

    def _topic_name(self, topic: str | None) -> str:
        if topic is None:
            return "mixed topics"
        found = self.bank.find_topic(topic)
        return found.name if found else topic

    async def state(self, match: Match) -> Reply:
        standings = await self.store.standings(match.id)
        blocks: list[Title | Paragraph | Bullets] = [
            Title(f"A quiz is already running here: round {max(match.rounds_played, 1)} of {match.questions}"),
        ]
        if standings:
            blocks.append(self._standings_bullets(standings))
        blocks.append(Paragraph.of("The starter or an admin can end it with /stopquiz."))
        return Reply(blocks=tuple(blocks))

    # --- rounds --------------------------------------------------------------------------------

    def _round_reply(self, card: Card, round_: Round, number_label: str, seconds: int | None) -> Reply:
        assert card.quiz is not None
        options = tuple(card.quiz.options[i] for i in round_.options)
        poll = QuizPoll(
            question=f"{number_label} {card.quiz.prompt}"[:300] if number_label else card.quiz.prompt,
            options=options,
            correct_index=round_.correct_index,
            explanation=card.quiz.explanation,
            open_seconds=seconds,
            round_id=round_.id,
        )
        buttons = (
            tuple(
                Button(OPTION_LETTERS[n], Action(Verb.QUIZ_OPTION, round_.id, n).encode()) for n in range(len(options))
            ),
        )
        blocks = (
            Paragraph.of(Span(f"{number_label} {card.quiz.prompt}".strip(), "bold")),
            Bullets(tuple((Span(f"{OPTION_LETTERS[n]}) ", "bold"), text) for n, text in enumerate(options))),
        )
        return Reply(blocks=blocks, buttons=buttons, poll=poll)

    async def open_round(self, match_id: int) -> OpenedRound | None:
        """Put the match's next question, or None when the match is over (or gone)."""
        match = await self.store.get_match(match_id)
        if match is None or match.status is not MatchStatus.RUNNING:
            return None
        number = match.rounds_played + 1
        if number > len(match.card_ids):
            return None
        card = self.bank.card(match.card_ids[number - 1])
        if card is None or card.quiz is None:  # removed from the bank since the match began: skip it
            await self.store.save_match_progress(match.id, number, match.idle_rounds)
            return await self.open_round(match_id)
        now = self.clock.now()
        order = list(range(len(card.quiz.options)))
        self.rng.shuffle(order)
        round_ = await self.store.open_round(
            Round(
                id=0,
                match_id=match.id,
                chat_key=match.chat_key,
                number=number,
                card_id=card.id,
                options=tuple(order),
                correct_index=order.index(0),
                speed_bonus=MAX_SPEED_BONUS,
                opened_at=now,
                closes_at=now + timedelta(seconds=match.seconds),
            )
        )
        await self.store.save_match_progress(match.id, number, match.idle_rounds)
        match = await self.store.get_match(match.id) or match
        reply = self._round_reply(card, round_, f"[{number}/{match.questions}]", match.seconds)
        return OpenedRound(match=match, round=round_, reply=reply)

    async def attach_message(self, round_id: int, poll_id: str | None, message_id: str | None) -> None:
        await self.store.attach_round_message(round_id, poll_id, message_id)

    # --- answers -------------------------------------------------------------------------------

    async def answer(self, caller: Caller, round_id: int, option: int) -> Reply:
        """A player's answer to a round: only the first counts; late ones are ignored."""
        round_ = await self.store.get_round(round_id)
        if round_ is None or round_.chat_key != caller.chat.key:
            return notice("That quiz question is not valid here.")
        if not 0 <= option < len(round_.options):
            return notice("That option does not exist.")
        now = self.clock.now()
        if round_.closed or now > round_.closes_at:
            return notice("Too late: this round is closed.")
        learner = await self.study.learner(caller)
        correct = option == round_.correct_index
        elapsed = now - round_.opened_at
        points = speed_points(elapsed, round_.closes_at - round_.opened_at) if correct else 0
        if round_.match_id is None:  # a daily poll: no race, a flat score
            points = BASE_POINTS if correct else 0
        stored = await self.store.add_answer(
            RoundAnswer(
                round_id=round_.id,
                learner_id=learner.id,
                option_index=option,
                correct=correct,
                points=points,
                elapsed_ms=max(0, round(elapsed.total_seconds() * 1000)),
                answered_at=now,
            ),
            now,
        )
        if not stored:
            return notice("You already answered this one; only your first answer counts.")
        if round_.match_id is not None:
            match = await self.store.get_match(round_.match_id)
            if match is not None and match.solo:
                for listener in self._round_done_listeners:
                    listener(round_.id)
        return notice(f"Locked in: {OPTION_LETTERS[option]}")

    async def answer_poll(self, voter: Caller, poll_id: str, option_ids: list[int]) -> Reply | None:
        """A native poll answer (Telegram's poll_answer); None when the poll is not one of ours.

        A poll answer does not say which chat it came from; the round it belongs to does."""
        round_ = await self.store.round_by_poll(poll_id)
        if round_ is None or not option_ids:  # unknown poll, or a retracted vote (ignored)
            return None
        caller = Caller(
            identity=voter.identity,
            display_name=voter.display_name,
            chat=Chat.from_key(round_.chat_key, is_group=True),
        )
        return await self.answer(caller, round_.id, option_ids[0])

    async def press(self, caller: Caller, data: str) -> Reply:
        """Button presses with the quiz verb (Discord and the terminal)."""
        action = parse_action(data)
        if action is None or action.verb is not Verb.QUIZ_OPTION or action.arg is None:
            return notice("That button is not valid any more.")
        return await self.answer(caller, action.target, action.arg)

    # --- closing -------------------------------------------------------------------------------

    async def close_round(self, round_id: int) -> ClosedRound | None:
        """Score a round and report; None when it was already closed."""
        round_ = await self.store.get_round(round_id)
        if round_ is None or round_.closed:
            return None
        answers = await self.store.round_answers(round_id)
        match = await self.store.get_match(round_.match_id) if round_.match_id is not None else None
        timed_out = not answers and self.clock.now() >= round_.closes_at
        if timed_out and match is not None and match.solo and match.starter_id is not None:
            # a solo round left unanswered counts as a wrong answer, in the score and in the accuracy
            await self.store.add_answer(
                RoundAnswer(
                    round_id=round_.id,
                    learner_id=match.starter_id,
                    option_index=NO_ANSWER,
                    correct=False,
                    points=0,
                    elapsed_ms=round((round_.closes_at - round_.opened_at).total_seconds() * 1000),
                    answered_at=round_.closes_at,
                ),
                round_.closes_at,  # stored as of the closing instant, while the round is still open
            )
        if not await self.store.close_round(round_id):
            return None
        card = self.bank.card(round_.card_id)
        correct_text = ""
        explanation = ""
        options: tuple[str, ...] = ()
        if card is not None and card.quiz is not None:
            options = tuple(card.quiz.options[i] for i in round_.options)
            correct_text = options[round_.correct_index]
            explanation = card.quiz.explanation
        letter = OPTION_LETTERS[round_.correct_index]
        right = sum(1 for a in answers if a.correct)
        counts = [sum(1 for a in answers if a.option_index == n) for n in range(len(options))]
        round_view = Reply(
            blocks=(
                Paragraph.of(Span(f"{card.quiz.prompt if card and card.quiz else 'Question'}", "bold")),
                Bullets(
                    tuple(
                        (
                            Span(f"{'✅' if n == round_.correct_index else '▫️'} {OPTION_LETTERS[n]}) ", "bold"),
                            f"{text} — {counts[n]}",
                        )
                        for n, text in enumerate(options)
                    )
                ),
            )
        )
        if match is None:
            return ClosedRound(None, round_, round_view, round_view, match_over=False, final=None)
        idle = match.idle_rounds + 1 if not answers else 0
        await self.store.save_match_progress(match.id, match.rounds_played, idle)
        standings = await self.store.standings(match.id)
        head = f"Round {round_.number}/{match.questions}: ✅ {letter}) {correct_text}"
        if match.solo:
            outcome = self._solo_outcome(answers, letter)
        else:
            outcome = Paragraph.of(f"{right} of {len(answers)} answered correctly.")
        blocks: list[Title | Paragraph | Bullets] = [
            Paragraph.of(Span(head, "bold")),
            Paragraph.of(explanation),
            outcome,
        ]
        if standings:
            blocks.append(Paragraph.of(*self._compact_standings(standings)))
        over_reason = None
        if idle >= IDLE_ROUNDS_TO_END:
            over_reason = f"Nobody answered for {IDLE_ROUNDS_TO_END} rounds, so the quiz ends here."
        elif match.rounds_played >= match.questions:
            over_reason = "That was the last question!"
        final = None
        if over_reason is not None:
            final = await self._finish(match, MatchStatus.FINISHED, over_reason)
        return ClosedRound(match, round_, Reply(blocks=tuple(blocks)), round_view, over_reason is not None, final)

    @staticmethod
    def _solo_outcome(answers: list[RoundAnswer], letter: str) -> Paragraph:
        """A solo round's result: what the player chose and what was right."""
        if not answers:
            return Paragraph.of(Span("⌛ Time's up", "bold"), f" · no answer · correct: {letter}")
        chosen = answers[0]
        mark = "✅" if chosen.correct else "❌"
        return Paragraph.of(Span(f"{mark} you: {OPTION_LETTERS[chosen.option_index]}", "bold"), f" · correct: {letter}")

    def _compact_standings(self, standings: list[Standing], limit: int = 5) -> tuple[Inline, ...]:
        parts: list[Inline] = []
        for n, row in enumerate(standings[:limit]):
            medal = MEDALS[n] if n < len(MEDALS) else f"{n + 1}."
            parts.append(f"{' · ' if n else ''}{medal} ")
            parts.append(Span(row.name, "bold"))
            parts.append(f" {row.points}")
        if len(standings) > limit:
            parts.append(f" (+{len(standings) - limit} more)")
        return tuple(parts)

    def _standings_bullets(self, standings: list[Standing]) -> Bullets:
        items: list[tuple[Inline, ...]] = []
        for n, row in enumerate(standings):
            medal = MEDALS[n] if n < len(MEDALS) else f"{n + 1}."
            items.append(
                (
                    f"{medal} ",
                    Span(row.name, "bold"),
                    f" — {row.points} pts, {row.correct}/{row.answered} correct, {row.time_ms / 1000:.1f} s",
                )
            )
        return Bullets(tuple(items))

    async def _finish(self, match: Match, status: MatchStatus, reason: str) -> Reply:
        standings = await self.store.standings(match.id)
        winner = standings[0].learner_id if standings and standings[0].points > 0 else None
        await self.store.end_match(match.id, status, reason, winner, self.clock.now())
        blocks: list[Title | Paragraph | Bullets] = [Title("🏆 Final results"), Paragraph.of(reason)]
        if standings:
            podium = standings[:3]
            blocks.append(
                Paragraph.of(
                    *[
                        part
                        for n, row in enumerate(podium)
                        for part in (f"{'  ' if n else ''}{MEDALS[n]} ", Span(row.name, "bold"), f" {row.points}")
                    ]
                )
            )
            blocks.append(self._standings_bullets(standings))
        else:
            blocks.append(Paragraph.of("Nobody scored this time."))
        blocks.append(Paragraph.of("See the chat's leaderboard with /leaderboard."))
        return Reply(blocks=tuple(blocks))

    async def stop(self, caller: Caller, args: str = "") -> Reply:
        """/stopquiz: the match's starter or a chat admin ends it, with the standings so far."""
        match = await self.store.running_match(caller.chat.key)
        if match is None:
            return Reply(blocks=(Paragraph.of("No quiz is running here. Start one with /quiz."),))
        learner = await self.study.learner(caller)
        if learner.id != match.starter_id and not caller.is_chat_admin:
            return Reply(blocks=(Paragraph.of("Only the person who started this quiz or a chat admin can stop it."),))
        latest = await self.store.latest_round(match.id)
        if latest is not None and not latest.closed:
            await self.store.close_round(latest.id)
        final = await self._finish(match, MatchStatus.STOPPED, f"Stopped by {caller.display_name}.")
        for listener in self._stopped_listeners:
            await listener(match)
        return final

    async def end_unresumable(self, match: Match, reason: str) -> Reply:
        return await self._finish(match, MatchStatus.FINISHED, reason)

    # --- leaderboard and daily polls -------------------------------------------------------------

    async def leaderboard(self, caller: Caller, args: str) -> Reply:
        """/leaderboard [week|all]: points, matches, wins and accuracy in this chat."""
        period = args.strip().lower() or "week"
        if period not in ("week", "all"):
            return Reply(blocks=(Paragraph.of("Usage: /leaderboard [week|all] — this ISO week (UTC) or all time."),))
        since = week_start(self.clock.now()) if period == "week" else None
        rows = await self.store.leaderboard(caller.chat.key, since)
        title = "🏆 Leaderboard — this week" if since else "🏆 Leaderboard — all time"
        if not rows:
            return Reply(blocks=(Title(title), Paragraph.of("No scores yet. Start a match with /quiz!")))
        items = tuple(
            (
                f"{MEDALS[n] if n < 3 else f'{n + 1}.'} ",
                Span(row.name, "bold"),
                f" — {row.points} pts · {_plural(row.matches, 'match', 'matches')} · "
                f"{_plural(row.wins, 'win', 'wins')} · "
                f"{(row.correct / row.answered if row.answered else 0):.0%} accuracy",
            )
            for n, row in enumerate(rows[:20])
        )
        return Reply(blocks=(Title(title), Bullets(items)))

    async def daily_poll(self, sub: Subscription, now: datetime) -> Reply:
        """A group's daily question: one quiz poll, its correct answers counted on the leaderboard."""
        recent = set(await self.store.recent_round_cards(sub.chat_key, 60))
        # from the chat's decks; the shipped bank's when none of them has a quiz question
        cards = self._quiz_cards(None, await self.bank.pool_for(sub.chat_key)) or self._quiz_cards(None)
        fresh = [card for card in cards if card.id not in recent] or cards
        card = self.rng.choice(fresh)
        assert card.quiz is not None
        order = list(range(len(card.quiz.options)))
        self.rng.shuffle(order)
        round_ = await self.store.open_round(
            Round(
                id=0,
                match_id=None,
                chat_key=sub.chat_key,
                number=0,
                card_id=card.id,
                options=tuple(order),
                correct_index=order.index(0),
                speed_bonus=0,
                opened_at=now,
                closes_at=now + timedelta(hours=DAILY_POLL_HOURS),
            )
        )
        reply = self._round_reply(card, round_, "☀️ Daily question:", None)
        return Reply(blocks=reply.blocks, buttons=reply.buttons, poll=reply.poll, extra=())


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
