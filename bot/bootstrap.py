"""Composition root: builds the bank, store, services and adapters from Settings, and runs them."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import fsrs
from pydantic import ValidationError

from bot.config import Settings
from bot.core.bank import DeckError, QuestionBank
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.decks import DeckService, Library
from bot.core.grading import LexicalGrader
from bot.core.interview import InterviewService
from bot.core.linking import LinkService
from bot.core.llm_grading import ModelGrader
from bot.core.plan import PlanService
from bot.core.ports import ChatModel, Clock, Grader, Notifier, SystemClock
from bot.core.privacy import PrivacyService
from bot.core.progress import ProgressService
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.logs import setup_logging
from bot.metrics import Metrics
from bot.pictures import ProgressPicturer
from bot.scheduler import DailyTicker, MatchRunner
from bot.storage.db import DatabaseUnavailable
from bot.storage.store import Store

if TYPE_CHECKING:  # the chat SDKs are imported only when their adapter is built
    from bot.adapters.discord import DiscordBot
    from bot.adapters.telegram import TelegramBot
    from bot.adapters.telegram.webhook import TelegramWebhook
    from bot.web import WebServer

log = logging.getLogger("studybot")

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class ConfigError(Exception):
    """A user's configuration mistake: reported in one line, exit code 2, no traceback."""


@dataclass
class App:
    settings: Settings
    bank: QuestionBank
    library: Library
    store: Store
    clock: Clock
    study: StudyService
    commands: Commands
    daily: DailyService
    competition: CompetitionService
    notifiers: dict[str, Notifier]
    pictures: ProgressPicturer | None = None
    links: LinkService | None = None
    decks: DeckService | None = None
    metrics: Metrics = field(default_factory=Metrics)  # what /metrics shows

    async def close(self) -> None:
        if isinstance(self.study.grader, ModelGrader):
            await self.study.grader.close()
        if self.pictures is not None:
            self.pictures.close()
        await self.store.close()


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "setting"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}" if first.get("loc") else message) from None


def load_bank(path: Path) -> QuestionBank:
    try:
        return QuestionBank.load(path)
    except DeckError as exc:
        more = f" (and {len(exc.problems) - 1} more; run `studybot content check`)" if len(exc.problems) > 1 else ""
        raise ConfigError(f"STUDYBOT_CONTENT: invalid deck: {exc.problems[0]}{more}") from None


def build_grader(
    settings: Settings, bank: QuestionBank, clock: Clock, *, chat_model: ChatModel | None = None
) -> Grader:
    """The offline grader, or the model grader in front of it when STUDYBOT_LLM_URL is set."""
    offline = LexicalGrader(bank.cards, bank.glossary)
    if chat_model is None and settings.llm_enabled:
        from bot.adapters.llm import OpenAIChatModel

        assert settings.llm_url is not None and settings.llm_model is not None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else None
        chat_model = OpenAIChatModel(settings.llm_url, settings.llm_model, api_key=key, timeout=settings.llm_timeout)
    if chat_model is None:
        return offline
    return ModelGrader(chat_model, offline, clock, calls_per_hour=settings.llm_calls_per_hour)


async def build_app(settings: Settings, *, clock: Clock | None = None, chat_model: ChatModel | None = None) -> App:
    """Everything the bot needs, wired; the database is opened and migrated."""
    bank = load_bank(settings.content_path)
    store = Store(settings.db, pgbouncer=settings.db_pgbouncer)
    try:
        await store.open()
    except (OSError, sqlite3.Error, DatabaseUnavailable, asyncpg.PostgresError) as exc:
        await store.close()
        raise ConfigError(f"STUDYBOT_DB: cannot open the database at {settings.db_display()}: {exc}") from None
    app = compose(settings, store, bank, clock or SystemClock(), chat_model=chat_model)
    await app.library.open()  # the decks imported into the database
    return app


