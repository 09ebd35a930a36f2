"""Fixtures for the adapters: the real python-telegram-bot Application against a fake Bot API."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import fsrs
import pytest

from bot.adapters.telegram import TelegramBot
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.conftest import small_bank
from tests.fakes import FakeClock


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "bot.db") as store:
        yield store


def make_telegram(
    fake: FakeTelegram, store: SqliteStore, bank: QuestionBank | None = None, clock: FakeClock | None = None
) -> TelegramBot:
    study = StudyService(
        store,
        bank or small_bank(),
        clock or FakeClock(),
        scheduler=fsrs.Scheduler(enable_fuzzing=False),
        rng=random.Random(3),
    )
    return TelegramBot(
        Commands(study),
        store,
        study.clock,
        token=fake.token,
        api_url=fake.api_url,
        retries=2,
        backoff=0.01,
        poll_timeout=1,
        request_timeout=3,
    )


@pytest.fixture
async def telegram(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[TelegramBot]:
    bot = make_telegram(fake, sqlite)
    await bot.start(polling=False)
    try:
        yield bot
    finally:
        await bot.stop()
