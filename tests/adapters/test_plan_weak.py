"""/plan and /question weak end to end: python-telegram-bot against the fake Bot API, and discord.py
against the fake Discord, on one SQLite file with a fake clock (Mon 2 March 2026)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.adapters.discord import DiscordBot
from bot.adapters.telegram import TelegramBot
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import make_telegram
from tests.adapters.fake_discord import FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.test_discord import buttons as discord_buttons
from tests.adapters.test_discord import original, slash, text_of
from tests.adapters.test_telegram import buttons, last_bot_message, say

ANN = 1001


@pytest.fixture
async def telegram(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[TelegramBot]:
    bot = make_telegram(fake, sqlite)
    await bot.start(polling=False)
    try:
        yield bot
    finally:
        await bot.stop()


async def test_plan_and_weak_questions_on_telegram(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    assert "plan" in [c["command"] for c in fake.commands]
    await say(fake, telegram, "/plan 2026-04-01 optim", ann)
    set_text = last_bot_message(fake, ANN).text or ""
    assert "Plan set: interview on Wed 01 Apr 2026 (UTC)" in set_text
    assert "Topics: optim (6 cards)." in set_text and "I set your daily new cards to 1 (it was 10)" in set_text

    await say(fake, telegram, "/question weak", ann)
    question = last_bot_message(fake, ANN)
    assert "Not enough reviews yet to tell your weakest topic" in (question.text or "")
    assert "Optimisation · " in (question.text or "")  # new cards come from the plan's topic
    assert set(buttons(question)) == {"Show answer", "Multiple choice", "Skip"}

    await say(fake, telegram, "/plan", ann)
    shown = last_bot_message(fake, ANN).text or ""
    assert "30 days to your interview (Wed 01 Apr) · 6 cards of your plan still new" in shown
    assert "New cards a day: 1, set by the plan (it was 10)" in shown

    await say(fake, telegram, "/plan 2026-02-30", ann)
    assert "2026-02-30 is not a day on the calendar." in (last_bot_message(fake, ANN).text or "")
    await say(fake, telegram, "/plan off", ann)
    assert "Plan cleared" in (last_bot_message(fake, ANN).text or "")
    assert all(call.ok for call in fake.calls)


async def test_plan_and_weak_questions_on_discord(discord_fake: FakeDiscord, discord_bot: DiscordBot) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    assert [o["name"] for o in synced["plan"]["options"]] == ["date", "topics"]

    payload, _ = await slash(discord_fake, "plan", {"date": "2026-04-01", "topics": "optim"})
    set_text = text_of(original(discord_fake, payload))
    assert "Plan set: interview on Wed 01 Apr 2026 (UTC)" in set_text and "Topics: optim (6 cards)." in set_text

    payload, _ = await slash(discord_fake, "question", {"topic": "weak"})
    question = original(discord_fake, payload)
    assert "Not enough reviews yet to tell your weakest topic" in text_of(question)
    assert "Show answer" in discord_buttons(question)

    payload, _ = await slash(discord_fake, "plan")
    assert "30 days to your interview (Wed 01 Apr)" in text_of(original(discord_fake, payload))
    payload, _ = await slash(discord_fake, "plan", {"date": "2030-01-01"})
    assert "is more than a year away" in text_of(original(discord_fake, payload))
    assert all(r.status < 400 for r in discord_fake.requests)
