"""Fixtures for the adapters: python-telegram-bot and discord.py, each against a fake server."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import fsrs
import pytest

from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import TelegramBot
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_discord import FakeDiscord, point_discord_at
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


# --- Discord: the real discord.py client against the fake REST API + gateway ---------------------------

DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ" + ".GfAkEt." + "s3cr3t-d1sc0rd-t0k3n-f0r-t3sts-0nly"
DISCORD_GUILD = 424242424242424242


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN, guilds=[DISCORD_GUILD]) as server:
        with point_discord_at(server):
            yield server


def make_discord(
    fake: FakeDiscord,
    store: SqliteStore,
    *,
    bank: QuestionBank | None = None,
    clock: FakeClock | None = None,
    commands: Commands | None = None,
    guild_id: int | None = None,
    defer_after: float = 2.0,
) -> DiscordBot:
    if commands is None:
        study = StudyService(
            store,
            bank or small_bank(),
            clock or FakeClock(),
            scheduler=fsrs.Scheduler(enable_fuzzing=False),
            rng=random.Random(3),
        )
        commands = Commands(study)
    return DiscordBot(
        commands,
        store,
        commands.study.clock,
        token=DISCORD_TOKEN,
        api_url=fake.base_url,
        gateway_url=fake.gateway_url,
        guild_id=guild_id,
        retries=2,
        backoff=0.01,
        request_timeout=3,
        defer_after=defer_after,
        ready_timeout=5,
        guild_ready_timeout=0.05,
        identify_delay=0,
    )


@pytest.fixture
async def discord_bot(discord_fake: FakeDiscord, sqlite: SqliteStore) -> AsyncIterator[DiscordBot]:
    bot = make_discord(discord_fake, sqlite)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
