"""The whole service stack on one SQLite file with a fake clock, behind a real Telegram adapter, built by the
program's own composition root (bot.bootstrap) with the fakes passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import fsrs

from bot.adapters.telegram import TelegramBot
from bot.bootstrap import App, compose, telegram_adapter
from bot.config import Settings
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import ChatModel, Notifier
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.core.views import Reply
from bot.storage.rows import to_ms
from bot.storage.sqlite import SqliteStore
from bot.storage.store import Store
from tests.conftest import CONTENT, small_bank
from tests.fakes import FakeClock


class TelegramServer(Protocol):
    """What the stack needs of a fake Bot API (in this process or another)."""

    token: str
    api_url: str


def settings_for(store: Store, **values: Any) -> Settings:
    """Settings as the program reads them, for this store: no .env file, no model grading unless asked;
    `values` by their environment names (TELEGRAM_TOKEN=..., DISCORD_API_URL=...)."""
    defaults: dict[str, Any] = {"STUDYBOT_DB": store.location, "STUDYBOT_LLM_URL": None, "STUDYBOT_LLM_MODEL": None}
    return Settings(_env_file=None, **{**defaults, **values})


def app_for(
    store: Store,
    clock: FakeClock | None = None,
    *,
    bank: QuestionBank | None = None,
    seed: int = 3,
    throttle_limit: int | None = None,
    chat_model: ChatModel | None = None,
    **settings: Any,
) -> App:
    """The program's services on `store` (bootstrap.compose), deterministic: a fake clock, the small test
    bank, FSRS without fuzzing and a seeded random source."""
    the_clock = clock or FakeClock()
    return compose(
        settings_for(store, **settings),
        store,
        bank or small_bank(),
        the_clock,
        chat_model=chat_model,
        scheduler=fsrs.Scheduler(enable_fuzzing=False),
        rng=random.Random(seed),
        throttle=Throttle(the_clock, limit=throttle_limit) if throttle_limit is not None else None,
    )


@dataclass
class Stack:
    app: App
    store: Store
    clock: FakeClock
    study: StudyService
    commands: Commands
    competition: CompetitionService
    daily: DailyService
    notifiers: dict[str, Notifier]
    telegram: TelegramBot

    async def stop(self) -> None:
        """Stop the Telegram front end and the app's drawing process (the store stays the caller's)."""
        await self.telegram.stop()
        if self.app.pictures is not None:
            self.app.pictures.close()


def build_stack(
    fake: TelegramServer,
    store: Store,
    clock: FakeClock | None = None,
    *,
    max_rate: float = 30.0,
    request_timeout: float = 5.0,
    throttle_limit: int = 20,
    bank: QuestionBank | None = None,
) -> Stack:
    the_clock = clock or FakeClock()
    app = app_for(
        store,
        the_clock,
        bank=bank,
        seed=11,
        throttle_limit=throttle_limit,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
    )
    telegram = telegram_adapter(
        app, retries=2, backoff=0.01, poll_timeout=1, request_timeout=request_timeout, max_rate=max_rate
    )
    return Stack(app, store, the_clock, app.study, app.commands, app.competition, app.daily, app.notifiers, telegram)


async def bulk_subscribers(store: Store, chat_ids: range, push_at: datetime, local_time: str = "06:00") -> None:
    """Learners with a due daily subscription each, written straight into the database (test setup)."""
    async with store.db.transaction() as tx:
        for chat_id in chat_ids:
            row = await tx.fetchrow(
                "INSERT INTO learners (display_name, timezone, new_per_day, created_at) VALUES (?, 'UTC', 10, 0) "
                "RETURNING id",
                f"L{chat_id}",
            )
            assert row is not None
            await tx.execute(
                "INSERT INTO identities (platform, external_id, learner_id) VALUES ('telegram', ?, ?)",
                str(chat_id),
                row[0],
            )
            await tx.execute(
                "INSERT INTO subscriptions (chat_key, platform, chat_id, is_group, learner_id, local_time, timezone, "
                "next_push_at, created_at) VALUES (?, 'telegram', ?, 0, ?, ?, 'UTC', ?, 0)",
                f"telegram:{chat_id}",
                str(chat_id),
                row[0],
                local_time,
                to_ms(push_at),
            )


async def every_card_view(store: SqliteStore, platform: str, chat_id: str) -> list[tuple[str, Reply]]:
    """(card id, view) for every card of the shipped bank: its revealed answer and, when it has one, its
    multiple-choice form, as one learner would see them (for checking renderers against platform limits)."""
    bank = QuestionBank.load(CONTENT)
    study = StudyService(store, bank, FakeClock())
    commands = Commands(study, throttle=Throttle(study.clock, limit=10**6))  # one learner, every card at once
    who = Caller(Identity(platform, "1"), "Ann", Chat(platform, chat_id))
    await commands.run(who, "newcards", "50")
    views: list[tuple[str, Reply]] = []
    for card in bank.cards:
        attempt = await store.create_attempt(1, card.id, who.chat.key, study.clock.now(), None)
        views.append((card.id, await commands.press(who, f"sa:{attempt.id}")))
        if card.quiz:
            second = await store.create_attempt(1, card.id, who.chat.key, study.clock.now(), None)
            views.append((card.id, await commands.press(who, f"mc:{second.id}")))
    return views
