"""A mock interview end to end on both platforms: the real python-telegram-bot and discord.py clients
against the fake servers, on one SQLite store."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsrs
import pytest

from bot.adapters.discord import ANSWER_MODAL_ID, TYPE_ANSWER_LABEL, DiscordBot
from bot.adapters.llm import OpenAIChatModel
from bot.core.commands import Commands
from bot.core.grading import LexicalGrader
from bot.core.interview import InterviewService
from bot.core.llm_grading import ModelGrader
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD, make_discord
from tests.adapters.fake_discord import EPHEMERAL, FakeDiscord
from tests.adapters.fake_llm import FakeLLM
from tests.adapters.fake_telegram import DEFAULT_USERNAME, FakeTelegram, StoredMessage
from tests.adapters.stack import Stack, build_stack
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock

ANSWER = "The chain rule gives the gradient of the loss, and vanishing gradients appear in deep nets."
ANN = 1001
GROUP = -100900
DISCORD_ANN = 710000000000000001


async def interview_reviews(store: SqliteStore) -> list[int]:
    found = await store.db.fetch("SELECT rating FROM reviews WHERE mode = 'interview' ORDER BY id")
    return [int(row[0]) for row in found]


# --- Telegram --------------------------------------------------------------------------------------------


@pytest.fixture
async def stack(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[Stack]:
    built = build_stack(fake, sqlite, FakeClock(datetime(2026, 2, 2, 7, 0, tzinfo=UTC)))
    await built.telegram.start(polling=False)
    try:
        yield built
    finally:
        await built.stop()


def tg_buttons(message: StoredMessage) -> dict[str, dict[str, Any]]:
    markup = message.reply_markup or {}
    return {b["text"]: b for row in markup.get("inline_keyboard", []) for b in row}


def tg_last(fake: FakeTelegram, chat_id: int) -> StoredMessage:
    return [m for m in fake.messages(chat_id) if m.from_bot][-1]


async def tg_say(fake: FakeTelegram, stack: Stack, text: str, chat_id: int = ANN, chat_type: str = "private") -> str:
    ann = fake.make_user(ANN, "Ann")
    stack.clock.advance(seconds=45)
    await stack.telegram.process(fake.message_update(chat_id, ann, text, chat_type=chat_type))
    return tg_last(fake, chat_id).text or ""


async def test_telegram_interview_by_plain_messages_with_follow_ups_skip_and_report(
    fake: FakeTelegram, stack: Stack, sqlite: SqliteStore
) -> None:
    first = await tg_say(fake, stack, "/interview basics 3")
    assert "Question 1 of 3" in first and "Coach mode" in first
    assert list(tg_buttons(tg_last(fake, ANN))) == ["Skip", "End interview"]
    follow_up = await tg_say(fake, stack, ANSWER)
    assert "You covered 3 of 3 key points." in follow_up and "Follow-up · question 1 of 3" in follow_up
    second = await tg_say(fake, stack, ANSWER)
    assert "Question 1: 100% · recorded as Good." in second and "Question 2 of 3" in second
    ann = fake.make_user(ANN, "Ann")
    message = tg_last(fake, ANN)
    await stack.telegram.process(
        fake.callback_update(ANN, ann, message.message_id, tg_buttons(message)["Skip"]["callback_data"])
    )
    assert "Question 2 skipped" in (tg_last(fake, ANN).text or "")
    report = await tg_say(fake, stack, "/end")
    assert "Interview report · 50%" in report and "ended after 2 questions" in report
    assert "rated Good" in report and "skipped: 0%, not reviewed" in report
    assert await interview_reviews(sqlite) == [3]
    assert all(call.ok for call in fake.calls)


async def test_telegram_group_gets_a_deep_link_and_the_link_starts_the_interview(
    fake: FakeTelegram, stack: Stack
) -> None:
    said = await tg_say(fake, stack, "/interview", chat_id=GROUP, chat_type="supergroup")
    assert "private chat" in said
    link = tg_buttons(tg_last(fake, GROUP))["Open a private chat with me"]
    assert link["url"] == f"https://t.me/{DEFAULT_USERNAME}?start=interview"
    started = await tg_say(fake, stack, "/start interview")  # what Telegram sends when the link is opened
    assert "Mock interview · 5 questions" in started and "Question 1 of 5" in started


# --- Discord ----------------------------------------------------------------------------------------------


@pytest.fixture
async def discord_with_interviews(discord_fake: FakeDiscord, sqlite: SqliteStore) -> AsyncIterator[DiscordBot]:
    bot = make_discord(discord_fake, sqlite, clock=FakeClock(datetime(2026, 2, 2, 7, 0, tzinfo=UTC)))
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def dc_buttons(message: dict[str, Any]) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])}


def dc_text(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
    return "\n".join(parts)


async def dc_type(fake: FakeDiscord, message: dict[str, Any], text: str) -> dict[str, Any]:
    """Press ✍️ Type answer under `message`, then submit the modal; returns the bot's reply."""
    opened = fake.component_interaction(
        dc_buttons(message)[TYPE_ANSWER_LABEL], message=int(message["id"]), user_id=DISCORD_ANN, guild_id=DISCORD_GUILD
    )
    await fake.send_interaction(opened)
    assert (await fake.wait_for_callback(opened)).type == 9  # the modal
    submit = fake.modal_submit_interaction(
        ANSWER_MODAL_ID, {"answer": text}, message=int(message["id"]), user_id=DISCORD_ANN, guild_id=DISCORD_GUILD
    )
    await fake.send_interaction(submit)
    await fake.wait_for_callback(submit)
    reply = fake.original_message(submit)
    assert reply is not None
    return reply


