"""Daily pushes that respect what you did, through the real adapters and the fake platform servers: the
keep / move / stop question after seven unanswered pushes arrives as a message with buttons (Telegram
inline keyboard, Discord components in a DM), and pressing them keeps or stops the pushes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.daily import DailyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import discord_app
from tests.adapters.fake_discord import FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram, StoredMessage
from tests.adapters.stack import Stack, build_stack
from tests.fakes import FakeClock

JSON = dict[str, Any]
START = datetime(2026, 2, 2, 7, 0, tzinfo=UTC)
CHECK_IN = "Keep the daily questions coming?"
ANN_ON_DISCORD = 720000000000000001


def push_time(n: int) -> datetime:
    """08:00 UTC on the n-th day."""
    return START + timedelta(days=n, hours=1)


async def push_days(daily: DailyService, clock: FakeClock, days: range) -> list[tuple[int, int, int]]:
    """Tick at each day's push time; (claimed, sent, asked) per day."""
    seen = []
    for n in days:
        clock.set(push_time(n))
        report = await daily.tick()
        seen.append((report.claimed, report.sent, report.asked))
    return seen


# --- Telegram --------------------------------------------------------------------------------------------


@pytest.fixture
async def stack(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[Stack]:
    built = build_stack(fake, sqlite, FakeClock(START))
    await built.telegram.start(polling=False)
    try:
        yield built
    finally:
        await built.stop()


def keyboard(message: StoredMessage) -> dict[str, str]:
    return {
        b["text"]: b["callback_data"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row
    }


async def test_on_telegram_seven_unanswered_pushes_bring_the_question_and_keep_resumes_them(
    fake: FakeTelegram, stack: Stack
) -> None:
    ann = fake.make_user(601, "Ann")
    await stack.telegram.process(fake.message_update(601, ann, "/daily 08:00 UTC"))
    assert "Skipped on days you've already answered a card" in fake.sent_texts(601, rendered=True)[-1]
    assert await push_days(stack.daily, stack.clock, range(7)) == [(1, 1, 0)] * 7
    assert await push_days(stack.daily, stack.clock, range(7, 8)) == [(1, 0, 1)]
    asked = fake.messages(601)[-1]
    assert (asked.text or "").startswith(CHECK_IN)
    assert list(keyboard(asked)) == ["Keep them", "Another time", "Stop them"]
    assert await push_days(stack.daily, stack.clock, range(8, 10)) == [(0, 0, 0)] * 2  # paused: no reply

    stack.clock.set(push_time(9) + timedelta(hours=2))
    await stack.telegram.process(fake.callback_update(601, ann, asked.message_id, keyboard(asked)["Keep them"]))
    kept = fake.message(601, asked.message_id)
    assert kept is not None and (kept.text or "").startswith("✅ Daily question kept: 08:00 (UTC).")  # edited in place
    assert not keyboard(kept)
    assert await push_days(stack.daily, stack.clock, range(10, 11)) == [(1, 1, 0)]
    assert "Your daily question" in (fake.messages(601)[-1].text or "")


async def test_on_telegram_another_time_then_an_hour_moves_the_push(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(602, "Ann")
    await stack.telegram.process(fake.message_update(602, ann, "/daily 08:00 UTC"))
    await push_days(stack.daily, stack.clock, range(8))
    asked = fake.messages(602)[-1]
    await stack.telegram.process(fake.callback_update(602, ann, asked.message_id, keyboard(asked)["Another time"]))
    offer = fake.message(602, asked.message_id)
    assert offer is not None and list(keyboard(offer)) == ["07:00", "12:00", "18:00", "21:00"]
    await stack.telegram.process(fake.callback_update(602, ann, asked.message_id, keyboard(offer)["18:00"]))
    moved = fake.message(602, asked.message_id)
    assert moved is not None and (moved.text or "").startswith("✅ Daily question moved to 18:00 (UTC).")
    stack.clock.set(push_time(8))
    assert (await stack.daily.tick()).sent == 0
    stack.clock.set(push_time(8) + timedelta(hours=10))
    assert (await stack.daily.tick()).sent == 1


# --- Discord ---------------------------------------------------------------------------------------------


def components(message: JSON) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])}


async def test_on_discord_the_question_comes_by_dm_and_stop_ends_the_pushes(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    clock = FakeClock(START)
    app, bot = discord_app(discord_fake, sqlite, clock=clock)
    await bot.start()
    try:
        payload = discord_fake.slash_interaction(
            "daily", {"time": "08:00", "zone": "UTC", "always": "always"}, user_id=ANN_ON_DISCORD
        )
        await discord_fake.send_interaction(payload)
        await discord_fake.wait_for_callback(payload)
        await bot.drain()
        chat_key = f"discord:user:{ANN_ON_DISCORD}"
        sub = await sqlite.subscription(chat_key)
        assert sub is not None and sub.always  # the slash command's `always` choice

        assert await push_days(app.daily, clock, range(8)) == [(1, 1, 0)] * 7 + [(1, 0, 1)]
        dm = discord_fake.channel_messages(discord_fake.dm_channel_id(ANN_ON_DISCORD))
        asked = dm[-1]
        assert CHECK_IN in str(asked.get("embeds") or asked.get("content"))
        assert list(components(asked)) == ["Keep them", "Another time", "Stop them"]

        press = discord_fake.component_interaction(
            components(asked)["Stop them"], message=int(asked["id"]), user_id=ANN_ON_DISCORD
        )
        await discord_fake.send_interaction(press)
        await discord_fake.wait_for_callback(press)
        await bot.drain()
        assert await sqlite.subscription(chat_key) is None
        updated = discord_fake.channel_messages(discord_fake.dm_channel_id(ANN_ON_DISCORD))[-1]
        assert updated["id"] == asked["id"] and "Daily question stopped" in str(updated)
        assert not components(updated)
        assert await push_days(app.daily, clock, range(8, 10)) == [(0, 0, 0)] * 2
    finally:
        await bot.stop()