def compose(
    settings: Settings,
    store: Store,
    bank: QuestionBank,
    clock: Clock,
    *,
    chat_model: ChatModel | None = None,
    scheduler: fsrs.Scheduler | None = None,
    rng: random.Random | None = None,
    throttle: Throttle | None = None,
) -> App:
    """The services on an open store, wired as the program runs them (tests pass fakes: a clock, a bank, a
    model server's client, a scheduler without fuzzing, a seeded `rng`, a roomier `throttle`)."""
    library = Library(bank, store)  # the shipped bank and the decks imported into the database
    study = StudyService(
        store,
        library,
        clock,
        scheduler=scheduler,
        default_timezone=settings.default_timezone,
        default_new_per_day=settings.new_per_day,
        rng=rng,
        grader=build_grader(settings, bank, clock, chat_model=chat_model),
    )
    commands = Commands(study, throttle=throttle)
    notifiers: dict[str, Notifier] = {}
    competition = CompetitionService(store, library, clock, study, rng=rng)
    daily = DailyService(
        store,
        study,
        notifiers,
        group_content=competition.daily_poll,
        poll_sent=competition.attach_message,
        # several processes share PostgreSQL: every push takes a send slot from the database, so the fleet
        # together stays under TELEGRAM_MAX_RATE (one process on SQLite: the adapter's own limiter paces it)
        rates={"telegram": settings.telegram_max_rate} if store.engine == "postgresql" else None,
        claimer=replica_name(),  # deliveries.claimed_by says which process claimed a push
    )
    commands.attach_daily(daily)
    commands.attach_competition(competition)
    commands.attach_plan(PlanService(store, study))
    from bot.anki import build_apkg  # /export anki: the core gets the writer, never genanki itself

    commands.attach_privacy(PrivacyService(store, clock, bank=library, anki=build_apkg, after_forget=library.reload))
    from bot.deckfile import parse_deck_file  # file formats (zip, an Anki SQLite collection) stay out of the core

    decks = DeckService(library, store, clock, parse=parse_deck_file, max_bytes=settings.import_max_bytes)
    commands.attach_decks(decks)
    links = LinkService(store, study, notifiers)
    commands.attach_links(links)
    pictures = ProgressPicturer()
    commands.attach_progress(ProgressService(store, study, pictures))
    commands.attach_interview(InterviewService(store, study, clock, rng=rng))
    return App(
        settings=settings,
        bank=bank,
        library=library,
        store=store,
        clock=clock,
        study=study,
        commands=commands,
        daily=daily,
        competition=competition,
        notifiers=notifiers,
        pictures=pictures,
        links=links,
        decks=decks,
    )


def telegram_adapter(app: App, **tuning: Any) -> TelegramBot:
    """The Telegram front end on the app's services (TELEGRAM_TOKEN, TELEGRAM_API_URL), its notifier
    registered for daily pushes and quiz rounds; `tuning` overrides TelegramBot's retry and timeout
    defaults (tests shorten them)."""
    from bot.adapters.telegram import PLATFORM, TelegramBot

    token = app.settings.telegram_token
    if token is None:
        raise ConfigError("TELEGRAM_TOKEN is not set")
    telegram = TelegramBot(
        app.commands,
        app.store,
        app.clock,
        token=token.get_secret_value(),
        api_url=app.settings.telegram_api_url,
        competition=app.competition,
        **{"max_rate": app.settings.telegram_max_rate, **tuning},
    )
    app.notifiers[PLATFORM] = telegram.notifier
    return telegram


def replica_name() -> str:
    """This process among the replicas sharing a database: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def telegram_webhook(app: App, telegram: TelegramBot, *, replica: str | None = None) -> TelegramWebhook:
    """The webhook endpoint (TELEGRAM_WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET) on the Telegram front end."""
    from bot.adapters.telegram.webhook import TelegramWebhook

    url, secret = app.settings.telegram_webhook_url, app.settings.telegram_webhook_secret
    if url is None or secret is None:
        raise ConfigError("TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET are not set")
    return TelegramWebhook(
        telegram,
        app.store,
        app.clock,
        url=url,
        secret=secret.get_secret_value(),
        replica=replica or replica_name(),
        metrics=app.metrics,
    )


def serves_http(settings: Settings) -> bool:
    """Whether `studybot run` opens its HTTP server: with Telegram webhooks, or when STUDYBOT_LISTEN is set
    (so a single long-polling process opens no port unasked)."""
    return settings.telegram_webhook_url is not None or "listen" in settings.model_fields_set


def web_server(app: App, webhook: TelegramWebhook | None = None, *, port: int | None = None) -> WebServer:
    """The HTTP server on STUDYBOT_LISTEN (`port` overrides its port; 0 picks a free one): /healthz,
    /metrics, and the webhook at TELEGRAM_WEBHOOK_URL's path when there is one."""
    from bot.storage.copy import redact
    from bot.web import Health, WebServer

    host, listen_port = app.settings.listen_host_port
    db = app.settings.db
    health = Health(
        app.store, app.clock, app.metrics, redact=lambda text: redact(text, db), own_tick=lambda: app.daily.last_tick
    )
    app.metrics.count_running_matches(lambda: _count_running(app))
    return WebServer(
        health,
        app.metrics,
        host=host,
        port=listen_port if port is None else port,
        webhook=webhook,
        webhook_path=app.settings.telegram_webhook_path,
    )


async def _count_running(app: App) -> int:
    return len(await app.store.running_matches())


async def start_web(server: WebServer, listen: str) -> None:
    """Start the HTTP server; a port in use or a host that is not this machine's is a ConfigError."""
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(f"STUDYBOT_LISTEN: cannot listen on {listen}: {exc.strerror or exc}") from None


