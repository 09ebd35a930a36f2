"""Fixtures for the adapters: python-telegram-bot and discord.py, each against a fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import TelegramBot
from bot.bootstrap import App, discord_adapter, telegram_adapter
from bot.core.bank import QuestionBank
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_discord import FakeDiscord, point_discord_at
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import app_for
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
    """The Telegram front end as `studybot run` builds it (bootstrap), on the fake Bot API."""
    app = app_for(store, clock, bank=bank, TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url)
    return telegram_adapter(app, retries=2, backoff=0.01, poll_timeout=1, request_timeout=3)


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


DISCORD_TUNING: dict[str, Any] = {
    "retries": 2,
    "backoff": 0.01,
    "request_timeout": 3,
    "ready_timeout": 5,
    "guild_ready_timeout": 0.05,
    "identify_delay": 0,
}


def discord_app(
    fake: FakeDiscord,
    store: SqliteStore,
    *,
    bank: QuestionBank | None = None,
    clock: FakeClock | None = None,
    guild_id: int | None = None,
    defer_after: float = 2.0,
    throttle_limit: int | None = None,
) -> tuple[App, DiscordBot]:
    """The app and its Discord front end as `studybot run` builds them (bootstrap), on the fake REST API
    and gateway; its notifier is registered in app.notifiers."""
    app = app_for(
        store,
        clock,
        bank=bank,
        throttle_limit=throttle_limit,
        DISCORD_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL=fake.base_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        DISCORD_GUILD_ID=guild_id,
    )
    return app, discord_adapter(app, defer_after=defer_after, **DISCORD_TUNING)


def make_discord(
    fake: FakeDiscord,
    store: SqliteStore,
    *,
    bank: QuestionBank | None = None,
    clock: FakeClock | None = None,
    guild_id: int | None = None,
    defer_after: float = 2.0,
    throttle_limit: int | None = None,
) -> DiscordBot:
    """The Discord front end as `studybot run` builds it (bootstrap), on the fake REST API and gateway."""
    _, bot = discord_app(
        fake,
        store,
        bank=bank,
        clock=clock,
        guild_id=guild_id,
        defer_after=defer_after,
        throttle_limit=throttle_limit,
    )
    return bot


@pytest.fixture
async def discord_bot(discord_fake: FakeDiscord, sqlite: SqliteStore) -> AsyncIterator[DiscordBot]:
    bot = make_discord(discord_fake, sqlite)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