async def test_discord_interview_runs_ephemerally_in_a_server_with_the_type_answer_box(
    discord_fake: FakeDiscord, discord_with_interviews: DiscordBot, sqlite: SqliteStore
) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    assert [o["name"] for o in synced["interview"]["options"]] == ["mode", "topic", "questions"]
    assert {"skip", "end"} <= set(synced)

    payload = discord_fake.slash_interaction(
        "interview", {"mode": "coach", "topic": "basics", "questions": 3}, user_id=DISCORD_ANN, guild_id=DISCORD_GUILD
    )
    await discord_fake.send_interaction(payload)
    await discord_fake.wait_for_callback(payload)
    question = discord_fake.original_message(payload)
    assert question is not None and question["flags"] & EPHEMERAL
    assert "Question 1 of 3" in dc_text(question) and "press ✍️ Type answer" in dc_text(question)
    assert list(dc_buttons(question)) == [TYPE_ANSWER_LABEL, "Skip", "End interview"]

    follow_up = await dc_type(discord_fake, question, ANSWER)
    assert follow_up["flags"] & EPHEMERAL
    assert "You covered 3 of 3 key points." in dc_text(follow_up) and "Follow-up" in dc_text(follow_up)
    assert TYPE_ANSWER_LABEL in dc_buttons(follow_up)
    second = await dc_type(discord_fake, follow_up, ANSWER)
    assert "recorded as Good" in dc_text(second) and "Question 2 of 3" in dc_text(second)

    end = discord_fake.component_interaction(
        dc_buttons(second)["End interview"], message=int(second["id"]), user_id=DISCORD_ANN, guild_id=DISCORD_GUILD
    )
    await discord_fake.send_interaction(end)
    await discord_fake.wait_for_callback(end)
    report = discord_fake.original_message(end)
    assert report is not None and report["flags"] & EPHEMERAL
    shown = dc_text(report)
    assert "Interview report · 100%" in shown
    assert await interview_reviews(sqlite) == [3]
    assert all(r.status < 400 for r in discord_fake.requests)


# --- with a language model --------------------------------------------------------------------------------


async def test_with_a_model_configured_the_follow_up_is_the_models_and_it_grades_the_follow_up_answer(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 2, 2, 7, 0, tzinfo=UTC))
    bank = small_bank()
    async with FakeLLM() as llm, SqliteStore(tmp_path / "bot.db") as store:
        grader = ModelGrader(
            OpenAIChatModel(llm.base_url, "fake-model", timeout=1.0), LexicalGrader(bank.cards, bank.glossary), clock
        )
        study = StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), grader=grader)
        commands = Commands(study)
        commands.attach_interview(InterviewService(store, study, clock, rng=random.Random(4)))
        ann = caller("1", "Ann")
        try:
            await commands.run(ann, "interview", "basics 3")
            llm.reply_with(
                {
                    "covered": [{"index": 0, "evidence": "chain rule"}],
                    "misconceptions": [],
                    "feedback": "Say what happens to the gradient in deep stacks.",
                    "follow_up": "How would you spot vanishing gradients during training?",
                }
            )
            clock.advance(seconds=40)
            asked = await commands.text(ann, "Backpropagation applies the chain rule layer by layer.")
            assert asked is not None
            shown = asked.plain_text()
            assert "You covered 1 of 3 key points." in shown and "Say what happens to the gradient" in shown
            assert "How would you spot vanishing gradients during training?" in shown
            llm.reply_with(
                {
                    "covered": [{"index": 1, "evidence": "vanishing gradients"}],
                    "misconceptions": [],
                    "feedback": "",
                    "follow_up": "",
                }
            )
            clock.advance(seconds=40)
            scored = await commands.text(ann, "I would plot per-layer gradient norms to catch vanishing gradients.")
            assert scored is not None
            # the follow-up was graded against the two points the answer missed, and covered one of them
            assert "brought in 1 of the 2 points it was after: vanishing gradients" in scored.plain_text()
            expected = 0.75 * (1 / 3) + 0.25 * 0.5
            assert f"Question 1: {round(expected * 100)}% · recorded as Again." in scored.plain_text()
        finally:
            await grader.close()
