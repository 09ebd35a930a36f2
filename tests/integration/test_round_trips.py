"""Round trips per user action, on every engine: each action stays within its budget (BEGIN and COMMIT
included), counted at the driver through a wrapped connection, not by the store's own bookkeeping.

Budget (issue: storage v2): asking, revealing, switching to multiple choice and a typed answer at most
4; a rating or a chosen option (which record a review) at most 6. What an adapter also asks for every
update (pending notices) is counted with the action.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import fsrs
import pytest

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.interview import InterviewService
from bot.core.ports import Notifier
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.storage.db import PostgresDatabase, SqliteDatabase
from bot.storage.store import Store
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock

T = TypeVar("T")
ANN = caller("1", "Ann")
BUDGET = {"ask": 4, "reveal": 4, "multiple choice": 4, "typed answer": 4, "skip": 4, "next": 4, "rate": 6, "option": 6}


class CountingConnection:
    """An aiosqlite connection that counts every call that goes to its worker thread."""

    HOPS = frozenset({"execute", "execute_fetchall", "executemany", "executescript", "commit", "rollback"})

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.HOPS:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


@dataclass
class World:
    store: Store
    commands: Commands
    count: Callable[[], int]

    async def measure(self, action: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        before = self.count()
        result = await action()
        await self.commands.pending_notice(ANN)  # adapters ask this on every update
        return result, self.count() - before


@pytest.fixture
async def world(store_location: str) -> AsyncIterator[World]:
    store = Store(store_location)
    if isinstance(store.db, PostgresDatabase):
        store.db.min_size = store.db.max_size = 1  # one connection, so one query logger sees everything
    async with store:
        clock = FakeClock()
        study = StudyService(
            store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(3)
        )
        commands = Commands(study)
        competition = CompetitionService(store, study.bank, clock, study, rng=random.Random(4))
        notifiers: dict[str, Notifier] = {}
        commands.attach_daily(DailyService(store, study, notifiers, group_content=competition.daily_poll))
        commands.attach_competition(competition)
        commands.attach_privacy(PrivacyService(store, clock))
        commands.attach_interview(InterviewService(store, study, clock))
        if isinstance(store.db, SqliteDatabase):
            counting = CountingConnection(store.db.conn)
            store.db._conn = counting  # type: ignore[assignment]
            count: Callable[[], int] = lambda: counting.calls  # noqa: E731
        else:
            queries: list[str] = []
            async with store.db.pool.acquire() as conn:
                conn.add_query_logger(lambda record: queries.append(record.query))
            count = lambda: len(queries)  # noqa: E731
        await commands.run(ANN, "stats")  # first contact creates the learner: not a budgeted action
        yield World(store, commands, count)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


async def test_every_study_action_stays_within_its_round_trip_budget(world: World) -> None:
    spent: dict[str, int] = {}
    asked, spent["ask"] = await world.measure(lambda: world.commands.run(ANN, "question"))
    revealed, spent["reveal"] = await world.measure(lambda: world.commands.press(ANN, button(asked, "Show answer")))
    rated, spent["rate"] = await world.measure(lambda: world.commands.press(ANN, button(revealed, "Good")))
    assert (rated.notice or "").startswith("Saved")
    following, spent["next"] = await world.measure(lambda: world.commands.press(ANN, button(rated, "Next question")))
    choosing, spent["multiple choice"] = await world.measure(
        lambda: world.commands.press(ANN, button(following, "Multiple choice"))
    )
    picked, spent["option"] = await world.measure(lambda: world.commands.press(ANN, button(choosing, "A")))
    assert picked.notice in ("Correct!", "Not quite")
    asked, _ = await world.measure(lambda: world.commands.run(ANN, "question"))
    typed, spent["typed answer"] = await world.measure(
        lambda: world.commands.text(ANN, "The chain rule gives the gradient of the loss; gradients can vanish.")
    )
    assert typed is not None and "key points" in typed.plain_text()
    asked, _ = await world.measure(lambda: world.commands.run(ANN, "question"))
    skipped, spent["skip"] = await world.measure(lambda: world.commands.press(ANN, button(asked, "Skip")))
    assert skipped.notice == "Skipped"
    over = {action: n for action, n in spent.items() if n > BUDGET[action]}
    assert not over, f"over budget: {over} (all: {spent})"
    assert all(n >= 1 for n in spent.values()), spent  # the counter counts


async def test_the_store_counts_the_same_round_trips_as_the_driver_sees(world: World) -> None:
    before_driver, before_store = world.count(), world.store.db.trips
    asked = await world.commands.run(ANN, "question")
    revealed = await world.commands.press(ANN, button(asked, "Show answer"))
    await world.commands.press(ANN, button(revealed, "Again"))
    assert world.count() - before_driver == world.store.db.trips - before_store
