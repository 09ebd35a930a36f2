"""Random input never breaks the bot: any command, argument, text or callback data gets a reply or a clean refusal."""

from __future__ import annotations

import asyncio
import random

import fsrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.telegram import SORRY
from bot.core.actions import parse_action
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
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


ERROR_WORDS = ("went wrong", "Traceback", "Exception", "Error:")


def assert_no_error_text(text: str, typed: str = "") -> None:
    """No apology or exception text in a reply (unless the user typed those words and they are echoed)."""
    for words in ERROR_WORDS:
        assert words not in text or words in typed, text[:300]


async def one_value(store: SqliteStore, sql: str) -> int:
    rows = await store.db.fetch(sql)
    return int(rows[0][0])


async def assert_store_invariants(store: SqliteStore) -> None:
    """What must hold in the database whatever anyone typed or pressed."""
    assert (await store.db.fetch("PRAGMA integrity_check"))[0][0] == "ok"
    assert await store.db.fetch("PRAGMA foreign_key_check") == []
    # at most one open question per learner and chat
    assert not await store.db.fetch(
        "SELECT learner_id, chat_key FROM attempts WHERE status IN ('open', 'choice', 'revealed') "
        "GROUP BY learner_id, chat_key HAVING COUNT(*) > 1"
    )
    # a card's state counts exactly the reviews logged for it, and no review lacks a state
    assert not await store.db.fetch(
        "SELECT s.learner_id, s.card_id FROM card_states s WHERE s.reps != "
        "(SELECT COUNT(*) FROM reviews r WHERE r.learner_id = s.learner_id AND r.card_id = s.card_id)"
    )
    assert not await store.db.fetch(
        "SELECT 1 FROM reviews r WHERE NOT EXISTS "
        "(SELECT 1 FROM card_states s WHERE s.learner_id = r.learner_id AND s.card_id = r.card_id)"
    )
    assert await one_value(store, "SELECT COUNT(*) FROM attempts WHERE status = 'done'") == await one_value(
        store, "SELECT COUNT(*) FROM reviews"
    )
    # one running match per chat, and every learner's daily cap stays in range
    assert not await store.db.fetch(
        "SELECT chat_key FROM matches WHERE status = 'running' GROUP BY chat_key HAVING COUNT(*) > 1"
    )
    assert await one_value(store, "SELECT COUNT(*) FROM learners WHERE new_per_day NOT BETWEEN 0 AND 50") == 0


async def dump(store: SqliteStore) -> dict[str, list[tuple[object, ...]]]:
    tables = [row[0] for row in await store.db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {
        table: [tuple(row) for row in await store.db.fetch(f"SELECT * FROM {table} ORDER BY 1")] for table in tables
    }


TELEGRAM_USERS = [Caller(Identity("telegram", n), f"U{n}", Chat("telegram", n)) for n in ("1", "2")]


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(NAMES), args=text_strategy, group=st.booleans(), user=st.sampled_from(["1", "2"]))
async def test_any_command_gets_a_reply_without_error_text_and_leaves_the_database_consistent(
    name: str, args: str, group: bool, user: str
) -> None:
    chat = Chat("telegram", "-5" if group else user, is_group=group)
    who = Caller(Identity("telegram", user), f"U{user}", chat, is_chat_admin=group and user == "1")
    async with SqliteStore(":memory:") as store:  # a fresh database for every example
        commands = full_commands(store, FakeClock())
        await commands.run(TELEGRAM_USERS[0], "question")  # someone is mid-question already
        reply = await commands.run(who, name, args)
        text = reply.plain_text()
        assert text or reply.notice or reply.attachment
        assert_no_error_text(text, typed=args)
        known = name.lower() in {spec.name for spec in commands.specs}
        assert ("I don't know /" in text) is (not known)
        await assert_store_invariants(store)


@settings(max_examples=150, deadline=None)
@given(data=data_strategy, text=text_strategy)
async def test_any_callback_data_or_text_is_handled_and_unparsable_data_changes_nothing(data: str, text: str) -> None:
    who = caller("1")
    async with SqliteStore(":memory:") as store:  # a fresh database for every example
        commands = full_commands(store, FakeClock())
        await commands.run(who, "question")
        before = await dump(store)
        pressed = await commands.press(who, data)
        assert pressed.blocks or pressed.notice
        assert_no_error_text(pressed.plain_text() + (pressed.notice or ""), typed=data)
        if parse_action(data) is None:
            assert pressed.is_notice_only and await dump(store) == before
        answered = await commands.text(who, text)
        assert answered is None or answered.blocks or answered.notice
        if answered is not None:
            assert_no_error_text(answered.plain_text(), typed=text)
        await assert_store_invariants(store)
        assert await one_value(store, "SELECT COUNT(*) FROM reviews") <= 1


@settings(max_examples=60, deadline=None)
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
            await stack.stop()
        assert errors == []
        rejected = [c for c in fake.calls if not c.ok]
        assert rejected == [], [(c.method, c.description) for c in rejected]
        for message in fake.messages(chat_id):
            if message.from_bot:
                assert SORRY not in (message.text or "")
                assert_no_error_text(message.text or "", typed=" ".join(texts))
        await assert_store_invariants(store)
