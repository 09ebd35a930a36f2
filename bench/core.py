"""core: learners answering through StudyService (ask -> reveal -> rate via Commands.run/press) on an
on-disk SQLite database, against a baseline running the same minimal statements with plain sqlite3 in one
thread: the store's own SQL, in the same transaction shape (single statements on their own, a rating's
three writes in one BEGIN IMMEDIATE ... COMMIT). What the ratio leaves is the cost of aiosqlite's thread
hop per statement, FSRS and the core; the store's round trips per answer are reported beside it.

The issue's size is 5,000 learners x 20 answers (`--full`); `all` and the default run 300 learners x 20
answers, because the full run takes over ten minutes on the reference machine (2 cores). Per-answer
cost does not depend on the learner count here: every query is an index lookup of one learner's rows.

Learners take turns (one answer each per round) while the fake clock moves so that ~15 minutes pass
between a learner's answers: cards rated Again or Hard come due again, so answers mix due reviews and
new cards. New cards per day are raised to 20 so that every learner can give 20 answers today.
The two sides run in alternating rounds (every learner answers once per round), so that a noisy
stretch of the machine hits both.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import aiosqlite

from bench.common import ROOT, Context, Result, apply_migrations, connect_plain, percentile, result, to_ms
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import Caller, Chat, Identity
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from bot.storage.study import _ATTEMPT_FOR, _FIND_LEARNER, _INSERT_REVIEW, _PICK_CONTEXT, _UPSERT_STATE
from tests.fakes import FakeClock

ANSWERS_EACH = 20
LEARNERS_DEFAULT = 300
LEARNERS_FULL = 5_000
NEW_PER_DAY = 20
GAP_S = 900.0  # fake seconds between two answers of the same learner
RATINGS = (1, 2, 3, 4)
RATING_WEIGHTS = (15, 15, 55, 15)  # Again, Hard, Good, Easy
ACTIVE = ("open", "choice", "revealed")


class ServiceRun:
    """The real StudyService on SqliteStore, driven through Commands, one round at a time."""

    def __init__(self, path: Path, learners: int, seed: int) -> None:
        self.path = path
        self.rng = random.Random(seed)
        self.clock = FakeClock()
        self.step = timedelta(seconds=GAP_S / learners)
        self.callers = [
            Caller(Identity("telegram", str(n)), f"Learner {n}", Chat("telegram", str(n))) for n in range(learners)
        ]
        self.problems = {"caught_up": 0, "not_saved": 0}
        self.answers = 0
        self.store = SqliteStore(path)
        bank = QuestionBank.load(ROOT / "content")
        study = StudyService(self.store, bank, self.clock, default_new_per_day=NEW_PER_DAY, rng=random.Random(seed))
        self.commands = Commands(study)

    async def round(self) -> None:
        """Every learner answers once: /question -> Show answer -> a rating."""
        for caller in self.callers:
            asked = await self.commands.run(caller, "question")
            show = [b.action for row in asked.buttons for b in row if b.action.startswith("sa:")]
            if not show:
                self.problems["caught_up"] += 1
                continue
            revealed = await self.commands.press(caller, show[0])
            rating = self.rng.choices(RATINGS, RATING_WEIGHTS)[0]
            rate = [b.action for row in revealed.buttons for b in row if b.action.endswith(f":{rating}")]
            done = await self.commands.press(caller, rate[0])
            if not (done.notice or "").startswith("Saved"):
                self.problems["not_saved"] += 1
                continue
            self.answers += 1
            self.clock.advance(seconds=self.step.total_seconds())


def _previews_json(now_ms: int, state: sqlite3.Row, first_day: str) -> str:
    """A previews column of the same shape and size as the store writes (4 ratings x a card state)."""
    intervals = (60_000, 360_000, 600_000, 86_400_000 * 4)
    return json.dumps(
        [
            {
                "rating": rating,
                "label": "10 min",
                "state": {
                    "state": 1,
                    "step": 0,
                    "stability": 2.3065,
                    "difficulty": 5.1,
                    "due": now_ms + interval,
                    "last_review": now_ms,
                    "reps": (state["s_reps"] or 0) + 1,
                    "lapses": state["s_lapses"] or 0,
                    "first_day": first_day,
                },
            }
            for rating, interval in zip(RATINGS, intervals, strict=True)
        ]
    )


class PlainRun:
    """The same reads and writes per answer as the store does, in plain sqlite3, one thread."""

    def __init__(self, path: Path, learners: int, seed: int, card_order: list[str]) -> None:
        self.con = connect_plain(path)
        apply_migrations(self.con)
        self.con.row_factory = sqlite3.Row
        self.learners = learners
        self.card_order = card_order
        self.rng = random.Random(seed)
        self.clock_ms = float(to_ms(FakeClock().now()))
        self.step_ms = GAP_S * 1000 / learners
        self.answers = 0

    def close(self) -> None:
        self.con.close()

    def round(self) -> None:
        for n in range(self.learners):
            self.answer(n)
            self.answers += 1
            self.clock_ms += self.step_ms

    def answer(self, n: int) -> None:
        """One answer as the store does it: the same statements (the store's own SQL), the same
        transactions (single statements on their own, the rating's writes in BEGIN IMMEDIATE ... COMMIT)."""
        con = self.con
        intervals = {1: 60_000, 2: 360_000, 3: 600_000, 4: 86_400_000 * 4}
        now = int(self.clock_ms)
        ext, chat_key, today = str(n), f"telegram:{n}", "2026-03-02"
        # ask: the learner (created on first contact), the pick context, the new attempt
        row = con.execute(_FIND_LEARNER, ("telegram", ext)).fetchone()
        if row is None:
            con.execute("BEGIN IMMEDIATE")
            con.execute(_FIND_LEARNER, ("telegram", ext)).fetchone()
            learner_id = con.execute(
                "INSERT INTO learners (display_name, timezone, new_per_day, created_at) VALUES (?, ?, ?, ?) "
                "RETURNING id",
                (f"Learner {n}", "UTC", NEW_PER_DAY, now),
            ).fetchone()[0]
            con.execute(
                "INSERT INTO identities (platform, external_id, learner_id) VALUES (?, ?, ?)",
                ("telegram", ext, learner_id),
            )
            con.execute("COMMIT")
        else:
            learner_id = row["id"]
        context = con.execute(_PICK_CONTEXT, (learner_id, learner_id, now - 3_600_000, learner_id)).fetchall()
        skipped = {r[0] for r in context if r[3] == 1}
        schedule = [r for r in context if r[3] == 0]
        card_id = next((r[0] for r in schedule if r[1] <= now and r[0] not in skipped), None)
        if card_id is None:
            seen = {r[0] for r in schedule}
            card_id = next(c for c in self.card_order if c not in seen and c not in skipped)
        attempt_id = con.execute(
            "INSERT INTO attempts (learner_id, card_id, chat_key, topic, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (learner_id, card_id, chat_key, None, "open", now),
        ).fetchone()[0]
        # reveal: the attempt with the caller and the card state in one read; a compare-and-set UPDATE
        state = con.execute(_ATTEMPT_FOR, ("telegram", ext, attempt_id)).fetchone()
        con.execute(
            "UPDATE attempts SET status = ?, previews = ? WHERE id = ? AND status IN (?, ?) RETURNING id",
            ("revealed", _previews_json(now, state, today), attempt_id, "open", "choice"),
        ).fetchall()
        # rate: the same read; then the attempt closed, the state upserted and the review logged, atomically
        state = con.execute(_ATTEMPT_FOR, ("telegram", ext, attempt_id)).fetchone()
        rating = self.rng.choices(RATINGS, RATING_WEIGHTS)[0]
        reps = (state["s_reps"] or 0) + 1
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "UPDATE attempts SET status = ?, closed_at = ? WHERE id = ? AND status IN (?) RETURNING id",
            ("done", now, attempt_id, "revealed"),
        ).fetchall()
        con.execute(
            _UPSERT_STATE,
            (learner_id, card_id, 1, 0, 2.3, 5.1, now + intervals[rating], now, reps, 0, today),
        )
        con.execute(
            _INSERT_REVIEW,
            (learner_id, card_id, rating, now, "reveal", today, int(state["s_due"] is None), None),
        )
        con.execute("COMMIT")


async def roundtrips(count: int = 2_000) -> tuple[list[float], list[float]]:
    """Seconds per `SELECT 1`: through aiosqlite (a round trip to its thread) and on plain sqlite3."""
    through: list[float] = []
    direct: list[float] = []
    db = await aiosqlite.connect(":memory:")
    try:
        for _ in range(count):
            started = time.perf_counter()
            await db.execute_fetchall("SELECT 1")
            through.append(time.perf_counter() - started)
    finally:
        await db.close()
    con = sqlite3.connect(":memory:")
    for _ in range(count):
        started = time.perf_counter()
        con.execute("SELECT 1").fetchall()
        direct.append(time.perf_counter() - started)
    con.close()
    return through, direct


def _stored_reviews(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT COUNT(*) FROM reviews").fetchone()[0])
    finally:
        con.close()


async def run(ctx: Context) -> list[Result]:
    learners = LEARNERS_FULL if ctx.full else LEARNERS_DEFAULT
    bank = QuestionBank.load(ROOT / "content")
    card_order = [card.id for card in sorted(bank.cards, key=lambda c: (c.difficulty, c.id))]
    path = ctx.fresh("core.db")
    plain = PlainRun(ctx.fresh("core-plain.db"), learners, 3, card_order)
    service = ServiceRun(path, learners, 3)
    await service.store.open()
    trips_before = service.store.db.trips
    ctx.log(f"core: {learners} learners x {ANSWERS_EACH} answers, rounds alternating plain sqlite3 / StudyService ...")
    base_elapsed = elapsed = 0.0
    try:
        for _round in range(ANSWERS_EACH):  # interleaved, so a noisy minute hits both sides
            started = time.perf_counter()
            plain.round()
            base_elapsed += time.perf_counter() - started
            started = time.perf_counter()
            await service.round()
            elapsed += time.perf_counter() - started
        trips = service.store.db.trips - trips_before
    finally:
        plain.close()
        await service.store.close()
    answers, base_answers, problems = service.answers, plain.answers, service.problems
    trips_per_answer = trips / max(answers, 1)
    through, direct = await roundtrips()
    stored = _stored_reviews(path)
    rate = answers / elapsed
    base_rate = base_answers / base_elapsed
    scaled = "" if ctx.full else f" SCALED DOWN from the issue's {LEARNERS_FULL:,} learners (run with --full)."
    return [
        result(
            "core",
            rate,
            "answers/s",
            base_rate,
            target="ratio >= 0.5",
            target_met=rate / base_rate >= 0.5,
            learners=learners,
            answers=answers,
            reviews_stored=stored,
            problems=problems,
            seconds=round(elapsed, 1),
            baseline_seconds=round(base_elapsed, 1),
            ms_per_answer=round(elapsed / answers * 1000, 3),
            round_trips_per_answer=round(trips_per_answer, 2),
            baseline_ms_per_answer=round(base_elapsed / base_answers * 1000, 3),
            note=(
                f"{learners:,} learners x {ANSWERS_EACH} answers, each /question -> Show answer -> a rating, "
                f"on an on-disk database in a temp folder.{scaled}"
            ),
        ),
        result(
            "core_sqlite_roundtrip",
            percentile(through, 50) * 1e6,
            "us (p50 SELECT 1)",
            percentile(direct, 50) * 1e6,
            better="lower",
            p99_us=round(percentile(through, 99) * 1e6, 1),
            baseline_p99_us=round(percentile(direct, 99) * 1e6, 1),
            note=(
                "diagnostic: one aiosqlite round trip (statement handed to its thread and back) vs the same "
                f"call on plain sqlite3; the store makes {trips_per_answer:.1f} of them per answer "
                "(/question, Show answer, a rating), BEGIN/COMMIT included"
            ),
        ),
    ]
