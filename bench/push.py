"""push: daily pushes due in the same minute, delivered by DailyService.tick through TelegramNotifier to
the fake Bot API with a server-side rate limit, against a bare python-telegram-bot sender in the same run.

Runs: 20,000 subscribers on a fake that allows 1,000 msg/s (bot max_rate 950), and 300 subscribers on
one that allows 30 msg/s (Telegram's real limit; bot max_rate 29).

Measured, per run, in this process:
- the bot: one DailyService.tick that claims every due push from SQLite, builds each learner's question
  and sends it through TelegramNotifier (the real path: TelegramSender, the bot's PTB Application and
  its AIORateLimiter), 32 pushes at a time. Its rate = pushes sent by that tick / its duration.
- the baseline: a bare python-telegram-bot sender. An ExtBot with the bot's AIORateLimiter settings
  (checked equal to the bot's own limiter) and the HTTP settings PTB's Application builder gives the bot
  (256 connections, the same 5 s timeouts), sending the same kind of message (HTML, a three-button
  inline keyboard) with the same concurrency (32), and no database, no core. Its rate = successful
  sendMessage calls / elapsed time. It runs twice, right before and right after the bot (a fresh fake
  with the same limit each time), with fewer messages than the bot (2 x 5,000 at 1,000 msg/s, 2 x 150
  at 30 msg/s): long enough that the per-message pace is steady. The baseline figure is both legs
  pooled (all their messages / all their time); each leg's rate is in the output too, and
  `bare_spread` = |before - after| / pooled. At 1,000 msg/s both sides are CPU-bound (the server's
  limit is never reached), so other load on the machine moves the figures (a large spread says so);
  at 30 msg/s both are paced by the limiter.

The headline `push_<limit>_rate` is the bot's rate, its baseline the bare sender's rate, and its ratio
bot / bare (1.0 = the bot delivers as fast as PTB alone can with the same pacing). The server's allowed
rate and the bot's max_rate are kept as context (`allowed_rate`, `ratio_to_allowed`, ...). Lost and
duplicated pushes are counted by the bot's fake (successful sendMessage calls per subscriber chat)
after the tick and any follow-up ticks that deliver the retries the first one scheduled.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bench.common import Context, FakeHost, Result, apply_migrations, connect_plain, result, to_ms
from bench.telegram import RemoteFake
from bot.core.daily import DailyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.fakes import FakeClock

FIRST_CHAT = 10_001
BEFORE = datetime(2026, 2, 2, 5, 0, tzinfo=UTC)
DUE = datetime(2026, 2, 2, 6, 0, tzinfo=UTC)
FOLLOW_UP_TICKS = 4
# subscribers, server limit msg/s, bot max_rate, bare-sender messages per leg (one leg before, one after)
RUNS = ((20_000, 1_000, 950.0, 5_000), (300, 30, 29.0, 150))
REQUEST_TIMEOUT = 5.0  # build_stack's request_timeout, which the bot's Application uses for every timeout
CONNECTION_POOL = 256  # what PTB's ApplicationBuilder gives the bot's (non-getUpdates) requests by default
# the tick's concurrency: DailyService's default, which build_stack keeps
CONCURRENCY = int(inspect.signature(DailyService.__init__).parameters["concurrency"].default)
# what a push looks like on the wire (captured from the bot on the fake): HTML, three buttons
PUSH_TEXT = (
    "☀️ Your daily question · start a streak today!\n\n<b>Optimisation · warm-up · new</b>\n\n"
    "<b>Question optim-3?</b>\n\n<i>Answer in your own words (just type it), or pick a button.</i>"
)


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
    con.executemany(
        "INSERT INTO identities (platform, external_id, learner_id) VALUES ('telegram', ?, ?)",
        ((str(n), n) for n in chats),
    )
    con.executemany(
        "INSERT INTO subscriptions (chat_key, platform, chat_id, is_group, learner_id, local_time, timezone, "
        "next_push_at, created_at) VALUES (?, 'telegram', ?, 0, ?, '06:00', 'UTC', ?, 0)",
        ((f"telegram:{n}", str(n), n, to_ms(DUE)) for n in chats),
    )
    con.execute("COMMIT")
    con.close()
    return path


def bot_limiter(max_rate: float) -> AIORateLimiter:
    """The limiter TelegramBot builds for a given max_rate (bot/adapters/telegram.py)."""
    return AIORateLimiter(overall_max_rate=1, overall_time_period=1 / max_rate, max_retries=1)


def limiter_settings(limiter: Any) -> tuple[Any, ...]:
    """What an AIORateLimiter paces by: (overall rate, period, group rate, period, max_retries)."""
    base = limiter._base_limiter
    overall = (base.max_rate, base.time_period) if base is not None else (None, None)
    return (*overall, limiter._group_max_rate, limiter._group_time_period, limiter._max_retries)


@dataclass
class BotRun:
    rate: float
    figures: dict[str, Any]
    lost: int
    duplicates: int
    errors: dict[str, int]


@dataclass
class BareRun:
    sent: int
    elapsed: float
    rate_limited: int
    errors: dict[str, int]


async def bot_run(ctx: Context, subscribers: int, limit: int, max_rate: float) -> BotRun:
    """The real path: DailyService.tick -> TelegramNotifier -> the bot's PTB Application -> the fake."""
    name = f"push_{limit}"
    path = bulk_subscribers(ctx, f"{name}.db", subscribers)
    async with FakeHost(rate_limit_per_s=limit) as host:
        store = SqliteStore(path)
        await store.open()
        clock = FakeClock(BEFORE)
        stack = build_stack(
            cast(FakeTelegram, RemoteFake(host.token, host.api_url)),
            store,
            clock,
            max_rate=max_rate,
            request_timeout=REQUEST_TIMEOUT,
        )
        if stack.daily.concurrency != CONCURRENCY:
            raise RuntimeError(f"the tick sends {stack.daily.concurrency} at a time, the bare sender {CONCURRENCY}")
        actual = limiter_settings(stack.telegram.application.bot.rate_limiter)
        if actual != limiter_settings(bot_limiter(max_rate)):
            raise RuntimeError(f"the bot's limiter {actual} is not the one the bare sender copies")
        await stack.telegram.start(polling=False)
        try:
            clock.set(DUE)
            ctx.log(f"{name}: bot, {subscribers:,} subscribers, server limit {limit}/s, bot max_rate {max_rate} ...")
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
    figures = {
        "tick_s": round(elapsed, 2),
        "sent_first_tick": first.sent,
        "deferred_to_retry": first.claimed - first.sent,
        "follow_up_ticks": follow_ups,
        "server_429s": seen["rate_limited"],
        "server_peak_per_1s": seen["peak_per_1s"],
    }
    return BotRun(first.sent / elapsed, figures, seen["lost"], seen["duplicates"], seen["errors"])


