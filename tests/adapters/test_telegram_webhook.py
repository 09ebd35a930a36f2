"""Telegram webhooks in one process: the real python-telegram-bot Application behind the bot's HTTP server
(bot.web, bot.adapters.telegram.webhook), fed by the fake Bot API's webhook POSTs; /healthz and /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.telegram import TelegramBot
from bot.adapters.telegram.bot import ALLOWED_UPDATES
from bot.adapters.telegram.webhook import TelegramWebhook
from bot.bootstrap import (
    App,
    ConfigError,
    register_webhook,
    run_platforms,
    serves_http,
    start_web,
    telegram_adapter,
    telegram_webhook,
    web_server,
)
from bot.config import Settings
from bot.core.daily import TickReport
from bot.ops import HEARTBEAT
from bot.scheduler import DailyTicker
from bot.storage.sqlite import SqliteStore
from bot.web import WebServer
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import app_for, settings_for
from tests.adapters.test_telegram import buttons
from tests.fakes import FakeClock
from tests.pg import free_port

ANN = 1001
BOB = 1002
HOOK_URL = "https://bot.example.org/tg/hook-7f3a"
SECRET = "s3cret_Web-hook_0123456789"
TUNING: dict[str, Any] = {"retries": 2, "backoff": 0.01, "poll_timeout": 1, "request_timeout": 3}


@dataclass
class Hooked:
    """One replica in this process: the app, its Telegram front end, webhook and HTTP server."""

    app: App
    telegram: TelegramBot
    webhook: TelegramWebhook
    server: WebServer
    clock: FakeClock

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


async def start_replica(fake: FakeTelegram, store: SqliteStore, clock: FakeClock, replica: str) -> Hooked:
    app = app_for(
        store,
        clock,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        TELEGRAM_WEBHOOK_URL=HOOK_URL,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        STUDYBOT_LISTEN="127.0.0.1:8080",
    )
    telegram = telegram_adapter(app, **TUNING)
    await telegram.start(polling=False)
    webhook = telegram_webhook(app, telegram, replica=replica)
    server = web_server(app, webhook, port=0)
    await server.start()
    await webhook.register()
    return Hooked(app, telegram, webhook, server, clock)


async def stop_replica(hooked: Hooked) -> None:
    await hooked.webhook.stop()
    await hooked.server.stop()
    await hooked.telegram.stop()
    if hooked.app.pictures is not None:
        hooked.app.pictures.close()


@pytest.fixture
async def hooked(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[Hooked]:
    replica = await start_replica(fake, sqlite, FakeClock(), "replica-a")
    fake.webhook_targets = [replica.base_url]
    try:
        yield replica
    finally:
        await stop_replica(replica)


async def count(store: SqliteStore, sql: str) -> int:
    row = await store.db.fetchrow(sql)
    return int(row[0]) if row else 0


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def post_raw(url: str, body: bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus page by (name, sorted labels)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


# --- registration and handling ----------------------------------------------------------------------


async def test_each_replica_registers_the_webhook_with_its_secret_and_update_types_and_never_polls(
    fake: FakeTelegram, hooked: Hooked
) -> None:
    assert fake.webhook_url == HOOK_URL
    assert fake.webhook_secret == SECRET
    assert fake.webhook_allowed_updates == ALLOWED_UPDATES
    await hooked.webhook.register()  # a second replica does the same: idempotent
    assert [c.ok for c in fake.calls_to("setWebhook")] == [True, True]
    assert fake.webhook_url == HOOK_URL
    assert fake.calls_to("getUpdates") == []


async def test_an_update_is_handled_before_the_http_answer_goes_back(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    delivery = await fake.deliver(fake.message_update(ANN, ann, "/question"))
    assert delivery.status == 200 and delivery.url == hooked.base_url + "/tg/hook-7f3a"
    # the reply was sent before the 200: nothing to wait for
    assert len(fake.sent_texts(ANN)) == 1 and "Answer in your own words" in fake.sent_texts(ANN)[0]
    question = [m for m in fake.messages(ANN) if m.from_bot][-1]
    press = await fake.deliver(fake.callback_update(ANN, ann, question.message_id, buttons(question)["Show answer"]))
    assert press.status == 200
    assert "Model answer" in (fake.message(ANN, question.message_id).text or "")  # type: ignore[union-attr]
    assert len(fake.callback_answers) == 1
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates WHERE replica = 'replica-a'") == 2


async def test_a_wrong_or_missing_secret_is_refused_with_403_and_changes_nothing(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    update = fake.message_update(ANN, ann, "/question")
    wrong = await fake.deliver(update, secret="not-the-secret")
    missing = await fake.deliver(update, omit_secret=True)
    almost = await fake.deliver(update, secret=SECRET + "x")
    assert (wrong.status, missing.status, almost.status) == (403, 403, 403)
    assert not missing.secret_sent
    assert fake.sent_texts(ANN) == []
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 0
    assert await count(sqlite, "SELECT COUNT(*) FROM attempts") == 0
    right = await fake.deliver(update)  # the refused copies took no claim: the real one is handled
    assert right.status == 200 and len(fake.sent_texts(ANN)) == 1


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"[1, 2, 3]", b'"text"', b'{"message": {}}', b'{"update_id": "12"}', b'{"update_id": true}'],
    ids=["not-json", "list", "string", "no-update-id", "string-id", "bool-id"],
)
async def test_a_malformed_body_gets_400_and_one_log_line_without_the_secret(
    hooked: Hooked, sqlite: SqliteStore, fake: FakeTelegram, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.INFO, logger="studybot")
    status = await post_raw(hooked.base_url + "/tg/hook-7f3a", body)
    assert status == 400
    refused = [r for r in caplog.records if "webhook request refused" in r.getMessage()]
    assert len(refused) == 1
    assert all(SECRET not in r.getMessage() and fake.token not in r.getMessage() for r in caplog.records)
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 0


async def test_an_update_id_with_fields_of_the_wrong_type_gets_400(hooked: Hooked, sqlite: SqliteStore) -> None:
    status = await post_raw(hooked.base_url + "/tg/hook-7f3a", b'{"update_id": 5, "message": "not an object"}')
    assert status == 400
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 0


async def test_only_the_webhook_path_takes_updates(fake: FakeTelegram, hooked: Hooked) -> None:
    ann = fake.make_user(ANN, "Ann")
    body = str(fake.message_update(ANN, ann, "/question")).encode()
    assert await post_raw(hooked.base_url + "/", body) in (404, 405)
    assert await post_raw(hooked.base_url + "/tg/other", body) in (404, 405)
    assert fake.sent_texts(ANN) == []


# --- deduplication and retries -------------------------------------------------------------------------


async def test_the_same_update_sent_twice_is_answered_once(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    update = fake.message_update(ANN, ann, "/question")
    first, second = await fake.deliver(update), await fake.deliver(update)
    assert (first.status, second.status) == (200, 200)
    assert len(fake.sent_texts(ANN)) == 1
    assert await count(sqlite, "SELECT COUNT(*) FROM attempts") == 1


async def test_an_update_re_sent_after_a_slow_answer_is_answered_once(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    update = fake.message_update(ANN, ann, "/question")
    # the bot's reply reaches Telegram but its answer takes 1 s: the webhook answer is late, Telegram re-sends
    fake.delay_next("sendMessage", 1.0, process_first=True, chat_id=ANN)
    tried = await fake.deliver_until_ok(update, timeouts=(0.3, 5.0))
    assert [d.status for d in tried] == [None, 200] and tried[0].error == "timeout"
    await fake.wait_for("sendMessage", predicate=lambda c: c.ok)
    await asyncio.sleep(1.0)  # the first handling runs to its end although the sender hung up
    assert len(fake.sent_texts(ANN)) == 1
    assert await count(sqlite, "SELECT COUNT(*) FROM attempts") == 1
    assert hooked.webhook.telegram.application.running


async def test_a_failing_handler_answers_500_and_releases_the_claim_so_the_retry_is_handled(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = hooked.telegram.handlers.commands
    real_run = commands.run
    failures = [RuntimeError("the database went away")]

    async def flaky_run(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_run(*args, **kwargs)

    monkeypatch.setattr(commands, "run", flaky_run)
    ann = fake.make_user(ANN, "Ann")
    update = fake.message_update(ANN, ann, "/question")
    failed = await fake.deliver(update)
    assert failed.status == 500
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 0  # released
    retried = await fake.deliver(update)
    assert retried.status == 200
    texts = fake.sent_texts(ANN)
    assert len(texts) == 2 and "Answer in your own words" in texts[1]  # "something went wrong", then the card
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 1


async def test_a_database_failing_the_claim_answers_500_without_handling(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any) -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(hooked.webhook.claims, "claim_update", down)
    ann = fake.make_user(ANN, "Ann")
    assert (await fake.deliver(fake.message_update(ANN, ann, "/question"))).status == 500
    assert fake.sent_texts(ANN) == []


async def test_two_replicas_on_one_database_answer_a_re_sent_update_once(
    fake: FakeTelegram, sqlite: SqliteStore, hooked: Hooked
) -> None:
    other = await start_replica(fake, sqlite, hooked.clock, "replica-b")
    try:
        fake.webhook_targets = [hooked.base_url, other.base_url]
        ann = fake.make_user(ANN, "Ann")
        update = fake.message_update(ANN, ann, "/question")
        first, second = await fake.deliver(update), await fake.deliver(update)
        assert (first.status, second.status) == (200, 200)
        assert first.url.startswith(hooked.base_url) and second.url.startswith(other.base_url)
        assert len(fake.sent_texts(ANN)) == 1
    finally:
        await stop_replica(other)


async def test_old_update_ids_are_pruned(fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore) -> None:
    ann = fake.make_user(ANN, "Ann")
    await fake.deliver(fake.message_update(ANN, ann, "/question"))
    hooked.clock.advance(hours=23)
    assert await hooked.webhook.prune() == 0
    hooked.clock.advance(hours=2)
    assert await hooked.webhook.prune() == 1
    assert await count(sqlite, "SELECT COUNT(*) FROM telegram_updates") == 0


# --- /healthz and /metrics --------------------------------------------------------------------------


async def test_healthz_is_503_until_the_tick_beats_200_after_and_503_when_the_beat_is_old(
    hooked: Hooked, sqlite: SqliteStore
) -> None:
    status, body = await get(hooked.base_url + "/healthz")
    assert status == 503 and '"failed": "tick"' in body and "not ticked yet" in body
    await sqlite.beat(HEARTBEAT, hooked.clock.now())
    status, body = await get(hooked.base_url + "/healthz")
    assert status == 200 and '"status": "healthy"' in body and "database_ms" in body
    hooked.clock.advance(minutes=2, seconds=50)
    assert (await get(hooked.base_url + "/healthz"))[0] == 200
    hooked.clock.advance(seconds=20)  # 3 min 10 s since the beat
    status, body = await get(hooked.base_url + "/healthz")
    assert status == 503 and '"failed": "tick"' in body and "last ticked 190 s ago" in body


async def test_healthz_judges_this_replicas_own_tick_once_it_has_ticked(hooked: Hooked, sqlite: SqliteStore) -> None:
    """Replicas share the heartbeat row: a replica whose ticker stopped must not pass on another one's beat."""
    await hooked.app.daily.tick()  # this process ticks (and writes the shared beat)
    assert (await get(hooked.base_url + "/healthz"))[0] == 200
    hooked.clock.advance(minutes=4)
    await sqlite.beat(HEARTBEAT, hooked.clock.now())  # another replica keeps ticking; this one stopped
    status, body = await get(hooked.base_url + "/healthz")
    assert status == 503 and '"failed": "tick"' in body and "last ticked 240 s ago" in body
    await hooked.app.daily.tick()
    assert (await get(hooked.base_url + "/healthz"))[0] == 200


