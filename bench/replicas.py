"""replicas: updates/s through Telegram webhooks with 1 and with 2 `studybot run` processes on one PostgreSQL.

A throwaway PostgreSQL cluster (tests/pg.py), real `studybot run` processes in webhook mode, and the fake Bot
API in this process posting the updates round-robin to them, as a load balancer would. CLIENTS simulated
learners at a time each practise one card (/question, "Show answer", "Good": three updates, each answered
before the next is sent, as Telegram sends a chat's updates one after another). The figure is updates per
second over the whole run; the 2-replica figure's ratio is against the 1-replica one measured in the same run.

On two cores the replicas, PostgreSQL and this process (the fake Telegram and its clients) share the CPU, so
a second replica cannot double the rate here: it shows how much of the handling was the process's own event
loop (which a second process adds) rather than the database or the machine.

Push throughput: 2 replicas at an allowed rate of 1,000 pushes/s (TELEGRAM_MAX_RATE), every subscriber due in
the same minute; the figure is pushes/s from the first to the last delivery recorded, its ratio achieved /
allowed. Each push builds the learner's card (a due or new card, an attempt) before it is sent, so on two
cores the replicas' CPU, not the send slots, is what limits it (the lines say how busy they were).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Context, Result, latency_stats, result
from tests.adapters.fake_telegram import FakeTelegram, StoredMessage
from tests.pg import PgCluster, free_port
from tests.processes import bot_env, start_studybot, stop_studybot

LEARNERS = 300  # per configuration: 900 updates
LEARNERS_FULL = 1_000
CLIENTS = 24
WARMUP = 20
HOOK_URL = "https://bench.example.org/telegram/hook"
SECRET = "bench-webhook-secret"
DATABASE = "studybot_bench_replicas"


def _buttons(message: StoredMessage) -> dict[str, str]:
    markup = message.reply_markup or {}
    return {b["text"].split(" · ")[0]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def _bot_message(fake: FakeTelegram, chat_id: int) -> StoredMessage:
    return [m for m in fake.messages(chat_id) if m.from_bot][-1]


async def _practise(fake: FakeTelegram, user_id: int, latencies: list[float]) -> None:
    """One learner: /question, Show answer, Good; each update's webhook round trip timed."""
    user = fake.make_user(user_id, f"Learner {user_id}")
    updates: list[Callable[[], dict[str, Any]]] = [
        lambda: fake.message_update(user_id, user, "/question"),
        lambda: fake.callback_update(
            user_id,
            user,
            _bot_message(fake, user_id).message_id,
            _buttons(_bot_message(fake, user_id))["Show answer"],
        ),
        lambda: fake.callback_update(
            user_id, user, _bot_message(fake, user_id).message_id, _buttons(_bot_message(fake, user_id))["Good"]
        ),
    ]
    for make in updates:
        started = time.perf_counter()
        await fake.deliver_until_ok(make(), timeouts=(30.0,))
        latencies.append(time.perf_counter() - started)


async def _drive(fake: FakeTelegram, first_user: int, learners: int) -> tuple[float, list[float]]:
    """All learners, CLIENTS at a time; (seconds, per-update latencies)."""
    gate = asyncio.Semaphore(CLIENTS)
    latencies: list[float] = []

    async def one(user_id: int) -> None:
        async with gate:
            await _practise(fake, user_id, latencies)

    started = time.perf_counter()
    await asyncio.gather(*(one(first_user + n) for n in range(learners)))
    return time.perf_counter() - started, latencies


async def _wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def webhook_rate(
    ctx: Context, dsn: str, replicas: int, first_user: int
) -> tuple[float, list[float], dict[str, float]]:
    """Updates/s, latencies and where the CPU went (this process: the fake Telegram and its clients; the
    replicas) through `replicas` webhook processes on the database at `dsn`."""
    learners = LEARNERS_FULL if ctx.full else LEARNERS
    async with FakeTelegram() as fake:
        ports = [free_port() for _ in range(replicas)]
        env = {
            "STUDYBOT_DB": dsn,
            "TELEGRAM_TOKEN": fake.token,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_WEBHOOK_URL": HOOK_URL,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_MAX_RATE": "1000",  # the limiter lifted: this measures handling, not Telegram's 30 msg/s
            "LOG_LEVEL": "WARNING",
        }
        processes = [
            await start_studybot(ctx.tmp, bot_env(ctx.tmp / "unused.db", **env, STUDYBOT_LISTEN=f"127.0.0.1:{port}"))
            for port in ports
        ]
        try:
            await fake.wait_for("setWebhook", count=replicas, predicate=lambda c: c.ok, timeout=60)
            await asyncio.gather(*(_wait_listening(port) for port in ports))
            fake.webhook_targets = [f"http://127.0.0.1:{port}" for port in ports]
            await _drive(fake, first_user, WARMUP)
            own, bots = _own_cpu_s(), sum(_process_cpu_s(p.pid) for p in processes)
            seconds, latencies = await _drive(fake, first_user + WARMUP, learners)
            cpu = {
                "driver_cpu_share": (_own_cpu_s() - own) / seconds,  # 1.0 = one core busy the whole time
                "replicas_cpu_share": (sum(_process_cpu_s(p.pid) for p in processes) - bots) / seconds,
                "load_average_1m": os.getloadavg()[0],
            }
        finally:
            for process in processes:
                code, log = await stop_studybot(process)
                if code != 0:
                    ctx.log(f"a replica exited with {code}: {log[-2000:]}")
        failed = [d for d in fake.webhook_deliveries if not d.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} webhook deliveries failed, e.g. {failed[0]}")
    return len(latencies) / seconds, latencies, cpu


