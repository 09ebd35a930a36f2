"""Every command's audience on both platforms: in a group, personal practice is for the caller only
(Discord: ephemeral), while quizzes, leaderboards and a group's daily question are for everyone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD, discord_app
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import app_for, build_stack
from tests.fakes import FakeClock

ANN = 710000000000000011
FOR_EVERYONE = {"quiz", "stopquiz", "leaderboard", "daily", "deck"}  # /deck: what the whole chat practises


def test_the_core_says_who_each_command_is_for(sqlite: SqliteStore) -> None:
    commands = app_for(sqlite).commands
    assert {spec.name for spec in commands.specs if spec.audience == "chat"} == FOR_EVERYONE
    assert {spec.name for spec in commands.specs} >= FOR_EVERYONE | {"question", "stats", "export", "forget"}


async def test_in_a_discord_server_only_personal_commands_answer_ephemerally(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    clock = FakeClock(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    app, bot = discord_app(discord_fake, sqlite, clock=clock, throttle_limit=1000)
    commands = app.commands
    discord_fake.add_member(DISCORD_GUILD, ANN, username="Ann")
    await bot.start()
    try:
        seen: dict[str, bool] = {}
        # /stopquiz goes last, to stop the match /quiz started
        for spec in commands.specs:
            if spec.name in ("stopquiz",):
                continue
            options = {"time": "09:00"} if spec.name == "daily" else None
            payload = discord_fake.slash_interaction(
                spec.name,
                options,
                user_id=ANN,
                guild_id=DISCORD_GUILD,
                permissions=1 << 5,  # Manage Server: /daily
            )
            await discord_fake.send_interaction(payload)
            callback = await discord_fake.wait_for_callback(payload)
            flags = (callback.data or {}).get("flags", 0) or 0
            seen[spec.name] = bool(flags & EPHEMERAL)
        stop = discord_fake.slash_interaction("stopquiz", None, user_id=ANN, guild_id=DISCORD_GUILD)
        await discord_fake.send_interaction(stop)
        seen["stopquiz"] = bool(((await discord_fake.wait_for_callback(stop)).data or {}).get("flags", 0) & EPHEMERAL)
    finally:
        await bot.stop()
        if app.pictures is not None:
            app.pictures.close()
    public = {name for name, ephemeral in seen.items() if not ephemeral}
    assert public == FOR_EVERYONE, seen
    assert set(seen) == {spec.name for spec in commands.specs}


@pytest.mark.parametrize("command", ["leaderboard", "quiz", "question", "stats"])
async def test_in_a_telegram_group_every_command_answers_in_the_group(
    fake: FakeTelegram, sqlite: SqliteStore, command: str
) -> None:
    stack = build_stack(fake, sqlite)
    await stack.telegram.start(polling=False)
    try:
        ann = fake.make_user(1001, "Ann")
        await stack.telegram.process(fake.message_update(-100500, ann, f"/{command}", chat_type="supergroup"))
        sent = [m for m in fake.messages(-100500) if m.from_bot]
        assert sent and all(call.ok for call in fake.calls)
    finally:
        await stack.stop()