async def test_the_minute_tick_counts_its_pushes_in_the_metrics(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await fake.deliver(fake.message_update(ANN, ann, "/daily 09:00 UTC"))
    hooked.clock.set(hooked.clock.now().replace(hour=9, minute=0) + timedelta(days=1))
    ticker = DailyTicker(hooked.app.daily, metrics=hooked.app.metrics)
    await ticker.tick()
    page = samples((await get(hooked.base_url + "/metrics"))[1])
    assert page[("studybot_pushes_total", (("outcome", "sent"),))] == 1
    assert len([m for m in fake.messages(ANN) if m.from_bot]) == 2  # the /daily answer and the push


async def test_healthz_is_503_naming_the_database_when_it_does_not_answer(
    fake: FakeTelegram, sqlite: SqliteStore, hooked: Hooked
) -> None:
    await sqlite.beat(HEARTBEAT, hooked.clock.now())
    assert (await get(hooked.base_url + "/healthz"))[0] == 200
    await sqlite.close()  # the database is gone
    try:
        status, body = await get(hooked.base_url + "/healthz")
        assert status == 503 and '"failed": "database"' in body
    finally:
        await sqlite.open()


async def test_metrics_count_updates_by_kind_and_outcome_with_latency_db_round_trips_pushes_and_matches(
    fake: FakeTelegram, hooked: Hooked, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    update = fake.message_update(ANN, ann, "/question")
    await fake.deliver(update)
    await fake.deliver(update)  # duplicate
    await fake.deliver(update, secret="wrong")  # refused
    question = [m for m in fake.messages(ANN) if m.from_bot][-1]
    await fake.deliver(fake.callback_update(ANN, ann, question.message_id, buttons(question)["Show answer"]))
    hooked.app.metrics.record_tick(TickReport(claimed=9, sent=3, asked=1, unreachable=1, gave_up=1, deferred=2))
    status, first = await get(hooked.base_url + "/metrics")
    assert status == 200
    page = samples(first)
    assert page[("studybot_updates_total", (("kind", "message"), ("outcome", "handled")))] == 1
    assert page[("studybot_updates_total", (("kind", "message"), ("outcome", "duplicate")))] == 1
    assert page[("studybot_updates_total", (("kind", "unknown"), ("outcome", "refused")))] == 1
    assert page[("studybot_updates_total", (("kind", "callback_query"), ("outcome", "handled")))] == 1
    assert page[("studybot_update_seconds_count", (("kind", "message"),))] == 1
    assert page[("studybot_update_seconds_sum", (("kind", "message"),))] > 0
    assert page[("studybot_pushes_total", (("outcome", "sent"),))] == 4
    assert page[("studybot_pushes_total", (("outcome", "failed"),))] == 2
    assert page[("studybot_pushes_total", (("outcome", "deferred"),))] == 2
    assert page[("studybot_running_matches", ())] == 0
    assert page[("studybot_db_roundtrip_seconds_count", ())] == 1
    # a quiz match starts in a group: the gauge reads it at the next scrape; every scrape times the database
    group = -100500
    await fake.deliver(fake.message_update(group, ann, "/quiz", chat_type="group", chat_title="Study group"))
    page = samples((await get(hooked.base_url + "/metrics"))[1])
    assert page[("studybot_running_matches", ())] == 1
    assert page[("studybot_db_roundtrip_seconds_count", ())] == 2
    assert page[("studybot_updates_total", (("kind", "message"), ("outcome", "handled")))] == 2


async def test_two_apps_in_one_process_keep_separate_metrics(hooked: Hooked, sqlite: SqliteStore) -> None:
    other = app_for(sqlite, FakeClock())
    other.metrics.record_tick(TickReport(sent=5))
    page = samples((await get(hooked.base_url + "/metrics"))[1])
    assert page[("studybot_pushes_total", (("outcome", "sent"),))] == 0


# --- the composition root: when the server runs, and friendly errors -----------------------------------


def test_the_server_runs_with_webhooks_or_an_explicit_listen_address_only(sqlite: SqliteStore) -> None:
    token = {"TELEGRAM_TOKEN": "123456789:AAH-fake-token-for-studybot-tests"}
    assert not serves_http(settings_for(sqlite, **token))
    assert serves_http(settings_for(sqlite, STUDYBOT_LISTEN="127.0.0.1:9100", **token))
    assert serves_http(settings_for(sqlite, TELEGRAM_WEBHOOK_URL=HOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET, **token))


async def test_a_listen_address_in_use_is_a_configuration_error_naming_the_setting(hooked: Hooked) -> None:
    busy = web_server(hooked.app, port=hooked.server.port)
    with pytest.raises(ConfigError, match=r"STUDYBOT_LISTEN: cannot listen on 127\.0\.0\.1:\d+"):
        await start_web(busy, f"127.0.0.1:{hooked.server.port}")


async def test_a_webhook_url_telegram_refuses_is_a_configuration_error(fake: FakeTelegram, sqlite: SqliteStore) -> None:
    app = app_for(
        sqlite,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        TELEGRAM_WEBHOOK_URL="https://bot.example.org:8080/hook",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    telegram = telegram_adapter(app, **TUNING)
    await telegram.start(polling=False)
    try:
        with pytest.raises(ConfigError, match=r"TELEGRAM_WEBHOOK_URL: Telegram refused the webhook: .*ports 80, 88"):
            await register_webhook(telegram_webhook(app, telegram))
    finally:
        await telegram.stop()
        if app.pictures is not None:
            app.pictures.close()


async def test_a_webhook_without_a_telegram_token_is_a_configuration_error(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        STUDYBOT_DB=str(tmp_path / "bot.db"),
        TELEGRAM_WEBHOOK_URL=HOOK_URL,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        DISCORD_TOKEN=None,
        TELEGRAM_TOKEN=None,
    )
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_URL is set but TELEGRAM_TOKEN is not"):
        await run_platforms(settings)


def test_telegram_max_rate_paces_the_telegram_sender(fake: FakeTelegram, sqlite: SqliteStore) -> None:
    app = app_for(sqlite, TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url, TELEGRAM_MAX_RATE="4")
    telegram = telegram_adapter(app, **TUNING)
    limiter = telegram.application.bot.rate_limiter
    assert limiter is not None
    assert limiter._base_limiter is not None and limiter._base_limiter.time_period == pytest.approx(0.25)
    if app.pictures is not None:
        app.pictures.close()


async def test_studybot_run_in_webhook_mode_serves_updates_and_health_and_never_polls(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(
        _env_file=None,
        STUDYBOT_DB=str(tmp_path / "bot.db"),
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        TELEGRAM_WEBHOOK_URL=HOOK_URL,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        STUDYBOT_LISTEN=f"127.0.0.1:{port}",
        STUDYBOT_LLM_URL=None,
        STUDYBOT_LLM_MODEL=None,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_platforms(settings, stop=stop))
    try:
        await fake.wait_for("setWebhook", predicate=lambda c: c.ok, timeout=20)
        fake.webhook_targets = [f"http://127.0.0.1:{port}"]
        ann = fake.make_user(ANN, "Ann")
        assert (await fake.deliver(fake.message_update(ANN, ann, "/question"))).status == 200
        assert len(fake.sent_texts(ANN)) == 1
        for _ in range(50):  # the first tick runs right after start
            status, _body = await get(f"http://127.0.0.1:{port}/healthz")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200
        assert fake.calls_to("getUpdates") == []
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 20) == 0
    with pytest.raises(aiohttp.ClientConnectionError):  # the port is closed again
        await get(f"http://127.0.0.1:{port}/healthz")