async def bare_sender(ctx: Context, limit: int, max_rate: float, count: int, leg: str) -> BareRun:
    """python-telegram-bot alone: `count` push-like sendMessage calls, CONCURRENCY at a time, paced by the
    bot's limiter settings, on a fresh fake with the same server-side limit."""
    async with FakeHost(rate_limit_per_s=limit) as host:
        request = HTTPXRequest(
            connection_pool_size=CONNECTION_POOL,
            connect_timeout=REQUEST_TIMEOUT,
            read_timeout=REQUEST_TIMEOUT,
            write_timeout=REQUEST_TIMEOUT,
            pool_timeout=REQUEST_TIMEOUT,
        )
        bot = ExtBot(host.token, base_url=f"{host.api_url}/bot", request=request, rate_limiter=bot_limiter(max_rate))
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def send(n: int) -> None:
            buttons = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton("Show answer", callback_data=f"sa:{n}"),
                        InlineKeyboardButton("Multiple choice", callback_data=f"mc:{n}"),
                    ],
                    [InlineKeyboardButton("Skip", callback_data=f"sk:{n}")],
                ]
            )
            async with semaphore:
                await bot.send_message(
                    chat_id=FIRST_CHAT + n, text=PUSH_TEXT, parse_mode=ParseMode.HTML, reply_markup=buttons
                )

        async with bot:
            ctx.log(f"push_{limit}: bare PTB sender ({leg}), {count:,} messages ...")
            started = time.perf_counter()
            await asyncio.gather(*(send(n) for n in range(count)), return_exceptions=True)
            elapsed = time.perf_counter() - started
        seen = await host.request({"op": "report", "first_chat": FIRST_CHAT, "last_chat": FIRST_CHAT + count - 1})
    return BareRun(int(seen["ok_sends"]), elapsed, int(seen["rate_limited"]), dict(seen["errors"]))