async def webhook_updates(ctx: Context, cluster: PgCluster) -> list[Result]:
    """Updates/s through webhooks with 1 and with 2 replicas; the second as a ratio of the first."""
    lines: list[Result] = []
    rates: dict[int, float] = {}
    for replicas in (1, 2):
        cluster.reset_schema(DATABASE)
        ctx.log(f"webhooks: {replicas} replica(s) ...")
        rate, latencies, cpu = await webhook_rate(ctx, cluster.dsn(DATABASE), replicas, first_user=1_000_000 * replicas)
        rates[replicas] = rate
        lines.append(
            result(
                f"replicas_webhook_updates_{replicas}",
                rate,
                "updates/s",
                rates[1] if replicas > 1 else None,
                replicas=replicas,
                clients=CLIENTS,
                updates=len(latencies),
                **latency_stats(latencies),
                **cpu,
            )
        )
    return lines


PUSH_RATE = 1_000.0  # TELEGRAM_MAX_RATE for the push measurement: the fleet's allowed pace
PUSH_SUBSCRIBERS = 2_000
PUSH_SUBSCRIBERS_FULL = 5_000


async def _subscribe(dsn: str, count: int, at: datetime) -> None:
    """`count` learners with a daily push due at `at` (UTC), made through the services as /daily does."""
    from bot.core.model import Caller, Chat, Identity, Subscription
    from bot.core.ports import SystemClock
    from bot.core.study import StudyService
    from bot.storage.store import Store
    from tests.conftest import small_bank

    async with Store(dsn) as store:
        study = StudyService(store, small_bank(), SystemClock())
        for n in range(count):
            uid = str(5_000_000 + n)
            learner = await study.learner(Caller(Identity("telegram", uid), f"L{n}", Chat("telegram", uid)))
            await store.save_subscription(
                Subscription(0, f"telegram:{uid}", "telegram", uid, False, learner.id, at.strftime("%H:%M"), "UTC", at)
            )


async def push_throughput(ctx: Context, cluster: PgCluster) -> list[Result]:
    """Pushes/s of 2 replicas at an allowed rate of PUSH_RATE, all due in the same minute: achieved / allowed,
    from the first to the last delivery recorded (finished_at); where the CPU went."""
    import asyncpg

    cluster.reset_schema(DATABASE)
    dsn = cluster.dsn(DATABASE)
    count = PUSH_SUBSCRIBERS_FULL if ctx.full else PUSH_SUBSCRIBERS
    async with FakeTelegram() as fake:
        ports = [free_port() for _ in range(2)]
        env = {
            "STUDYBOT_DB": dsn,
            "TELEGRAM_TOKEN": fake.token,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_WEBHOOK_URL": HOOK_URL,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_MAX_RATE": str(int(PUSH_RATE)),
            "LOG_LEVEL": "WARNING",
        }
        processes = [
            await start_studybot(ctx.tmp, bot_env(ctx.tmp / "unused.db", **env, STUDYBOT_LISTEN=f"127.0.0.1:{port}"))
            for port in ports
        ]
        try:
            await fake.wait_for("setWebhook", count=2, predicate=lambda c: c.ok, timeout=60)
            await asyncio.gather(*(_wait_listening(port) for port in ports))
            ctx.log(f"pushes: subscribing {count} learners ...")
            now = datetime.now(UTC)
            due = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            if (due - now).total_seconds() < 30:  # time to subscribe everyone before the minute
                due += timedelta(minutes=1)
            await _subscribe(dsn, count, due)
            bots = sum(_process_cpu_s(p.pid) for p in processes)
            ctx.log(f"pushes: waiting for {due:%H:%M} UTC ...")
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            deadline = time.monotonic() + 120 + count / 50
            while len(fake.calls_to("sendMessage")) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            cpu_s = sum(_process_cpu_s(p.pid) for p in processes) - bots
        finally:
            for process in processes:
                code, log = await stop_studybot(process)
                if code != 0:
                    ctx.log(f"a replica exited with {code}: {log[-2000:]}")
        sent = len([c for c in fake.calls_to("sendMessage") if c.ok])
    conn = await asyncpg.connect(dsn)
    try:
        first, last, done = await conn.fetchrow(
            "SELECT MIN(finished_at), MAX(finished_at), COUNT(*) FROM deliveries WHERE status = 'sent'"
        )
    finally:
        await conn.close()
    seconds = max((last - first) / 1000, 1e-3)
    achieved = (done - 1) / seconds
    return [
        result(
            "replicas_push_throughput_2",
            achieved,
            "pushes/s",
            PUSH_RATE,  # the ratio: achieved / allowed
            replicas=2,
            allowed_per_s=PUSH_RATE,
            subscribers=count,
            delivered=int(done),
            messages=sent,
            first_after_minute_s=round((first - due.timestamp() * 1000) / 1000, 3),
            replicas_cpu_share=round(cpu_s / seconds, 2),
            load_average_1m=os.getloadavg()[0],
        )
    ]


Measure = Callable[[Context, PgCluster], Awaitable[list[Result]]]
MEASURES: tuple[Measure, ...] = (webhook_updates, push_throughput)


async def run(ctx: Context) -> list[Result]:
    cluster = PgCluster(shared=(), shared_buffers="64MB")
    await asyncio.to_thread(cluster.start)
    try:
        await asyncio.to_thread(cluster.create_database, DATABASE)
        lines: list[Result] = []
        for measure in MEASURES:
            lines.extend(await measure(ctx, cluster))
        return lines
    finally:
        await asyncio.to_thread(cluster.cleanup)
