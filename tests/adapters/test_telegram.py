"""The Telegram adapter end to end: a real python-telegram-bot Application against the fake Bot API."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bot.adapters.telegram import SORRY, TelegramBot, keyboard, render_html
from bot.core.ports import Delivery
from bot.core.views import Bullets, Paragraph, Reply
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import make_telegram
from tests.adapters.fake_telegram import FakeTelegram, StoredMessage, parse_html
from tests.adapters.stack import every_card_view

ANN = 1001
BOB = 1002
GROUP = -100500


def buttons(message: StoredMessage) -> dict[str, str]:
    markup = message.reply_markup or {}
    return {b["text"].split(" · ")[0]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def last_bot_message(fake: FakeTelegram, chat_id: int) -> StoredMessage:
    mine = [m for m in fake.messages(chat_id) if m.from_bot]
    assert mine, f"the bot sent nothing to {chat_id}"
    return mine[-1]


async def say(
    fake: FakeTelegram,
    bot: TelegramBot,
    text: str,
    user: dict[str, Any],
    chat_id: int | None = None,
    chat_type: str = "private",
) -> None:
    await bot.process(fake.message_update(chat_id or user["id"], user, text, chat_type=chat_type))


async def press(fake: FakeTelegram, bot: TelegramBot, message: StoredMessage, label: str, user: dict[str, Any]) -> None:
    await bot.process(fake.callback_update(message.chat_id, user, message.message_id, buttons(message)[label]))


async def review_count(store: SqliteStore) -> int:
    row = await store.db.fetchrow("SELECT COUNT(*) FROM reviews")
    return int(row[0]) if row else 0


def all_calls_ok(fake: FakeTelegram) -> bool:
    return all(call.ok for call in fake.calls)


# --- commands ---------------------------------------------------------------------------------------


async def test_start_welcomes_and_the_command_list_is_published(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/start", ann)
    text = last_bot_message(fake, ANN).text or ""
    assert "Hi Ann!" in text and "/question" in text
    names = [c["command"] for c in fake.commands]
    assert names[:5] == ["start", "help", "question", "topics", "stats"]
    assert all(c["description"] for c in fake.commands)


async def test_help_lists_every_command(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/help", ann)
    text = last_bot_message(fake, ANN).text or ""
    for usage in ("/question [topic|weak]", "/topics", "/stats", "/newcards [N]", "/deck [use NAMES"):
        assert usage in text


async def test_a_question_says_to_just_type_the_answer_and_offers_no_answer_box(
    fake: FakeTelegram, telegram: TelegramBot
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    question = last_bot_message(fake, ANN)
    assert "Answer in your own words (just type it), or pick a button." in (question.text or "")
    assert "Type answer" not in (question.text or "") and "Type answer" not in str(buttons(question))


async def test_question_reveal_and_rate_edit_one_message_in_place(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    question = last_bot_message(fake, ANN)
    assert set(buttons(question)) == {"Show answer", "Multiple choice", "Skip"}

    await press(fake, telegram, question, "Show answer", ann)
    revealed = fake.message(ANN, question.message_id)
    assert revealed is not None and "Model answer" in (revealed.text or "")
    assert list(buttons(revealed)) == ["Again", "Hard", "Good", "Easy"]

    await press(fake, telegram, revealed, "Good", ann)
    rated = fake.message(ANN, question.message_id)
    assert rated is not None and "Rated Good" in (rated.text or "")
    assert list(buttons(rated)) == ["Next question ▶"]
    assert len([m for m in fake.messages(ANN) if m.from_bot]) == 1  # edited, never re-sent
    assert len(fake.callback_answers) == 2  # every press answered
    assert await review_count(sqlite) == 1
    assert all_calls_ok(fake)


async def test_multiple_choice_right_and_wrong(fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore) -> None:
    ann = fake.make_user(ANN, "Ann")
    outcomes = []
    for pick_correct in (True, False):
        await say(fake, telegram, "/question", ann)
        question = last_bot_message(fake, ANN)
        await press(fake, telegram, question, "Multiple choice", ann)
        shown = fake.message(ANN, question.message_id)
        assert shown is not None
        lines = [line for line in (shown.text or "").splitlines() if line.startswith("• ")]
        letters = [line[2] for line in lines]
        right = next(line[2] for line in lines if line.endswith(") Right"))
        choice = right if pick_correct else next(letter for letter in letters if letter != right)
        await press(fake, telegram, shown, choice, ann)
        final = fake.message(ANN, question.message_id)
        assert final is not None
        outcomes.append(final.text or "")
    assert "Correct!" in outcomes[0] and "Because it is right." in outcomes[0]
    assert "Not quite." in outcomes[1]
    assert [a.text for a in fake.callback_answers[-1:]] == ["Not quite"]
    assert await review_count(sqlite) == 2


async def test_a_typed_answer_is_graded_against_key_points(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    await say(fake, telegram, "It is the chain rule applied backwards", ann)
    reply = last_bot_message(fake, ANN)
    assert "You covered 1 of 3 key points" in (reply.text or "")
    assert "✓ chain rule" in (reply.text or "")
    assert list(buttons(reply)) == ["Again", "Hard", "Good", "Easy"]


@pytest.mark.parametrize("text", ["hello", "7", "\x1b[A"])
async def test_a_non_answer_leaves_the_question_open_and_stores_nothing(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore, text: str
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    await say(fake, telegram, text, ann)
    reply = last_bot_message(fake, ANN)
    assert "I didn't take" in (reply.text or "") and "Model answer" not in (reply.text or "")
    assert list(buttons(reply)) == ["Show answer", "Multiple choice", "Skip"]
    assert await review_count(sqlite) == 0 and all_calls_ok(fake)
    await press(fake, telegram, reply, "Show answer", ann)  # the question is still open
    assert "Model answer" in (last_bot_message(fake, ANN).text or "")


async def test_text_without_an_open_question_gets_a_hint(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "hello?", ann)
    assert "Send /question" in (last_bot_message(fake, ANN).text or "")


async def test_topic_filter_and_unknown_topic(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question optim", ann)
    assert "Optimisation" in (last_bot_message(fake, ANN).text or "")
    await say(fake, telegram, "/question astrology", ann)
    text = last_bot_message(fake, ANN).text or ""
    assert "I don't know the topic “astrology”" in text and "basics, optim, stories" in text


# --- forged, stale and foreign buttons --------------------------------------------------------------


async def test_forged_callback_data_is_refused_with_a_notice(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    question = last_bot_message(fake, ANN)
    for data in ("rt:1:4", "sa:99999", "hello", "rt:1:9"):
        await telegram.process(fake.callback_update(ANN, ann, question.message_id, data))
    assert len(fake.callback_answers) == 4
    assert all(answer.text for answer in fake.callback_answers)
    assert fake.calls_to("editMessageText") == []
    assert await review_count(sqlite) == 0


async def test_a_stale_button_is_refused(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann)
    old = last_bot_message(fake, ANN)
    await say(fake, telegram, "/question", ann)
    await press(fake, telegram, old, "Show answer", ann)
    assert "already closed" in (fake.callback_answers[-1].text or "")
    assert fake.calls_to("editMessageText") == []


async def test_in_a_group_only_the_asker_can_press_the_buttons(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    bob = fake.make_user(BOB, "Bob")
    await say(fake, telegram, "/question@studybot_test_bot", ann, GROUP, "supergroup")
    question = last_bot_message(fake, GROUP)
    assert "Question for Ann" in (question.text or "")
    assert question.reply_to is not None  # replies to the asker's command
    await press(fake, telegram, question, "Show answer", bob)
    assert "belongs to someone else" in (fake.callback_answers[-1].text or "")
    unchanged = fake.message(GROUP, question.message_id)
    assert unchanged is not None and unchanged.text == question.text
    await press(fake, telegram, question, "Show answer", ann)
    revealed = fake.message(GROUP, question.message_id)
    assert revealed is not None and "Model answer" in (revealed.text or "")


async def test_group_chatter_is_not_taken_as_an_answer(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question", ann, GROUP, "group")
    sent = len(fake.calls_to("sendMessage"))
    await say(fake, telegram, "chain rule, obviously", ann, GROUP, "group")
    assert len(fake.calls_to("sendMessage")) == sent


async def test_a_command_for_another_bot_is_ignored(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/question@some_other_bot", ann, GROUP, "supergroup")
    assert fake.calls_to("sendMessage") == []


async def test_a_hostile_user_name_is_escaped(fake: FakeTelegram, telegram: TelegramBot) -> None:
    bob = fake.make_user(BOB, "<b>Bob & </i>")
    await say(fake, telegram, "/question", bob, GROUP, "supergroup")
    await say(fake, telegram, "/start", bob, GROUP, "supergroup")
    texts = [m.text or "" for m in fake.messages(GROUP) if m.from_bot]
    assert any("Question for <b>Bob & </i>" in t for t in texts)
    assert any("Hi <b>Bob & </i>!" in t for t in texts)
    assert all_calls_ok(fake)


# --- platform errors --------------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_retried(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    fake.fail_next("sendMessage", 429, retry_after=1)
    await say(fake, telegram, "/start", ann)
    statuses = [c.status for c in fake.calls_to("sendMessage")]
    assert statuses == [429, 200]


async def test_a_5xx_is_retried_with_backoff(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    fake.fail_next("sendMessage", 500)
    fake.fail_next("sendMessage", 502)
    await say(fake, telegram, "/start", ann)
    assert [c.status for c in fake.calls_to("sendMessage")] == [500, 502, 200]


async def test_a_timeout_is_retried(fake: FakeTelegram, sqlite: SqliteStore) -> None:
    bot = make_telegram(fake, sqlite)
    bot.application.bot._request[1]._client.timeout = __import__("httpx").Timeout(0.3)  # type: ignore[attr-defined]
    await bot.start(polling=False)
    try:
        fake.delay_next("sendMessage", 1.0)
        ann = fake.make_user(ANN, "Ann")
        await say(fake, bot, "/start", ann)
        assert [c.status for c in fake.calls_to("sendMessage")][-1] == 200
    finally:
        await bot.stop()


async def test_a_403_marks_the_chat_unreachable_until_the_user_comes_back(
    fake: FakeTelegram, telegram: TelegramBot, sqlite: SqliteStore
) -> None:
    ann = fake.make_user(ANN, "Ann")
    fake.block_chat(ANN)
    await say(fake, telegram, "/question", ann)
    assert [c.status for c in fake.calls_to("sendMessage")] == [403]
    assert not await sqlite.is_reachable(f"telegram:{ANN}")
    result = await telegram.notifier.send(str(ANN), Reply(blocks=(Paragraph.of("daily question"),)))
    assert result.delivery is Delivery.UNREACHABLE
    assert len(fake.calls_to("sendMessage")) == 1  # nothing more was sent there
    fake.unblock_chat(ANN)
    await say(fake, telegram, "/start", ann)  # the user comes back
    assert await sqlite.is_reachable(f"telegram:{ANN}")
    assert fake.calls_to("sendMessage")[-1].status == 200


async def test_an_edit_that_changes_nothing_is_ignored(fake: FakeTelegram, telegram: TelegramBot) -> None:
    ann = fake.make_user(ANN, "Ann")
    await say(fake, telegram, "/start", ann)
    message = last_bot_message(fake, ANN)
    reply = Reply(blocks=(Paragraph.of("same"),))
    first = await telegram.notifier.edit(ANN, message.message_id, reply)
    second = await telegram.notifier.edit(ANN, message.message_id, reply)
    assert first.delivery is Delivery.SENT and second.delivery is Delivery.SENT
    assert "not modified" in (fake.calls_to("editMessageText")[-1].description or "")


async def test_a_failing_handler_logs_without_the_token_and_apologises(
    fake: FakeTelegram, telegram: TelegramBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> Reply:
        raise RuntimeError(f"database on fire while calling https://api.telegram.org/bot{fake.token}/sendMessage")

    monkeypatch.setattr(telegram.commands, "run", broken)
    ann = fake.make_user(ANN, "Ann")
    with caplog.at_level(logging.ERROR):
        await say(fake, telegram, "/stats", ann)
    assert last_bot_message(fake, ANN).text == SORRY
    records = [r for r in caplog.records if r.name == "studybot.telegram"]
    assert records and getattr(records[0], "chat", None) == ANN


# --- rendering ----------------------------------------------------------------------------------------


def test_long_replies_are_split_cleanly_under_the_limit() -> None:
    items = tuple((f"point {n} " + "x" * 80,) for n in range(120))
    reply = Reply(blocks=(Paragraph.of("intro"), Bullets(items), Paragraph.of("y" * 9000)))
    chunks = render_html(reply)
    assert len(chunks) >= 4
    for chunk in chunks:
        text, _ = parse_html(chunk)
        assert 0 < len(text) <= 4096


async def test_every_card_of_the_shipped_bank_renders_as_valid_telegram_html(sqlite: SqliteStore) -> None:
    views = await every_card_view(sqlite, "telegram", "1")
    assert len(views) > 300
    for card_id, view in views:
        for chunk in render_html(view):
            text, _ = parse_html(chunk)
            assert len(text) <= 4096, card_id
        markup = keyboard(view)
        assert markup is not None
        for row in markup.inline_keyboard:
            for b in row:
                assert b.callback_data is not None and len(str(b.callback_data).encode()) <= 64


# --- long polling ---------------------------------------------------------------------------------------


async def test_long_polling_receives_updates_and_answers(fake: FakeTelegram, sqlite: SqliteStore) -> None:
    bot = make_telegram(fake, sqlite)
    await bot.start(polling=True)
    try:
        await fake.wait_for_long_poll()
        ann = fake.make_user(ANN, "Ann")
        fake.push_update(fake.message_update(ANN, ann, "/question"))
        calls = await fake.wait_for("sendMessage", predicate=lambda c: c.ok, timeout=10)
        assert "Answer in your own words" in str(calls[0].params["text"])
    finally:
        await asyncio.wait_for(bot.stop(), timeout=15)
