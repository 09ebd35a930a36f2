"""telegram: 2,000 updates (commands and button presses) through the full bot on the fake Bot API,
against a bare python-telegram-bot Application that only echoes, on the same fake.

Both bots long-poll a fake running in its own process (bench.fakehost), where simulated users (16
closed-loop clients) send updates and time each one until its reply is recorded by the fake. Both bots
run at once, each on its own fake, and are driven in alternating chunks of 500 updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bench.common import Context, FakeHost, Result, latency_stats, result
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.fakes import FakeClock

UPDATES = 2_000
CLIENTS = 16  # the bot's PTB concurrent_updates is 16 too
USERS_PER_CLIENT = 10  # enough users that nobody runs out of today's 10 new cards
CHUNKS = 4  # the two bots take turns, UPDATES / CHUNKS updates at a time
IDLE_UPDATES = 150  # then one user at a time: latency without queueing
UNLIMITED = 1_000_000.0  # the bot's send limiter lifted: this measures handling, not Telegram's 30 msg/s


@dataclass
class RemoteFake:
    """What build_stack needs of a FakeTelegram, for one running in another process."""

    token: str
    api_url: str


def _drive_args(
    kind: str, updates: int, user_base: int, users_per_client: int = USERS_PER_CLIENT, clients: int = CLIENTS
) -> dict[str, Any]:
    return {
        "op": "drive",
        "args": {
            "kind": kind,
            "updates": updates,
            "clients": clients,
            "users_per_client": users_per_client,
            "user_base": user_base,
        },
    }


def _echo_app(host: FakeHost) -> Application[Any, Any, Any, Any, Any, Any]:
    """A bare python-telegram-bot Application: echoes texts, answers and edits on button presses."""
    app = (
        Application.builder()
        .token(host.token)
        .base_url(f"{host.api_url}/bot")
        .base_file_url(f"{host.api_url}/file/bot")
        .concurrent_updates(CLIENTS)
        .connect_timeout(5)
        .read_timeout(5)
        .write_timeout(5)
        .pool_timeout(5)
        .get_updates_read_timeout(6)
        .build()
    )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.text:
            await context.bot.send_message(chat_id=message.chat_id, text=message.text)

    async def press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is not None:
            await query.answer()
            await query.edit_message_text(f"{query.data} #{update.update_id}")

    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.add_handler(CallbackQueryHandler(press))
    return app


class Tally:
    """Drive results of one side, summed over chunks."""

    def __init__(self) -> None:
        self.updates = 0
        self.elapsed = 0.0
        self.latencies: dict[str, list[float]] = {"command": [], "press": []}
        self.problems: dict[str, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, drive: dict[str, Any]) -> None:
        self.updates += int(drive["updates"])
        self.elapsed += float(drive["elapsed"])
        for kind, values in drive["latencies"].items():
            self.latencies[kind] += values
        for key, count in drive["problems"].items():
            self.problems[key] = self.problems.get(key, 0) + int(count)
        self.errors = dict(drive["errors"])  # the fake's running total


async def _measure(ctx: Context) -> tuple[Tally, Tally, Tally, Tally]:
    """(full bot, echo bot, full bot idle, echo bot idle): both bots up at once, each on its own fake,
    driven in alternating chunks so that a noisy stretch of the machine hits both."""
    async with FakeHost() as echo_host, FakeHost() as bot_host:
        echo_app = _echo_app(echo_host)
        store = await SqliteStore(ctx.fresh("telegram.db")).open()
        stack = build_stack(
            cast(FakeTelegram, RemoteFake(bot_host.token, bot_host.api_url)), store, FakeClock(), max_rate=UNLIMITED
        )
        await echo_app.initialize()
        await echo_app.start()
        assert echo_app.updater is not None
        await echo_app.updater.start_polling(
            poll_interval=0.0, timeout=1, allowed_updates=["message", "callback_query"]
        )
        await stack.telegram.start(polling=True)
        full, echo, full_idle, echo_idle = Tally(), Tally(), Tally(), Tally()
        try:
            await echo_host.request(_drive_args("echo", 96, user_base=900_000, users_per_client=1))  # warm-up
            await bot_host.request(_drive_args("study", 96, user_base=900_000, users_per_client=1))
            for chunk in range(CHUNKS):
                base = 1_000 + chunk * 10_000
                echo.add(await echo_host.request(_drive_args("echo", UPDATES // CHUNKS, user_base=base)))
                full.add(await bot_host.request(_drive_args("study", UPDATES // CHUNKS, user_base=base)))
            for chunk in range(2):
                base = 800_000 + chunk * 10_000
                echo_idle.add(await echo_host.request(_drive_args("echo", IDLE_UPDATES // 2, base, clients=1)))
                full_idle.add(await bot_host.request(_drive_args("study", IDLE_UPDATES // 2, base, clients=1)))
        finally:
            await stack.telegram.stop()
            await store.close()
            await echo_app.updater.stop()
            await echo_app.stop()
            await echo_app.shutdown()
    return full, echo, full_idle, echo_idle


def _all(latencies: dict[str, list[float]]) -> list[float]:
    return latencies["command"] + latencies["press"]


async def run(ctx: Context) -> list[Result]:
    ctx.log(f"telegram: full bot and bare echo bot, {UPDATES} updates each in {CHUNKS} alternating chunks ...")
    full, echo, full_idle, echo_idle = await _measure(ctx)
    rate = full.updates / full.elapsed
    base_rate = echo.updates / echo.elapsed
    stats = latency_stats(_all(full.latencies))
    base_stats = latency_stats(_all(echo.latencies))
    idle = latency_stats(_all(full_idle.latencies))
    base_idle = latency_stats(_all(echo_idle.latencies))
    command = latency_stats(full_idle.latencies["command"])
    press = latency_stats(full_idle.latencies["press"])
    ratio = rate / base_rate
    return [
        result(
            "telegram",
            rate,
            "updates/s",
            base_rate,
            target="ratio >= 0.6",
            target_met=ratio >= 0.6,
            updates=full.updates,
            p50_ms=stats["p50_ms"],
            p99_ms=stats["p99_ms"],
            baseline_p50_ms=base_stats["p50_ms"],
            baseline_p99_ms=base_stats["p99_ms"],
            idle_p50_ms=idle["p50_ms"],
            idle_p99_ms=idle["p99_ms"],
            baseline_idle_p50_ms=base_idle["p50_ms"],
            baseline_idle_p99_ms=base_idle["p99_ms"],
            idle_command_p50_ms=command["p50_ms"],
            idle_press_p50_ms=press["p50_ms"],
            problems={**full.problems, **full_idle.problems},
            errors=full_idle.errors,
            baseline_errors=echo_idle.errors,
            note=(
                f"p50/p99 under load: {CLIENTS} closed-loop simulated users (the fake and the users run in "
                f"their own process); idle_*: one user at a time ({IDLE_UPDATES} updates). Latency = update "
                "queued -> reply recorded by the fake, long polling included. Mix: 1/3 /question, 2/3 button "
                "presses (show answer -> rate, or multiple choice -> option). The bot's 30 msg/s send limiter "
                "is lifted for this run (it measures handling, not Telegram's limit)."
            ),
        )
    ]
