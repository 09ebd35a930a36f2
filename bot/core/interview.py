"""InterviewService: a mock interview in a private chat: several questions in a row, answered in the
learner's own words against the clock, each with one follow-up, and a report at the end.

Every step is stored (a restart resumes at the open question) with a compare-and-set on the
interview's step, so two answers sent at once can never both count. A finished question is also a
review in FSRS, rated from its score, so interviews feed the learner's schedule.
"""

from __future__ import annotations

import enum
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import QuestionBank
from bot.core.grading import Judgement
from bot.core.model import Caller, Card, CardState, Identity, Kind, Learner, PickContext, Rating, Review, ReviewMode
from bot.core.ports import Clock
from bot.core.study import DIFFICULTY_NAMES, SKIP_MEMORY, TYPE_HINT, StudyService
from bot.core.views import Block, Bullets, Button, Paragraph, Reply, Span, Title, how_to_answer, notice, plural
from bot.core.zones import zone_info

DEFAULT_QUESTIONS = 5
MIN_QUESTIONS = 3
MAX_QUESTIONS = 10
EXPIRES_AFTER = timedelta(hours=2)  # no answer for this long: the interview ends with its report
MAIN_LIMIT = timedelta(minutes=4)  # real mode: the time shown for an answer (a late one still counts)
FOLLOW_UP_LIMIT = timedelta(minutes=2)
FOLLOW_UP_WEIGHT = 0.25  # a question's score: 75% its answer, 25% the follow-up's
GOOD_FROM = 0.8  # a question's score -> the FSRS rating it is recorded with
HARD_FROM = 0.5
HISTORY_SIZE = 10
USAGE = "/interview [coach|real] [topic|mixed] [questions 3-10], or /interview history"


class Mode(enum.StrEnum):
    COACH = "coach"  # a verdict after every answer
    REAL = "real"  # verdicts only in the report; a time limit per answer


