"""Shared fixtures: a small deterministic bank, a fake clock and services on either store."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fsrs
import pytest

from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import Caller, Card, Chat, Identity, KeyPoint, Kind, QuizItem, Topic
from bot.core.study import StudyService
from bot.storage.store import Store
from tests.fakes import FakeClock, MemoryStore
from tests.pg import MISSING_MESSAGE, PgCluster, find_pg_bin, postgres_required

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"


def make_card(card_id: str, topic: str = "basics", difficulty: int = 1, *, quiz: bool = True) -> Card:
    return Card(
        id=card_id,
        deck="test",
        topic=topic,
        kind=Kind.TECHNICAL if quiz else Kind.BEHAVIORAL,
        difficulty=difficulty,
        question=f"Question {card_id}?",
        answer=f"The answer to {card_id}.\n\n- first detail\n- second detail",
        key_points=(KeyPoint("chain rule"), KeyPoint("gradient of the loss"), KeyPoint("vanishing gradients")),
        follow_ups=("A follow-up?", "Another?"),
        quiz=QuizItem(
            prompt=f"Pick the right one for {card_id}",
            correct="Right",
            distractors=("Wrong one", "Wrong two", "Wrong three"),
            explanation="Because it is right.",
        )
        if quiz
        else None,
    )


def small_bank(per_topic: int = 6) -> QuestionBank:
    topics = [Topic("basics", "Basics"), Topic("optim", "Optimisation"), Topic("stories", "Stories")]
    cards = [make_card(f"basics-{n}", "basics", 1 + n % 3) for n in range(per_topic)]
    cards += [make_card(f"optim-{n}", "optim", 1 + n % 3) for n in range(per_topic)]
    cards += [make_card(f"story-{n}", "stories", 2, quiz=False) for n in range(2)]
    return QuestionBank(cards, topics)


def caller(user: str = "1", name: str = "Ann", chat: str | None = None, group: bool = False) -> Caller:
    return Caller(
        identity=Identity("test", user),
        display_name=name,
        chat=Chat("test", chat or user, is_group=group),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bank() -> QuestionBank:
    return small_bank()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def study(store: MemoryStore, bank: QuestionBank, clock: FakeClock) -> StudyService:
    return StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(7))


@pytest.fixture
def commands(study: StudyService) -> Commands:
    return Commands(study)


# -- PostgreSQL (tests/pg.py): one throwaway cluster per session, an emptied database per test ----------

PG_TEST_DATABASE = "studybot_test"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for the whole session, with the database PG_TEST_DATABASE. Skips when the
    server binaries are missing, fails instead when STUDYBOT_REQUIRE_POSTGRES=1 (CI)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if postgres_required():
            pytest.fail(MISSING_MESSAGE, pytrace=False)
        pytest.skip(MISSING_MESSAGE)
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
        cluster.create_database(PG_TEST_DATABASE)
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> str:
    """The DSN of PG_TEST_DATABASE, emptied first (public schema dropped and recreated, other
    connections to it closed), so every test starts with an empty database."""
    if not pg_cluster.running:
        pg_cluster.start()  # a test that stopped the server and failed before starting it again
    pg_cluster.reset_schema(PG_TEST_DATABASE)
    return pg_cluster.dsn(PG_TEST_DATABASE)


# -- every storage engine: SQLite (a file) and PostgreSQL, for contract tests ------------------------

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a Store opens: a SQLite file, or an emptied PostgreSQL database (test id says which)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_dsn"))
    return str(tmp_path / "bot.db")


@pytest.fixture
async def engine_store(store_location: str) -> AsyncIterator[Store]:
    async with Store(store_location) as opened:
        yield opened
