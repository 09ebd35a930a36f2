"""The whole service stack on one SQLite file with a fake clock, behind a real Telegram adapter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

import fsrs

from bot.adapters.telegram import TelegramBot
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.interview import InterviewService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Notifier
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.core.views import Reply
from bot.storage.rows import to_ms
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.conftest import CONTENT, small_bank
from tests.fakes import FakeClock


@dataclass
class Stack:
    store: SqliteStore
    clock: FakeClock
    study: StudyService
    commands: Commands
    competition: CompetitionService
    daily: DailyService
    notifiers: dict[str, Notifier]
    telegram: TelegramBot


def build_stack(
    fake: FakeTelegram,
    store: SqliteStore,
    clock: FakeClock | None = None,
    *,
    max_rate: float = 30.0,
    request_timeout: float = 5.0,
    throttle_limit: int = 20,
    bank: QuestionBank | None = None,
) -> Stack:
    the_clock = clock or FakeClock()
    study = StudyService(
        store, bank or small_bank(), the_clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(11)
    )
    commands = Commands(study, throttle=Throttle(the_clock, limit=throttle_limit))
    competition = CompetitionService(store, study.bank, the_clock, study, rng=random.Random(12))
    notifiers: dict[str, Notifier] = {}
    daily = DailyService(
        store, study, notifiers, group_content=competition.daily_poll, poll_sent=competition.attach_message
    )
    commands.attach_daily(daily)
    commands.attach_competition(competition)
    commands.attach_privacy(PrivacyService(store, the_clock))
    commands.attach_interview(InterviewService(store, study, the_clock))
    telegram = TelegramBot(
        commands,
        store,
        the_clock,
        token=fake.token,
        api_url=fake.api_url,
        retries=2,
        backoff=0.01,
        poll_timeout=1,
        request_timeout=request_timeout,
        max_rate=max_rate,
        competition=competition,
    )
    notifiers["telegram"] = telegram.notifier
    return Stack(store, the_clock, study, commands, competition, daily, notifiers, telegram)


async def bulk_subscribers(store: SqliteStore, chat_ids: range, push_at: datetime, local_time: str = "06:00") -> None:
    """Learners with a due daily subscription each, written straight into the database (test setup)."""
    async with store.db.transaction() as tx:
        for chat_id in chat_ids:
            row = await tx.fetchrow(
                "INSERT INTO learners (display_name, timezone, new_per_day, created_at) VALUES (?, 'UTC', 10, 0) "
                "RETURNING id",
                f"L{chat_id}",
            )
            assert row is not None
            await tx.execute("INSERT INTO identities VALUES ('telegram', ?, ?)", str(chat_id), row[0])
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