class Status(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"  # every question asked
    ENDED = "ended"  # /end before the last question
    EXPIRED = "expired"  # left for EXPIRES_AFTER


class Phase(enum.StrEnum):
    MAIN = "main"
    FOLLOW_UP = "follow_up"


@dataclass(frozen=True, slots=True)
class Interview:
    id: int
    learner_id: int
    chat_key: str
    mode: Mode
    topic: str | None  # None: mixed
    card_ids: tuple[str, ...]
    status: Status
    position: int  # index into card_ids of the open question
    phase: Phase
    follow_up: str | None  # the open follow-up question
    asked_at: datetime  # when the open prompt was sent
    started_at: datetime
    finished_at: datetime | None = None
    score: float | None = None

    @property
    def size(self) -> int:
        return len(self.card_ids)

    @property
    def step(self) -> int:
        """The open prompt as one number (buttons carry it, so a stale button does nothing)."""
        return 2 * self.position + (1 if self.phase is Phase.FOLLOW_UP else 0)


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer (or skip) in an interview: to a question (MAIN) or to its follow-up."""

    position: int
    part: Phase
    card_id: str
    score: float
    missed: tuple[str, ...]  # the key points the answer missed
    elapsed_ms: int
    answered_at: datetime
    late: bool = False
    skipped: bool = False
    prompt: str | None = None  # the follow-up question
    rating: Rating | None = None  # the FSRS rating recorded for the question (on its MAIN row)


@dataclass(frozen=True, slots=True)
class Advance:
    """What one answer changes, written in one transaction if the interview is still at `expected_step`."""

    expected_step: int
    chat_key: str
    answers: tuple[Answer, ...]
    position: int
    phase: Phase
    follow_up: str | None
    asked_at: datetime
    review: tuple[CardState, Review] | None = None
    finish: Status | None = None  # end the interview with this status and `score`
    score: float | None = None


class InterviewStore(Protocol):
    async def running_interview(self, learner_id: int) -> Interview | None:
        """The learner's running interview (at most one), in any chat."""
        ...

    async def running_interview_for(self, identity: Identity) -> tuple[Learner, Interview | None] | None:
        """The identity's learner and its running interview, in one read; None for an unknown identity."""
        ...

    async def start_interview(self, interview: Interview) -> Interview | None:
        """The stored interview with its id, or None when the learner already has a running one."""
        ...

    async def advance_interview(self, interview_id: int, change: Advance, now: datetime) -> bool:
        """Apply `change` (answers, the next prompt, the review, the end) if the interview is running at
        change.expected_step; False, changing nothing, otherwise."""
        ...

    async def interview_answers(self, interview_id: int) -> list[Answer]:
        """Its answers, in order."""
        ...

    async def recent_interviews(self, learner_id: int, limit: int) -> list[Interview]:
        """The learner's latest interviews, newest first."""
        ...

    async def card_state(self, learner_id: int, card_id: str) -> CardState | None: ...

    async def pick_context(self, learner_id: int, skipped_since: datetime) -> PickContext: ...

    async def count_due(self, learner_id: int, now: datetime) -> int: ...


def rating_for(score: float) -> Rating:
    """A question's score as the FSRS rating recorded for it."""
    if score >= GOOD_FROM:
        return Rating.GOOD
    if score >= HARD_FROM:
        return Rating.HARD
    return Rating.AGAIN


def question_score(main: Answer, follow_up: Answer | None) -> float:
    """The question's answer weighs 75%, its follow-up 25%; with no follow-up asked, the answer alone."""
    if main.skipped:
        return 0.0
    if follow_up is None:
        return main.score
    return (1 - FOLLOW_UP_WEIGHT) * main.score + FOLLOW_UP_WEIGHT * follow_up.score


def _clock_text(ms: int) -> str:
    seconds = max(0, round(ms / 1000))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _percent(score: float) -> str:
    return f"{round(score * 100)}%"


@dataclass(frozen=True, slots=True)
class _Request:
    mode: Mode
    topic: str | None
    size: int


class InterviewService:
    """Mock interviews for one learner at a time, graded by the study service's grader."""

    def __init__(
        self, store: InterviewStore, study: StudyService, clock: Clock, *, rng: random.Random | None = None
    ) -> None:
        self.store = store
        self.study = study
        self.bank: QuestionBank = study.bank
        self.clock = clock
        self.rng = rng or random.Random()

    # --- commands --------------------------------------------------------------------------------

    async def command(self, caller: Caller, args: str) -> Reply:
        """/interview [coach|real] [topic|mixed] [N], /interview history."""
        words = args.split()
        if [w.lower() for w in words] == ["history"]:
            return await self.history(caller)
        request = self._parse(words)
        if isinstance(request, Reply):
            return request
        if caller.chat.is_group and not caller.chat.private_replies:
            return Reply(
                blocks=(
                    Paragraph.of(
                        "Mock interviews run in a private chat with me, so your answers stay yours. "
                        "Open one with the button below and send /interview there."
                    ),
                ),
                private_start="interview",
            )
        learner = await self.study.learner(caller)
        running = await self.store.running_interview(learner.id)
        before: Reply | None = None
        if running is not None:
            if self._stale(running):
                before = await self._expire(learner, running)
            else:
                return await self._resume(running, caller.chat.key, "You're in an interview already; here it is.")
        started = await self._begin(learner, caller.chat.key, request)
        if before is None:
            return started
        return replace(before, extra=(*before.extra, started))

    async def skip(self, caller: Caller, args: str) -> Reply:
        """/skip: pass the open interview question (scored 0); outside an interview, skip the open card."""
        found = await self.store.running_interview_for(caller.identity)
        if found is not None and found[1] is not None:
            learner, running = found[0], found[1]
            return await self._skip(learner, running, caller.chat.key)
        return await self.study.skip_open(caller)

    async def end(self, caller: Caller, args: str) -> Reply:
        """/end: finish the running interview now, with a report of what was answered."""
        found = await self.store.running_interview_for(caller.identity)
        if found is None or found[1] is None:
            return Reply(blocks=(Paragraph.of("No interview is running. Start one with /interview."),))
        if self._stale(found[1]):
            return await self._expire(found[0], found[1])
        return await self._end(found[0], found[1], caller.chat.key)

    async def press(self, caller: Caller, data: str) -> Reply:
        """The Skip and End buttons under an interview prompt."""
        action = parse_action(data)
        if action is None or action.verb not in (Verb.INTERVIEW_SKIP, Verb.INTERVIEW_END):
            return notice("That button is not valid any more.")
        found = await self.store.running_interview_for(caller.identity)
        running = found[1] if found is not None else None
        if found is None or running is None or running.id != action.target:
            return notice("That interview is over. Start a new one with /interview.")
        if self._stale(running):
            return await self._expire(found[0], running)
        if action.verb is Verb.INTERVIEW_END:
            return await self._end(found[0], running, caller.chat.key)
        if action.arg != running.step:
            return notice("That question is already answered.")
        return await self._skip(found[0], running, caller.chat.key)

    async def busy(self, caller: Caller) -> tuple[Reply | None, Learner | None]:
        """A refusal for /question while an interview runs in this chat (typed text answers the
        interview), and the caller's learner (None when new), read together."""
        found = await self.store.running_interview_for(caller.identity)
        if found is None:
            return None, None
        learner, running = found
        if running is None or running.chat_key != caller.chat.key or self._stale(running):
            return None, learner
        return Reply(
            blocks=(
                Paragraph.of(
                    f"You're in a mock interview (question {running.position + 1} of {running.size}): "
                    "type your answer, /skip the question or /end the interview first."
                ),
            )
        ), learner

    async def history(self, caller: Caller) -> Reply:
        learner = await self.study.learner(caller)
        running = await self.store.running_interview(learner.id)
        if running is not None and self._stale(running):
            await self._expire(learner, running)
        found = await self.store.recent_interviews(learner.id, HISTORY_SIZE)
        if not found:
            return Reply(blocks=(Paragraph.of("No interviews yet. Start one with /interview."),))
        zone = zone_info(learner.timezone)
        items = []
        for interview in found:
            day = interview.started_at.astimezone(zone).date().isoformat()
            what = self._topic_name(interview.topic)
            status = {
                Status.RUNNING: "running",
                Status.FINISHED: "",
                Status.ENDED: "ended early",
                Status.EXPIRED: "expired",
            }[interview.status]
            score = _percent(interview.score) if interview.score is not None else "—"
            tail = f" ({status})" if status else ""
            items.append((f"{day} · {what} · {interview.mode.value} · ", Span(score, "bold"), tail))
        return Reply(blocks=(Title("Your interviews, latest first"), Bullets(tuple(items))), private=True)

    # --- free text -------------------------------------------------------------------------------

    async def answer_text(self, caller: Caller, text: str) -> Reply | None:
        """A typed answer to the open interview prompt in this chat; None when no interview runs here."""
        found = await self.store.running_interview_for(caller.identity)
        if found is None or found[1] is None or found[1].chat_key != caller.chat.key:
            return None
        learner, running = found[0], found[1]
        if self._stale(running):
            return await self._expire(learner, running, answered_late=True)
        card = self.bank.card(running.card_ids[running.position])
        if card is None:  # removed from the bank since: pass over it
            return await self._skip(learner, running, caller.chat.key)
        reason = self.study.lexical.non_answer(card, text)
        if reason is not None:
            shown = " ".join("".join(ch for ch in text if ch.isprintable()).split())[:40]
            quoted = f"“{shown}”" if shown else "that"
            prompt = self._prompt(running, card, resumed=True)
            return replace(
                prompt,
                blocks=(
                    Paragraph.of(f"I didn't take {quoted} as an answer: {reason}. The question is still open."),
                    *prompt.blocks,
                ),
                notice="Not taken as an answer",
            )
        now = self.clock.now()
        elapsed = now - running.asked_at
        elapsed_ms = max(0, round(elapsed.total_seconds() * 1000))
        limit = FOLLOW_UP_LIMIT if running.phase is Phase.FOLLOW_UP else MAIN_LIMIT
        late = running.mode is Mode.REAL and elapsed > limit
        if running.phase is Phase.MAIN:
            judgement = await self.study.grader.judge(card, text, learner.id)
            main = Answer(
                position=running.position,
                part=Phase.MAIN,
                card_id=card.id,
                score=judgement.score,
                missed=tuple(judgement.key_points[i].text for i in judgement.missed),
                elapsed_ms=elapsed_ms,
                answered_at=now,
                late=late,
            )
            follow_up = judgement.follow_up
            if follow_up:
                change = Advance(
                    expected_step=running.step,
                    chat_key=caller.chat.key,
                    answers=(main,),
                    position=running.position,
                    phase=Phase.FOLLOW_UP,
                    follow_up=follow_up,
                    asked_at=now,
                )
                if not await self.store.advance_interview(running.id, change, now):
                    return notice("That question is already answered.")
                moved = replace(running, phase=Phase.FOLLOW_UP, follow_up=follow_up, asked_at=now)
                return self._after_answer(moved, card, judgement, late, self._prompt(moved, card))
            return await self._complete(learner, running, card, main, None, caller.chat.key, judgement, late)
        missed = await self._main_missed(running)
        probe = replace(
            card,
            question=running.follow_up or card.question,
            key_points=tuple(p for p in card.key_points if p.text in missed) or card.key_points,
        )
        judgement = await self.study.grader.judge(probe, text, learner.id)
        follow = Answer(
            position=running.position,
            part=Phase.FOLLOW_UP,
            card_id=card.id,
            score=judgement.score,
            missed=tuple(judgement.key_points[i].text for i in judgement.missed),
            elapsed_ms=elapsed_ms,
            answered_at=now,
            late=late,
            prompt=running.follow_up,
        )
        main_answer = await self._main_answer(running)
        return await self._complete(learner, running, card, main_answer, follow, caller.chat.key, judgement, late)

    # --- steps -----------------------------------------------------------------------------------

    async def _begin(self, learner: Learner, chat_key: str, request: _Request) -> Reply:
        cards = await self._choose(learner, request)
        where = f" in {self._topic_name(request.topic)}" if request.topic else ""
        if not cards:
            return Reply(blocks=(Paragraph.of(f"I have no questions to ask you{where} yet. Try /interview mixed."),))
        now = self.clock.now()
        interview = Interview(
            id=0,
            learner_id=learner.id,
            chat_key=chat_key,
            mode=request.mode,
            topic=request.topic,
            card_ids=tuple(card.id for card in cards),
            status=Status.RUNNING,
            position=0,
            phase=Phase.MAIN,
            follow_up=None,
            asked_at=now,
            started_at=now,
        )
        stored = await self.store.start_interview(interview)
        if stored is None:  # another start won the race
            running = await self.store.running_interview(learner.id)
            if running is None:
                return Reply(blocks=(Paragraph.of("Something got in the way. Please send /interview again."),))
            return await self._resume(running, chat_key, "You're in an interview already; here it is.")
        intro: list[Block] = [
            Title(f"Mock interview · {plural(stored.size, 'question')}"),
            Paragraph.of(self._intro(stored, request, len(cards))),
        ]
        first = self._prompt(stored, cards[0])
        return replace(first, blocks=(*intro, *first.blocks))

    def _intro(self, interview: Interview, request: _Request, found: int) -> str:
        what = self._topic_name(interview.topic) if interview.topic else "Mixed topics"
        if interview.mode is Mode.REAL:
            how = (
                f"Real mode: about {round(MAIN_LIMIT.total_seconds() / 60)} minutes per answer and "
                f"{round(FOLLOW_UP_LIMIT.total_seconds() / 60)} per follow-up (a late answer still counts, "
                "marked late); verdicts come in the report at the end."
            )
        else:
            how = "Coach mode: after each answer you'll see what you covered, then a follow-up question."
        short = f" I found {plural(found, 'question')} for you, not {request.size}." if found < request.size else ""
        return f"{what}. {how}{short} Answer in your own words; /skip passes a question, /end finishes early."

    def _prompt(self, interview: Interview, card: Card, *, resumed: bool = False) -> Reply:
        """The open question or follow-up, with Skip and End buttons."""
        number = f"{interview.position + 1} of {interview.size}"
        blocks: list[Block] = []
        if interview.phase is Phase.FOLLOW_UP:
            blocks.append(Title(f"Follow-up · question {number}"))
            blocks.append(Paragraph.of(Span(interview.follow_up or card.question, "bold")))
            limit = FOLLOW_UP_LIMIT
        else:
            topic = self.bank.find_topic(card.topic)
            label = f"{topic.name if topic else card.topic} · {DIFFICULTY_NAMES.get(card.difficulty, '')}"
            if card.kind is Kind.BEHAVIORAL:
                label += " · behavioural"
            blocks.append(Title(f"Question {number}"))
            blocks.append(Paragraph.of(Span(label, "italic")))
            blocks.append(Paragraph.of(Span(card.question, "bold")))
            limit = MAIN_LIMIT
        if interview.mode is Mode.REAL:
            minutes = round(limit.total_seconds() / 60)
            if resumed:
                left = limit - (self.clock.now() - interview.asked_at)
                status = (
                    f"{max(1, round(left.total_seconds() / 60))} min left"
                    if left > timedelta(0)
                    else "time is up: a late answer still counts"
                )
                blocks.append(Paragraph.of(f"⏱ {minutes} min for this answer ({status})."))
            else:
                blocks.append(Paragraph.of(f"⏱ {minutes} min for this answer."))
        blocks.append(how_to_answer("Answer in your own words ({how}).", TYPE_HINT))
        buttons = (
            (
                Button("Skip", Action(Verb.INTERVIEW_SKIP, interview.id, interview.step).encode()),
                Button("End interview", Action(Verb.INTERVIEW_END, interview.id).encode()),
            ),
        )
        return Reply(blocks=tuple(blocks), buttons=buttons, answer_box=True, private=True)

    async def _resume(self, running: Interview, chat_key: str, header: str) -> Reply:
        card = self.bank.card(running.card_ids[running.position])
        if card is None:
            learner = await self.study.store.get_learner(running.learner_id)
            if learner is None:
                return Reply(blocks=(Paragraph.of("Please send /interview again."),))
            return await self._skip(learner, running, chat_key)
        if running.chat_key != chat_key:  # carry on here: answers are read in the chat that asks
            moved = Advance(
                expected_step=running.step,
                chat_key=chat_key,
                answers=(),
                position=running.position,
                phase=running.phase,
                follow_up=running.follow_up,
                asked_at=running.asked_at,
            )
            await self.store.advance_interview(running.id, moved, self.clock.now())
            running = replace(running, chat_key=chat_key)
        prompt = self._prompt(running, card, resumed=True)
        return replace(prompt, blocks=(Paragraph.of(Span(header, "italic")), *prompt.blocks))

    def _after_answer(self, interview: Interview, card: Card, judgement: Judgement, late: bool, then: Reply) -> Reply:
        """Coach mode: the verdict on the answer, then what comes next; real mode: only what comes next."""
        blocks: list[Block] = []
        if late:
            blocks.append(Paragraph.of(Span("⏱ Over time: your answer counts, marked late.", "italic")))
        if interview.mode is Mode.COACH:
            blocks += self._verdict(judgement)
        else:
            blocks.append(Paragraph.of(Span("Noted.", "italic")))
        return replace(then, blocks=(*blocks, *then.blocks))

    @staticmethod
    def _verdict(judgement: Judgement) -> list[Block]:
        total = len(judgement.key_points)
        if judgement.off_topic:
            head = Paragraph.of(Span("That answer doesn't seem to be about this question.", "bold"))
        else:
            head = Paragraph.of(Span(f"You covered {len(judgement.covered)} of {total} key points.", "bold"))
        items = [(Span("✓ ", "bold"), judgement.key_points[i].text) for i in judgement.covered]
        items += [(Span("✗ ", "bold"), judgement.key_points[i].text) for i in judgement.missed]
        blocks: list[Block] = [head]
        if items:
            blocks.append(Bullets(tuple(items)))
        if judgement.feedback:
            blocks.append(Paragraph.of(Span("Feedback: ", "bold"), judgement.feedback))
        return blocks

    async def _main_answer(self, interview: Interview) -> Answer:
        for answer in await self.store.interview_answers(interview.id):
            if answer.position == interview.position and answer.part is Phase.MAIN:
                return answer
        raise LookupError(f"interview {interview.id} has no answer to question {interview.position}")

    async def _main_missed(self, interview: Interview) -> set[str]:
        return set((await self._main_answer(interview)).missed)

    async def _complete(
        self,
        learner: Learner,
        running: Interview,
        card: Card,
        main: Answer,
        follow: Answer | None,
        chat_key: str,
        judgement: Judgement | None,
        late: bool,
    ) -> Reply:
        """The question is done: store its answers and its FSRS review, then ask the next or report."""
        now = self.clock.now()
        score = question_score(main, follow)
        rating = rating_for(score)
        before = await self.store.card_state(learner.id, card.id)
        review = self.study.review_outcome(learner, card, before, rating, ReviewMode.INTERVIEW)
        # the question's MAIN row carries its rating (after a follow-up, the stored row is updated)
        new_answers = [replace(main, rating=rating)] + ([follow] if follow is not None else [])
        change, moved = self._next_step(running, chat_key, tuple(new_answers), now, review)
        if change.finish is not None:
            answers = self._merge(await self.store.interview_answers(running.id), change.answers)
            change = replace(change, score=self._overall(running, answers))
        if not await self.store.advance_interview(running.id, change, now):
            return notice("That question is already answered.")
        line = Paragraph.of(
            Span(f"Question {running.position + 1}: {_percent(score)}", "bold"), f" · recorded as {rating.label}."
        )
        if change.finish is not None:
            report = await self._report(learner, replace(running, status=change.finish, finished_at=now))
            head: list[Block] = []
            if judgement is not None:
                head = self._coach_blocks(running, judgement, late, line)
            return replace(report, blocks=(*head, *report.blocks))
        assert moved is not None
        next_card = self.bank.card(moved.card_ids[moved.position])
        assert next_card is not None
        then = self._prompt(moved, next_card)
        if judgement is None:
            return replace(then, blocks=(line, *then.blocks))
        return replace(then, blocks=(*self._coach_blocks(running, judgement, late, line), *then.blocks))

    def _coach_blocks(self, running: Interview, judgement: Judgement, late: bool, line: Paragraph) -> list[Block]:
        blocks: list[Block] = []
        if late:
            blocks.append(Paragraph.of(Span("⏱ Over time: your answer counts, marked late.", "italic")))
        if running.mode is Mode.COACH and running.phase is Phase.FOLLOW_UP:
            # the follow-up probes the points the answer missed: say which of them it brought in
            total = len(judgement.key_points)
            found = [judgement.key_points[i].text for i in judgement.covered]
            head = f"Your follow-up brought in {len(found)} of the {plural(total, 'point')} it was after"
            blocks.append(Paragraph.of(Span(head + (": " + "; ".join(found) if found else "."), "bold")))
            if judgement.feedback:
                blocks.append(Paragraph.of(Span("Feedback: ", "bold"), judgement.feedback))
            blocks.append(line)
        elif running.mode is Mode.COACH:
            blocks += self._verdict(judgement)
            blocks.append(line)
        else:
            blocks.append(Paragraph.of(Span("Noted.", "italic")))
        return blocks

    def _next_step(
        self,
        running: Interview,
        chat_key: str,
        answers: tuple[Answer, ...],
        now: datetime,
        review: tuple[CardState, Review] | None,
    ) -> tuple[Advance, Interview | None]:
        position = running.position + 1
        if position >= running.size:
            change = Advance(
                expected_step=running.step,
                chat_key=chat_key,
                answers=answers,
                position=running.position,
                phase=running.phase,
                follow_up=None,
                asked_at=now,
                review=review,
                finish=Status.FINISHED,
            )
            return change, None
        change = Advance(
            expected_step=running.step,
            chat_key=chat_key,
            answers=answers,
            position=position,
            phase=Phase.MAIN,
            follow_up=None,
            asked_at=now,
            review=review,
        )
        moved = replace(running, position=position, phase=Phase.MAIN, follow_up=None, asked_at=now, chat_key=chat_key)
        return change, moved

    async def _skip(self, learner: Learner, running: Interview, chat_key: str) -> Reply:
        now = self.clock.now()
        if self._stale(running):
            return await self._expire(learner, running)
        elapsed_ms = max(0, round((now - running.asked_at).total_seconds() * 1000))
        card_id = running.card_ids[running.position]
        card = self.bank.card(card_id)
        if running.phase is Phase.FOLLOW_UP and card is not None:
            follow = Answer(
                position=running.position,
                part=Phase.FOLLOW_UP,
                card_id=card_id,
                score=0.0,
                missed=(),
                elapsed_ms=elapsed_ms,
                answered_at=now,
                skipped=True,
                prompt=running.follow_up,
            )
            main = await self._main_answer(running)
            reply = await self._complete(learner, running, card, main, follow, chat_key, None, False)
            return replace(reply, notice=reply.notice or "Skipped")
        skipped = Answer(
            position=running.position,
            part=Phase.MAIN,
            card_id=card_id,
            score=0.0,
            missed=tuple(p.text for p in card.key_points) if card else (),
            elapsed_ms=elapsed_ms,
            answered_at=now,
            skipped=True,
        )
        change, moved = self._next_step(running, chat_key, (skipped,), now, None)  # a pass is not a review
        if change.finish is not None:
            answers = self._merge(await self.store.interview_answers(running.id), change.answers)
            change = replace(change, score=self._overall(running, answers))
        if not await self.store.advance_interview(running.id, change, now):
            return notice("That question is already answered.")
        line = Paragraph.of(Span(f"Question {running.position + 1} skipped", "bold"), " (scored 0, not reviewed).")
        if moved is None:
            report = await self._report(learner, replace(running, status=Status.FINISHED, finished_at=now))
            return replace(report, blocks=(line, *report.blocks), notice="Skipped")
        next_card = self.bank.card(moved.card_ids[moved.position])
        if next_card is None:
            return await self._skip(learner, moved, chat_key)
        then = self._prompt(moved, next_card)
        return replace(then, blocks=(line, *then.blocks), notice="Skipped")

    async def _end(self, learner: Learner, running: Interview, chat_key: str, status: Status = Status.ENDED) -> Reply:
        """Finish now. A question whose follow-up is open still counts (its answer alone) and is reviewed."""
        now = self.clock.now()
        answers = await self.store.interview_answers(running.id)
        review = None
        new: tuple[Answer, ...] = ()
        card = self.bank.card(running.card_ids[running.position])
        if running.phase is Phase.FOLLOW_UP and card is not None:
            main = next(a for a in answers if a.position == running.position and a.part is Phase.MAIN)
            rating = rating_for(question_score(main, None))
            before = await self.store.card_state(learner.id, card.id)
            review = self.study.review_outcome(learner, card, before, rating, ReviewMode.INTERVIEW)
            new = (replace(main, rating=rating),)
        merged = self._merge(answers, new)
        change = Advance(
            expected_step=running.step,
            chat_key=chat_key,
            answers=new,
            position=running.position,
            phase=running.phase,
            follow_up=None,
            asked_at=running.asked_at,
            review=review,
            finish=status,
            score=self._overall(running, merged, reached_only=True),
        )
        if not await self.store.advance_interview(running.id, change, now):
            return notice("That interview is already over.")
        return await self._report(learner, replace(running, status=status, finished_at=now))

    async def _expire(self, learner: Learner, running: Interview, *, answered_late: bool = False) -> Reply:
        report = await self._end(learner, running, running.chat_key, Status.EXPIRED)
        hours = round(EXPIRES_AFTER.total_seconds() / 3600)
        lines = [Paragraph.of(Span(f"Your mock interview expired after {hours} hours without an answer.", "bold"))]
        if answered_late:
            lines.append(Paragraph.of("So I didn't grade that message. Here is the report of what you answered."))
        return replace(report, blocks=(*lines, *report.blocks))

    def _stale(self, interview: Interview) -> bool:
        return self.clock.now() - interview.asked_at >= EXPIRES_AFTER

    # --- scores and the report ---------------------------------------------------------------------

    @staticmethod
    def _merge(stored: Sequence[Answer], new: Sequence[Answer]) -> list[Answer]:
        keyed = {(a.position, a.part): a for a in stored}
        keyed.update({(a.position, a.part): a for a in new})
        return [keyed[key] for key in sorted(keyed, key=lambda k: (k[0], k[1] is Phase.FOLLOW_UP))]

    @staticmethod
    def _questions(answers: Sequence[Answer]) -> list[tuple[Answer, Answer | None]]:
        mains = {a.position: a for a in answers if a.part is Phase.MAIN}
        follows = {a.position: a for a in answers if a.part is Phase.FOLLOW_UP}
        return [(mains[p], follows.get(p)) for p in sorted(mains)]

    def _overall(self, interview: Interview, answers: Sequence[Answer], *, reached_only: bool = False) -> float:
        """The mean question score: over every question, or (ended early) over those reached."""
        questions = self._questions(answers)
        count = len(questions) if reached_only else interview.size
        if not count:
            return 0.0
        return sum(question_score(main, follow) for main, follow in questions) / count

    def _topic_name(self, slug: str | None) -> str:
        if slug is None:
            return "Mixed"
        topic = self.bank.find_topic(slug)
        return topic.name if topic else slug

    async def _report(self, learner: Learner, interview: Interview) -> Reply:
        answers = await self.store.interview_answers(interview.id)
        questions = self._questions(answers)
        what = self._topic_name(interview.topic) if interview.topic else "Mixed topics"
        if not questions:
            return Reply(
                blocks=(
                    Title("Interview ended"),
                    Paragraph.of(f"{what}: no question was answered, so there is nothing to report."),
                    Paragraph.of("Start another with /interview when you're ready."),
                ),
                private=True,
            )
        reached_only = interview.status is not Status.FINISHED
        overall = self._overall(interview, answers, reached_only=reached_only)
        total_ms = sum(a.elapsed_ms for a in answers)
        status = {
            Status.FINISHED: "",
            Status.ENDED: f" · ended after {plural(len(questions), 'question')}",
            Status.EXPIRED: f" · expired after {plural(len(questions), 'question')}",
            Status.RUNNING: "",
        }[interview.status]
        blocks: list[Block] = [
            Title(f"Interview report · {_percent(overall)}"),
            Paragraph.of(
                f"{what} · {interview.mode.value} mode · {plural(interview.size, 'question')}{status} · "
                f"{_clock_text(total_ms)} answering"
            ),
        ]
        items: list[tuple[str | Span, ...]] = []
        ratings: dict[Rating, int] = defaultdict(int)
        by_topic: dict[str, list[float]] = defaultdict(list)
        for main, follow in questions:
            card = self.bank.card(main.card_id)
            name = self._topic_name(card.topic) if card else main.card_id
            question = (card.question if card else main.card_id).strip()
            short = question if len(question) <= 70 else question[:67].rstrip() + "…"
            score = question_score(main, follow)
            if main.skipped:
                items.append((Span(f"{main.position + 1}. {short}", "bold"), f" — skipped: 0%, not reviewed ({name})."))
                if card:
                    by_topic[card.topic].append(0.0)
                continue
            timing = _clock_text(main.elapsed_ms) + (" late" if main.late else "")
            parts: list[str | Span] = [
                Span(f"{main.position + 1}. {short}", "bold"),
                f" — {_percent(score)} · {timing} · rated {main.rating.label if main.rating else '—'} ({name}).",
            ]
            if follow is not None:
                follow_timing = "skipped" if follow.skipped else _clock_text(follow.elapsed_ms)
                if follow.late:
                    follow_timing += " late"
                parts.append(f" Follow-up: {_percent(follow.score)} ({follow_timing}).")
            if main.missed:
                parts.append(" Missed: " + "; ".join(main.missed) + ".")
            items.append(tuple(parts))
            if main.rating:
                ratings[main.rating] += 1
            if card:
                by_topic[card.topic].append(score)
        blocks.append(Bullets(tuple(items)))
        means = sorted(((sum(s) / len(s), topic) for topic, s in by_topic.items()), key=lambda m: (-m[0], m[1]))
        if len(means) >= 2 and means[0][0] > means[-1][0]:
            best, worst = means[0], means[-1]
            blocks.append(
                Paragraph.of(
                    Span("Strongest: ", "bold"),
                    f"{self._topic_name(best[1])} ({_percent(best[0])}). ",
                    Span("Weakest: ", "bold"),
                    f"{self._topic_name(worst[1])} ({_percent(worst[0])}).",
                )
            )
        elif means:
            names = ", ".join(self._topic_name(topic) for _, topic in means)
            each = " each" if len(means) > 1 else ""
            blocks.append(Paragraph.of(Span("By topic: ", "bold"), f"{names}: {_percent(means[0][0])}{each}."))
        if ratings:
            said = ", ".join(f"{rating.label} ×{ratings[rating]}" for rating in sorted(ratings, reverse=True))
            blocks.append(
                Paragraph.of(
                    Span("Your schedule: ", "bold"),
                    f"each answered question was recorded as a review ({said}; "
                    f"from {_percent(GOOD_FROM)} Good, from {_percent(HARD_FROM)} Hard, else Again).",
                )
            )
        blocks.append(Title("What next"))
        nexts: list[tuple[str | Span, ...]] = []
        if means:
            worst_topic = means[-1][1]
            nexts.append(("Practise your weakest topic: ", Span(f"/question {worst_topic}", "code")))
        due = await self.store.count_due(learner.id, self.clock.now())
        if due:
            nexts.append((f"{plural(due, 'review')} due now: ", Span("/question", "code")))
        again = "/interview real" if interview.mode is Mode.COACH else "/interview"
        nexts.append(("Rehearse again: ", Span(again, "code"), " (history: ", Span("/interview history", "code"), ")"))
        blocks.append(Bullets(tuple(nexts)))
        return Reply(blocks=tuple(blocks), private=True)

    # --- choosing questions --------------------------------------------------------------------------

    def _parse(self, words: list[str]) -> _Request | Reply:
        mode = Mode.COACH
        size = DEFAULT_QUESTIONS
        topic: str | None = None
        rest: list[str] = []
        for word in words:
            lower = word.lower()
            if lower in (Mode.COACH.value, Mode.REAL.value):
                mode = Mode(lower)
            elif lower == "mixed":
                topic = None
            elif word.isdigit():
                if not MIN_QUESTIONS <= int(word) <= MAX_QUESTIONS:
                    return Reply(
                        blocks=(
                            Paragraph.of(
                                f"An interview has {MIN_QUESTIONS} to {MAX_QUESTIONS} questions, not {word[:6]}."
                            ),
                            Paragraph.of("Usage: ", Span(USAGE, "code")),
                        )
                    )
                size = int(word)
            else:
                rest.append(word)
        if rest:
            found = self.bank.find_topic(" ".join(rest))
            if found is None:
                reply = self.study.unknown_topic(" ".join(rest))
                return replace(reply, blocks=(*reply.blocks[:-1], Paragraph.of("Usage: ", Span(USAGE, "code"))))
            topic = found.slug
        return _Request(mode=mode, topic=topic, size=size)

    async def _choose(self, learner: Learner, request: _Request) -> list[Card]:
        """Due cards first (most overdue), then the weakest seen ones (due soonest: the shortest
        intervals), then new ones; no repeats; mixed interviews spread over topics and end with one
        behavioural question."""
        now = self.clock.now()
        context = await self.store.pick_context(learner.id, now - SKIP_MEMORY)
        gradable = [c for c in self.bank.cards if c.key_points]
        if request.topic is not None:
            pool = [c for c in gradable if c.topic == request.topic]
            technical, behavioural = pool, []
        else:
            technical = [c for c in gradable if c.kind is Kind.TECHNICAL]
            behavioural = [c for c in gradable if c.kind is Kind.BEHAVIORAL]
        rank = self._ranking(context, now)
        wanted = request.size - (1 if behavioural else 0)
        ordered = sorted(technical, key=rank)
        chosen: list[Card] = []
        if request.topic is None:  # breadth first: one per topic, then fill
            topics: set[str] = set()
            for card in ordered:
                if len(chosen) < wanted and card.topic not in topics:
                    chosen.append(card)
                    topics.add(card.topic)
        for card in ordered:
            if len(chosen) < wanted and card not in chosen:
                chosen.append(card)
        chosen.sort(key=rank)
        if behavioural:
            chosen.append(min(behavioural, key=rank))
        return chosen

    def _ranking(self, context: PickContext, now: datetime) -> _Rank:
        due = {card_id: when for card_id, when, _ in context.schedule}
        jitter = {card.id: self.rng.random() for card in self.bank.cards}
        return _Rank(due, context.skipped, now, jitter)


@dataclass(frozen=True, slots=True)
class _Rank:
    """Sort key: overdue cards (most overdue first), then seen ones due soonest, then new cards in a
    random order; cards skipped in the last hour go last."""

    due: dict[str, datetime]
    skipped: frozenset[str]
    now: datetime
    jitter: dict[str, float]

    def __call__(self, card: Card) -> tuple[int, int, float, float]:
        skipped = 1 if card.id in self.skipped else 0
        when = self.due.get(card.id)
        if when is None:
            return (skipped, 2, 0.0, self.jitter.get(card.id, 0.0))
        seconds = (when - self.now).total_seconds()
        return (skipped, 0 if seconds <= 0 else 1, seconds, 0.0)