async def push_run(ctx: Context, subscribers: int, limit: int, max_rate: float, bare_count: int) -> list[Result]:
    name = f"push_{limit}"
    before = await bare_sender(ctx, limit, max_rate, bare_count, "before the bot")
    bot = await bot_run(ctx, subscribers, limit, max_rate)
    after = await bare_sender(ctx, limit, max_rate, bare_count, "after the bot")
    legs = (before, after)
    bare_rate = sum(leg.sent for leg in legs) / sum(leg.elapsed for leg in legs)
    before_rate, after_rate = before.sent / before.elapsed, after.sent / after.elapsed
    # how far apart the two legs are, relative to the pooled rate: large = a busy machine, a shaky ratio
    spread = round(abs(before_rate - after_rate) / bare_rate, 3) if bare_rate else None
    context: dict[str, Any] = {
        "subscribers": subscribers,
        **bot.figures,
        "bare_rate_before": before_rate,
        "bare_rate_after": after_rate,
        "bare_spread": spread,
        "bare_messages_per_leg": bare_count,
        "bare_sent": before.sent + after.sent,
        "bare_server_429s": before.rate_limited + after.rate_limited,
        "allowed_rate": limit,
        "bot_max_rate": max_rate,
        "ratio_to_allowed": round(bot.rate / limit, 3),
        "bare_ratio_to_allowed": round(bare_rate / limit, 3),
    }
    if bot.errors:
        context["server_errors"] = bot.errors
    bare_errors: dict[str, int] = {}
    for leg in legs:
        for key, count in leg.errors.items():
            bare_errors[key] = bare_errors.get(key, 0) + count
    if bare_errors:
        context["bare_server_errors"] = bare_errors
    ratio = bot.rate / bare_rate if bare_rate else 0.0
    return [
        result(
            f"{name}_rate",
            bot.rate,
            "msg/s",
            bare_rate,
            target="ratio (bot / bare PTB sender) >= 0.9",
            target_met=ratio >= 0.9,
            **context,
            note=(
                "value = pushes sent by the first DailyService.tick / its duration (SQLite, core, TelegramNotifier, "
                f"{CONCURRENCY} at a time); baseline = a bare python-telegram-bot ExtBot with the bot's "
                f"AIORateLimiter (max_rate {max_rate}), {CONCURRENCY} at a time, no database, on a fresh fake with "
                f"the same {limit} msg/s limit, {bare_count} messages right before and {bare_count} right after "
                "the bot, pooled; allowed_rate = the fake's limit (context)"
            ),
        ),
        result(
            f"{name}_lost",
            bot.lost,
            "pushes",
            float(subscribers),
            better="lower",
            target="0",
            target_met=bot.lost == 0,
            note="baseline = pushes due; lost = subscribers with no successful sendMessage after all ticks",
        ),
        result(
            f"{name}_duplicates",
            bot.duplicates,
            "pushes",
            float(subscribers),
            better="lower",
            target="0",
            target_met=bot.duplicates == 0,
            note="baseline = pushes due; duplicates = successful sendMessage calls beyond one per subscriber",
        ),
    ]


async def run(ctx: Context) -> list[Result]:
    lines: list[Result] = []
    for subscribers, limit, max_rate, bare_count in RUNS:
        lines += await push_run(ctx, subscribers, limit, max_rate, bare_count)
    return lines
