"""/link across Telegram and Discord in one process, as `studybot run` serves both: one app, both adapters,
each against its fake server. Ann has a history on each (reviews, a card both reviewed, quiz points); a
code from Telegram used by the Discord slash command merges them, both sides are told in their private
chats, and /link then lists both accounts on either platform."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import TelegramBot
from bot.bootstrap import App, discord_adapter, telegram_adapter
from bot.core.model import Identity
from bot.storage.sqlite import SqliteStore
from tests.adapters import test_discord as on_discord
from tests.adapters import test_telegram as on_telegram
from tests.adapters.conftest import DISCORD_TOKEN, DISCORD_TUNING
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import app_for
from tests.fakes import FakeClock

TG_USER = on_telegram.ANN
DC_USER = on_discord.ANN
CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}")


@dataclass
class Both:
    app: App
    clock: FakeClock
    store: SqliteStore
    tg_fake: FakeTelegram
    telegram: TelegramBot
    dc_fake: FakeDiscord
    discord: DiscordBot
    ann: dict[str, Any]  # Ann's Telegram user

    async def telegram_says(self, text: str) -> str:
        await on_telegram.say(self.tg_fake, self.telegram, text, self.ann)
        return on_telegram.last_bot_message(self.tg_fake, TG_USER).text or ""

    async def telegram_review(self, rating: str) -> None:
        await self.telegram_says("/question")
        question = on_telegram.last_bot_message(self.tg_fake, TG_USER)
        await on_telegram.press(self.tg_fake, self.telegram, question, "Show answer", self.ann)
        revealed = self.tg_fake.message(TG_USER, question.message_id)
        assert revealed is not None
        await on_telegram.press(self.tg_fake, self.telegram, revealed, rating, self.ann)

    async def discord_review(self, rating: str) -> None:
        payload, _ = await on_discord.slash(self.dc_fake, "question", user=DC_USER, guild=False)
        question = on_discord.original(self.dc_fake, payload)
        await on_discord.press(self.dc_fake, question, "Show answer", user=DC_USER)
        await on_discord.press(self.dc_fake, self.dc_fake.messages[int(question["id"])], rating, user=DC_USER)

    async def reviews(self, platform: str, user: int) -> list[tuple[str, int]]:
        learner = await self.store.find_learner(Identity(platform, str(user)))
        assert learner is not None
        found = await self.store.db.fetch(
            "SELECT card_id, reviewed_at FROM reviews WHERE learner_id = ? ORDER BY id", learner.id
        )
        return [(row[0], row[1]) for row in found]


@pytest.fixture
async def both(fake: FakeTelegram, discord_fake: FakeDiscord, sqlite: SqliteStore) -> AsyncIterator[Both]:
    clock = FakeClock()
    app = app_for(
        sqlite,
        clock,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        DISCORD_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL=discord_fake.base_url,
        DISCORD_GATEWAY_URL=discord_fake.gateway_url,
    )
    telegram = telegram_adapter(app, retries=2, backoff=0.01, poll_timeout=1, request_timeout=3)
    discord_bot = discord_adapter(app, defer_after=2.0, **DISCORD_TUNING)
    await telegram.start(polling=False)
    await discord_bot.start()
    try:
        yield Both(app, clock, sqlite, fake, telegram, discord_fake, discord_bot, fake.make_user(TG_USER, "Ann"))
    finally:
        await discord_bot.stop()
        await telegram.stop()


async def test_link_telegram_to_discord_merges_both_histories_and_tells_both_sides(both: Both) -> None:
    b = both
    await b.telegram_review("Good")
    await b.telegram_review("Hard")
    b.clock.advance(days=1)
    await b.discord_review("Easy")  # the same first card as on Telegram, reviewed later
    await b.discord_review("Good")
    tg_reviews, dc_reviews = await b.reviews("telegram", TG_USER), await b.reviews("discord", DC_USER)
    assert len(tg_reviews) == 2 and len(dc_reviews) == 2
    shared = {c for c, _ in tg_reviews} & {c for c, _ in dc_reviews}
    assert shared
    dc_learner = await b.store.find_learner(Identity("discord", str(DC_USER)))
    assert dc_learner is not None
    dc_states = {
        row[0]: tuple(row[1:])
        for row in await b.store.db.fetch(
            "SELECT card_id, stability, difficulty, due, last_review FROM card_states WHERE learner_id = ?",
            dc_learner.id,
        )
    }

    issued = await b.telegram_says("/link")
    found = CODE.search(issued)
    assert found, issued
    payload, _ = await on_discord.slash(b.dc_fake, "link", {"code": found.group()}, user=DC_USER, guild=False)
    await b.discord.drain()
    said = on_discord.text_of(on_discord.original(b.dc_fake, payload))
    assert "Linked" in said and "Telegram (Ann)" in said, said

    # one learner now: every review of both, and the shared card's state is Discord's later one
    merged = await b.reviews("discord", DC_USER)
    assert sorted(merged) == sorted(tg_reviews + dc_reviews)
    assert await b.reviews("telegram", TG_USER) == merged
    tg_learner = await b.store.find_learner(Identity("telegram", str(TG_USER)))
    assert tg_learner is not None
    for card in shared:
        row = await b.store.db.fetchrow(
            "SELECT stability, difficulty, due, last_review FROM card_states WHERE learner_id = ? AND card_id = ?",
            tg_learner.id,
            card,
        )
        assert row is not None and tuple(row) == dc_states[card]
    # the issuer was told in its Telegram private chat, by the same process
    told = on_telegram.last_bot_message(b.tg_fake, TG_USER).text or ""
    assert "Discord account" in told and "now shares this profile" in told, told
    # either side lists both accounts; Discord answers privately
    assert "Discord (" in await b.telegram_says("/link")
    payload, callback = await on_discord.slash(b.dc_fake, "link", user=DC_USER, guild=True)
    await b.discord.drain()
    listing = on_discord.original(b.dc_fake, payload)
    assert "Telegram (Ann)" in on_discord.text_of(listing)
    assert listing.get("flags", 0) & EPHEMERAL or (callback.data or {}).get("flags", 0) & EPHEMERAL
    assert on_telegram.all_calls_ok(b.tg_fake) and on_discord.all_ok(b.dc_fake)


async def test_unlink_through_discord_tells_the_telegram_account(both: Both) -> None:
    b = both
    await b.telegram_review("Good")
    found = CODE.search(await b.telegram_says("/link"))
    assert found
    await on_discord.slash(b.dc_fake, "link", {"code": found.group()}, user=DC_USER, guild=False)
    payload, _ = await on_discord.slash(b.dc_fake, "unlink", {"account": "telegram"}, user=DC_USER, guild=False)
    await b.discord.drain()
    said = on_discord.text_of(on_discord.original(b.dc_fake, payload))
    assert "Unlinked: Telegram (Ann)" in said, said
    told = on_telegram.last_bot_message(b.tg_fake, TG_USER).text or ""
    assert "unlinked from your other accounts" in told, told
    assert await b.reviews("telegram", TG_USER) == await b.reviews("discord", DC_USER)  # a copy each
    assert on_telegram.all_calls_ok(b.tg_fake) and on_discord.all_ok(b.dc_fake)