async def register_webhook(webhook: TelegramWebhook) -> None:
    """setWebhook; Telegram refusing the URL (it cannot reach it, say) is a ConfigError."""
    from telegram.error import BadRequest

    try:
        await webhook.register()
    except BadRequest as exc:
        raise ConfigError(f"TELEGRAM_WEBHOOK_URL: Telegram refused the webhook: {exc.message}") from None


def discord_adapter(app: App, **tuning: Any) -> DiscordBot:
    """The Discord front end on the app's services (DISCORD_TOKEN, DISCORD_API_URL, DISCORD_GATEWAY_URL,
    DISCORD_GUILD_ID; DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS: this process's shards), its notifier
    registered; `tuning` overrides DiscordBot's retry and timeout defaults."""
    from bot.adapters.discord import PLATFORM, DiscordBot

    token = app.settings.discord_token
    if token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    discord_bot = DiscordBot(
        app.commands,
        app.store,
        app.clock,
        token=token.get_secret_value(),
        api_url=app.settings.discord_api_url,
        gateway_url=app.settings.discord_gateway_url,
        guild_id=app.settings.discord_guild_id,
        shard_count=app.settings.discord_shard_count,
        shard_ids=app.settings.discord_shard_ids,
        **tuning,
    )
    app.notifiers[PLATFORM] = discord_bot.notifier
    return discord_bot


async def run_platforms(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Start every adapter whose token is set, on this event loop, until SIGTERM/SIGINT; the HTTP server
    too when serves_http(settings)."""
    import signal

    if settings.telegram_webhook_url is not None and settings.telegram_token is None:
        raise ConfigError("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_TOKEN is not (webhooks are for the Telegram bot)")
    app = await build_app(settings)
    stop_event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)
    started: list[Any] = []
    webhook: TelegramWebhook | None = None
    shared = app.store.engine == "postgresql"  # replicas may share it: match leases, pushes in send slots
    runner = MatchRunner(app.competition, app.notifiers, app.clock, shared=shared)
    ticker = DailyTicker(app.daily, app.links, library=app.library, metrics=app.metrics)
    try:
        if settings.telegram_token is not None:
            telegram = telegram_adapter(app)
            await telegram.start(polling=settings.telegram_webhook_url is None)  # webhooks: no polling
            started.append(telegram)
            if settings.telegram_webhook_url is not None:
                webhook = telegram_webhook(app, telegram)
        if serves_http(settings):
            server = web_server(app, webhook)
            await start_web(server, settings.listen)
            started.append(server)
        if webhook is not None:  # listening first: Telegram may post as soon as the webhook is set
            await register_webhook(webhook)
            webhook.start_pruning()
            started.append(webhook)
        if settings.discord_token is not None:
            discord_bot = discord_adapter(app)
            await discord_bot.start()
            started.append(discord_bot)
        resumed = await runner.resume()
        if shared:
            runner.start_watching()
        ticker.start()
        log.info(
            "StudyBot is running (%s); %d quiz match(es) resumed",
            ", ".join(type(a).__name__ for a in started),
            resumed,
        )
        await stop_event.wait()
        log.info("stopping")
    finally:
        ticker.stop()
        await runner.stop()
        for adapter in reversed(started):
            try:
                await asyncio.wait_for(adapter.stop(), timeout=10)
            except Exception:  # a failing shutdown must not keep the database open
                log.exception("error while stopping %s", type(adapter).__name__)
        await app.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


async def run_chat(settings: Settings, profile: str | None = None) -> int:
    from bot.adapters.console import ConsoleChat

    app = await build_app(settings)
    try:
        where = "your PostgreSQL database" if settings.db_is_postgres else str(settings.db_path)
        chat = ConsoleChat(
            app.commands,
            user=profile,
            competition=app.competition,
            data_dir=settings.data_dir,
            db_location=where,
        )
        return await chat.run()
    finally:
        await app.close()


def run_command(command: str, profile: str | None = None) -> int:
    """Run `studybot run` or `studybot chat`; configuration mistakes exit 2 with one line."""
    chatting = False
    try:
        settings = load_settings()
        tokens = [t for t in (settings.telegram_token, settings.discord_token) if t is not None]
        quiet = command == "chat" or not tokens
        setup_logging("WARNING" if quiet else settings.log_level, settings.log_format, settings.secrets())
        if command == "chat" or (settings.telegram_token is None and settings.discord_token is None):
            if command == "run" and sys.stdin.isatty():
                print("No TELEGRAM_TOKEN or DISCORD_TOKEN set: starting the terminal chat.")
            chatting = True
            return asyncio.run(run_chat(settings, profile))
        return asyncio.run(run_platforms(settings))
    except ConfigError as exc:
        print(f"studybot: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C: every answer is already committed; leave as shells expect
        if chatting:
            print(file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0
