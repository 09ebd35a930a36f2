"""A group quiz on Discord end to end: three players click the round buttons; the standings are right."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.scheduler import MatchRunner
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD, discord_app
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.fakes import FakeClock

PLAYERS = {710000000000000011: "Ann", 710000000000000012: "Bob", 710000000000000013: "Cy"}


async def test_three_players_click_and_the_final_standings_rank_them(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    clock = FakeClock(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    app, bot = discord_app(discord_fake, sqlite, clock=clock, throttle_limit=1000)
    for user_id, name in PLAYERS.items():
        discord_fake.add_member(DISCORD_GUILD, user_id, username=name)
    channel = discord_fake.guild_channel_ids(DISCORD_GUILD)[0]
    await bot.start()
    handled: set[str] = set()
    acknowledgements: list[str] = []

    async def play_and_wait(seconds: float) -> None:
        """The runner's sleep: on each new round message, Ann answers right fast, Bob right later, Cy wrong."""
        for message in discord_fake.channel_messages(channel):
            ids = [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]
            if message["id"] in handled or not ids or not all(i.startswith("qo:") for i in ids):
                continue
            handled.add(message["id"])
            round_id = int(ids[0].split(":")[1])
            round_ = await sqlite.get_round(round_id)
            assert round_ is not None
            right = round_.correct_index
            picks = [(0, right, 2), (1, right, 6), (2, (right + 1) % len(ids), 0)]
            for who, option, delay in picks:
                clock.advance(seconds=delay)
                user_id = list(PLAYERS)[who]
                payload = discord_fake.component_interaction(
                    ids[option],
                    message=int(message["id"]),
                    user_id=user_id,
                    guild_id=DISCORD_GUILD,
                    channel_id=channel,
                )
                await discord_fake.send_interaction(payload)
                callback = await discord_fake.wait_for_callback(payload)
                data: dict[str, Any] = callback.data or {}
                assert data.get("flags", 0) & EPHEMERAL
                acknowledgements.append(str(data.get("content")))
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    runner = MatchRunner(app.competition, app.notifiers, clock, sleep=play_and_wait, lead_in=1, pause=1)
    try:
        start = discord_fake.slash_interaction(
            "quiz",
            {"questions": 3, "seconds": 10},
            user_id=next(iter(PLAYERS)),
            guild_id=DISCORD_GUILD,
            channel_id=channel,
        )
        await discord_fake.send_interaction(start)
        callback = await discord_fake.wait_for_callback(start)
        assert "Quiz: 3 questions" in str(callback.data)
        match = await sqlite.running_match(f"discord:channel:{channel}")
        assert match is not None
        await asyncio.wait_for(runner.tasks[match.id], timeout=20)
        final = discord_fake.channel_messages(channel)[-1]
        text = str(final.get("embeds") or final.get("content"))
        assert "Final results" in text
        assert text.index("Ann") < text.index("Bob") < text.index("Cy")
        assert "420 pts" in text and "330 pts" in text  # 3 x (100 + 50 x 0.8) at 2 s, 3 x (100 + 50 x 0.2) at 8 s
    finally:
        await bot.stop()
    assert len(acknowledgements) == 9 and all(a.startswith("Locked in: ") for a in acknowledgements)
    rounds = [m for m in discord_fake.channel_messages(channel) if "✅" in str(m.get("embeds"))]
    assert rounds  # round messages were edited to show the correct option and the counts
