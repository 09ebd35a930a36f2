"""Random input never breaks the bot: any command, argument, text or callback data gets a reply or a clean refusal."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import fsrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, FakeNotifier, MemoryStore

NAMES = [
    "start",
    "help",
    "question",
    "topics",
    "stats",
    "newcards",
    "daily",
    "quiz",
    "stopquiz",
    "leaderboard",
    "export",
    "forget",
    "nope",
    "QUESTION",
    "x" * 32,
]
text_strategy = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=3000, max_size=4000),
    st.sampled_from(["<b>", "</i>", "&", "&amp;", "*bold* _x_ `y`", "@everyone", "\u202e", "\x00", "🔥" * 50]),
)
data_strategy = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[a-z]{2}:[0-9]{1,6}(:[0-9]{1,3})?", fullmatch=True),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)


def full_commands(store: MemoryStore | SqliteStore, clock: FakeClock) -> Commands:
    study = StudyService(
        store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(1)
    )
    commands = Commands(study, throttle=Throttle(clock, limit=10**6))
    competition = CompetitionService(store, study.bank, clock, study)  # type: ignore[arg-type]
    commands.attach_daily(
        DailyService(
            store,
            study,
            {"telegram": FakeNotifier()},  # type: ignore[arg-type]
            group_content=competition.daily_poll,
        )
    )
    commands.attach_competition(competition)
    commands.attach_privacy(PrivacyService(store, clock))  # type: ignore[arg-type]
    return commands


@pytest.fixture
async def sqlite_commands(tmp_path: Path) -> AsyncIterator[Commands]:
    async with SqliteStore(tmp_path / "fuzz.db") as store:
        yield full_commands(store, FakeClock())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(NAMES), args=text_strategy, group=st.booleans(), user=st.sampled_from(["1", "2"]))
async def test_any_command_gets_a_reply(
    sqlite_commands: Commands, name: str, args: str, group: bool, user: str
) -> None:
    who = caller(user, chat="-5" if group else user, group=group)
    reply = await sqlite_commands.run(who, name, args)
    assert reply.blocks or reply.notice or reply.attachment


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=data_strategy, text=text_strategy)
async def test_any_callback_data_or_text_is_handled(sqlite_commands: Commands, data: str, text: str) -> None:
    who = caller("1")
    await sqlite_commands.run(who, "question")
    pressed = await sqlite_commands.press(who, data)
    assert pressed.blocks or pressed.notice
    answered = await sqlite_commands.text(who, text)
    assert answered is None or answered.blocks or answered.notice


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(text_strategy, min_size=1, max_size=4),
    datas=st.lists(data_strategy, max_size=3),
    group=st.booleans(),
)
async def test_random_updates_through_telegram_never_error_and_never_send_invalid_html(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], datas: list[str], group: bool
) -> None:
    path = tmp_path_factory.mktemp("tg") / "bot.db"
    async with FakeTelegram() as fake, SqliteStore(path) as store:
        stack = build_stack(fake, store)
        errors: list[BaseException] = []

        async def record(update: object, context: object) -> None:
            errors.append(getattr(context, "error", None) or RuntimeError("unknown"))

        stack.telegram.application.error_handlers.clear()
        stack.telegram.application.add_error_handler(record)  # type: ignore[arg-type]
        await stack.telegram.start(polling=False)
        try:
            chat_id, chat_type = (-99, "supergroup") if group else (9, "private")
            user = fake.make_user(9, "Fuzz <b>&")
            await stack.telegram.process(fake.message_update(chat_id, user, "/question", chat_type=chat_type))
            for text in texts:
                await stack.telegram.process(fake.message_update(chat_id, user, text, chat_type=chat_type))
            sent = [m for m in fake.messages(chat_id) if m.from_bot]
            for data in datas:
                if sent and data.encode() and len(data.encode()) <= 64:
                    await stack.telegram.process(fake.callback_update(chat_id, user, sent[0].message_id, data))
            await asyncio.sleep(0)
        finally:
            await stack.telegram.stop()
        assert errors == []
        rejected = [c for c in fake.calls if not c.ok]
        assert rejected == [], [(c.method, c.description) for c in rejected]
