"""push: daily pushes due in the same minute, delivered by DailyService.tick through TelegramNotifier to
the fake Bot API with a server-side rate limit, the bot's own limiter (max_rate) just under it.

Runs: 20,000 subscribers at 1,000 msg/s, and 300 subscribers at 30 msg/s (Telegram's real limit).
The figure is the delivery rate of the tick (messages sent / its duration) over the allowed rate; lost
and duplicated pushes are counted by the fake (successful sendMessage calls per subscriber chat) after
the tick and any follow-up ticks that deliver the retries the first one scheduled. A bare
python-telegram-bot sender (no database, same limiter) on the same kind of fake shows what the HTTP
stack alone can do.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from telegram.ext import AIORateLimiter, ExtBot

from bench.common import Context, FakeHost, Result, apply_migrations, connect_plain, result, to_ms
from bench.telegram import RemoteFake
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.fakes import FakeClock

FIRST_CHAT = 10_001
BEFORE = datetime(2026, 2, 2, 5, 0, tzinfo=UTC)
DUE = datetime(2026, 2, 2, 6, 0, tzinfo=UTC)
FOLLOW_UP_TICKS = 4
RUNS = ((20_000, 1_000, 950.0), (300, 30, 29.0))  # subscribers, server limit msg/s, bot max_rate
BARE_MESSAGES = 2_000


def bulk_subscribers(ctx: Context, name: str, count: int) -> Path:
    """A migrated database with `count` learners subscribed at 06:00 UTC (plain SQL: setup only)."""
    path = ctx.fresh(name)
    con = connect_plain(path)
    apply_migrations(con)
    chats = range(FIRST_CHAT, FIRST_CHAT + count)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO learners (id, display_name, timezone, new_per_day, created_at) VALUES (?, ?, 'UTC', 10, 0)",
        ((n, f"L{n}") for n in chats),
    )
    con.executemany("INSERT INTO identities VALUES ('telegram', ?, ?)", ((str(n), n) for n in chats))
    con.executemany(
        "INSERT INTO subscriptions (chat_key, platform, chat_id, is_group, learner_id, local_time, timezone, "
        "next_push_at, created_at) VALUES (?, 'telegram', ?, 0, ?, '06:00', 'UTC', ?, 0)",
        ((f"telegram:{n}", str(n), n, to_ms(DUE)) for n in chats),
    )
    con.execute("COMMIT")
    con.close()
    return path


async def push_run(ctx: Context, subscribers: int, limit: int, max_rate: float) -> list[Result]:
    name = f"push_{limit}"
    path = bulk_subscribers(ctx, f"{name}.db", subscribers)
    async with FakeHost(rate_limit_per_s=limit) as host:
        store = await SqliteStore(path).open()
        clock = FakeClock(BEFORE)
        stack = build_stack(cast(FakeTelegram, RemoteFake(host.token, host.api_url)), store, clock, max_rate=max_rate)
        await stack.telegram.start(polling=False)
        try:
            clock.set(DUE)
            ctx.log(f"{name}: {subscribers:,} subscribers, server limit {limit}/s, bot max_rate {max_rate} ...")
            started = time.perf_counter()
            report = await stack.daily.tick()
            elapsed = time.perf_counter() - started
            first = report
            follow_ups = 0
            while report.retrying and follow_ups < FOLLOW_UP_TICKS:
                follow_ups += 1
                clock.advance(minutes=30)  # past every retry_at the earlier tick set
                report = await stack.daily.tick()
        finally:
            await stack.telegram.stop()
            await store.close()
        seen = await host.request({"op": "report", "first_chat": FIRST_CHAT, "last_chat": FIRST_CHAT + subscribers - 1})
    rate = first.sent / elapsed
    deferred = first.claimed - first.sent
    common = {
        "subscribers": subscribers,
        "bot_max_rate": max_rate,
        "tick_s": round(elapsed, 2),
        "sent_first_tick": first.sent,
        "deferred_to_retry": deferred,
        "follow_up_ticks": follow_ups,
        "server_429s": seen["rate_limited"],
        "server_peak_per_1s": seen["peak_per_1s"],
    }
    lines = [
        result(
            f"{name}_rate",
            rate,
            "msg/s",
            float(limit),
            target="ratio (achieved / allowed) >= 0.9",
            target_met=rate / limit >= 0.9,
            **common,
            note="value = pushes sent by the first tick / its duration; baseline = the fake's limit (allowed rate)",
        ),
        result(
            f"{name}_lost",
            seen["lost"],
            "pushes",
            float(subscribers),
            better="lower",
            target="0",
            target_met=seen["lost"] == 0,
            note="baseline = pushes due; lost = subscribers with no successful sendMessage after all ticks",
        ),
        result(
            f"{name}_duplicates",
            seen["duplicates"],
            "pushes",
            float(subscribers),
            better="lower",
            target="0",
            target_met=seen["duplicates"] == 0,
            note="baseline = pushes due; duplicates = successful sendMessage calls beyond one per subscriber",
        ),
    ]
    if seen["errors"]:
        lines[0]["server_errors"] = seen["errors"]
    return lines


async def bare_sender(ctx: Context, limit: int, max_rate: float, count: int) -> float:
    """python-telegram-bot alone: `count` sendMessage calls, 32 at a time, through the same limiter."""
    async with FakeHost(rate_limit_per_s=limit) as host:
        bot = ExtBot(
            host.token,
            base_url=f"{host.api_url}/bot",
            rate_limiter=AIORateLimiter(overall_max_rate=max_rate, max_retries=1),
        )
        semaphore = asyncio.Semaphore(32)
        text = "☀️ Your daily question · start a streak today!\n\n<b>Basics · warm-up · new</b>\n\n" + "x" * 120

        async def send(chat_id: int) -> None:
            async with semaphore:
                await bot.send_message(chat_id=chat_id, text=text, parse_mode="HTML")

        async with bot:
            ctx.log(f"push: bare PTB sender, {count} messages at server limit {limit}/s ...")
            started = time.perf_counter()
            await asyncio.gather(*(send(FIRST_CHAT + n) for n in range(count)), return_exceptions=True)
            elapsed = time.perf_counter() - started
        seen = await host.request({"op": "report", "first_chat": FIRST_CHAT, "last_chat": FIRST_CHAT + count - 1})
    return float(seen["ok_sends"]) / elapsed


async def run(ctx: Context) -> list[Result]:
    lines: list[Result] = []
    for subscribers, limit, max_rate in RUNS:
        lines += await push_run(ctx, subscribers, limit, max_rate)
    bare = await bare_sender(ctx, RUNS[0][1], RUNS[0][2], BARE_MESSAGES)
    lines[0]["bare_ptb_rate"] = round(bare, 1)
    lines[0]["note"] += (
        f"; bare_ptb_rate = a bare python-telegram-bot sender ({BARE_MESSAGES} messages, 32 concurrent, same "
        "limiter, no database) on the same kind of fake"
    )
    return lines
